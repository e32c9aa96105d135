/// The verdict of an erase, in NIST SP 800-88 vocabulary.
public enum WipeStatus: String, Sendable, Codable {
    /// Every pass completed on every sector and verification (as asked) passed.
    case erased
    /// Every pass completed, verification passed, but some sectors could not be written or read;
    /// they are listed.
    case erasedWithExceptions
    /// The erase did not complete, or verification found data that should not be there.
    case notErased
    /// The operator stopped it (SIGINT/SIGTERM, or abort).
    case aborted
}

/// The result of reading data back.
public enum VerificationResult: String, Sendable, Codable {
    case passed, failed, skipped
    /// Verification was asked for but never ran (the erase failed or was aborted first).
    case notRun
}

/// One place where the device did not hold what the pass wrote.
public struct Mismatch: Hashable, Sendable, Codable {
    /// Byte offset on the device.
    public var offset: UInt64
    /// The byte that should be there.
    public var expected: UInt8
    /// The byte that is there.
    public var found: UInt8

    /// Creates a record.
    public init(offset: UInt64, expected: UInt8, found: UInt8) {
        self.offset = offset
        self.expected = expected
        self.found = found
    }
}

/// What a read-back found.
public struct VerificationRecord: Hashable, Sendable, Codable {
    /// How it was asked for.
    public var mode: VerificationMode
    /// What it found.
    public var result: VerificationResult
    /// Bytes read and compared.
    public var bytesVerified: UInt64
    /// Share of the device read (the last verification read), 0...1.
    public var coverage: Double
    /// For `sample`: the seed of the sampling plan, so the exact sectors can be listed again.
    public var sampleSeed: UInt64?
    /// For `sample`: how many subsections the device was cut into.
    public var sampleSubsections: Int?
    /// Sectors whose content differed from what was written.
    public var mismatchedSectors: UInt64
    /// The first few differing bytes, lowest offsets first.
    public var firstMismatches: [Mismatch]
    /// Seconds spent reading back.
    public var seconds: Double

    /// Creates a record.
    public init(
        mode: VerificationMode, result: VerificationResult, bytesVerified: UInt64 = 0, coverage: Double = 0,
        sampleSeed: UInt64? = nil, sampleSubsections: Int? = nil, mismatchedSectors: UInt64 = 0,
        firstMismatches: [Mismatch] = [], seconds: Double = 0
    ) {
        self.mode = mode
        self.result = result
        self.bytesVerified = bytesVerified
        self.coverage = coverage
        self.sampleSeed = sampleSeed
        self.sampleSubsections = sampleSubsections
        self.mismatchedSectors = mismatchedSectors
        self.firstMismatches = firstMismatches
        self.seconds = seconds
    }
}

/// One pass as it ran.
public struct PassRecord: Hashable, Sendable, Codable {
    /// 1-based pass number.
    public var index: Int
    /// What was written (`0x00`, `random (AES-128-CTR)`).
    public var pattern: String
    /// Bytes written in this pass (sectors that failed are not counted).
    public var bytesWritten: UInt64
    /// Whether the pass covered the whole device (bad sectors aside) and was flushed.
    public var completed: Bool
    /// Seconds from the first write to the end of the flush.
    public var seconds: Double
    /// `bytesWritten / seconds`.
    public var throughputBytesPerSecond: Double
    /// Whether a full read-back of this pass ran, and what it found (nil if none ran).
    public var verification: VerificationResult?
    /// When the pass was interrupted (kill -9, power cut, unplug) and picked up again from a
    /// checkpoint: the byte offset it resumed at. Everything below it had been written and
    /// flushed before the interruption.
    public var resumedAt: UInt64?

    /// Creates a record.
    public init(
        index: Int, pattern: String, bytesWritten: UInt64, completed: Bool, seconds: Double,
        verification: VerificationResult? = nil
    ) {
        self.index = index
        self.pattern = pattern
        self.bytesWritten = bytesWritten
        self.completed = completed
        self.seconds = seconds
        self.throughputBytesPerSecond = seconds > 0 ? Double(bytesWritten) / seconds : 0
        self.verification = verification
    }
}

/// Where an interrupted overwrite picks up again: the pass plan with its random seeds, the pass
/// and phase it was in, how far that pass's writes are known to be on the medium (flushed), and
/// what the earlier passes recorded. Saved before the first write and then every few seconds,
/// so a resumed erase writes exactly the same bytes over the remaining range.
///
/// The seeds are those of the overwrite patterns, not of any customer data: knowing them tells
/// nothing about what was on the device before.
public struct WipeCheckpoint: Hashable, Sendable, Codable {
    /// Which part of a pass.
    public enum Phase: String, Hashable, Sendable, Codable {
        /// Writing the pass; `offset` bytes of it are on the medium.
        case write
        /// The pass is written and flushed; its read-back has not finished.
        case verify
    }

    /// The method's name; a resume with another method is refused.
    public var method: String
    /// The device size the plan was made for; a resume on another size is refused.
    public var sizeBytes: UInt64
    /// Every pass, with its random values chosen.
    public var patterns: [ResolvedPattern]
    /// The 1-based pass in progress.
    public var pass: Int
    /// Where in that pass.
    public var phase: Phase
    /// For `write`: bytes from the start of the device that this pass has written and flushed.
    public var offset: UInt64
    /// The passes before `pass` (and `pass` itself when in `verify`), as recorded.
    public var passes: [PassRecord]
    /// The read-back so far.
    public var verification: VerificationRecord
    /// Sectors found bad so far.
    public var badSectors: [SectorRange]
    /// Seconds spent writing so far.
    public var writeSeconds: Double

    /// Creates a checkpoint.
    public init(
        method: String, sizeBytes: UInt64, patterns: [ResolvedPattern], pass: Int, phase: Phase, offset: UInt64,
        passes: [PassRecord], verification: VerificationRecord, badSectors: [SectorRange], writeSeconds: Double
    ) {
        self.method = method
        self.sizeBytes = sizeBytes
        self.patterns = patterns
        self.pass = pass
        self.phase = phase
        self.offset = offset
        self.passes = passes
        self.verification = verification
        self.badSectors = badSectors
        self.writeSeconds = writeSeconds
    }

    /// Share of the erase's writes done, 0...1 (for messages).
    public var writtenFraction: Double {
        guard !patterns.isEmpty, sizeBytes > 0 else { return 0 }
        let done = Double(pass - 1) * Double(sizeBytes) + (phase == .verify ? Double(sizeBytes) : Double(offset))
        return done / (Double(patterns.count) * Double(sizeBytes))
    }
}

/// Everything an erase produced: the input of certificates and reports.
public struct WipeOutcome: Hashable, Sendable, Codable {
    /// Device path as given.
    public var device: String
    /// Method name (`dod-3`).
    public var method: String
    /// NIST category of the method.
    public var category: SanitizationCategory
    /// The verdict.
    public var status: WipeStatus
    /// Device size in bytes.
    public var sizeBytes: UInt64
    /// Logical sector size, the unit of `badSectors`.
    public var logicalSectorSize: Int
    /// Total bytes written over all passes.
    public var bytesWritten: UInt64
    /// Each pass as it ran.
    public var passes: [PassRecord]
    /// The read-back.
    public var verification: VerificationRecord
    /// Sectors that could not be written or read, as coalesced LBA ranges.
    public var badSectors: [SectorRange]
    /// Bytes written divided by seconds spent writing.
    public var throughputBytesPerSecond: Double
    /// Wall-clock seconds for the whole job.
    public var seconds: Double
    /// Why the erase did not finish, in plain words (nil when it did).
    public var error: String?
    /// Whether the erase stopped because the device went away (ENODEV, ENXIO: unplugged).
    public var deviceVanished: Bool = false
    /// For a firmware erase: the commands sent, the drive's answers, the hidden areas.
    public var firmware: FirmwareEraseRecord?
    /// For an overwrite of an ATA drive: its visible, native and factory sizes, and what was
    /// opened before the first write (nil when the drive is not ATA or was not asked).
    public var hiddenAreas: HiddenAreas?
    /// Why this method was used (what `nist-purge` passed over, or why it fell back to Clear).
    public var methodChoice: String?
    /// For a firmware erase: the read-back checks (known data gone, expected pattern present).
    public var checks: [ReportCheck]?

    /// Creates an outcome.
    public init(
        device: String, method: String, category: SanitizationCategory, status: WipeStatus, sizeBytes: UInt64,
        logicalSectorSize: Int, bytesWritten: UInt64, passes: [PassRecord], verification: VerificationRecord,
        badSectors: [SectorRange], throughputBytesPerSecond: Double, seconds: Double, error: String?
    ) {
        self.device = device
        self.method = method
        self.category = category
        self.status = status
        self.sizeBytes = sizeBytes
        self.logicalSectorSize = logicalSectorSize
        self.bytesWritten = bytesWritten
        self.passes = passes
        self.verification = verification
        self.badSectors = badSectors
        self.throughputBytesPerSecond = throughputBytesPerSecond
        self.seconds = seconds
        self.error = error
    }

    /// For an erase with exceptions: how many sectors were not overwritten, the first ranges,
    /// and what to do next. Nil when none were left out.
    public var exceptionsAdvice: String? {
        guard !badSectors.isEmpty else { return nil }
        let count = badSectors.reduce(UInt64(0)) { $0 + $1.count }
        let shown = badSectors.prefix(8).map(\.description).joined(separator: ", ")
        let more = badSectors.count > 8 ? " and \(badSectors.count - 8) more range(s)" : ""
        return "\(count) sector(s) (\(HumanFormat.bytes(Double(count) * Double(logicalSectorSize)))) could not be overwritten or read back and may still hold data: \(shown)\(more). Not certified. Next: erase the drive with its own command (lethe wipe --method nist-purge) if it has one, then verify; otherwise destroy it"
    }

    /// The verdict rule, in one place: aborted beats everything; any unfinished pass, fatal
    /// error or failed verification means not erased; bad sectors make an otherwise clean erase
    /// "erased with exceptions".
    public static func status(
        aborted: Bool, fatalError: Bool, allPassesCompleted: Bool, verification: VerificationResult,
        badSectors: [SectorRange]
    ) -> WipeStatus {
        if aborted { return .aborted }
        if fatalError || !allPassesCompleted { return .notErased }
        if verification == .failed || verification == .notRun { return .notErased }
        return badSectors.isEmpty ? .erased : .erasedWithExceptions
    }
}

/// A snapshot of a running erase, for progress bars, JSON lines and the API.
public struct WipeProgress: Hashable, Sendable, Codable {
    /// What the engine is doing now.
    public enum Phase: String, Sendable, Codable {
        case write, flush, verify
        /// The drive's own erase (sanitize, security erase, format) is running.
        case firmware
    }

    /// Current phase.
    public var phase: Phase
    /// 1-based pass number (for `verify` after the last pass, the last pass's number).
    public var pass: Int
    /// Passes in the plan.
    public var passCount: Int
    /// Bytes done in the current phase.
    public var phaseBytesDone: UInt64
    /// Bytes the current phase will handle.
    public var phaseBytesTotal: UInt64
    /// Bytes done over the whole job (writes and verification reads).
    public var bytesDone: UInt64
    /// Bytes the whole job will handle.
    public var bytesTotal: UInt64
    /// Recent throughput of the current phase.
    public var bytesPerSecond: Double
    /// Estimated seconds until the job ends, when known.
    public var etaSeconds: Double?
    /// Bad sectors found so far.
    public var badSectorCount: UInt64

    /// Creates a snapshot.
    public init(
        phase: Phase, pass: Int, passCount: Int, phaseBytesDone: UInt64, phaseBytesTotal: UInt64,
        bytesDone: UInt64, bytesTotal: UInt64, bytesPerSecond: Double, etaSeconds: Double?, badSectorCount: UInt64
    ) {
        self.phase = phase
        self.pass = pass
        self.passCount = passCount
        self.phaseBytesDone = phaseBytesDone
        self.phaseBytesTotal = phaseBytesTotal
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
        self.bytesPerSecond = bytesPerSecond
        self.etaSeconds = etaSeconds
        self.badSectorCount = badSectorCount
    }

    /// Overall completion, 0...1.
    public var fraction: Double { bytesTotal == 0 ? 1 : min(1, Double(bytesDone) / Double(bytesTotal)) }
}

/// Human-readable sizes and durations for terminals and logs.
public enum HumanFormat {
    /// `1.5 GiB`.
    public static func bytes(_ value: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var scaled = value
        var unit = 0
        while scaled >= 1024, unit < units.count - 1 {
            scaled /= 1024
            unit += 1
        }
        return unit == 0 ? "\(Int(scaled)) B" : "\(fixed(scaled, 1)) \(units[unit])"
    }

    /// `1:02:03` or `2:03`.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--:--" }
        let total = Int(seconds.rounded())
        let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60)
        let mm = m < 10 ? "0\(m)" : "\(m)"
        let ss = s < 10 ? "0\(s)" : "\(s)"
        return h > 0 ? "\(h):\(mm):\(ss)" : "\(m):\(ss)"
    }

    /// A number with `digits` decimals, without Foundation.
    public static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "\(value)" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (abs(value) * scale).rounded()
        let whole = Int(rounded / scale)
        let frac = Int(rounded.truncatingRemainder(dividingBy: scale))
        var fracText = String(frac)
        while fracText.count < digits { fracText = "0" + fracText }
        let sign = value < 0 && rounded != 0 ? "-" : ""
        return digits == 0 ? "\(sign)\(whole)" : "\(sign)\(whole).\(fracText)"
    }
}
