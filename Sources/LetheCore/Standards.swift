/// The standards a certificate names its erase by (schema 2 of the wipe certificate):
/// NIST SP 800-88 Rev. 2 (September 2025) gives the category (Clear or Purge) and leaves the
/// technique per interface to IEEE 2883-2022. The category keeps the meaning it had under
/// Rev. 1; the technique is named as IEEE 2883 names its methods for that interface.
public struct SanitizationStandards: Codable, Sendable, Equatable {
    /// The NIST edition: `NIST SP 800-88 Rev. 2 (September 2025)`.
    public var nist: String
    /// `Clear` or `Purge`, as in `sanitization.category`.
    public var category: String
    /// The IEEE edition: `IEEE 2883-2022`.
    public var ieee2883: String
    /// The technique in IEEE 2883's words: `NVMe Sanitize, Crypto Erase`, `Overwrite`.
    public var technique: String
    /// The interface the technique belongs to: `ATA`, `SCSI`, `NVMe`, `TCG` (carried in the
    /// interface's security commands), or nil for a host overwrite, which any interface takes.
    public var interface: String?

    public static let nistEdition = "NIST SP 800-88 Rev. 2 (September 2025)"
    public static let ieeeEdition = "IEEE 2883-2022"

    /// For a method run on a drive.
    public init(method: WipeMethod) {
        nist = Self.nistEdition
        ieee2883 = Self.ieeeEdition
        category = method.category.rawValue
        if let firmware = method.firmware {
            technique = firmware.ieee2883Technique
            interface = switch firmware.family {
            case .ata: "ATA"
            case .scsi: "SCSI"
            case .nvme: "NVMe"
            case .tcg: "TCG"
            }
        } else {
            technique = "Overwrite (host writes to every user-addressable sector, then a read-back)"
            interface = nil
        }
    }

    /// For a phone's factory reset: the device destroys the keys of its file-based encryption.
    public static func phoneReset(category: String) -> SanitizationStandards {
        var standards = SanitizationStandards(method: WipeMethod.named("nist-clear")!)
        standards.category = category
        standards.technique = "Cryptographic Erase (the device's factory reset destroys its storage encryption keys)"
        standards.interface = nil
        return standards
    }

    /// One line for people: `Purge — IEEE 2883: NVMe Sanitize, Crypto Erase`.
    public var summary: String { "\(category) — IEEE 2883: \(technique)" }
}

extension FirmwareErase {
    /// The method's name in IEEE 2883's terms for its interface.
    public var ieee2883Technique: String {
        switch self {
        case .ataSanitizeCrypto: "ATA Sanitize, Crypto Scramble (Crypto Erase)"
        case .ataSanitizeBlock: "ATA Sanitize, Block Erase"
        case .ataSanitizeOverwrite: "ATA Sanitize, Overwrite"
        case .ataSecureErase: "ATA Security Erase Unit (normal)"
        case .ataSecureEraseEnhanced: "ATA Security Erase Unit (enhanced)"
        case .nvmeSanitizeCrypto: "NVMe Sanitize, Crypto Erase"
        case .nvmeSanitizeBlock: "NVMe Sanitize, Block Erase"
        case .nvmeSanitizeOverwrite: "NVMe Sanitize, Overwrite"
        case .nvmeFormatUserData: "NVMe Format NVM, User Data Erase"
        case .nvmeFormatCrypto: "NVMe Format NVM, Cryptographic Erase"
        case .scsiSanitizeCrypto: "SCSI Sanitize, Cryptographic Erase"
        case .scsiSanitizeBlock: "SCSI Sanitize, Block Erase"
        case .scsiSanitizeOverwrite: "SCSI Sanitize, Overwrite"
        case .scsiFormatUnit: "SCSI Format Unit"
        case .tcgPsidRevert: "TCG Opal Revert with the PSID (Crypto Erase)"
        case .tcgRevertSP: "TCG Opal Revert with the SID (Crypto Erase)"
        case .tcgCryptoErase: "TCG Opal GenKey on every locking range (Crypto Erase)"
        }
    }
}
