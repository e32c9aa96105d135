/// A read test of the whole surface (or a NIST-style sample of it): how long each read took,
/// where reads were slow, and which sectors could not be read at all.
public struct SurfaceScanReport: Codable, Sendable, Equatable {
    /// A region whose read took longer than the threshold.
    public struct SlowRegion: Codable, Sendable, Equatable {
        public var offset: UInt64
        public var length: Int
        public var milliseconds: Int

        /// A slow region.
        public init(offset: UInt64, length: Int, milliseconds: Int) {
            self.offset = offset
            self.length = length
            self.milliseconds = milliseconds
        }
    }

    /// `full` or `sample`.
    public var mode: String
    public var sizeBytes: UInt64
    public var bytesRead: UInt64
    /// Share of the device read, in basis points (10000 = all of it).
    public var coverageBasisPoints: Int
    public var readBytes: Int
    public var reads: Int
    /// Read latency percentiles in microseconds: `p50`, `p90`, `p99`, `p99.9`, `max`.
    public var latencyMicroseconds: [String: UInt64]
    /// `thresholds.slowMilliseconds`, kept as its own field for readers of the JSON.
    public var slowThresholdMilliseconds: Int
    /// The slowest regions first (at most 100 kept; `slowReads` counts them all).
    public var slowRegions: [SlowRegion]
    public var slowReads: Int
    /// Sectors that could not be read, narrowed down sector by sector.
    public var unreadable: [SectorRange]
    public var logicalSectorSize: Int
    public var verdict: HealthVerdict
    public var findings: [String]
    public var seconds: Double
    /// Why the scan stopped before the end (cancelled, the device went away); nil when it
    /// read all it meant to.
    public var stopped: String?
    /// What the verdict was judged by.
    public var thresholds: SurfaceThresholds

    /// The number of unreadable sectors.
    public var unreadableSectors: UInt64 { unreadable.reduce(0) { $0 + $1.count } }

    /// A report.
    public init(
        mode: String, sizeBytes: UInt64, bytesRead: UInt64, coverageBasisPoints: Int, readBytes: Int, reads: Int,
        latencyMicroseconds: [String: UInt64], slowRegions: [SlowRegion], slowReads: Int,
        unreadable: [SectorRange], logicalSectorSize: Int, verdict: HealthVerdict, findings: [String], seconds: Double,
        stopped: String? = nil, thresholds: SurfaceThresholds = SurfaceThresholds()
    ) {
        self.stopped = stopped
        self.thresholds = thresholds
        self.mode = mode
        self.sizeBytes = sizeBytes
        self.bytesRead = bytesRead
        self.coverageBasisPoints = coverageBasisPoints
        self.readBytes = readBytes
        self.reads = reads
        self.latencyMicroseconds = latencyMicroseconds
        slowThresholdMilliseconds = thresholds.slowMilliseconds
        self.slowRegions = slowRegions
        self.slowReads = slowReads
        self.unreadable = unreadable
        self.logicalSectorSize = logicalSectorSize
        self.verdict = verdict
        self.findings = findings
        self.seconds = seconds
    }
}

/// How much of the surface a scan reads.
public enum SurfaceScanMode: String, Codable, Sendable, CaseIterable {
    /// Every sector.
    case full
    /// A NIST-style sample: 1,000+ subsections, the first and last sectors, at least 10%.
    case sample
}

/// The limits a surface scan is judged by (a profile's `diagnostics.surface`): reads slower
/// than `slowMilliseconds` and unreadable sectors, each with a count that warns and one that
/// fails.
public struct SurfaceThresholds: Codable, Sendable, Equatable {
    /// A read slower than this is a slow region.
    public var slowMilliseconds = 200
    /// This many slow reads or more warn.
    public var slowReadsWarn = 1
    /// This many slow reads or more fail (nil: slowness alone never fails).
    public var slowReadsFail: Int?
    /// This many unreadable sectors or more warn.
    public var unreadableSectorsWarn = 1
    /// This many unreadable sectors or more fail.
    public var unreadableSectorsFail = 1

    /// The defaults: any unreadable sector fails, any read slower than 200 ms warns.
    public init() {}

    /// Why the thresholds contradict each other (a warn count above its fail count, a count
    /// below 1): the field and what is wrong; nil when they are usable.
    public var problem: (field: String, message: String)? {
        for (field, value) in [("slowMilliseconds", slowMilliseconds), ("slowReadsWarn", slowReadsWarn), ("slowReadsFail", slowReadsFail ?? 1),
                               ("unreadableSectorsWarn", unreadableSectorsWarn), ("unreadableSectorsFail", unreadableSectorsFail)] where value < 1 {
            return (field, "expected 1 or more, not \(value)")
        }
        if let slowReadsFail, slowReadsWarn > slowReadsFail {
            return ("slowReadsWarn", "\(slowReadsWarn) is above slowReadsFail (\(slowReadsFail))")
        }
        if unreadableSectorsWarn > unreadableSectorsFail {
            return ("unreadableSectorsWarn", "\(unreadableSectorsWarn) is above unreadableSectorsFail (\(unreadableSectorsFail))")
        }
        return nil
    }

    /// The verdict and its findings for a scan's counts. `slowest` is the slowest read, if
    /// any; `unreadable` the coalesced unreadable ranges.
    public func judge(slowReads: Int, slowest: SurfaceScanReport.SlowRegion?, unreadable: [SectorRange]) -> (verdict: HealthVerdict, findings: [String]) {
        var verdict = HealthVerdict.pass
        var findings: [String] = []
        let bad = unreadable.reduce(UInt64(0)) { $0 + $1.count }
        if bad > 0 {
            let level: HealthVerdict = bad >= UInt64(unreadableSectorsFail) ? .fail : bad >= UInt64(unreadableSectorsWarn) ? .warn : .pass
            verdict = max(verdict, level)
            let shown = unreadable.prefix(10).map(\.description).joined(separator: ", ")
            findings.append("\(bad) unreadable sector\(bad == 1 ? "" : "s"): \(shown)\(unreadable.count > 10 ? ", …" : "")")
        }
        if slowReads > 0 {
            let level: HealthVerdict = slowReadsFail.map { slowReads >= $0 } == true ? .fail : slowReads >= slowReadsWarn ? .warn : .pass
            verdict = max(verdict, level)
            findings.append("\(slowReads) read\(slowReads == 1 ? "" : "s") slower than \(slowMilliseconds) ms (slowest \(slowest?.milliseconds ?? 0) ms at byte \(slowest?.offset ?? 0))")
        }
        if findings.isEmpty { findings.append("every read succeeded, none slower than \(slowMilliseconds) ms") }
        return (verdict, findings)
    }
}
