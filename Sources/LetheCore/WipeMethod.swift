/// What one overwrite pass writes, before the run picks its random values.
public enum PassPattern: Hashable, Sendable {
    /// A fixed byte pattern, repeated from device offset 0 (so a 3-byte pattern keeps its phase
    /// across the whole device, as in nwipe and scrub).
    case bytes([UInt8])
    /// A cryptographic keystream (AES-128-CTR), seeded per pass from the OS's CSPRNG.
    case random
    /// One random byte value, chosen when the wipe starts, repeated over the device.
    case randomByte
    /// The bitwise complement of the previous pass's byte pattern.
    case complementOfPrevious

    /// Short human description: `0x00`, `0x92 0x49 0x24`, `random`.
    public var summary: String {
        switch self {
        case .bytes(let bytes): bytes.map(hexByte).joined(separator: " ")
        case .random: "random"
        case .randomByte: "random byte"
        case .complementOfPrevious: "complement"
        }
    }
}

/// A pass pattern with its random values chosen: exactly what lands on the device.
public enum ResolvedPattern: Hashable, Sendable, Codable {
    /// A repeating byte pattern (phase taken from device offset 0).
    case bytes([UInt8])
    /// An AES-128-CTR keystream; `seed` is 32 bytes (key, nonce prefix, reserved), and the
    /// stream at byte offset `o` depends only on the seed and `o`, so any range can be
    /// regenerated for verification.
    case random(seed: [UInt8])

    /// Short human description: `0x00`, `0x92 0x49 0x24`, `random (AES-128-CTR)`.
    public var summary: String {
        switch self {
        case .bytes(let bytes): bytes.map(hexByte).joined(separator: " ")
        case .random: "random (AES-128-CTR)"
        }
    }

    /// The expected byte at `offset` for byte patterns; nil for random.
    public func byte(at offset: UInt64) -> UInt8? {
        guard case .bytes(let bytes) = self else { return nil }
        return bytes[Int(offset % UInt64(bytes.count))]
    }
}

/// NIST SP 800-88 sanitization category.
public enum SanitizationCategory: String, Sendable, Codable {
    case clear = "Clear"
    case purge = "Purge"
}

/// An erase method: a named, ordered list of passes. Methods are data; the engine knows none
/// of them by name.
public struct WipeMethod: Hashable, Sendable, Identifiable {
    /// Stable name used on the command line (`dod-3`).
    public var name: String
    /// Display title (`DoD 5220.22-M (3 passes)`).
    public var title: String
    /// The passes, in order.
    public var passes: [PassPattern]
    /// Verification used when the operator does not choose one.
    public var defaultVerification: VerificationMode
    /// NIST SP 800-88 category of the method.
    public var category: SanitizationCategory
    /// Where the pass pattern comes from.
    public var reference: String
    /// Set for a drive's own erase command (no passes: the drive does the work).
    public var firmware: FirmwareErase?
    /// `nist-purge`: the strongest firmware erase the drive supports, else Clear by overwrite.
    public var picksStrongestPurge = false

    public var id: String { name }

    /// Creates a method.
    public init(
        name: String, title: String, passes: [PassPattern], defaultVerification: VerificationMode,
        category: SanitizationCategory = .clear, reference: String, firmware: FirmwareErase? = nil
    ) {
        self.firmware = firmware
        self.name = name
        self.title = title
        self.passes = passes
        self.defaultVerification = defaultVerification
        self.category = category
        self.reference = reference
    }

    /// Chooses the run's random values. `randomBytes(n)` must return `n` bytes from a CSPRNG.
    public func resolvePasses(randomBytes: (Int) -> [UInt8]) -> [ResolvedPattern] {
        var resolved: [ResolvedPattern] = []
        var previous: [UInt8] = [0x00]
        for pass in passes {
            let next: ResolvedPattern
            switch pass {
            case .bytes(let bytes): next = .bytes(bytes)
            case .random: next = .random(seed: randomBytes(32))
            case .randomByte: next = .bytes([randomBytes(1)[0]])
            case .complementOfPrevious: next = .bytes(previous.map { ~$0 })
            }
            if case .bytes(let bytes) = next { previous = bytes }
            resolved.append(next)
        }
        return resolved
    }
}

extension WipeMethod {
    /// Every overwrite method Lethe ships, in the order `lethe methods` lists them.
    public static let catalog: [WipeMethod] = {
        let zero = PassPattern.bytes([0x00])
        let one = PassPattern.bytes([0xFF])
        let gutmannFixed: [[UInt8]] = [
            [0x55], [0xAA], [0x92, 0x49, 0x24], [0x49, 0x24, 0x92], [0x24, 0x92, 0x49],
            [0x00], [0x11], [0x22], [0x33], [0x44], [0x55], [0x66], [0x77],
            [0x88], [0x99], [0xAA], [0xBB], [0xCC], [0xDD], [0xEE], [0xFF],
            [0x92, 0x49, 0x24], [0x49, 0x24, 0x92], [0x24, 0x92, 0x49],
            [0x6D, 0xB6, 0xDB], [0xB6, 0xDB, 0x6D], [0xDB, 0x6D, 0xB6],
        ]
        let gutmann = Array(repeating: PassPattern.random, count: 4)
            + gutmannFixed.map(PassPattern.bytes)
            + Array(repeating: PassPattern.random, count: 4)
        return [
            WipeMethod(
                name: "zero", title: "Zero fill", passes: [zero], defaultVerification: .last,
                reference: "single pass of 0x00"),
            WipeMethod(
                name: "one", title: "One fill", passes: [one], defaultVerification: .last,
                reference: "single pass of 0xFF"),
            WipeMethod(
                name: "random", title: "Random fill", passes: [.random], defaultVerification: .last,
                reference: "single pass of AES-128-CTR keystream (nwipe PRNG stream)"),
            WipeMethod(
                name: "nist-clear", title: "NIST SP 800-88 Clear", passes: [zero],
                defaultVerification: .all,
                reference: "NIST SP 800-88 Rev. 1, Table A-8: one overwrite pass with a fixed value, then verify"),
            WipeMethod(
                name: "dod-3", title: "DoD 5220.22-M (3 passes)", passes: [zero, one, .random],
                defaultVerification: .last,
                reference: "DoD 5220.22-M ECE short form: 0x00, 0xFF, random"),
            WipeMethod(
                name: "dod-7", title: "DoD 5220.22-M ECE (7 passes)",
                passes: [.randomByte, .complementOfPrevious, .random, .randomByte, .complementOfPrevious, .random, .randomByte],
                defaultVerification: .last,
                reference: "DoD 5220.22-M ECE as in nwipe: char, complement, random, char, complement, random, char"),
            WipeMethod(
                name: "gutmann", title: "Gutmann (35 passes)", passes: gutmann, defaultVerification: .last,
                reference: "P. Gutmann 1996: 4 random, 27 fixed patterns, 4 random"),
            WipeMethod(
                name: "hmg-is5-baseline", title: "HMG IS5 Baseline", passes: [zero], defaultVerification: .last,
                reference: "HMG Infosec Standard 5, baseline: 0x00, verify"),
            WipeMethod(
                name: "hmg-is5-enhanced", title: "HMG IS5 Enhanced", passes: [zero, one, .random],
                defaultVerification: .last,
                reference: "HMG Infosec Standard 5, enhanced: 0x00, 0xFF, random, verify"),
            WipeMethod(
                name: "schneier", title: "Schneier (7 passes)",
                passes: [one, zero] + Array(repeating: PassPattern.random, count: 5),
                defaultVerification: .last,
                reference: "B. Schneier, Applied Cryptography: 0xFF, 0x00, 5 random"),
            WipeMethod(
                name: "bsi-vsitr", title: "BSI VSITR (7 passes)",
                passes: [zero, one, zero, one, zero, one, .bytes([0xAA])],
                defaultVerification: .last,
                reference: "German BSI VSITR: 0x00/0xFF alternating six times, then 0xAA"),
            WipeMethod(
                name: "ops2", title: "RCMP TSSIT OPS-II (7 passes)",
                passes: [zero, one, zero, one, zero, one, .random],
                defaultVerification: .last,
                reference: "RCMP TSSIT OPS-II: 0x00/0xFF alternating six times, then random, verify"),
        ]
    }()

    /// A drive's own erase command as a method.
    public static func firmware(_ erase: FirmwareErase) -> WipeMethod {
        WipeMethod(
            name: erase.rawValue, title: erase.title, passes: [], defaultVerification: .sample, category: erase.category,
            reference: erase.reference, firmware: erase)
    }

    /// `nist-purge`: picks the drive's strongest own erase in NIST's order.
    public static let nistPurge: WipeMethod = {
        var method = WipeMethod(
            name: "nist-purge", title: "NIST SP 800-88 Purge (the drive's strongest own erase)", passes: [], defaultVerification: .sample,
            category: .purge,
            reference: "NIST SP 800-88 Rev. 1 Table A-6/A-8: an unowned self-encrypting drive's TCG revert (MSID), then crypto erase, then block erase, then the drive's overwrite or security erase; falls back to nist-clear (overwrite, Clear) with the reason on the certificate when the drive has none")
        method.picksStrongestPurge = true
        return method
    }()

    /// Every method: overwrites, then the drives' own erase commands, then `nist-purge`.
    public static let all: [WipeMethod] = catalog + FirmwareErase.allCases.map(firmware) + [nistPurge]

    /// The method with this name, or nil.
    public static func named(_ name: String) -> WipeMethod? {
        all.first { $0.name == name.lowercased() }
    }

    /// Whether the drive, not Lethe, does the erasing (a firmware method or `nist-purge`).
    public var usesFirmware: Bool { firmware != nil || picksStrongestPurge }
}

/// `0x0A`.
public func hexByte(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return "0x" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0x0F)])
}
