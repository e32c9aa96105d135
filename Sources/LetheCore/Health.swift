/// A health verdict for a drive.
public enum HealthVerdict: String, Codable, Sendable, Comparable {
    case pass, warn, fail
    /// SMART could not be read (a loop device, a dock that hides it, smartctl missing).
    case unknown

    private var rank: Int {
        switch self {
        case .unknown: 0
        case .pass: 1
        case .warn: 2
        case .fail: 3
        }
    }

    public static func < (a: HealthVerdict, b: HealthVerdict) -> Bool { a.rank < b.rank }
}

/// The figures Lethe grades on, from SMART (ATA, SCSI) or the NVMe health log.
public struct HealthReading: Codable, Sendable, Equatable {
    /// `ATA`, `NVMe` or `SCSI`, as smartctl names it.
    public var `protocol`: String?
    public var model: String?
    public var serial: String?
    public var firmware: String?
    public var capacityBytes: UInt64?
    /// The drive's own overall assessment (SMART status / NVMe critical warning).
    public var smartPassed: Bool?
    public var powerOnHours: UInt64?
    public var temperatureCelsius: Int?
    /// ATA attribute 5.
    public var reallocatedSectors: UInt64?
    /// ATA attribute 197.
    public var pendingSectors: UInt64?
    /// ATA attribute 198 (offline uncorrectable), or 187 (reported uncorrectable) without it.
    public var uncorrectableSectors: UInt64?
    /// NVMe: percentage of rated endurance used (may exceed 100).
    public var percentageUsed: Int?
    /// NVMe: media and data integrity errors.
    public var mediaErrors: UInt64?
    /// NVMe: available spare, percent.
    public var availableSpare: Int?
    /// NVMe: the spare threshold, percent.
    public var availableSpareThreshold: Int?
    /// NVMe critical warning bits (0 when all is well).
    public var criticalWarning: Int?
    /// ATA attributes whose normalised value is at or below their threshold ("FAILING_NOW").
    public var failingAttributes: [String]

    /// Creates an empty reading.
    public init() { failingAttributes = [] }
}

/// Where pass turns to warn and warn to fail. A profile can set any of these; missing keys
/// keep the defaults.
public struct HealthThresholds: Codable, Sendable, Equatable {
    public var reallocatedWarn: UInt64 = 1
    public var reallocatedFail: UInt64 = 100
    public var pendingWarn: UInt64 = 1
    public var pendingFail: UInt64 = 10
    public var uncorrectableWarn: UInt64 = 1
    public var uncorrectableFail: UInt64 = 10
    public var mediaErrorsWarn: UInt64 = 1
    public var mediaErrorsFail: UInt64 = 100
    public var percentageUsedWarn: Int = 80
    public var percentageUsedFail: Int = 100
    public var temperatureWarn: Int = 60
    public var temperatureFail: Int = 70
    public var powerOnHoursWarn: UInt64 = 40_000

    /// The defaults.
    public init() {}

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case reallocatedWarn, reallocatedFail, pendingWarn, pendingFail, uncorrectableWarn, uncorrectableFail
        case mediaErrorsWarn, mediaErrorsFail, percentageUsedWarn, percentageUsedFail, temperatureWarn
        case temperatureFail, powerOnHoursWarn
    }

    /// Decodes a partial set over the defaults; an unknown key is an error that names it.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        for key in c.allKeys where CodingKeys(rawValue: key.stringValue) == nil {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: c,
                debugDescription: "unknown health threshold \"\(key.stringValue)\"; known: \(CodingKeys.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let k = try decoder.container(keyedBy: CodingKeys.self)
        func value<T: Decodable>(_ key: CodingKeys, _ current: T) throws -> T { try k.decodeIfPresent(T.self, forKey: key) ?? current }
        reallocatedWarn = try value(.reallocatedWarn, reallocatedWarn)
        reallocatedFail = try value(.reallocatedFail, reallocatedFail)
        pendingWarn = try value(.pendingWarn, pendingWarn)
        pendingFail = try value(.pendingFail, pendingFail)
        uncorrectableWarn = try value(.uncorrectableWarn, uncorrectableWarn)
        uncorrectableFail = try value(.uncorrectableFail, uncorrectableFail)
        mediaErrorsWarn = try value(.mediaErrorsWarn, mediaErrorsWarn)
        mediaErrorsFail = try value(.mediaErrorsFail, mediaErrorsFail)
        percentageUsedWarn = try value(.percentageUsedWarn, percentageUsedWarn)
        percentageUsedFail = try value(.percentageUsedFail, percentageUsedFail)
        temperatureWarn = try value(.temperatureWarn, temperatureWarn)
        temperatureFail = try value(.temperatureFail, temperatureFail)
        powerOnHoursWarn = try value(.powerOnHoursWarn, powerOnHoursWarn)
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// One reason behind a verdict.
public struct HealthFinding: Codable, Sendable, Equatable {
    public var verdict: HealthVerdict
    /// `reallocatedSectors`, `criticalWarning`, …
    public var field: String
    public var message: String

    /// Creates a finding.
    public init(_ verdict: HealthVerdict, _ field: String, _ message: String) {
        self.verdict = verdict
        self.field = field
        self.message = message
    }
}

/// A graded reading.
public struct HealthAssessment: Codable, Sendable, Equatable {
    public var verdict: HealthVerdict
    public var findings: [HealthFinding]

    /// Grades a reading against thresholds: the worst finding decides.
    public init(reading: HealthReading, thresholds: HealthThresholds = HealthThresholds()) {
        var findings: [HealthFinding] = []
        func grade<T: Comparable & CustomStringConvertible>(_ field: String, _ value: T?, warn: T?, fail: T?, _ what: String) {
            guard let value else { return }
            if let fail, value >= fail {
                findings.append(HealthFinding(.fail, field, "\(what) \(value) ≥ \(fail) (fail threshold)"))
            } else if let warn, value >= warn {
                findings.append(HealthFinding(.warn, field, "\(what) \(value) ≥ \(warn) (warn threshold)"))
            }
        }
        if reading.smartPassed == false {
            findings.append(HealthFinding(.fail, "smartPassed", "the drive's own SMART self-assessment says FAILED"))
        }
        if let warning = reading.criticalWarning, warning != 0 {
            findings.append(HealthFinding(.fail, "criticalWarning", "NVMe critical warning 0x\(String(warning, radix: 16)): \(Self.describeCriticalWarning(warning))"))
        }
        for name in reading.failingAttributes {
            findings.append(HealthFinding(.fail, "attributes", "SMART attribute \(name) is at or below its threshold"))
        }
        if let spare = reading.availableSpare, let threshold = reading.availableSpareThreshold, spare < threshold {
            findings.append(HealthFinding(.fail, "availableSpare", "available spare \(spare)% is below the drive's threshold \(threshold)%"))
        }
        let t = thresholds
        grade("reallocatedSectors", reading.reallocatedSectors, warn: t.reallocatedWarn, fail: t.reallocatedFail, "reallocated sectors")
        grade("pendingSectors", reading.pendingSectors, warn: t.pendingWarn, fail: t.pendingFail, "pending sectors")
        grade("uncorrectableSectors", reading.uncorrectableSectors, warn: t.uncorrectableWarn, fail: t.uncorrectableFail, "uncorrectable sectors")
        grade("mediaErrors", reading.mediaErrors, warn: t.mediaErrorsWarn, fail: t.mediaErrorsFail, "media errors")
        grade("percentageUsed", reading.percentageUsed, warn: t.percentageUsedWarn, fail: t.percentageUsedFail, "endurance used (%)")
        grade("temperatureCelsius", reading.temperatureCelsius, warn: t.temperatureWarn, fail: t.temperatureFail, "temperature (°C)")
        grade("powerOnHours", reading.powerOnHours, warn: t.powerOnHoursWarn, fail: nil, "power-on hours")
        self.findings = findings
        verdict = findings.map(\.verdict).max() ?? .pass
    }

    /// Plain words for the NVMe critical warning bits (NVMe base spec, SMART / Health log byte 0).
    public static func describeCriticalWarning(_ bits: Int) -> String {
        let names = [
            "available spare below threshold", "temperature out of range", "reliability degraded",
            "media placed in read-only mode", "volatile memory backup failed", "persistent memory region read-only",
        ]
        let set = names.enumerated().filter { bits & (1 << $0.offset) != 0 }.map(\.element)
        return set.isEmpty ? "unknown bits" : set.joined(separator: ", ")
    }
}
