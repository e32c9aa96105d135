/// SCSI sense data (SPC-5 §4.4), fixed (70h/71h) or descriptor (72h/73h) format: the key,
/// ASC/ASCQ, the progress indication of a NOT READY "operation in progress", and the ATA
/// registers an ATA PASS-THROUGH command returns (SAT-4 §12.2.2.6).
public struct SenseData: Sendable, Equatable, CustomStringConvertible {
    /// The raw bytes.
    public var bytes: [UInt8]
    public var key: UInt8
    public var asc: UInt8
    public var ascq: UInt8

    /// Parses sense bytes; nil when there are none or the response code is unknown.
    public init?(_ bytes: [UInt8]) {
        guard let code = bytes.first.map({ $0 & 0x7f }) else { return nil }
        self.bytes = bytes
        switch code {
        case 0x72, 0x73:
            guard bytes.count > 3 else { return nil }
            key = bytes[1] & 0xf
            asc = bytes[2]
            ascq = bytes[3]
        case 0x70, 0x71:
            guard bytes.count > 2 else { return nil }
            key = bytes[2] & 0xf
            asc = bytes.count > 12 ? bytes[12] : 0
            ascq = bytes.count > 13 ? bytes[13] : 0
        default:
            return nil
        }
    }

    var isDescriptor: Bool { bytes[0] & 0x7f >= 0x72 }

    /// The descriptor with this code (descriptor format only).
    func descriptor(_ code: UInt8) -> ArraySlice<UInt8>? {
        guard isDescriptor, bytes.count > 8 else { return nil }
        let end = min(bytes.count, 8 + Int(bytes[7]))
        var at = 8
        while at + 1 < end {
            let length = Int(bytes[at + 1]) + 2
            if bytes[at] == code { return bytes[at..<min(end, at + length)] }
            at += length
        }
        return nil
    }

    /// The progress of an operation in progress, 0...65535 (sense-key specific bytes with
    /// SKSV set), as NOT READY 04/1B (sanitize) or 04/04 (format) carries it.
    public var progress: Int? {
        let sks: ArraySlice<UInt8>
        if isDescriptor {
            guard let d = descriptor(0x02), d.count >= 7 else { return nil }
            sks = d.dropFirst(4)
        } else {
            guard bytes.count >= 18 else { return nil }
            sks = bytes[15..<18]
        }
        let s = Array(sks)
        guard s.count >= 3, s[0] & 0x80 != 0 else { return nil }
        return Int(s[1]) << 8 | Int(s[2])
    }

    /// The ATA registers after an ATA PASS-THROUGH command with CK_COND, or after one that
    /// failed: from the ATA Status Return descriptor (09h), or from the fixed format's
    /// information fields (which lose the upper bytes of the count and LBA).
    public var ataRegisters: AtaRegisters? {
        if let d = descriptor(0x09).map(Array.init), d.count >= 14 {
            let lba = UInt64(d[7]) | UInt64(d[9]) << 8 | UInt64(d[11]) << 16 | UInt64(d[6]) << 24 | UInt64(d[8]) << 32 | UInt64(d[10]) << 40
            return AtaRegisters(error: d[3], status: d[13], device: d[12], count: UInt16(d[4]) << 8 | UInt16(d[5]), lba: lba, complete: true)
        }
        // Fixed format carries registers only with ATA PASS-THROUGH INFORMATION AVAILABLE
        // (00/1D); an abort reported as plain ABORTED COMMAND 00/00 has none.
        guard !isDescriptor, bytes.count >= 12, asc == 0, ascq == 0x1d else { return nil }
        // SAT-4 Table 209: INFORMATION = ERROR, STATUS, DEVICE, COUNT(7:0); COMMAND-SPECIFIC
        // INFORMATION byte 8 = EXTEND, COUNT UPPER NONZERO, LBA UPPER NONZERO; 9–11 = LBA(23:0).
        let lba = UInt64(bytes[9]) | UInt64(bytes[10]) << 8 | UInt64(bytes[11]) << 16
        return AtaRegisters(error: bytes[3], status: bytes[4], device: bytes[5], count: UInt16(bytes[6]), lba: lba, complete: bytes[8] & 0x60 == 0)
    }

    static let keyNames = [
        "NO SENSE", "RECOVERED ERROR", "NOT READY", "MEDIUM ERROR", "HARDWARE ERROR", "ILLEGAL REQUEST",
        "UNIT ATTENTION", "DATA PROTECT", "BLANK CHECK", "VENDOR SPECIFIC", "COPY ABORTED", "ABORTED COMMAND",
    ]

    public var description: String {
        var text = "key 0x\(String(key, radix: 16)) (\(Int(key) < Self.keyNames.count ? Self.keyNames[Int(key)] : "reserved")) asc/ascq 0x\(String(asc, radix: 16))/0x\(String(ascq, radix: 16))"
        switch (key, asc, ascq) {
        case (5, 0x20, _): text += ": the device or its USB bridge does not support this command (no ATA pass-through, or an invalid opcode)"
        case (5, 0x24, _): text += ": invalid field in CDB"
        case (2, 0x04, 0x1b): text += ": sanitize in progress"
        case (2, 0x04, 0x04): text += ": format in progress"
        case (3, 0x31, 0x03): text += ": sanitize command failed"
        case (3, 0x31, 0x00): text += ": medium format corrupted"
        case (0xb, 0, 0): text += ": the device aborted the command"
        default: break
        }
        if let registers = ataRegisters, key != 1 { text += " (ATA \(registers))" }
        return text
    }

    /// A description of raw sense bytes, `none` when empty.
    public static func describe(_ bytes: [UInt8]) -> String {
        SenseData(bytes)?.description ?? (bytes.isEmpty ? "none" : "unparsed (\(bytes.count) bytes)")
    }
}

/// The ATA output registers (ACS-4 §6): what a command answered.
public struct AtaRegisters: Sendable, Equatable, CustomStringConvertible {
    public var error: UInt8
    public var status: UInt8
    public var device: UInt8
    public var count: UInt16
    public var lba: UInt64
    /// False when the fixed sense format cut off the upper count or LBA bytes.
    public var complete: Bool

    /// Registers.
    public init(error: UInt8, status: UInt8, device: UInt8 = 0, count: UInt16, lba: UInt64, complete: Bool = true) {
        self.error = error
        self.status = status
        self.device = device
        self.count = count
        self.lba = lba
        self.complete = complete
    }

    /// STATUS bit 0 (ERROR) with ERROR bit 2 (ABORT): the device refused the command.
    public var aborted: Bool { status & 1 != 0 && error & 4 != 0 }
    /// STATUS bit 0.
    public var failed: Bool { status & 1 != 0 }

    public var description: String {
        "status 0x\(hexPair(status)) error 0x\(hexPair(error)) count 0x\(String(count, radix: 16)) lba 0x\(String(lba, radix: 16))"
    }
}

/// NVMe completion status (NVMe Base 2.0 §4.6.1.2) in the form the Linux ioctl returns it
/// (SC in bits 7:0, SCT in bits 10:8, DNR in bit 14).
public enum NvmeStatus {
    /// Generic command status (SCT 0): Invalid Command Opcode.
    public static let invalidOpcode = 0x001
    /// Generic: Invalid Field in Command.
    public static let invalidField = 0x002
    /// Generic: Sanitize Failed.
    public static let sanitizeFailed = 0x01c
    /// Generic: Sanitize In Progress.
    public static let sanitizeInProgress = 0x01d
    /// Command specific (SCT 1): Invalid Format.
    public static let invalidFormat = 0x10a

    /// Status code and type without DNR/More/CRD.
    public static func code(_ status: Int) -> Int { status & 0x7ff }

    /// `NVMe status 0x4002 (SCT 0, SC 0x2: Invalid Field in Command, do not retry)`.
    public static func describe(_ status: Int) -> String {
        let names: [Int: String] = [
            0x001: "Invalid Command Opcode", 0x002: "Invalid Field in Command", 0x004: "Data Transfer Error",
            0x005: "Commands Aborted due to Power Loss Notification", 0x006: "Internal Error", 0x007: "Command Abort Requested",
            0x00b: "Invalid Namespace or Format", 0x01c: "Sanitize Failed", 0x01d: "Sanitize In Progress",
            0x020: "Namespace is Write Protected", 0x021: "Command Interrupted", 0x10a: "Invalid Format",
            0x115: "Namespace Insufficient Capacity", 0x281: "Unrecovered Read Error", 0x286: "Access Denied",
        ]
        let code = code(status)
        var text = "NVMe status 0x\(String(status, radix: 16)) (SCT \(code >> 8), SC 0x\(String(code & 0xff, radix: 16))"
        if let name = names[code] { text += ": \(name)" }
        if status & 0x4000 != 0 { text += ", do not retry" }
        return text + ")"
    }
}
