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
    /// (`/dev/nvme0`); both accept admin commands. `writable` opens it read-write, for commands
    /// that change the medium (sanitize, format, security erase).
    public init(path: String, writable: Bool = false) throws(LetheError) {
        self.path = path
        fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let code = lethe_errno()
            throw LetheError(code == ENOENT ? .deviceNotFound : .ioFailure, path: path, errno: ErrorNumber(code), "cannot open for device commands")
        }
    }

    deinit { close(fd) }

    public func send(_ command: DeviceCommand) throws(CommandFailure) -> CommandResponse {
        let name = command.name
        let length = command.transferLength
        switch command.operation {
        case .scsi(let cdb):
            var buffer = command.direction == .toDevice ? command.dataOut : [UInt8](repeating: 0, count: length)
            var sense = [UInt8](repeating: 0, count: 64)
            var result = lethe_sg_result()
            let dir: Int32 = command.direction == .fromDevice ? 1 : command.direction == .toDevice ? 2 : 0
            let timeout = UInt32(clamping: command.timeoutSeconds * 1000)
            let rc = buffer.withUnsafeMutableBytes { data in
                lethe_sg_io(fd, cdb, Int32(cdb.count), dir, data.baseAddress, UInt32(data.count), &sense, Int32(sense.count), timeout, &result)
            }
            if rc != 0 {
                let code = lethe_errno()
                throw CommandFailure(command: name, path: path, errno: ErrorNumber(code), status: code == ENOTTY || code == EINVAL ? "the device does not take SCSI commands" : "SG_IO ioctl failed")
            }
            let senseBytes = Array(sense.prefix(Int(result.sense_length)))
            // ATA PASS-THROUGH with CK_COND set returns CHECK CONDITION with RECOVERED ERROR
            // (ASC/ASCQ 00/1D) and the ATA registers: a success. Only a CHECK CONDITION with
            // an error sense key is a failure.
            let senseKey = SenseData(senseBytes)?.key
            if result.host_status != 0 || (result.status != 0 && senseKey.map { $0 != 0 && $0 != 1 } ?? true) {
                let gone = result.host_status == 0x01 || result.host_status == 0x04  // DID_NO_CONNECT, DID_BAD_TARGET
                throw CommandFailure(
                    command: name, path: path, errno: gone ? .noSuchDevice : nil,
                    status: "SCSI status 0x\(String(result.status, radix: 16)), host 0x\(String(result.host_status, radix: 16)), driver 0x\(String(result.driver_status, radix: 16)), sense \(SenseData.describe(senseBytes))",
                    sense: senseBytes)
            }
            return CommandResponse(data: command.direction == .fromDevice ? buffer : [], sense: senseBytes)
        case .nvmeAdmin(let opcode, let namespace, let cdw10, let cdw11):
            // The kernel takes the direction from the opcode's low bits (Security Send, 81h,
            // is host to controller); the buffer carries the data out.
            var buffer = command.direction == .toDevice ? command.dataOut : [UInt8](repeating: 0, count: length)
            var completion: UInt32 = 0
            let timeout = UInt32(clamping: command.timeoutSeconds * 1000)
            let rc = buffer.withUnsafeMutableBytes { data in
                lethe_nvme_admin(fd, opcode, namespace, cdw10, cdw11, data.baseAddress, UInt32(length), timeout, &completion)
            }
            if rc < 0 {
                let code = lethe_errno()
                throw CommandFailure(command: name, path: path, errno: ErrorNumber(code), status: code == ENOTTY ? "not an NVMe device" : "NVMe admin ioctl failed")
            }
            if rc > 0 {
                throw CommandFailure(command: name, path: path, status: NvmeStatus.describe(Int(rc)), nvmeStatus: Int(rc))
            }
            return CommandResponse(data: buffer, completion: completion)
        }
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

/// Where a drive takes its erase commands: the block node for SCSI and ATA (through SAT), the
/// controller's character node for NVMe, found through sysfs (never by cutting up the name:
/// with native multipath, `nvme0n1` may sit on controller `nvme1`).
public struct CommandNode: Sendable, Equatable {
    /// `/dev/sdb`, `/dev/nvme0`.
    public var path: String
    /// The NVMe namespace id (1 for other transports).
    public var namespace: UInt32

    /// Resolves the command node of whole disk `kernelName` (`sdb`, `nvme0n1`). A partition
    /// is refused (`.unsupported`, naming its disk): a command sent through `/dev/sdb1` reaches
    /// all of `sdb`, its other partitions included. So is a name sysfs does not list as a disk.
    public static func resolve(kernelName: String, sysfs: String = "/sys", dev: String = "/dev") throws(LetheError) -> CommandNode {
        let block = "\(sysfs)/block/\(kernelName)"
        guard FileManager.default.fileExists(atPath: block) else {
            if FileManager.default.fileExists(atPath: "\(sysfs)/class/block/\(kernelName)/partition") {
                let disk = (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(sysfs)/class/block/\(kernelName)"))
                    .map { ($0 as NSString).deletingLastPathComponent }.map { ($0 as NSString).lastPathComponent } ?? "its disk"
                throw LetheError(.unsupported, path: "\(dev)/\(kernelName)",
                    "is a partition of \(disk): the drive's own commands (firmware erase, hidden areas) act on the whole disk, its other partitions included; name the disk (\(dev)/\(disk)) to use them, or erase the partition with an overwrite method. Nothing was written or sent")
            }
            throw LetheError(.deviceNotFound, path: block, "\(kernelName) is not a whole disk in sysfs, so Lethe will not send it drive commands")
        }
        guard kernelName.hasPrefix("nvme") else { return CommandNode(path: "\(dev)/\(kernelName)", namespace: 1) }
        guard let nsidText = Sysfs.read("\(block)/nsid"), let namespace = UInt32(nsidText) else {
            throw LetheError(.deviceNotFound, path: "\(block)/nsid", "cannot read the NVMe namespace id of \(kernelName)")
        }
        // The namespace's parent: a controller (`nvme0`) or, with native multipath, the
        // subsystem (`nvme-subsys0`), whose controllers are listed in it.
        let parent = URL(fileURLWithPath: "\(block)/device").resolvingSymlinksInPath()
        let isController = { (name: String) in name.hasPrefix("nvme") && name.dropFirst(4).allSatisfy(\.isNumber) && name.count > 4 }
        if isController(parent.lastPathComponent) {
            return CommandNode(path: "\(dev)/\(parent.lastPathComponent)", namespace: namespace)
        }
        if let controller = Sysfs.list(parent.path).filter(isController).sorted().first {
            return CommandNode(path: "\(dev)/\(controller)", namespace: namespace)
        }
        throw LetheError(.deviceNotFound, path: parent.path, "cannot find the NVMe controller of \(kernelName) in sysfs")
    }

    /// Every NVMe namespace block device on the same controller (or, with native multipath,
    /// the same subsystem) as `node`: the names (`nvme0n1`, `nvme0n2`) with their namespace
    /// ids, sorted by id.
    public static func namespaces(sharing node: CommandNode, sysfs: String = "/sys", dev: String = "/dev") -> [(kernelName: String, namespace: UInt32)] {
        Sysfs.list("\(sysfs)/block").filter { $0.hasPrefix("nvme") }.compactMap { name in
            guard let other = try? resolve(kernelName: name, sysfs: sysfs, dev: dev), other.path == node.path else { return nil }
            return (name, other.namespace)
        }.sorted { $0.namespace < $1.namespace }
    }

    /// One NVMe namespace on the controller, as the guard sees it.
    public struct Namespace: Sendable {
        public var kernelName: String
        public var namespace: UInt32
        public var sizeBytes: UInt64?
        /// Why the guard refuses it; nil when its device number cannot be read (refuse then too).
        public var protection: [ProtectionReason]?
    }

    /// ``namespaces(sharing:sysfs:dev:)`` with each one's size and the guard's verdict.
    public static func guardedNamespaces(sharing node: CommandNode) -> [Namespace] {
        namespaces(sharing: node).map { sibling in
            let number = Sysfs.number(ofBlock: sibling.kernelName)
            return Namespace(
                kernelName: sibling.kernelName, namespace: sibling.namespace,
                sizeBytes: Sysfs.read("\(Sysfs.root)/block/\(sibling.kernelName)/size").flatMap(UInt64.init).map { $0 * 512 },
                protection: number.map { SafetyGuard.reasons(for: $0) })
        }
    }

    /// Has the kernel re-read a disk's capacity after its size changed under it (SET MAX
    /// ADDRESS, DCO RESTORE): writes `1` to `/sys/block/NAME/device/rescan` and waits until
    /// `/sys/block/NAME/size` shows `expectedBytes`. Returns the size the kernel reports.
    /// Throws `.ioFailure` naming the file when the rescan cannot be asked for, and
    /// `.timedOut` when the size does not change in time (the erase must not start then).
    @discardableResult
    public static func rescanCapacity(kernelName: String, expectedBytes: UInt64, timeoutSeconds: Double = 15, sysfs: String = "/sys") throws(LetheError) -> UInt64 {
        let rescan = "\(sysfs)/block/\(kernelName)/device/rescan"
        guard let handle = FileHandle(forWritingAtPath: rescan) else {
            throw LetheError(.ioFailure, path: rescan, errno: ErrorNumber(errno), "cannot ask the kernel to re-read the size of /dev/\(kernelName)")
        }
        do {
            try handle.write(contentsOf: Data("1".utf8))
            try handle.close()
        } catch {
            throw LetheError(.ioFailure, path: rescan, "writing 1 failed: \(error)")
        }
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        var seen: UInt64 = 0
        repeat {
            if let text = try? String(contentsOfFile: "\(sysfs)/block/\(kernelName)/size", encoding: .utf8), let sectors = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                seen = sectors * 512
                if seen == expectedBytes { return seen }
            }
            Thread.sleep(forTimeInterval: 0.1)
        } while Date() < deadline
        throw LetheError(.timedOut, path: "/dev/\(kernelName)", "the kernel still sees \(seen) bytes after a rescan, not \(expectedBytes); not erasing a size the drive no longer has")
    }

    /// Asks a SCSI drive which SANITIZE service actions it supports (REPORT SUPPORTED
    /// OPERATION CODES); a drive that does not answer supports none that Lethe can prove.
    public static func scsiSanitizeSupport(_ transport: any CommandTransport) -> [FirmwareErase: Bool] {
        var support: [FirmwareErase: Bool] = [:]
        for (method, action) in [(FirmwareErase.scsiSanitizeOverwrite, UInt16(1)), (.scsiSanitizeBlock, 2), (.scsiSanitizeCrypto, 3)] {
            if let answer = try? transport.execute(ScsiCommand.reportSupported(opcode: 0x48, serviceAction: action)) {
                support[method] = ScsiCommand.isSupported(answer)
            } else {
                support[method] = false
            }
        }
        return support
    }
}
