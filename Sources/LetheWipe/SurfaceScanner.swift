import Foundation
import Histogram
import LetheCore

/// How to scan.
public struct SurfaceScanOptions: Sendable {
    /// `full` reads everything; `sample` reads a NIST-style sample (1,000+ subsections, the
    /// first and last sectors, at least 10%).
    public typealias Mode = SurfaceScanMode

    public var mode: Mode
    /// Bytes per read.
    public var readBytes = 1 << 20
    /// What is slow, and how many slow reads or unreadable sectors warn or fail.
    public var thresholds = SurfaceThresholds()
    /// Chooses the sample's locations.
    public var seed: UInt64 = 0x5eed_5eed

    /// Options.
    public init(mode: Mode, thresholds: SurfaceThresholds = SurfaceThresholds()) {
        self.mode = mode
        self.thresholds = thresholds
    }
}

/// Reads a device and times every read (HdrHistogram, microseconds): finds slow regions and
/// unreadable sectors (a failed read is narrowed down sector by sector). Reads only; blocking,
/// on the caller's thread. Stops early, saying why in ``SurfaceScanReport/stopped``, when
/// cancelled or when the device goes away.
public struct SurfaceScanner {
    let device: any BlockDevice
    let options: SurfaceScanOptions
    let cancellation: WipeCancellation

    /// A scanner; `cancellation` stops it at the next read.
    public init(device: any BlockDevice, options: SurfaceScanOptions, cancellation: WipeCancellation = WipeCancellation()) {
        self.device = device
        self.options = options
        self.cancellation = cancellation
    }

    /// Scans; `progress` gets the bytes done and the total.
    public func run(progress: (UInt64, UInt64) -> Void = { _, _ in }) -> SurfaceScanReport {
        let started = ContinuousClock.now
        let sector = UInt64(device.logicalSectorSize)
        let totalSectors = device.sizeBytes / sector
        let ranges: [SectorRange]
        switch options.mode {
        case .full: ranges = totalSectors == 0 ? [] : [SectorRange(first: 0, count: totalSectors)]
        case .sample: ranges = SamplePlan(totalSectors: totalSectors, seed: options.seed).ranges
        }
        let total = ranges.reduce(UInt64(0)) { $0 + $1.count * sector }
        let chunkSectors = max(1, UInt64(options.readBytes) / sector)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(chunkSectors * sector), alignment: max(device.bufferAlignment, 4096))
        defer { buffer.deallocate() }
        var histogram = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
        var slow: [SurfaceScanReport.SlowRegion] = []
        var slowReads = 0
        var unreadable: [SectorRange] = []
        var done: UInt64 = 0
        var reads = 0
        var stopped: String?
        let slowMicros = UInt64(options.thresholds.slowMilliseconds) * 1000
        scan: for range in ranges {
            var next = range.first
            while next < range.first + range.count {
                if cancellation.isCancelled {
                    stopped = "cancelled after \(done) of \(total) bytes"
                    break scan
                }
                let count = min(chunkSectors, range.first + range.count - next)
                let bytes = Int(count * sector)
                let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<bytes])
                let t0 = ContinuousClock.now
                let ok: Bool
                do {
                    ok = try device.read(into: slice, at: next * sector) == bytes
                } catch {
                    if error.errno.meansDeviceGone {
                        stopped = "the device went away at byte \(next * sector) (\(error.errno))"
                        break scan
                    }
                    ok = false
                }
                let micros = Self.microseconds(ContinuousClock.now - t0)
                reads += 1
                if ok {
                    _ = histogram.record(micros)
                    if micros >= slowMicros {
                        slowReads += 1
                        slow.append(.init(offset: next * sector, length: bytes, milliseconds: Int(micros / 1000)))
                    }
                } else {
                    unreadable += narrow(first: next, count: count, sector: sector)
                }
                next += count
                done += UInt64(bytes)
                progress(done, total)
            }
        }
        slow.sort { $0.milliseconds > $1.milliseconds }
        let bad = SectorRange.coalesce(unreadable)
        var (verdict, findings) = options.thresholds.judge(slowReads: slowReads, slowest: slow.first, unreadable: bad)
        if let stopped {
            // What was read still counts, but a clean partial scan proves nothing.
            if verdict == .pass { verdict = .unknown }
            findings.insert("scan stopped: \(stopped)", at: 0)
        }
        let latency: [String: UInt64] = histogram.totalCount == 0 ? [:] : [
            "p50": histogram.valueAtPercentile(50), "p90": histogram.valueAtPercentile(90), "p99": histogram.valueAtPercentile(99),
            "p99.9": histogram.valueAtPercentile(99.9), "max": histogram.maxRecorded,
        ]
        let elapsed = ContinuousClock.now - started
        return SurfaceScanReport(
            mode: options.mode.rawValue, sizeBytes: device.sizeBytes, bytesRead: done,
            coverageBasisPoints: device.sizeBytes == 0 ? 0 : Int(done * 10000 / device.sizeBytes), readBytes: Int(chunkSectors * sector),
            reads: reads, latencyMicroseconds: latency, slowRegions: Array(slow.prefix(100)), slowReads: slowReads, unreadable: bad,
            logicalSectorSize: Int(sector), verdict: verdict, findings: findings, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, stopped: stopped,
            thresholds: options.thresholds)
    }

    /// Reads a failed chunk sector by sector: the sectors that still fail.
    func narrow(first: UInt64, count: UInt64, sector: UInt64) -> [SectorRange] {
        let one = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(sector), alignment: max(device.bufferAlignment, 4096))
        defer { one.deallocate() }
        var bad: [SectorRange] = []
        for lba in first..<(first + count) where !cancellation.isCancelled {
            let ok = (try? device.read(into: one, at: lba * sector)) == Int(sector)
            if !ok { bad.append(SectorRange(first: lba, count: 1)) }
        }
        return bad
    }

    static func microseconds(_ duration: Duration) -> UInt64 {
        UInt64(max(0, duration.components.seconds)) * 1_000_000 + UInt64(max(0, duration.components.attoseconds)) / 1_000_000_000_000
    }
}
