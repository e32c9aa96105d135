/// Level 0 Discovery (TCG Core 2.01 §3.3.6; Opal SSC 2.02 §3.1.1): what a self-encrypting
/// drive says of itself before any session, read with IF-RECV, protocol 01h, ComID 0001h.
public struct TCGDiscovery: Codable, Sendable, Equatable {
    /// A Security Subsystem Class the drive implements.
    public enum SSC: String, Codable, Sendable, CaseIterable {
        case enterprise, opal1, opal2, opalite, pyrite1, pyrite2, ruby, keyPerIO

        /// Its feature code in Level 0 Discovery.
        public var featureCode: UInt16 {
            switch self {
            case .enterprise: return 0x0100
            case .opal1: return 0x0200
            case .opal2: return 0x0203
            case .opalite: return 0x0301
            case .pyrite1: return 0x0302
            case .pyrite2: return 0x0303
            case .ruby: return 0x0304
            case .keyPerIO: return 0x0305
            }
        }

        /// Its name as the TCG writes it.
        public var displayName: String {
            switch self {
            case .enterprise: return "Enterprise"
            case .opal1: return "Opal 1"
            case .opal2: return "Opal 2"
            case .opalite: return "Opalite"
            case .pyrite1: return "Pyrite 1"
            case .pyrite2: return "Pyrite 2"
            case .ruby: return "Ruby"
            case .keyPerIO: return "Key Per I/O"
            }
        }

        /// Whether the SSC encrypts the media (Pyrite has locking without encryption, so no
        /// cryptographic erase).
        public var encrypts: Bool { self != .pyrite1 && self != .pyrite2 }
    }

    /// The SSCs found, in the order the drive listed them.
    public var sscs: [SSC]
    /// The first ComID of the SSC's range: the ComID of every session.
    public var baseComID: UInt16?
    /// Locking feature (0002h) bits.
    public var lockingSupported: Bool
    public var lockingEnabled: Bool
    /// At least one locking range is locked for reading or writing right now.
    public var locked: Bool
    public var mediaEncryption: Bool
    /// The MBR shadow is on; until MBRDone, reads of the first LBAs return the pre-boot image.
    public var mbrEnabled: Bool
    public var mbrDone: Bool
    /// Block SID Authentication (0402h): SID authentication is blocked until the next power
    /// cycle (set by a BIOS), so a revert with the SID fails.
    public var sidBlocked: Bool?
    /// From the Opal 2 feature descriptor: 0 when C_PIN_SID is still MSID (no owner).
    public var initialSIDIndicator: UInt8?
    /// Feature codes present that this reader does not interpret.
    public var otherFeatures: [UInt16]

    /// Reads the Level 0 Discovery answer. The header's length is checked against the buffer,
    /// and each descriptor's against what remains; a truncated descriptor is an error, never a
    /// guess.
    public init(bytes: [UInt8]) throws(TCGParseError) {
        guard bytes.count >= 48 else { throw TCGParseError(offset: 0, "Level 0 Discovery of \(bytes.count) bytes, shorter than its 48-byte header") }
        let length = Int(be32(bytes, 0))
        guard length >= 44 else {
            throw TCGParseError(offset: 0, "Level 0 Discovery length \(length): no feature descriptors (the drive has no TCG security subsystem)")
        }
        guard length <= bytes.count - 4 else {
            throw TCGParseError(offset: 0, "Level 0 Discovery says \(length + 4) bytes, \(bytes.count) came")
        }
        let end = length + 4
        sscs = []
        lockingSupported = false
        lockingEnabled = false
        locked = false
        mediaEncryption = false
        mbrEnabled = false
        mbrDone = false
        otherFeatures = []
        var at = 48
        while at < end {
            guard at + 4 <= end else { throw TCGParseError(offset: at, "feature descriptor header cut short") }
            let code = UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1])
            let dataLength = Int(bytes[at + 3])
            guard at + 4 + dataLength <= end else {
                throw TCGParseError(offset: at, "feature 0x\(String(code, radix: 16)) says \(dataLength) bytes, \(end - at - 4) left")
            }
            let data = Array(bytes[(at + 4)..<(at + 4 + dataLength)])
            switch code {
            case 0x0001:
                break  // TPer feature: sync/async, streaming; nothing Lethe decides on
            case 0x0002:
                guard let flags = data.first else { throw TCGParseError(offset: at, "locking feature without its flags") }
                lockingSupported = flags & 0x01 != 0
                lockingEnabled = flags & 0x02 != 0
                locked = flags & 0x04 != 0
                mediaEncryption = flags & 0x08 != 0
                mbrEnabled = flags & 0x10 != 0
                mbrDone = flags & 0x20 != 0
            case 0x0402:
                if data.count >= 1 { sidBlocked = data[0] & 0x02 != 0 }
            default:
                if let ssc = SSC.allCases.first(where: { $0.featureCode == code }) {
                    sscs.append(ssc)
                    if baseComID == nil, data.count >= 2 { baseComID = UInt16(data[0]) << 8 | UInt16(data[1]) }
                    if ssc == .opal2 || ssc == .opalite || ssc == .pyrite1 || ssc == .pyrite2 || ssc == .ruby, data.count >= 10 {
                        initialSIDIndicator = data[9]
                    }
                } else {
                    otherFeatures.append(code)
                }
            }
            at += 4 + dataLength
        }
    }

    /// The SSC Lethe would speak to (Opal family first; Enterprise uses other methods).
    public var primarySSC: SSC? { sscs.first { $0 != .enterprise } ?? sscs.first }

    /// One line for `lethe devices` and the dashboard.
    public var summary: String {
        guard let ssc = primarySSC else { return "no TCG security subsystem" }
        var parts = ["TCG \(ssc.displayName)"]
        if !lockingSupported {
            parts.append("no locking")
        } else if locked {
            parts.append("LOCKED")
        } else if lockingEnabled {
            parts.append("locking enabled, unlocked")
        } else {
            parts.append("locking not enabled")
        }
        if mbrEnabled { parts.append(mbrDone ? "MBR shadow done" : "MBR shadow active") }
        return parts.joined(separator: ", ")
    }

    /// What Lethe can do about the drive, for the technician.
    public var advice: String {
        guard let ssc = primarySSC else { return "not a self-encrypting drive: overwrite or firmware erase as usual" }
        if locked || (mbrEnabled && !mbrDone) {
            return "locked by its owner (BitLocker/eDrive or pre-boot authentication): reads and writes fail, so an overwrite cannot work. "
                + "Revert it with the PSID printed on its label (method tcg-psid-revert), which erases it cryptographically; or, with its owner's Admin1 password, tcg-crypto-erase (the owner's setup stays)"
        }
        if !ssc.encrypts { return "\(ssc.displayName) locks but does not encrypt: no cryptographic erase; overwrite or firmware erase" }
        if lockingEnabled {
            return "owned (locking enabled) but unlocked: tcg-revert-sp with the owner's SID password, tcg-psid-revert with the label's PSID, or tcg-crypto-erase with the owner's Admin1 password"
        }
        return "unowned: a cryptographic erase takes seconds (tcg-psid-revert with the label's PSID, or tcg-revert-sp with the MSID)"
    }
}
