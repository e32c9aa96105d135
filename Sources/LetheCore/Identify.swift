/// Why an IDENTIFY buffer could not be parsed.
public struct IdentifyParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    init(_ message: String) { self.message = message }
}

/// The parts of ATA IDENTIFY DEVICE (ACS-4 §7.13.7) that decide how a drive can be erased.
public struct AtaIdentify: Codable, Sendable, Equatable {
    public var model: String
    public var serial: String
    public var firmware: String
    /// Words 100–103 (48-bit addressable sectors), or words 60–61 when 48-bit is not supported.
    public var userSectors: UInt64
    public var logicalSectorSize: Int
    /// Word 128 bit 0.
    public var securitySupported: Bool
    /// Word 128 bit 1 (a user password is set).
    public var securityEnabled: Bool
    /// Word 128 bit 2.
    public var securityLocked: Bool
    /// Word 128 bit 3: SECURITY FREEZE LOCK is in effect; SECURITY ERASE UNIT will be aborted
    /// until the drive is power-cycled (hot-plugged) without a freeze.
    public var securityFrozen: Bool
    /// Word 128 bit 5.
    public var enhancedEraseSupported: Bool
    /// Word 89, in minutes (nil when the drive does not say).
    public var eraseMinutes: Int?
    /// Word 90, in minutes.
    public var enhancedEraseMinutes: Int?
    /// Word 59 bit 12.
    public var sanitizeSupported: Bool
    /// Word 59 bit 13.
    public var cryptoScrambleSupported: Bool
    /// Word 59 bit 14.
    public var overwriteSupported: Bool
    /// Word 59 bit 15.
    public var blockEraseSupported: Bool
    /// Word 82 bit 10: the Host Protected Area feature set.
    public var hpaSupported: Bool
    /// Word 85 bit 10.
    public var hpaEnabled: Bool
    /// Word 255 carries the A5h signature and its checksum is right (nil: no signature).
    public var checksumValid: Bool?

    /// Parses the 512-byte data-in buffer of IDENTIFY DEVICE (256 little-endian words).
    public init(bytes: [UInt8]) throws(IdentifyParseError) {
        guard bytes.count >= 512 else { throw IdentifyParseError("ATA IDENTIFY data is \(bytes.count) bytes; 512 expected") }
        let word: (Int) -> UInt16 = { UInt16(bytes[2 * $0]) | UInt16(bytes[2 * $0 + 1]) << 8 }
        // Word 0 bit 15 set means an ATAPI (packet) device, not a disk.
        guard word(0) & 0x8000 == 0 else { throw IdentifyParseError("IDENTIFY word 0 = 0x\(String(word(0), radix: 16)): not an ATA disk") }
        func text(_ first: Int, _ count: Int) -> String {
            var chars: [UInt8] = []
            for index in first..<(first + count) {
                chars.append(UInt8(word(index) >> 8))
                chars.append(UInt8(word(index) & 0xff))
            }
            return Optional(String(decoding: chars, as: UTF8.self)).cleaned ?? ""
        }
        func bit(_ w: Int, _ b: Int) -> Bool { word(w) & (1 << b) != 0 }
        // Words 82–87 are valid only when bit 14 is set and bit 15 clear.
        func valid(_ w: Int) -> Bool { word(w) & 0xC000 == 0x4000 }

        model = text(27, 20)
        serial = text(10, 10)
        firmware = text(23, 4)
        let lba48 = valid(83) && bit(83, 10)
        if lba48 {
            userSectors = (0..<4).reduce(UInt64(0)) { $0 | UInt64(word(100 + $1)) << (16 * UInt64($1)) }
        } else {
            userSectors = UInt64(word(60)) | UInt64(word(61)) << 16
        }
        // Word 106: bit 12 says words 117–118 hold the logical sector size in words.
        if valid(106), bit(106, 12) {
            logicalSectorSize = 2 * Int(UInt32(word(117)) | UInt32(word(118)) << 16)
        } else {
            logicalSectorSize = 512
        }
        let security = word(128)
        securitySupported = security & 1 != 0
        securityEnabled = security & 2 != 0
        securityLocked = security & 4 != 0
        securityFrozen = security & 8 != 0
        enhancedEraseSupported = security & 0x20 != 0
        eraseMinutes = Self.eraseTime(word(89))
        enhancedEraseMinutes = Self.eraseTime(word(90))
        let sanitize = word(59)
        sanitizeSupported = sanitize & 0x1000 != 0
        cryptoScrambleSupported = sanitize & 0x2000 != 0
        overwriteSupported = sanitize & 0x4000 != 0
        blockEraseSupported = sanitize & 0x8000 != 0
        hpaSupported = valid(82) && bit(82, 10)
        hpaEnabled = hpaSupported && bit(85, 10)
        if word(255) & 0xff == 0xA5 {
            checksumValid = bytes.prefix(512).reduce(UInt8(0), &+) == 0
        } else {
            checksumValid = nil
        }
    }

    /// Words 89/90: 0 = not given; bit 15 selects the extended format (bits 14:0) over the
    /// short one (bits 7:0); either way in units of 2 minutes, the maximum meaning "more than".
    static func eraseTime(_ value: UInt16) -> Int? {
        let units = value & 0x8000 != 0 ? Int(value & 0x7fff) : Int(value & 0xff)
        return units == 0 ? nil : units * 2
    }
}

/// The parts of NVMe Identify Controller (CNS 01h, NVMe Base 2.0 §5.17.2.1) that decide how a
/// drive can be erased.
public struct NvmeIdentify: Codable, Sendable, Equatable {
    /// PCI vendor id, `0x8086`.
    public var vendorId: String
    public var serial: String
    public var model: String
    public var firmware: String
    /// OACS bit 1: Format NVM.
    public var formatSupported: Bool
    /// FNA (byte 524): bit 0, format applies to all namespaces; bit 1, secure erase applies
    /// to all namespaces; bit 2, cryptographic erase is supported as part of Format.
    public var formatAttributes: Int
    /// Bytes 328–331.
    public var sanitizeCapabilities: UInt32
    /// SANICAP bit 0.
    public var cryptoEraseSanitize: Bool
    /// SANICAP bit 1.
    public var blockEraseSanitize: Bool
    /// SANICAP bit 2.
    public var overwriteSanitize: Bool
    /// SANICAP bit 3 (VERS, NVMe 2.1): the Media Verification state, in which the host reads
    /// the sanitized media before the controller deallocates it.
    public var mediaVerification: Bool
    /// FNA bit 2.
    public var cryptoEraseFormat: Bool
    /// Number of namespaces (NN, bytes 516–519).
    public var namespaceCount: UInt32

    /// Parses the 4096-byte Identify Controller data structure.
    public init(bytes: [UInt8]) throws(IdentifyParseError) {
        guard bytes.count >= 4096 else { throw IdentifyParseError("NVMe Identify Controller data is \(bytes.count) bytes; 4096 expected") }
        func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) } }
        func text(_ at: Int, _ count: Int) -> String {
            Optional(String(decoding: bytes[at..<(at + count)], as: UTF8.self)).cleaned ?? ""
        }
        vendorId = "0x" + UsbIdentity.hex4(u16(0))
        serial = text(4, 20)
        model = text(24, 40)
        firmware = text(64, 8)
        guard !model.isEmpty || !serial.isEmpty else { throw IdentifyParseError("NVMe Identify Controller data has no model or serial (all zero?)") }
        formatSupported = u16(256) & 0x2 != 0
        formatAttributes = Int(bytes[524])
        sanitizeCapabilities = u32(328)
        cryptoEraseSanitize = sanitizeCapabilities & 1 != 0
        blockEraseSanitize = sanitizeCapabilities & 2 != 0
        overwriteSanitize = sanitizeCapabilities & 4 != 0
        mediaVerification = sanitizeCapabilities & 8 != 0
        cryptoEraseFormat = formatAttributes & 4 != 0
        namespaceCount = u32(516)
    }
}

/// Which way data moves for a device command.
public enum DataDirection: String, Sendable, Codable {
    case none, fromDevice, toDevice
}

/// A device command as data: built here, run by one executor (LetheLinux's SG_IO and NVMe
/// ioctl transport, or LetheTesting's scripted transport), so a flow can be tested against
/// recorded response bytes.
public struct DeviceCommand: Sendable, Equatable, CustomStringConvertible {
    /// What travels to the device.
    public enum Operation: Sendable, Equatable {
        /// A SCSI CDB through SG_IO (ATA commands travel inside ATA PASS-THROUGH(16)).
        case scsi(cdb: [UInt8])
        /// An NVMe admin command through NVME_IOCTL_ADMIN_CMD.
        case nvmeAdmin(opcode: UInt8, namespace: UInt32, cdw10: UInt32, cdw11: UInt32)
    }

    /// The command's name, for logs, errors and certificates.
    public var name: String
    public var operation: Operation
    public var direction: DataDirection
    /// Bytes expected from the device (data-in); for data-out, `dataOut.count`.
    public var transferLength: Int
    /// Bytes sent to the device (data-out commands).
    public var dataOut: [UInt8]
    /// How long the kernel waits before it aborts the command.
    public var timeoutSeconds: Int

    /// A SCSI command.
    public static func scsi(name: String, cdb: [UInt8], direction: DataDirection = .none, transferLength: Int = 0, dataOut: [UInt8] = [], timeoutSeconds: Int) -> DeviceCommand {
        DeviceCommand(name: name, operation: .scsi(cdb: cdb), direction: dataOut.isEmpty ? direction : .toDevice,
                      transferLength: dataOut.isEmpty ? transferLength : dataOut.count, dataOut: dataOut, timeoutSeconds: timeoutSeconds)
    }

    /// An NVMe admin command.
    public static func nvmeAdmin(name: String, opcode: UInt8, namespace: UInt32, cdw10: UInt32, cdw11: UInt32 = 0, transferLength: Int = 0, timeoutSeconds: Int) -> DeviceCommand {
        DeviceCommand(name: name, operation: .nvmeAdmin(opcode: opcode, namespace: namespace, cdw10: cdw10, cdw11: cdw11),
                      direction: transferLength > 0 ? .fromDevice : .none, transferLength: transferLength, dataOut: [], timeoutSeconds: timeoutSeconds)
    }

    /// ATA IDENTIFY DEVICE (ECh) in ATA PASS-THROUGH(16) (SAT-4 §12.2.2): PIO data-in, one
    /// 512-byte block, length in the sector count field.
    public static let ataIdentify = DeviceCommand.scsi(
        name: "ATA IDENTIFY DEVICE",
        cdb: [0x85, 4 << 1, 0x0e, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xec, 0],
        direction: .fromDevice, transferLength: 512, timeoutSeconds: 10)

    /// NVMe Identify (06h), CNS 01h: the controller data structure.
    public static let nvmeIdentifyController = DeviceCommand.nvmeAdmin(
        name: "NVMe Identify Controller", opcode: 0x06, namespace: 0, cdw10: 1, cdw11: 0, transferLength: 4096,
        timeoutSeconds: 10)

    /// The bytes that went to the device, in hex: the CDB, or the NVMe opcode and dwords.
    public var wire: String {
        switch operation {
        case .scsi(let cdb):
            return "CDB " + cdb.map { hexPair($0) }.joined(separator: " ")
        case .nvmeAdmin(let opcode, let namespace, let cdw10, let cdw11):
            return "opcode \(hexPair(opcode))h nsid 0x\(String(namespace, radix: 16)) cdw10 0x\(String(cdw10, radix: 16)) cdw11 0x\(String(cdw11, radix: 16))"
        }
    }

    public var description: String { name }
}

/// What a completed command gave back.
public struct CommandResponse: Sendable, Equatable {
    /// Data-in bytes (empty for no-data and data-out commands).
    public var data: [UInt8]
    /// SCSI sense bytes (for ATA PASS-THROUGH with CK_COND: the ATA registers).
    public var sense: [UInt8]
    /// NVMe completion dword 0.
    public var completion: UInt32

    /// A response.
    public init(data: [UInt8] = [], sense: [UInt8] = [], completion: UInt32 = 0) {
        self.data = data
        self.sense = sense
        self.completion = completion
    }
}

func hexPair(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 15)])
}

/// A device command that did not complete.
public struct CommandFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The command's name.
    public var command: String
    /// The device path.
    public var path: String
    /// The ioctl's errno, when the ioctl itself failed.
    public var errno: ErrorNumber?
    /// SCSI status / sense key / ASC / ASCQ or NVMe status, as text.
    public var status: String
    /// The sense bytes of a CHECK CONDITION (for ATA PASS-THROUGH: the ATA error registers).
    public var sense: [UInt8]
    /// The NVMe status field (SCT and SC), when the controller answered with an error.
    public var nvmeStatus: Int?

    /// Creates a failure.
    public init(command: String, path: String, errno: ErrorNumber? = nil, status: String, sense: [UInt8] = [], nvmeStatus: Int? = nil) {
        self.command = command
        self.path = path
        self.errno = errno
        self.status = status
        self.sense = sense
        self.nvmeStatus = nvmeStatus
    }

    /// The device or its node is gone (unplugged, or the controller was removed).
    public var deviceGone: Bool {
        errno == .noSuchDevice || errno == .noSuchDeviceOrAddress || errno == .noEntry
    }

    public var description: String {
        "\(command) on \(path) failed: \(status)" + (errno.map { " (\($0))" } ?? "")
    }
}

/// Runs device commands against one device.
public protocol CommandTransport: Sendable {
    /// The device path, for messages.
    var path: String { get }
    /// Runs a command and returns what came back: data-in bytes, sense, NVMe completion.
    func send(_ command: DeviceCommand) throws(CommandFailure) -> CommandResponse
}

extension CommandTransport {
    /// Runs a command and returns its data-in bytes (empty for no-data commands).
    public func execute(_ command: DeviceCommand) throws(CommandFailure) -> [UInt8] {
        try send(command).data
    }
}

/// What the firmware offers for erasure, as far as IDENTIFY says.
public struct FirmwareCapabilities: Codable, Sendable, Equatable {
    public var ata: AtaIdentify?
    public var nvme: NvmeIdentify?
    /// Why the probe could not tell (the command failed, the bridge does not pass it through).
    public var problem: String?

    /// Creates capabilities.
    public init(ata: AtaIdentify? = nil, nvme: NvmeIdentify? = nil, problem: String? = nil) {
        self.ata = ata
        self.nvme = nvme
        self.problem = problem
    }

    /// Probes through a transport: ATA IDENTIFY for `sata` and `usb` (SAT bridges), NVMe
    /// Identify Controller for `nvme`. Other transports have nothing to probe.
    public static func probe(transport kind: Transport, using transport: any CommandTransport) -> FirmwareCapabilities {
        var result = FirmwareCapabilities()
        do {
            switch kind {
            case .nvme:
                result.nvme = try NvmeIdentify(bytes: try transport.execute(.nvmeIdentifyController))
            case .sata, .usb, .scsi:
                result.ata = try AtaIdentify(bytes: try transport.execute(.ataIdentify))
            default:
                result.problem = "\(kind.rawValue) devices have no firmware erase commands to probe"
            }
        } catch let failure as CommandFailure {
            result.problem = failure.description
        } catch let failure as IdentifyParseError {
            result.problem = "\(transport.path): \(failure.message)"
        } catch {
            result.problem = "\(transport.path): \(error)"
        }
        return result
    }
}

extension AtaIdentify {
    /// The serial of the ATA drive that answers IDENTIFY DEVICE through `transport` (behind a
    /// USB-SATA bridge: the drive's own, not the dock's). Nil when nothing usable answers.
    public static func driveSerial(through transport: any CommandTransport) -> String? {
        guard let identify = try? AtaIdentify(bytes: transport.execute(.ataIdentify)) else { return nil }
        let serial = String(identify.serial.unicodeScalars.filter { $0.value > 0x20 && $0.value < 0x7f })
        return serial.isEmpty ? nil : serial
    }
}
