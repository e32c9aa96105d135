/// A drive's own erase command (NIST SP 800-88 Purge for flash: the controller also erases the
/// spare and remapped blocks the host cannot address).
public enum FirmwareErase: String, CaseIterable, Sendable, Codable {
    case ataSanitizeCrypto = "ata-sanitize-crypto"
    case ataSanitizeBlock = "ata-sanitize-block"
    case ataSanitizeOverwrite = "ata-sanitize-overwrite"
    case ataSecureErase = "ata-secure-erase"
    case ataSecureEraseEnhanced = "ata-secure-erase-enhanced"
    case nvmeSanitizeCrypto = "nvme-sanitize-crypto"
    case nvmeSanitizeBlock = "nvme-sanitize-block"
    case nvmeSanitizeOverwrite = "nvme-sanitize-overwrite"
    case nvmeFormatUserData = "nvme-format-user-data"
    case nvmeFormatCrypto = "nvme-format-crypto"
    case scsiSanitizeCrypto = "scsi-sanitize-crypto"
    case scsiSanitizeBlock = "scsi-sanitize-block"
    case scsiSanitizeOverwrite = "scsi-sanitize-overwrite"
    case scsiFormatUnit = "scsi-format-unit"
    /// TCG Opal: Revert of the Admin SP authorised by the PSID on the drive's label.
    case tcgPsidRevert = "tcg-psid-revert"
    /// TCG Opal: Revert of the Admin SP authorised by the SID (the MSID while unowned).
    case tcgRevertSP = "tcg-revert-sp"
    /// TCG Opal: GenKey on every locking range's key, authorised by the Locking SP's Admin1
    /// (the owner's password); the owner's configuration stays.
    case tcgCryptoErase = "tcg-crypto-erase"

    /// Which command set carries it (TCG travels in each interface's security commands).
    public enum Family: String, Sendable, Codable { case ata, nvme, scsi, tcg }

    /// What the medium holds afterwards, which decides the read-back check.
    public enum Effect: String, Sendable, Codable {
        /// The media encryption key was changed: what was there reads as noise (or zeros).
        case crypto
        /// Every block was erased (or formatted): one uniform value, vendor-chosen.
        case block
        /// The drive overwrote every block with Lethe's pattern (zeros).
        case overwrite
    }

    public var family: Family {
        switch self {
        case .ataSanitizeCrypto, .ataSanitizeBlock, .ataSanitizeOverwrite, .ataSecureErase, .ataSecureEraseEnhanced: .ata
        case .nvmeSanitizeCrypto, .nvmeSanitizeBlock, .nvmeSanitizeOverwrite, .nvmeFormatUserData, .nvmeFormatCrypto: .nvme
        case .scsiSanitizeCrypto, .scsiSanitizeBlock, .scsiSanitizeOverwrite, .scsiFormatUnit: .scsi
        case .tcgPsidRevert, .tcgRevertSP, .tcgCryptoErase: .tcg
        }
    }

    public var effect: Effect {
        switch self {
        case .ataSanitizeCrypto, .nvmeSanitizeCrypto, .nvmeFormatCrypto, .scsiSanitizeCrypto, .tcgPsidRevert, .tcgRevertSP, .tcgCryptoErase: .crypto
        case .ataSanitizeOverwrite, .nvmeSanitizeOverwrite, .scsiSanitizeOverwrite: .overwrite
        case .ataSanitizeBlock, .nvmeSanitizeBlock, .scsiSanitizeBlock, .nvmeFormatUserData, .ataSecureErase, .ataSecureEraseEnhanced, .scsiFormatUnit: .block
        }
    }

    /// NIST SP 800-88 Rev. 1 Table A: sanitize, security erase and NVMe format with secure
    /// erase are Purge; FORMAT UNIT is not listed there, so Lethe calls it Clear.
    public var category: SanitizationCategory { self == .scsiFormatUnit ? .clear : .purge }

    public var title: String {
        switch self {
        case .ataSanitizeCrypto: "ATA SANITIZE CRYPTO SCRAMBLE"
        case .ataSanitizeBlock: "ATA SANITIZE BLOCK ERASE"
        case .ataSanitizeOverwrite: "ATA SANITIZE OVERWRITE (one pass of zeros)"
        case .ataSecureErase: "ATA SECURITY ERASE UNIT (normal)"
        case .ataSecureEraseEnhanced: "ATA SECURITY ERASE UNIT (enhanced)"
        case .nvmeSanitizeCrypto: "NVMe Sanitize, Crypto Erase"
        case .nvmeSanitizeBlock: "NVMe Sanitize, Block Erase"
        case .nvmeSanitizeOverwrite: "NVMe Sanitize, Overwrite (one pass of zeros)"
        case .nvmeFormatUserData: "NVMe Format NVM, User Data Erase (SES=1)"
        case .nvmeFormatCrypto: "NVMe Format NVM, Cryptographic Erase (SES=2)"
        case .scsiSanitizeCrypto: "SCSI SANITIZE, CRYPTOGRAPHIC ERASE"
        case .scsiSanitizeBlock: "SCSI SANITIZE, BLOCK ERASE"
        case .scsiSanitizeOverwrite: "SCSI SANITIZE, OVERWRITE (one pass of zeros)"
        case .scsiFormatUnit: "SCSI FORMAT UNIT"
        case .tcgPsidRevert: "TCG Opal Revert with the PSID (cryptographic erase)"
        case .tcgRevertSP: "TCG Opal Revert with the SID (cryptographic erase)"
        case .tcgCryptoErase: "TCG Opal GenKey on every locking range (cryptographic erase)"
        }
    }

    public var reference: String {
        switch family {
        case .ata: self == .ataSecureErase || self == .ataSecureEraseEnhanced
            ? "ACS-4 §7.38 Security feature set; NIST SP 800-88 Rev. 1 Table A-6/A-8 (Purge)"
            : "ACS-4 §7.35 SANITIZE DEVICE; NIST SP 800-88 Rev. 1 Table A-6/A-8 (Purge)"
        case .nvme: self == .nvmeFormatUserData || self == .nvmeFormatCrypto
            ? "NVMe Base 2.0 §5.23 Format NVM (Secure Erase Settings); NIST SP 800-88 Rev. 1 Table A-8 (Purge)"
            : "NVMe Base 2.0 §5.24 Sanitize; NIST SP 800-88 Rev. 1 Table A-8 (Purge)"
        case .scsi: self == .scsiFormatUnit
            ? "SBC-4 §5.4 FORMAT UNIT (not a NIST Purge method: Clear at best, and only if read-back shows it)"
            : "SBC-4 §5.30 SANITIZE; NIST SP 800-88 Rev. 1 Table A-7 (Purge)"
        case .tcg:
            switch self {
            case .tcgPsidRevert: "TCG Opal SSC 2.02 §5.2.2 Revert (Admin SP) with the PSID authority (TCG PSID Feature Set); NIST SP 800-88 Rev. 1 §2.6 Cryptographic Erase (Purge)"
            case .tcgRevertSP: "TCG Opal SSC 2.02 §5.2.2 Revert (Admin SP) with the SID authority; NIST SP 800-88 Rev. 1 §2.6 Cryptographic Erase (Purge)"
            default: "TCG Core 2.01 §5.3.3.16 GenKey on each Locking table row's ActiveKey (Opal SSC 2.02 §4.3.5.2), as Admin1 of the Locking SP; NIST SP 800-88 Rev. 1 §2.6 Cryptographic Erase (Purge)"
            }
        }
    }

    /// Whether the command erases more than the namespace it is sent for: an NVMe sanitize
    /// acts on the whole subsystem; a Format NVM does when the controller says format or
    /// secure erase applies to all namespaces (FNA bits 0 and 1). Every namespace it reaches
    /// must be guarded, and is named on the certificate.
    public func reachesEveryNamespace(formatAttributes: Int) -> Bool {
        switch self {
        case .nvmeSanitizeCrypto, .nvmeSanitizeBlock, .nvmeSanitizeOverwrite: true
        case .nvmeFormatUserData, .nvmeFormatCrypto: formatAttributes & 0x3 != 0
        // A Revert regenerates the key of every locking range, and tcg-crypto-erase does so
        // one range at a time: the whole drive, on NVMe every namespace.
        case .tcgPsidRevert, .tcgRevertSP, .tcgCryptoErase: true
        default: false
        }
    }

    /// The strongest first, as NIST SP 800-88 Rev. 1 (Table A-8 and §5) ranks them for flash
    /// media: cryptographic erase, then block erase, then the drive's own overwrite, then
    /// security erase (enhanced before normal).
    public static func purgeOrder(for family: Family) -> [FirmwareErase] {
        switch family {
        case .ata: [.ataSanitizeCrypto, .ataSanitizeBlock, .ataSanitizeOverwrite, .ataSecureEraseEnhanced, .ataSecureErase]
        case .nvme: [.nvmeSanitizeCrypto, .nvmeSanitizeBlock, .nvmeFormatCrypto, .nvmeFormatUserData, .nvmeSanitizeOverwrite]
        case .scsi: [.scsiSanitizeCrypto, .scsiSanitizeBlock, .scsiSanitizeOverwrite]
        // Not chosen by nist-purge yet: a revert needs the label's PSID or the owner's SID.
        case .tcg: []
        }
    }
}

/// The temporary user password Lethe sets for ATA SECURITY ERASE UNIT. It is not a secret:
/// if a power cut ever leaves a drive locked, `hdparm --user-master u --security-unlock Lethe`
/// and `--security-disable Lethe` open it.
public let ataTemporaryPassword = "Lethe"

/// ATA commands inside ATA PASS-THROUGH(16) (SAT-4 §12.2.2).
public enum AtaCommand {
    /// ATA PASS-THROUGH protocols.
    public enum PassThroughProtocol: UInt8 { case nonData = 3, pioDataIn = 4, pioDataOut = 5 }

    /// Builds the 16-byte CDB. `checkCondition` asks for the ATA registers back in the sense
    /// data (CK_COND), which every status query needs.
    public static func passThrough(
        name: String, protocol proto: PassThroughProtocol, command: UInt8, features: UInt16 = 0, count: UInt16 = 0, lba: UInt64 = 0,
        device: UInt8 = 0x40, extend: Bool = true, checkCondition: Bool = false, dataOut: [UInt8] = [], timeoutSeconds: Int
    ) -> DeviceCommand {
        var flags: UInt8 = checkCondition ? 0x20 : 0
        var transferLength = 0
        switch proto {
        case .nonData: break
        case .pioDataIn:
            flags |= 0x08 | 0x04 | 0x02  // T_DIR from device, BYT_BLOK, T_LENGTH in COUNT
            transferLength = Int(count) * 512
        case .pioDataOut:
            flags |= 0x04 | 0x02
        }
        let cdb: [UInt8] = [
            0x85, proto.rawValue << 1 | (extend ? 1 : 0), flags,
            UInt8(features >> 8), UInt8(features & 0xff), UInt8(count >> 8), UInt8(count & 0xff),
            UInt8(lba >> 24 & 0xff), UInt8(lba & 0xff), UInt8(lba >> 32 & 0xff), UInt8(lba >> 8 & 0xff),
            UInt8(lba >> 40 & 0xff), UInt8(lba >> 16 & 0xff), device, command, 0,
        ]
        return .scsi(
            name: name, cdb: cdb, direction: proto == .pioDataIn ? .fromDevice : .none, transferLength: transferLength, dataOut: dataOut,
            timeoutSeconds: timeoutSeconds)
    }

    /// SANITIZE DEVICE (B4h) with its feature and the signature ACS-4 asks for in the LBA.
    /// FAILURE MODE is set, so a failed sanitize can be cleared with SANITIZE STATUS EXT.
    public static func sanitize(_ method: FirmwareErase) -> DeviceCommand {
        let (feature, lba, count): (UInt16, UInt64, UInt16) = switch method {
        case .ataSanitizeCrypto: (0x0011, 0x4372_7970, 0x10)  // "Cryp"
        case .ataSanitizeBlock: (0x0012, 0x426B_4572, 0x10)  // "BkEr"
        default: (0x0014, 0x4F57 << 32 | 0, 0x10 | 1)  // "OW", pattern 0, one pass
        }
        return passThrough(name: method.title, protocol: .nonData, command: 0xB4, features: feature, count: count, lba: lba, timeoutSeconds: 60)
    }

    /// SANITIZE STATUS EXT (B4h/0000h); `clearFailure` sets CLEAR SANITIZE OPERATION FAILED.
    public static func sanitizeStatus(clearFailure: Bool = false) -> DeviceCommand {
        passThrough(
            name: clearFailure ? "ATA SANITIZE STATUS EXT (clear failure)" : "ATA SANITIZE STATUS EXT", protocol: .nonData, command: 0xB4,
            features: 0, count: clearFailure ? 1 : 0, checkCondition: true, timeoutSeconds: 30)
    }

    /// The 512-byte data block of the security commands: word 0 is the control word (bit 0:
    /// master password; bit 1: enhanced erase), words 1–16 the password.
    public static func securityBlock(password: String, enhanced: Bool = false) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        block[0] = enhanced ? 0x02 : 0x00
        for (index, byte) in password.utf8.prefix(32).enumerated() { block[2 + index] = byte }
        return block
    }

    static func security(_ name: String, _ command: UInt8, block: [UInt8], timeoutSeconds: Int = 30) -> DeviceCommand {
        passThrough(name: name, protocol: .pioDataOut, command: command, count: 1, extend: false, dataOut: block, timeoutSeconds: timeoutSeconds)
    }

    /// SECURITY SET PASSWORD (F1h): the user password, master password capability High.
    public static func securitySetPassword(_ password: String) -> DeviceCommand {
        security("ATA SECURITY SET PASSWORD (user)", 0xF1, block: securityBlock(password: password))
    }

    /// SECURITY ERASE PREPARE (F4h must follow it directly).
    public static let securityErasePrepare = passThrough(
        name: "ATA SECURITY ERASE PREPARE", protocol: .nonData, command: 0xF3, extend: false, timeoutSeconds: 30)

    /// SECURITY ERASE UNIT (F4h), with the drive's own time estimate as the time limit.
    public static func securityEraseUnit(_ password: String, enhanced: Bool, timeoutSeconds: Int) -> DeviceCommand {
        security("ATA SECURITY ERASE UNIT (\(enhanced ? "enhanced" : "normal"))", 0xF4, block: securityBlock(password: password, enhanced: enhanced), timeoutSeconds: timeoutSeconds)
    }

    /// SECURITY UNLOCK (F2h) with the user password.
    public static func securityUnlock(_ password: String) -> DeviceCommand {
        security("ATA SECURITY UNLOCK (user)", 0xF2, block: securityBlock(password: password))
    }

    /// SECURITY DISABLE PASSWORD (F6h) with the user password.
    public static func securityDisablePassword(_ password: String) -> DeviceCommand {
        security("ATA SECURITY DISABLE PASSWORD (user)", 0xF6, block: securityBlock(password: password))
    }

    /// READ NATIVE MAX ADDRESS EXT (27h): the highest LBA the drive has, HPA included.
    public static let readNativeMaxAddress = passThrough(
        name: "ATA READ NATIVE MAX ADDRESS EXT", protocol: .nonData, command: 0x27, checkCondition: true, timeoutSeconds: 10)

    /// SET MAX ADDRESS EXT (37h) to `lastLBA`; VV (value volatile = 1) keeps it over power
    /// cycles, so the buyer gets the whole drive.
    public static func setMaxAddress(lastLBA: UInt64) -> DeviceCommand {
        passThrough(name: "ATA SET MAX ADDRESS EXT", protocol: .nonData, command: 0x37, count: 1, lba: lastLBA, checkCondition: true, timeoutSeconds: 10)
    }

    /// DEVICE CONFIGURATION IDENTIFY (B1h/C2h): the factory maximum, before any DCO.
    public static let dcoIdentify = passThrough(
        name: "ATA DEVICE CONFIGURATION IDENTIFY", protocol: .pioDataIn, command: 0xB1, features: 0xC2, count: 1, extend: false, timeoutSeconds: 10)

    /// DEVICE CONFIGURATION RESTORE (B1h/C0h): back to the factory settings and size.
    public static let dcoRestore = passThrough(
        name: "ATA DEVICE CONFIGURATION RESTORE", protocol: .nonData, command: 0xB1, features: 0xC0, extend: false, timeoutSeconds: 10)
}

/// What SANITIZE STATUS EXT answered (ACS-4 §7.35.8).
public struct AtaSanitizeStatus: Sendable, Equatable {
    /// COUNT bit 15: the last sanitize completed without error.
    public var completedWithoutError: Bool
    /// COUNT bit 14.
    public var inProgress: Bool
    /// COUNT bit 13: SANITIZE ANTIFREEZE LOCK is in effect.
    public var antifreeze: Bool
    /// LBA 15:0, 0...65535.
    public var progress: Int
    /// STATUS bit 0 with ABORT: the last sanitize failed (the reason in LBA 7:0).
    public var failed: Bool
    /// ACS-4 Table 232 sanitize device error reason.
    public var failureReason: String?

    /// Reads the registers.
    public init(_ r: AtaRegisters) {
        completedWithoutError = r.count & 0x8000 != 0
        inProgress = r.count & 0x4000 != 0
        antifreeze = r.count & 0x2000 != 0
        progress = Int(r.lba & 0xffff)
        failed = r.failed
        if failed {
            failureReason = switch r.lba & 0xff {
            case 1: "sanitize command unsuccessful"
            case 2: "invalid or unsupported value in the sanitize command"
            case 3: "the device is in SANITIZE FROZEN state"
            case 4: "SANITIZE ANTIFREEZE LOCK is in effect"
            default: "reason 0x\(String(r.lba & 0xff, radix: 16))"
            }
        }
    }
}

/// Hidden areas of an ATA drive: the Host Protected Area (SET MAX ADDRESS) and the Device
/// Configuration Overlay, found by comparing IDENTIFY's size with READ NATIVE MAX ADDRESS and
/// with DEVICE CONFIGURATION IDENTIFY.
public struct HiddenAreas: Sendable, Hashable, Codable {
    /// Sectors the host sees (IDENTIFY words 100–103).
    public var visibleSectors: UInt64
    /// Sectors up to the native maximum (READ NATIVE MAX ADDRESS + 1), nil when not asked.
    public var nativeSectors: UInt64?
    /// Sectors up to the factory maximum (DCO IDENTIFY words 3–6 + 1), nil when no DCO.
    public var factorySectors: UInt64?
    /// What Lethe did about them, in words.
    public var actions: [String] = []
    /// Why they could not be read, if so.
    public var problem: String?

    /// Creates a record.
    public init(visibleSectors: UInt64, nativeSectors: UInt64? = nil, factorySectors: UInt64? = nil) {
        self.visibleSectors = visibleSectors
        self.nativeSectors = nativeSectors
        self.factorySectors = factorySectors
    }

    /// Sectors hidden by a Host Protected Area.
    public var hpaSectors: UInt64 { nativeSectors.map { $0 > visibleSectors ? $0 - visibleSectors : 0 } ?? 0 }
    /// Sectors hidden by a Device Configuration Overlay.
    public var dcoSectors: UInt64 {
        guard let factorySectors else { return 0 }
        let native = nativeSectors ?? visibleSectors
        return factorySectors > native ? factorySectors - native : 0
    }
    public var hasHiddenArea: Bool { hpaSectors > 0 || dcoSectors > 0 }

    /// The DCO IDENTIFY data: word 0 revision, words 3–6 the maximum LBA.
    public static func factoryLastLBA(dcoIdentify bytes: [UInt8]) -> UInt64? {
        guard bytes.count >= 512 else { return nil }
        let word: (Int) -> UInt64 = { UInt64(bytes[2 * $0]) | UInt64(bytes[2 * $0 + 1]) << 8 }
        guard word(0) != 0 else { return nil }
        let last = (0..<4).reduce(UInt64(0)) { $0 | word(3 + $1) << (16 * UInt64($1)) }
        // ATA addresses are 48 bits: anything above is a garbled answer, not a size.
        return last < 1 << 48 ? last : nil
    }
}

/// NVMe admin commands for sanitize and format.
public enum NvmeCommand {
    /// Sanitize (84h): SANACT 1 exit failure mode, 2 block erase, 3 overwrite, 4 crypto erase;
    /// AUSE set, so a failure can be exited; one overwrite pass of zeros. With
    /// `enterMediaVerification`, EMVS (bit 10, NVMe 2.1): the controller keeps the sanitized
    /// media readable, before deallocating it, until told to exit.
    public static func sanitize(_ method: FirmwareErase, enterMediaVerification: Bool = false) -> DeviceCommand {
        let action: UInt32 = switch method {
        case .nvmeSanitizeBlock: 2
        case .nvmeSanitizeOverwrite: 3 | 1 << 4
        default: 4
        }
        let emvs: UInt32 = enterMediaVerification ? 1 << 10 : 0
        return .nvmeAdmin(name: method.title, opcode: 0x84, namespace: 0, cdw10: action | 1 << 3 | emvs, cdw11: 0, timeoutSeconds: 60)
    }

    /// Sanitize with SANACT 5: Exit Media Verification State (NVMe 2.1); the controller then
    /// deallocates the media (Post-Verification Deallocation).
    public static let sanitizeExitMediaVerification = DeviceCommand.nvmeAdmin(
        name: "NVMe Sanitize, Exit Media Verification State", opcode: 0x84, namespace: 0, cdw10: 5, timeoutSeconds: 30)

    /// Sanitize with SANACT 1: Exit Failure Mode.
    public static let sanitizeExitFailureMode = DeviceCommand.nvmeAdmin(
        name: "NVMe Sanitize, Exit Failure Mode", opcode: 0x84, namespace: 0, cdw10: 1, timeoutSeconds: 30)

    /// Get Log Page (02h), Sanitize Status (81h), 512 bytes.
    public static let sanitizeStatusLog = DeviceCommand.nvmeAdmin(
        name: "NVMe Get Log Page (Sanitize Status)", opcode: 0x02, namespace: 0xFFFF_FFFF, cdw10: 0x81 | (512 / 4 - 1) << 16, transferLength: 512,
        timeoutSeconds: 10)

    /// Identify (06h) CNS 02h: the controller's active namespace ids (up to 1,024, ascending,
    /// zero-terminated).
    public static let activeNamespaces = DeviceCommand.nvmeAdmin(
        name: "NVMe Identify (Active Namespace ID list)", opcode: 0x06, namespace: 0, cdw10: 2, transferLength: 4096, timeoutSeconds: 10)

    /// The namespace ids in an Active Namespace ID list: little-endian 32-bit ids until the
    /// first zero. Nil when the answer is not such a list (short, or not ascending).
    public static func namespaceIds(inActiveList bytes: [UInt8]) -> [UInt32]? {
        guard bytes.count >= 4, bytes.count % 4 == 0 else { return nil }
        var ids: [UInt32] = []
        for index in stride(from: 0, to: bytes.count, by: 4) {
            let id = (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[index + $1]) << (8 * UInt32($1)) }
            if id == 0 { break }
            if let last = ids.last, id <= last { return nil }
            ids.append(id)
        }
        return ids
    }

    /// Identify (06h) CNS 00h: the namespace's data structure (its current LBA format).
    public static func identifyNamespace(_ namespace: UInt32) -> DeviceCommand {
        .nvmeAdmin(name: "NVMe Identify Namespace", opcode: 0x06, namespace: namespace, cdw10: 0, transferLength: 4096, timeoutSeconds: 10)
    }

    /// Format NVM (80h) keeping the namespace's LBA format, metadata and protection
    /// settings, with Secure Erase Settings 1 (user data) or 2 (cryptographic).
    public static func format(_ method: FirmwareErase, namespace: UInt32, current: NvmeNamespaceFormat, timeoutSeconds: Int) -> DeviceCommand {
        let ses: UInt32 = method == .nvmeFormatCrypto ? 2 : 1
        let cdw10 = current.lbaFormat & 0xf | (current.metadataAtEnd ? 1 << 4 : 0) | current.protection << 5
            | (current.protectionFirst ? 1 << 8 : 0) | ses << 9 | (current.lbaFormat >> 4) << 12
        return .nvmeAdmin(name: method.title, opcode: 0x80, namespace: namespace, cdw10: cdw10, timeoutSeconds: timeoutSeconds)
    }
}

/// A namespace's current format (Identify Namespace FLBAS and DPS).
public struct NvmeNamespaceFormat: Sendable, Equatable {
    /// FLBAS bits 3:0 and 6:5: the LBA format index in use.
    public var lbaFormat: UInt32
    /// FLBAS bit 4: metadata at the end of the LBA (extended).
    public var metadataAtEnd: Bool
    /// DPS bits 2:0.
    public var protection: UInt32
    /// DPS bit 3.
    public var protectionFirst: Bool
    /// NSZE: size in logical blocks.
    public var sizeBlocks: UInt64

    /// Parses Identify Namespace.
    public init(bytes: [UInt8]) throws(IdentifyParseError) {
        guard bytes.count >= 4096 else { throw IdentifyParseError("NVMe Identify Namespace data is \(bytes.count) bytes; 4096 expected") }
        sizeBlocks = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[$1]) << (8 * UInt64($1)) }
        guard sizeBlocks > 0 else { throw IdentifyParseError("NVMe Identify Namespace reports size 0 (inactive namespace?)") }
        let flbas = UInt32(bytes[26])
        lbaFormat = flbas & 0xf | (flbas >> 5 & 0x3) << 4
        metadataAtEnd = flbas & 0x10 != 0
        protection = UInt32(bytes[29]) & 0x7
        protectionFirst = bytes[29] & 0x8 != 0
    }
}

/// The Sanitize Status log page (81h, NVMe Base 2.0 §5.16.1.25).
public struct NvmeSanitizeStatus: Sendable, Equatable {
    /// SPROG: 0...65535 of the operation in progress (65535 when none).
    public var progress: Int
    /// SSTAT bits 2:0: 0 never sanitized, 1 completed, 2 in progress, 3 failed, 4 completed
    /// with no-deallocate.
    public var state: Int
    /// Estimated seconds for this kind of sanitize (nil: the controller does not say).
    public var estimatedSeconds: Int?
    /// SSI bits 3:0 (NVMe 2.1, byte 36): 0 idle, 1/3 processing, 2/4 failure, 5 Media
    /// Verification, 6 Post-Verification Deallocation; nil when the log is too short to say.
    public var sanitizeState: Int?

    /// Parses the log page; `method` picks which time estimate applies.
    public init(bytes: [UInt8], method: FirmwareErase) throws(IdentifyParseError) {
        guard bytes.count >= 20 else { throw IdentifyParseError("NVMe sanitize status log is \(bytes.count) bytes; 20 or more expected") }
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) } }
        progress = Int(bytes[0]) | Int(bytes[1]) << 8
        state = Int(bytes[2]) & 0x7
        let estimate = switch method {
        case .nvmeSanitizeOverwrite: u32(8)
        case .nvmeSanitizeBlock: u32(12)
        default: u32(16)
        }
        estimatedSeconds = estimate == 0xFFFF_FFFF || estimate == 0 ? nil : Int(estimate)
        sanitizeState = bytes.count > 36 ? Int(bytes[36] & 0x0F) : nil
    }

    /// The sanitized media is readable by the host, not yet deallocated (SSI 5h).
    public var inMediaVerification: Bool { sanitizeState == 5 }
    /// The controller is deallocating after the Media Verification state (SSI 6h).
    public var deallocatingAfterVerification: Bool { sanitizeState == 6 }

    public var inProgress: Bool { state == 2 }
    public var completed: Bool { state == 1 || state == 4 }
    public var failed: Bool { state == 3 }
}

/// SCSI commands for sanitize and format (SBC-4).
public enum ScsiCommand {
    /// SANITIZE (48h) with IMMED (answer at once, poll with REQUEST SENSE) and AUSE (a failure
    /// can be exited); OVERWRITE carries a parameter list of one pass of a 4-byte zero pattern.
    public static func sanitize(_ method: FirmwareErase) -> DeviceCommand {
        let action: UInt8 = switch method {
        case .scsiSanitizeOverwrite: 0x01
        case .scsiSanitizeBlock: 0x02
        default: 0x03
        }
        let parameters: [UInt8] = method == .scsiSanitizeOverwrite ? [0x01, 0, 0, 4, 0, 0, 0, 0] : []
        let cdb: [UInt8] = [0x48, 0x80 | 0x20 | action, 0, 0, 0, 0, 0, UInt8(parameters.count >> 8), UInt8(parameters.count & 0xff), 0]
        return .scsi(name: method.title, cdb: cdb, dataOut: parameters, timeoutSeconds: 60)
    }

    /// SANITIZE with service action 1Fh: EXIT FAILURE MODE.
    public static let sanitizeExitFailureMode = DeviceCommand.scsi(
        name: "SCSI SANITIZE, EXIT FAILURE MODE", cdb: [0x48, 0x1F, 0, 0, 0, 0, 0, 0, 0, 0], timeoutSeconds: 30)

    /// REQUEST SENSE (03h): the progress of a sanitize or format running in the background.
    public static let requestSense = DeviceCommand.scsi(
        name: "SCSI REQUEST SENSE", cdb: [0x03, 0, 0, 0, 252, 0], direction: .fromDevice, transferLength: 252, timeoutSeconds: 10)

    /// REPORT SUPPORTED OPERATION CODES (A3h/0Ch), one command (reporting option 3).
    public static func reportSupported(opcode: UInt8, serviceAction: UInt16) -> DeviceCommand {
        .scsi(
            name: "SCSI REPORT SUPPORTED OPERATION CODES (\(hexPair(opcode))h/\(String(serviceAction, radix: 16))h)",
            cdb: [0xA3, 0x0C, 0x03, opcode, UInt8(serviceAction >> 8), UInt8(serviceAction & 0xff), 0, 0, 0x02, 0, 0, 0],
            direction: .fromDevice, transferLength: 512, timeoutSeconds: 10)
    }

    /// FORMAT UNIT (04h) without a parameter list (the device's default format).
    public static func formatUnit(timeoutSeconds: Int) -> DeviceCommand {
        .scsi(name: "SCSI FORMAT UNIT", cdb: [0x04, 0, 0, 0, 0, 0], timeoutSeconds: timeoutSeconds)
    }

    /// The SUPPORT field of a one-command REPORT SUPPORTED OPERATION CODES answer: true
    /// (supported, 3 or 5), false (1: not supported), nil (unknown).
    public static func isSupported(_ answer: [UInt8]) -> Bool? {
        guard answer.count >= 2 else { return nil }
        switch answer[1] & 0x7 {
        case 3, 5: return true
        case 1: return false
        default: return nil
        }
    }
}

/// Decides, before anything is sent, whether a drive can run a firmware erase: IDENTIFY's
/// sanitize bits (word 59), security state (word 128), NVMe SANICAP, FNA and OACS, and SCSI's
/// REPORT SUPPORTED OPERATION CODES.
public struct PurgeCapabilities: Sendable, Equatable {
    public var ata: AtaIdentify?
    public var nvme: NvmeIdentify?
    /// For SCSI: whether SANITIZE supports each service action (nil: the drive did not say).
    public var scsiSanitize: [FirmwareErase: Bool]
    /// Why the drive could not be asked (a USB bridge without ATA pass-through, …).
    public var problem: String?
    /// TCG Level 0 Discovery, for the TCG methods, and the interface it travelled on.
    public var tcg: TCGDiscovery?
    public var tcgInterface: SecurityInterface?
    /// Why Level 0 Discovery gave nothing.
    public var tcgProblem: String?

    /// Capabilities from a probe.
    public init(_ probe: FirmwareCapabilities, scsiSanitize: [FirmwareErase: Bool] = [:]) {
        ata = probe.ata
        nvme = probe.nvme
        problem = probe.problem
        self.scsiSanitize = scsiSanitize
    }

    /// What the technician must do when the drive's security is frozen.
    public static let frozenInstruction = "the drive's security is FROZEN (IDENTIFY word 128 bit 3: the firmware or BIOS sent SECURITY FREEZE LOCK at power-on), so it aborts every erase command until it is power-cycled without that. Unplug the drive and plug it back in while the bench is running (hot re-plug; for SATA, the power connector too), or suspend and resume the bench (systemctl suspend), then run Lethe again"

    /// Nil when `method` can run; otherwise why not, naming the IDENTIFY bit.
    public func refusal(_ method: FirmwareErase) -> String? {
        switch method.family {
        case .ata:
            guard let ata else {
                return "the drive did not answer ATA IDENTIFY" + (problem.map { ": \($0)" } ?? "")
            }
            switch method {
            case .ataSecureErase, .ataSecureEraseEnhanced:
                if !ata.securitySupported { return "the drive has no Security feature set (IDENTIFY word 128 bit 0 is clear)" }
                if ata.securityFrozen { return Self.frozenInstruction }
                if ata.securityLocked { return "the drive is locked with a password Lethe does not know (IDENTIFY word 128 bit 2)" }
                if ata.securityEnabled { return "the drive already has a user password set (IDENTIFY word 128 bit 1); Lethe does not know it" }
                if method == .ataSecureEraseEnhanced, !ata.enhancedEraseSupported {
                    return "the drive has no enhanced security erase (IDENTIFY word 128 bit 5 is clear)"
                }
                return nil
            default:
                if !ata.sanitizeSupported { return "the drive has no SANITIZE feature set (IDENTIFY word 59 bit 12 is clear)" }
                let (bit, name, supported) = switch method {
                case .ataSanitizeCrypto: (13, "CRYPTO SCRAMBLE", ata.cryptoScrambleSupported)
                case .ataSanitizeBlock: (15, "BLOCK ERASE", ata.blockEraseSupported)
                default: (14, "OVERWRITE", ata.overwriteSupported)
                }
                return supported ? nil : "the drive's SANITIZE has no \(name) (IDENTIFY word 59 bit \(bit) is clear)"
            }
        case .nvme:
            guard let nvme else {
                return "the controller did not answer Identify Controller" + (problem.map { ": \($0)" } ?? "")
            }
            let sanicap = "SANICAP 0x\(String(nvme.sanitizeCapabilities, radix: 16))"
            switch method {
            case .nvmeSanitizeCrypto: return nvme.cryptoEraseSanitize ? nil : "the controller has no Crypto Erase sanitize (\(sanicap), bit 0 clear)"
            case .nvmeSanitizeBlock: return nvme.blockEraseSanitize ? nil : "the controller has no Block Erase sanitize (\(sanicap), bit 1 clear)"
            case .nvmeSanitizeOverwrite: return nvme.overwriteSanitize ? nil : "the controller has no Overwrite sanitize (\(sanicap), bit 2 clear)"
            case .nvmeFormatCrypto:
                if !nvme.formatSupported { return "the controller has no Format NVM (OACS bit 1 is clear)" }
                return nvme.cryptoEraseFormat ? nil : "the controller's Format NVM has no cryptographic erase (FNA 0x\(String(nvme.formatAttributes, radix: 16)), bit 2 clear)"
            default:
                return nvme.formatSupported ? nil : "the controller has no Format NVM (OACS bit 1 is clear)"
            }
        case .scsi:
            if method == .scsiFormatUnit { return nil }
            switch scsiSanitize[method] {
            case true?: return nil
            case false?: return "the drive reports no \(method.title) (REPORT SUPPORTED OPERATION CODES: not supported)"
            case nil: return "the drive did not say whether it supports \(method.title) (REPORT SUPPORTED OPERATION CODES gave no answer)"
            }
        case .tcg:
            return tcgRefusal(method)
        }
    }

    /// Why a TCG revert cannot run: no TCG subsystem, one that does not encrypt (Pyrite), no
    /// ComID, or (for the SID) SID authentication blocked by the BIOS until a power cycle.
    func tcgRefusal(_ method: FirmwareErase) -> String? {
        guard let tcg, tcgInterface != nil else {
            return "the drive did not answer TCG Level 0 Discovery" + (tcgProblem.map { ": \($0)" } ?? "")
        }
        guard let ssc = tcg.primarySSC, ssc != .enterprise else {
            return tcg.sscs.isEmpty ? "the drive has no TCG Opal-family security subsystem" : "TCG Enterprise drives have no PSID Revert; use the drive's sanitize"
        }
        guard ssc.encrypts, tcg.mediaEncryption else {
            return "\(ssc.displayName) locks but does not encrypt the media, so a revert is no cryptographic erase"
        }
        guard tcg.baseComID != nil else { return "Level 0 Discovery gave no ComID for a session" }
        if method == .tcgCryptoErase, !tcg.lockingEnabled {
            return "the drive's Locking SP is not active (nobody took ownership), so no Admin1 can authorise GenKey; tcg-revert-sp erases an unowned drive with its MSID"
        }
        if method == .tcgRevertSP, tcg.sidBlocked == true {
            return "SID authentication is blocked (Block SID feature, set by the BIOS at power-on) until the drive is power-cycled; re-plug it on the bench, or use tcg-psid-revert"
        }
        return nil
    }

    /// The command set a drive on this transport speaks: NVMe; ATA when IDENTIFY answered
    /// (SATA, or a SAT-capable USB bridge); otherwise SCSI.
    public func family(transport: Transport) -> FirmwareErase.Family {
        if transport == .nvme || nvme != nil { return .nvme }
        return ata != nil ? .ata : .scsi
    }

    /// `nist-purge`: the strongest supported method in NIST's order, with why each stronger
    /// one was passed over; nil method when none can run (the erase falls back to Clear). An
    /// unowned self-encrypting drive comes first: its TCG revert with the MSID.
    public func strongestPurge(transport: Transport) -> (method: FirmwareErase?, passedOver: [String]) {
        var passedOver: [String] = []
        // A self-encrypting drive nobody owns: a revert with its MSID is a cryptographic erase
        // that needs nothing from the technician. An owned one needs its SID or PSID, which
        // nist-purge cannot ask for. Drives that do not speak TCG add nothing here.
        if let tcg, tcgInterface != nil, tcg.primarySSC != nil {
            if tcg.lockingEnabled {
                passedOver.append("tcg-revert-sp: the drive has an owner (locking enabled), so a revert needs the owner's SID password, or the label's PSID (tcg-psid-revert); tcg-crypto-erase needs the owner's Admin1 password")
            } else if let reason = refusal(.tcgRevertSP) {
                passedOver.append("tcg-revert-sp: \(reason)")
            } else {
                return (.tcgRevertSP, passedOver)
            }
        }
        for method in FirmwareErase.purgeOrder(for: family(transport: transport)) {
            guard let reason = refusal(method) else { return (method, passedOver) }
            passedOver.append("\(method.rawValue): \(reason)")
        }
        return (nil, passedOver)
    }
}

/// What a firmware erase did, for the certificate: the commands sent with the drive's answers,
/// the hidden areas, and the read-back.
public struct FirmwareEraseRecord: Codable, Sendable, Hashable {
    /// One command as it went to the drive, and what came back.
    public struct Command: Codable, Sendable, Hashable {
        public var name: String
        /// The CDB or NVMe opcode and dwords, in hex.
        public var sent: String
        /// The drive's answer: `good`, the ATA registers, the NVMe status, or the failure.
        public var answer: String
        public var succeeded: Bool

        /// A command record.
        public init(name: String, sent: String, answer: String, succeeded: Bool) {
            self.name = name
            self.sent = sent
            self.answer = answer
            self.succeeded = succeeded
        }
    }

    /// `nvme-format-user-data`.
    public var method: String
    public var commands: [Command] = []
    /// ATA only: native and visible sizes, and what was opened.
    public var hiddenAreas: HiddenAreas?
    /// Status polls that said nothing new are counted, not listed.
    public var statusPolls = 0
    /// NVMe: every namespace the command reached (a sanitize, or a format that applies to all
    /// namespaces), each guarded before it was sent; the first is the one read back.
    public var namespaces: [String]?

    /// A record for `method`.
    public init(method: FirmwareErase) { self.method = method.rawValue }
}
