/// A person named on a report (who erased, who verified).
public struct ReportParty: Codable, Sendable, Equatable {
    public var name: String
    public var role: String
    public var contact: String?

    /// Creates a party.
    public init(name: String, role: String, contact: String? = nil) {
        self.name = name
        self.role = role
        self.contact = contact
    }
}

/// The station that issued a report.
public struct ReportStation: Codable, Sendable, Equatable {
    /// Station id (from the station config).
    public var id: String
    public var name: String
    /// Where the bench is (NIST 800-88 §4.8 "location").
    public var location: String
    /// Organisation contact (NIST "contact information").
    public var contact: String
    /// RFC 7638 thumbprint of the station's public key: the JWS `kid`.
    public var keyId: String

    /// Creates a station.
    public init(id: String, name: String, location: String, contact: String, keyId: String) {
        self.id = id
        self.name = name
        self.location = location
        self.contact = contact
        self.keyId = keyId
    }
}

/// The device a report is about.
public struct ReportDevice: Codable, Sendable, Equatable {
    public var manufacturer: String?
    public var model: String?
    public var serial: String?
    public var firmware: String?
    public var wwn: String?
    /// Media type in NIST's words: `magnetic hard disk`, `solid state (SATA)`, `solid state (NVMe)`,
    /// `flash (USB)`, `virtual (loop device)`, `mobile phone`.
    public var mediaType: String
    /// Transport (`sata`, `nvme`, `usb`, …).
    public var transport: String
    public var sizeBytes: UInt64?
    public var logicalSectorSize: Int?
    /// Where the media came from (NIST "media source": customer trade-in, lease return…).
    public var source: String
    /// Bay label, if the station has a bay map.
    public var bay: String?
    /// Device path at the time (`/dev/sdb`, `adb:SERIAL` for a phone).
    public var path: String
    /// A phone's IMEIs, when it gave them.
    public var imeis: [String]?
    /// The serial of the USB dock (bridge) the drive was read through, when it is not the
    /// drive's own. Never the drive's identity.
    public var bridgeSerial: String?

    /// Creates a device description.
    public init(
        manufacturer: String?, model: String?, serial: String?, firmware: String? = nil, wwn: String? = nil,
        mediaType: String, transport: String, sizeBytes: UInt64?, logicalSectorSize: Int?, source: String,
        bay: String? = nil, path: String
    ) {
        self.manufacturer = manufacturer
        self.model = model
        self.serial = serial
        self.firmware = firmware
        self.wwn = wwn
        self.mediaType = mediaType
        self.transport = transport
        self.sizeBytes = sizeBytes
        self.logicalSectorSize = logicalSectorSize
        self.source = source
        self.bay = bay
        self.path = path
    }

    /// NIST-style media type from transport and rotation.
    public static func mediaType(transport: Transport, rotational: Bool?) -> String {
        switch transport {
        case .nvme: "solid state (NVMe)"
        case .loop: "virtual (loop device)"
        case .adb, .ios: "mobile phone"
        case .mmc: "flash (MMC/SD)"
        case .usb: rotational == true ? "magnetic hard disk (USB)" : "flash or solid state (USB)"
        default: rotational == true ? "magnetic hard disk" : rotational == false ? "solid state (\(transport.rawValue.uppercased()))" : "unknown (\(transport.rawValue))"
        }
    }
}

/// One pass as certified.
public struct ReportPass: Codable, Sendable, Equatable {
    public var index: Int
    public var pattern: String
    public var bytesWritten: UInt64
    public var completed: Bool
    public var durationMs: Int
    public var throughputBytesPerSecond: UInt64
    /// Present when the pass was interrupted and resumed from a checkpoint: the byte offset it
    /// picked up at (everything below had been written and flushed).
    public var resumedAt: UInt64?

    /// Creates a pass record.
    public init(
        index: Int, pattern: String, bytesWritten: UInt64, completed: Bool, durationMs: Int, throughputBytesPerSecond: UInt64,
        resumedAt: UInt64? = nil
    ) {
        self.resumedAt = resumedAt
        self.index = index
        self.pattern = pattern
        self.bytesWritten = bytesWritten
        self.completed = completed
        self.durationMs = durationMs
        self.throughputBytesPerSecond = throughputBytesPerSecond
    }
}

/// How the erase was verified (NIST "verification method" and "verification result").
public struct ReportVerification: Codable, Sendable, Equatable {
    /// `off`, `last`, `all`, `sample`.
    public var mode: String
    /// Plain words: "full read-back of the last pass", "NIST sampling: 1000 subsections…".
    public var method: String
    /// `passed`, `failed`, `skipped`, `notRun`.
    public var result: String
    public var bytesVerified: UInt64
    /// Share of the device read back, in basis points (10000 = all of it).
    public var coverageBasisPoints: Int
    public var mismatchedSectors: UInt64
    /// The sampling seed (hex), so the sectors read can be listed again.
    public var sampleSeed: String?
    /// For a state check (mode `state`, a phone after its factory reset): each value read,
    /// what it must be, and whether it was.
    public var checks: [ReportCheck]?

    /// Creates a verification record.
    public init(
        mode: String, method: String, result: String, bytesVerified: UInt64, coverageBasisPoints: Int,
        mismatchedSectors: UInt64, sampleSeed: String? = nil
    ) {
        self.mode = mode
        self.method = method
        self.result = result
        self.bytesVerified = bytesVerified
        self.coverageBasisPoints = coverageBasisPoints
        self.mismatchedSectors = mismatchedSectors
        self.sampleSeed = sampleSeed
    }
}

/// One value checked after an erase that is not read back sector by sector (a phone's
/// out-of-box state after a factory reset).
public struct ReportCheck: Codable, Sendable, Hashable {
    public var name: String
    public var expected: String
    public var observed: String
    public var passed: Bool

    /// A check.
    public init(name: String, expected: String, observed: String, passed: Bool) {
        self.name = name
        self.expected = expected
        self.observed = observed
        self.passed = passed
    }
}

/// What was done to the media.
public struct ReportSanitization: Codable, Sendable, Equatable {
    /// `Clear` or `Purge` (NIST SP 800-88 "sanitization description").
    public var category: String
    /// Method name (`nist-clear`).
    public var method: String
    /// Method title and reference, in words.
    public var description: String
    /// `overwrite`, `firmware sanitize`, `factory reset (crypto erase)`.
    public var technique: String
    public var passes: [ReportPass]
    public var bytesWritten: UInt64
    public var startedAt: String
    public var finishedAt: String
    /// Unreadable/unwritable LBA ranges: exceptions to the erase.
    public var badSectors: [SectorRange]
    /// Errors, in words.
    public var errors: [String]
    /// For a firmware erase: every command sent (CDB or NVMe dwords) and the drive's answer.
    public var commands: [FirmwareEraseRecord.Command]?
    /// ATA: the visible, native (HPA) and factory (DCO) sizes, and what was opened.
    public var hiddenAreas: HiddenAreas?
    /// Why this method: what `nist-purge` passed over, or why it fell back to Clear.
    public var choice: String?
    /// NVMe: every namespace the drive's command erased (a sanitize reaches them all), each
    /// guarded before it was sent; the first is the one read back.
    public var namespaces: [String]?
    /// For an erase with exceptions: which sectors were not overwritten (they may still hold
    /// data), and what to do next. Nil when every sector was overwritten.
    public var exceptions: String?
    /// Schema 2: the NIST SP 800-88 Rev. 2 category and the IEEE 2883 technique, with their
    /// editions. Absent from schema 1 documents, whose `category` meant the same.
    public var standards: SanitizationStandards?
    /// Phones: the overwrite of the file system's free space that preceded the factory reset
    /// (`erase.overwriteFreeSpace`), in addition to the cryptographic erase. Nil when none was
    /// asked for.
    public var freeSpaceOverwrite: ReportFreeSpaceOverwrite?

    /// Creates a sanitization record.
    public init(
        category: String, method: String, description: String, technique: String, passes: [ReportPass],
        bytesWritten: UInt64, startedAt: String, finishedAt: String, badSectors: [SectorRange], errors: [String],
        standards: SanitizationStandards? = nil
    ) {
        self.standards = standards
        self.category = category
        self.method = method
        self.description = description
        self.technique = technique
        self.passes = passes
        self.bytesWritten = bytesWritten
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.badSectors = badSectors
        self.errors = errors
    }
}

/// The tool that did it.
public struct ReportTool: Codable, Sendable, Equatable {
    public var name: String
    public var version: String

    /// Creates a tool record.
    public init(name: String = "Lethe", version: String) {
        self.name = name
        self.version = version
    }
}

/// The privacy-wipe certificate: NIST SP 800-88 Rev. 1 §4.8 fields plus the station, bay,
/// passes, errors and exceptions. Integers only (no floating point), so its canonical JSON is
/// the same on every machine.
public struct WipeCertificate: Codable, Sendable, Equatable {
    /// Document type and version: `lethe.wipe-certificate/2` (schema 1 documents, without
    /// `sanitization.standards`, still verify and render).
    public var schema: String
    public var reportId: String
    public var issuedAt: String
    /// `erased`, `erasedWithExceptions`, `notErased`, `aborted`.
    public var status: WipeStatus
    /// True only when every addressable sector was overwritten (or erased by the drive) and
    /// read back as expected: status `erased` and verification `passed`. An erase with
    /// exceptions (sectors that could not be written or read back, which may still hold data),
    /// an unverified erase, and anything interrupted or failed are signed records of what
    /// happened, never certificates.
    public var certified: Bool
    public var device: ReportDevice
    public var sanitization: ReportSanitization
    public var verification: ReportVerification
    public var tool: ReportTool
    public var performedBy: ReportParty
    public var verifiedBy: ReportParty
    public var station: ReportStation
    /// Post-sanitization destination (NIST): `resale`, `reuse`, `recycling`, `destruction`.
    public var destination: String

    public static let schemaName = "lethe.wipe-certificate/2"
    /// Every version a station has signed: all of them verify and render.
    public static let schemaNames: Set<String> = ["lethe.wipe-certificate/1", schemaName]

    /// Whether a signed document is a wipe certificate, of any version.
    public static func isCertificate(schema: String) -> Bool { schemaNames.contains(schema) }

    /// The certification rule, in one place: erased, verified as asked and found as expected,
    /// and no sector left out.
    public static func certifies(status: WipeStatus, verification: String, exceptions: [SectorRange]) -> Bool {
        status == .erased && verification == "passed" && exceptions.isEmpty
    }

    /// Creates a certificate.
    public init(
        reportId: String, issuedAt: String, status: WipeStatus, device: ReportDevice, sanitization: ReportSanitization,
        verification: ReportVerification, tool: ReportTool, performedBy: ReportParty, verifiedBy: ReportParty,
        station: ReportStation, destination: String
    ) {
        schema = Self.schemaName
        self.reportId = reportId
        self.issuedAt = issuedAt
        self.status = status
        certified = Self.certifies(status: status, verification: verification.result, exceptions: sanitization.badSectors)
        self.device = device
        self.sanitization = sanitization
        self.verification = verification
        self.tool = tool
        self.performedBy = performedBy
        self.verifiedBy = verifiedBy
        self.station = station
        self.destination = destination
    }
}

/// Battery figures for a phone (nil for drives).
public struct ReportBattery: Codable, Sendable, Equatable {
    public var healthPercent: Int?
    public var cycleCount: Int?
    /// Where the figures came from (`dumpsys battery`, `tradeinmode getstatus`).
    public var source: String

    /// Creates battery figures.
    public init(healthPercent: Int?, cycleCount: Int?, source: String) {
        self.healthPercent = healthPercent
        self.cycleCount = cycleCount
        self.source = source
    }
}

/// Diagnostics as reported.
public struct ReportDiagnostics: Codable, Sendable, Equatable {
    /// `pass`, `warn`, `fail`, `unknown`.
    public var verdict: String
    public var findings: [String]
    public var powerOnHours: UInt64?
    public var temperatureCelsius: Int?
    public var reallocatedSectors: UInt64?
    public var pendingSectors: UInt64?
    public var uncorrectableSectors: UInt64?
    public var percentageUsed: Int?
    public var mediaErrors: UInt64?
    /// The surface scan, when the profile (or `--surface`) asked for one.
    public var surface: ReportSurfaceScan?

    /// Builds the report view of a graded reading.
    public init(assessment: HealthAssessment, reading: HealthReading?) {
        verdict = assessment.verdict.rawValue
        findings = assessment.findings.map(\.message)
        powerOnHours = reading?.powerOnHours
        temperatureCelsius = reading?.temperatureCelsius
        reallocatedSectors = reading?.reallocatedSectors
        pendingSectors = reading?.pendingSectors
        uncorrectableSectors = reading?.uncorrectableSectors
        percentageUsed = reading?.percentageUsed
        mediaErrors = reading?.mediaErrors
    }

    /// The diagnostics with a surface scan added. A scan that warns or fails makes the
    /// verdict at least that bad, and its findings join the list (prefixed `surface:`); a
    /// clean scan never hides an unknown or failing SMART verdict.
    public func adding(surface scan: SurfaceScanReport) -> ReportDiagnostics {
        var copy = self
        copy.surface = ReportSurfaceScan(scan)
        if scan.verdict == .warn || scan.verdict == .fail {
            copy.verdict = max(HealthVerdict(rawValue: verdict) ?? .unknown, scan.verdict).rawValue
        }
        copy.findings += scan.findings.map { "surface: \($0)" }
        return copy
    }
}

/// A surface scan as the refurb report carries it: the verdict and its thresholds, the
/// figures, the ten slowest reads and the first 100 unreadable ranges.
public struct ReportSurfaceScan: Codable, Sendable, Equatable {
    /// `full` or `sample`.
    public var mode: String
    /// `pass`, `warn`, `fail`, or `unknown` (a clean scan that stopped early).
    public var verdict: String
    public var findings: [String]
    public var bytesRead: UInt64
    /// Share of the device read, in basis points (10000 = all of it).
    public var coverageBasisPoints: Int
    public var reads: Int
    public var seconds: Int
    /// Read latency percentiles in microseconds: `p50`, `p90`, `p99`, `p99.9`, `max`.
    public var latencyMicroseconds: [String: UInt64]
    public var slowReads: Int
    /// The slowest reads, slowest first (at most 10).
    public var slowest: [SurfaceScanReport.SlowRegion]
    public var unreadableSectors: UInt64
    /// Unreadable sectors as LBA ranges (at most the first 100).
    public var unreadable: [SectorRange]
    public var thresholds: SurfaceThresholds
    /// Why the scan stopped early, if it did.
    public var stopped: String?

    /// The report view of a scan.
    public init(_ scan: SurfaceScanReport) {
        mode = scan.mode
        verdict = scan.verdict.rawValue
        findings = scan.findings
        bytesRead = scan.bytesRead
        coverageBasisPoints = scan.coverageBasisPoints
        reads = scan.reads
        seconds = Int(scan.seconds.rounded(.up))
        latencyMicroseconds = scan.latencyMicroseconds
        slowReads = scan.slowReads
        slowest = Array(scan.slowRegions.prefix(10))
        unreadableSectors = scan.unreadableSectors
        unreadable = Array(scan.unreadable.prefix(100))
        self.thresholds = scan.thresholds
        stopped = scan.stopped
    }
}

/// The certificate a refurb report points to.
public struct CertificateReference: Codable, Sendable, Equatable {
    public var reportId: String
    /// base64url SHA-256 of the certificate's signed (canonical) bytes.
    public var digest: String
    public var status: WipeStatus

    /// Creates a reference.
    public init(reportId: String, digest: String, status: WipeStatus) {
        self.reportId = reportId
        self.digest = digest
        self.status = status
    }
}

/// The refurb report: identity, diagnostics, battery, grade, and the certificate it goes with.
public struct RefurbReport: Codable, Sendable, Equatable {
    /// `lethe.refurb-report/1`.
    public var schema: String
    public var reportId: String
    public var issuedAt: String
    public var device: ReportDevice
    public var diagnostics: ReportDiagnostics
    public var battery: ReportBattery?
    /// `A` (as new) to `D` (parts only).
    public var grade: String
    public var gradeReason: String
    /// The technician's cosmetic grade (nil until given, or when none was asked for).
    public var cosmetic: CosmeticGrade?
    public var certificate: CertificateReference?
    public var performedBy: ReportParty
    public var station: ReportStation
    public var tool: ReportTool

    public static let schemaName = "lethe.refurb-report/1"

    /// Creates a report.
    public init(
        reportId: String, issuedAt: String, device: ReportDevice, diagnostics: ReportDiagnostics, battery: ReportBattery?,
        grade: String, gradeReason: String, certificate: CertificateReference?, performedBy: ReportParty,
        station: ReportStation, tool: ReportTool
    ) {
        schema = Self.schemaName
        self.reportId = reportId
        self.issuedAt = issuedAt
        self.device = device
        self.diagnostics = diagnostics
        self.battery = battery
        self.grade = grade
        self.gradeReason = gradeReason
        self.certificate = certificate
        self.performedBy = performedBy
        self.station = station
        self.tool = tool
    }

    /// The grade from the health verdict and the erase: only a verified erase can be sold
    /// as A or B; a failed drive is parts only.
    /// The report with the technician's cosmetic grade: the sale grade becomes the worse of
    /// the functional grade (health and erase) and the cosmetic one, and the reason says both.
    public func graded(_ cosmetic: CosmeticGrade) -> RefurbReport {
        var report = self
        report.cosmetic = cosmetic
        report.grade = max(grade, cosmetic.grade)
        report.gradeReason = "\(gradeReason); cosmetic \(cosmetic.grade): \(cosmetic.meaning)"
        return report
    }

    /// The grade from the diagnostics (SMART and any surface scan) and the erase. When the
    /// surface scan is what lowered the verdict, the reason says so with its first finding.
    public static func grade(diagnostics: ReportDiagnostics, status: WipeStatus?) -> (grade: String, reason: String) {
        let verdict = HealthVerdict(rawValue: diagnostics.verdict) ?? .unknown
        var result = grade(verdict: verdict, status: status)
        if let surface = diagnostics.surface, HealthVerdict(rawValue: surface.verdict) == verdict, verdict == .warn || verdict == .fail,
           let finding = surface.findings.first {
            result.reason += " (surface scan: \(finding))"
        }
        return result
    }

    public static func grade(verdict: HealthVerdict, status: WipeStatus?) -> (grade: String, reason: String) {
        if let status, status != .erased && status != .erasedWithExceptions {
            return ("D", "not erased (\(status.rawValue)): not for sale until erased")
        }
        if verdict == .fail { return ("D", "health check failed: parts or recycling only") }
        if status == .erasedWithExceptions {
            return ("D", "erased with exceptions: some sectors could not be overwritten and may still hold data; not for sale unless purged by the drive's own erase, else destroy")
        }
        switch verdict {
        case .fail: return ("D", "health check failed: parts or recycling only")
        case .warn: return ("B", "health check passed with warnings")
        case .unknown: return ("C", "health could not be read (no SMART)")
        case .pass:
            return ("A", "healthy and erased")
        }
    }
}

/// A technician's cosmetic grade, CTIA style: A (like new) to E (damaged).
public struct CosmeticGrade: Codable, Sendable, Equatable {
    /// `A` to `E`.
    public var grade: String
    /// What the grade means, in plain words (fixed per grade).
    public var meaning: String
    /// What the technician saw (optional free text, at most 500 characters).
    public var notes: String?
    /// Who graded it (the API token's name, or the operator).
    public var gradedBy: String
    /// ISO 8601 UTC.
    public var gradedAt: String

    /// The grades and their meanings.
    public static let scale: [(grade: String, meaning: String)] = [
        ("A", "like new: no visible wear"),
        ("B", "light wear: fine scratches or scuffs, visible only up close"),
        ("C", "moderate wear: visible scratches, scuffs or small dents"),
        ("D", "heavy wear: deep scratches, dents or chips in the housing or screen"),
        ("E", "damaged: cracked or broken parts; for parts or recycling"),
    ]

    /// Why a grade was refused.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public var description: String

        /// Creates an error.
        public init(description: String) { self.description = description }
    }

    /// A grade; throws when `grade` is not A to E or the notes are too long.
    public init(grade: String, notes: String?, gradedBy: String, gradedAt: String) throws(Invalid) {
        let letter = grade.uppercased()
        guard let entry = Self.scale.first(where: { $0.grade == letter }) else {
            throw Invalid(description: "grade \"\(grade)\" is not one of A, B, C, D, E")
        }
        let trimmed = notes.map { String(String($0.drop(while: \.isWhitespace).reversed()).drop(while: \.isWhitespace).reversed()) }
        if let trimmed, trimmed.count > 500 { throw Invalid(description: "notes are \(trimmed.count) characters; at most 500") }
        self.grade = letter
        meaning = entry.meaning
        self.notes = trimmed?.isEmpty == true ? nil : trimmed
        self.gradedBy = gradedBy
        self.gradedAt = gradedAt
    }
}

/// The station's identity and defaults for reports (`<state>/station.json`).
public struct StationConfig: Codable, Sendable, Equatable {
    public var id: String = "station-1"
    public var name: String = "Lethe refurbishment bench"
    public var location: String = "not configured (set location in station.json)"
    public var contact: String = "not configured (set contact in station.json)"
    /// Base of the verify URL in QR codes (the daemon's `/verify/{id}` page).
    public var verifyBaseURL: String = "http://127.0.0.1:8765"
    /// Default operator name when `--operator` is not given.
    public var operatorName: String?
    /// NIST post-sanitization destination.
    public var destination: String = "resale"
    /// NIST media source.
    public var mediaSource: String = "bench intake"
    /// The intake lot being worked through and its supplier (`intake:` in the config, or
    /// `lethe daemon --lot --supplier`): on each catalog record unless the catalog's
    /// instructions name another. The hub's scorecards group by them.
    public var intakeLot: String?
    public var intakeSupplier: String?

    /// The defaults.
    public init() {}

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case id, name, location, contact, verifyBaseURL, operatorName, destination, mediaSource, intakeLot, intakeSupplier
    }

    /// Decodes over the defaults; an unknown key is an error that names it.
    public init(from decoder: any Decoder) throws {
        let any = try decoder.container(keyedBy: AnyKey.self)
        for key in any.allKeys where CodingKeys(rawValue: key.stringValue) == nil {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: any,
                debugDescription: "unknown station setting \"\(key.stringValue)\"; known: \(CodingKeys.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = StationConfig()
        id = try c.decodeIfPresent(String.self, forKey: .id) ?? d.id
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? d.name
        location = try c.decodeIfPresent(String.self, forKey: .location) ?? d.location
        contact = try c.decodeIfPresent(String.self, forKey: .contact) ?? d.contact
        verifyBaseURL = try c.decodeIfPresent(String.self, forKey: .verifyBaseURL) ?? d.verifyBaseURL
        operatorName = try c.decodeIfPresent(String.self, forKey: .operatorName)
        destination = try c.decodeIfPresent(String.self, forKey: .destination) ?? d.destination
        mediaSource = try c.decodeIfPresent(String.self, forKey: .mediaSource) ?? d.mediaSource
        intakeLot = try c.decodeIfPresent(String.self, forKey: .intakeLot)
        intakeSupplier = try c.decodeIfPresent(String.self, forKey: .intakeSupplier)
    }
}

extension WipeCertificate {
    /// Builds the certificate for an engine outcome. Times are ISO 8601 UTC strings, durations
    /// milliseconds, so the document has no floating point.
    public init(
        outcome o: WipeOutcome, method: WipeMethod, device: ReportDevice, reportId: String, issuedAt: String,
        startedAt: String, finishedAt: String, station: ReportStation, performedBy: ReportParty, destination: String,
        toolVersion: String
    ) {
        let passes = o.passes.map {
            ReportPass(
                index: $0.index, pattern: $0.pattern, bytesWritten: $0.bytesWritten, completed: $0.completed,
                durationMs: Int(($0.seconds * 1000).rounded()), throughputBytesPerSecond: UInt64(max(0, $0.throughputBytesPerSecond.rounded())),
                resumedAt: $0.resumedAt)
        }
        let v = o.verification
        let how: String
        switch v.mode {
        case .off: how = "none (verification was turned off)"
        case .last: how = "full read-back with O_DIRECT of the last pass, compared with the pattern written"
        case .all: how = "full read-back with O_DIRECT after every pass, compared with the pattern written"
        case .sample:
            how = "NIST SP 800-88 sampling: \(v.sampleSubsections ?? 0) subsections with a pseudorandom run of sectors in each, plus the first and last sectors, read with O_DIRECT"
        }
        var verification = ReportVerification(
            mode: v.mode.rawValue, method: how, result: v.result.rawValue, bytesVerified: v.bytesVerified,
            coverageBasisPoints: Int((v.coverage * 10000).rounded()), mismatchedSectors: v.mismatchedSectors,
            sampleSeed: v.sampleSeed.map { String($0, radix: 16) })
        var sanitization = ReportSanitization(
            category: method.category.rawValue, method: method.name, description: "\(method.title): \(method.reference)",
            technique: "overwrite", passes: passes, bytesWritten: o.bytesWritten, startedAt: startedAt, finishedAt: finishedAt,
            badSectors: o.badSectors, errors: o.error.map { [$0] } ?? [])
        sanitization.choice = o.methodChoice
        sanitization.exceptions = o.exceptionsAdvice
        sanitization.standards = SanitizationStandards(method: method)
        sanitization.hiddenAreas = o.hiddenAreas
        if let firmware = o.firmware {
            sanitization.technique = "firmware erase (the drive's own command)"
            sanitization.commands = firmware.commands
            sanitization.hiddenAreas = firmware.hiddenAreas
            sanitization.namespaces = firmware.namespaces
            verification.mode = "readback"
            verification.method = "read-back of \(v.sampleSubsections ?? 0) blocks of 4 KiB (the first, the last, the rest chosen by the seed), written with random data before the erase and read with O_DIRECT after it: the data known before must be gone" + (method.firmware.map { $0.effect != .crypto } ?? false ? ", and the drive's erased pattern must be there" : "")
            verification.checks = o.checks
        }
        let verifier = v.mode == .off
            ? ReportParty(name: "nobody", role: "verification was turned off")
            : ReportParty(name: "Lethe \(toolVersion)", role: "automatic read-back verification", contact: performedBy.name)
        self.init(
            reportId: reportId, issuedAt: issuedAt, status: o.status, device: device, sanitization: sanitization,
            verification: verification, tool: ReportTool(version: toolVersion), performedBy: performedBy,
            verifiedBy: verifier, station: station, destination: destination)
    }
}
