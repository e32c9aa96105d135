import CLethe
import Foundation
import LetheCore

/// Runs `DeviceCommand`s on a real device: SCSI CDBs through SG_IO, NVMe admin commands through
/// NVME_IOCTL_ADMIN_CMD. The device is opened read-only and non-blocking: these are queries,
/// and the kernel lets root send them on a read-only descriptor.
public final class LinuxCommandTransport: CommandTransport {
    public let path: String
    private let fd: Int32

    /// Opens the device node. For NVMe, pass the namespace (`/dev/nvme0n1`) or the controller
    /// (`/dev/nvme0`); both accept admin commands.
    public init(path: String) throws(LetheError) {
        self.path = path
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let code = lethe_errno()
            throw LetheError(code == ENOENT ? .deviceNotFound : .ioFailure, path: path, errno: ErrorNumber(code), "cannot open for device commands")
        }
    }

    deinit { close(fd) }

    public func execute(_ command: DeviceCommand) throws(CommandFailure) -> [UInt8] {
        switch command {
        case .scsi(let name, let cdb, let direction, let length, let timeout):
            var buffer = [UInt8](repeating: 0, count: length)
            var sense = [UInt8](repeating: 0, count: 32)
            var result = lethe_sg_result()
            let dir: Int32 = direction == .fromDevice ? 1 : direction == .toDevice ? 2 : 0
            let rc = buffer.withUnsafeMutableBytes { data in
                lethe_sg_io(fd, cdb, Int32(cdb.count), dir, data.baseAddress, UInt32(length), &sense, Int32(sense.count), UInt32(timeout * 1000), &result)
            }
            if rc != 0 {
                let code = lethe_errno()
                throw CommandFailure(command: name, path: path, errno: ErrorNumber(code), status: code == ENOTTY || code == EINVAL ? "the device does not take SCSI commands" : "SG_IO ioctl failed")
            }
            // ATA PASS-THROUGH with CK_COND clear still returns sense (ATA status return
            // descriptor, ASC/ASCQ 00/1D) on some SATs; only a CHECK CONDITION with an error
            // sense key is a failure.
            let senseKey = Self.senseKey(sense.prefix(Int(result.sense_length)))
            if result.host_status != 0 || (result.status != 0 && senseKey.map { $0 != 0 && $0 != 1 } ?? true) {
                throw CommandFailure(
                    command: name, path: path,
                    status: "SCSI status 0x\(String(result.status, radix: 16)), host 0x\(String(result.host_status, radix: 16)), driver 0x\(String(result.driver_status, radix: 16)), sense \(Self.describeSense(sense.prefix(Int(result.sense_length))))")
            }
            return buffer
        case .nvmeAdmin(let name, let opcode, let namespace, let cdw10, let cdw11, let length, let timeout):
            var buffer = [UInt8](repeating: 0, count: length)
            var completion: UInt32 = 0
            let rc = buffer.withUnsafeMutableBytes { data in
                lethe_nvme_admin(fd, opcode, namespace, cdw10, cdw11, data.baseAddress, UInt32(length), UInt32(timeout * 1000), &completion)
            }
            if rc < 0 {
                let code = lethe_errno()
                throw CommandFailure(command: name, path: path, errno: ErrorNumber(code), status: code == ENOTTY ? "not an NVMe device" : "NVMe admin ioctl failed")
            }
            if rc > 0 {
                throw CommandFailure(command: name, path: path, status: "NVMe status 0x\(String(rc, radix: 16)) (SCT \(rc >> 8 & 0x7), SC 0x\(String(rc & 0xff, radix: 16)))")
            }
            return buffer
        }
    }

    /// The sense key of fixed (70h/71h) or descriptor (72h/73h) sense data.
    static func senseKey<S: Collection>(_ sense: S) -> UInt8? where S.Element == UInt8, S.Index == Int {
        let bytes = Array(sense)
        guard let code = bytes.first.map({ $0 & 0x7f }) else { return nil }
        if code == 0x72 || code == 0x73, bytes.count > 1 { return bytes[1] & 0xf }
        if code == 0x70 || code == 0x71, bytes.count > 2 { return bytes[2] & 0xf }
        return nil
    }

    static func describeSense<S: Collection>(_ sense: S) -> String where S.Element == UInt8, S.Index == Int {
        let bytes = Array(sense)
        guard !bytes.isEmpty else { return "none" }
        var asc: UInt8 = 0
        var ascq: UInt8 = 0
        if bytes[0] & 0x7f >= 0x72, bytes.count > 3 {
            asc = bytes[2]
            ascq = bytes[3]
        } else if bytes.count > 13 {
            asc = bytes[12]
            ascq = bytes[13]
        }
        let key = senseKey(sense) ?? 0
        let names = [
            "NO SENSE", "RECOVERED ERROR", "NOT READY", "MEDIUM ERROR", "HARDWARE ERROR", "ILLEGAL REQUEST",
            "UNIT ATTENTION", "DATA PROTECT", "BLANK CHECK", "VENDOR SPECIFIC", "COPY ABORTED", "ABORTED COMMAND",
        ]
        var text = "key 0x\(String(key, radix: 16)) (\(Int(key) < names.count ? names[Int(key)] : "reserved")) asc/ascq 0x\(String(asc, radix: 16))/0x\(String(ascq, radix: 16))"
        if key == 5, asc == 0x20 { text += ": the device or its USB bridge does not support this command (no ATA pass-through)" }
        if key == 5, asc == 0x24 { text += ": invalid field in CDB" }
        return text
    }
}

/// Runs smartmontools' `smartctl -j -a` on a device: the parsing lives in LetheDiagnostics.
public enum Smartctl {
    /// What one run printed.
    public struct Output: Sendable {
        public var stdout: Data
        public var stderr: String
        public var exitStatus: Int32
    }

    /// Finds smartctl on PATH and the sbin directories (Debian installs it in /usr/sbin).
    public static func executable() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/local/sbin"]
        return dirs.map { "\($0)/smartctl" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs `smartctl -j -a DEVICE` with a time limit. Throws when smartctl is missing or
    /// cannot be started; a non-zero exit is returned, not thrown (its bits mean things).
    public static func run(device: String, timeoutSeconds: Double = 60, executable: String? = nil) throws(LetheError) -> Output {
        guard let tool = executable ?? Self.executable() else {
            throw LetheError(.deviceNotFound, path: "smartctl", "smartctl not found; install smartmontools (apt-get install smartmontools)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = ["-j", "-a", device]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do {
            try process.run()
        } catch {
            throw LetheError(.ioFailure, path: tool, "cannot start smartctl: \(error.localizedDescription)")
        }
        let timer = DispatchSource.makeTimerSource()
        timer.schedule(deadline: .now() + timeoutSeconds)
        timer.setEventHandler { process.terminate() }
        timer.resume()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        timer.cancel()
        if process.terminationReason == .uncaughtSignal {
            throw LetheError(.ioFailure, path: device, "smartctl did not finish within \(Int(timeoutSeconds)) s and was stopped")
        }
        return Output(stdout: stdout, stderr: String(decoding: stderr, as: UTF8.self), exitStatus: process.terminationStatus)
    }
}
