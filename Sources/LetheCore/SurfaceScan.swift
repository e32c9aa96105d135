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

    /// A report.
    public init(
        mode: String, sizeBytes: UInt64, bytesRead: UInt64, coverageBasisPoints: Int, readBytes: Int, reads: Int,
        latencyMicroseconds: [String: UInt64], slowThresholdMilliseconds: Int, slowRegions: [SlowRegion], slowReads: Int,
        unreadable: [SectorRange], logicalSectorSize: Int, verdict: HealthVerdict, findings: [String], seconds: Double
    ) {
        self.mode = mode
        self.sizeBytes = sizeBytes
        self.bytesRead = bytesRead
        self.coverageBasisPoints = coverageBasisPoints
        self.readBytes = readBytes
        self.reads = reads
        self.latencyMicroseconds = latencyMicroseconds
        self.slowThresholdMilliseconds = slowThresholdMilliseconds
        self.slowRegions = slowRegions
        self.slowReads = slowReads
        self.unreadable = unreadable
        self.logicalSectorSize = logicalSectorSize
        self.verdict = verdict
        self.findings = findings
        self.seconds = seconds
    }
}
