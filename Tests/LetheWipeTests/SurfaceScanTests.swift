import LetheCore
import LetheTesting
import LetheWipe
import Testing

/// The surface scan on the in-memory device with injected unreadable sectors.
@Suite struct SurfaceScanTests {
    @Test func fullScanNamesEveryUnreadableSectorAndFails() {
        let device = MemoryBlockDevice(sizeBytes: 8 << 20)
        device.configure { $0.badSectors = [100, 101, 9000] }
        let report = SurfaceScanner(device: device, options: SurfaceScanOptions(mode: .full)).run()
        #expect(report.bytesRead == 8 << 20 && report.coverageBasisPoints == 10000)
        #expect(report.unreadable == [SectorRange(first: 100, count: 2), SectorRange(first: 9000, count: 1)])
        #expect(report.verdict == .fail && report.findings.first == "3 unreadable sectors: LBA 100-101, LBA 9000")
        #expect(report.latencyMicroseconds["p50"] != nil && report.reads == 8)
    }

    @Test func aCleanDevicePassesAndSlowReadsWarn() {
        let device = MemoryBlockDevice(sizeBytes: 4 << 20)
        let clean = SurfaceScanner(device: device, options: SurfaceScanOptions(mode: .full)).run()
        #expect(clean.verdict == .pass && clean.unreadable.isEmpty && clean.slowReads == 0)
        // With a threshold no read can beat, every read is slow: warn, slowest first.
        var options = SurfaceScanOptions(mode: .full)
        options.thresholds.slowMilliseconds = 0
        let slow = SurfaceScanner(device: device, options: options).run()
        #expect(slow.verdict == .warn && slow.slowReads == 4 && slow.slowRegions.count == 4)
        #expect(zip(slow.slowRegions, slow.slowRegions.dropFirst()).allSatisfy { $0.milliseconds >= $1.milliseconds })
    }

    @Test func sampleReadsAtLeastTenPercentIncludingTheEnds() {
        let device = MemoryBlockDevice(sizeBytes: 64 << 20)
        let last = UInt64(64 << 20) / 512 - 1
        device.configure { $0.badSectors = [0, last] }
        let report = SurfaceScanner(device: device, options: SurfaceScanOptions(mode: .sample)).run()
        #expect(report.mode == "sample" && report.coverageBasisPoints >= 1000 && report.coverageBasisPoints < 10000)
        #expect(report.reads >= 1000)
        #expect(report.unreadable == [SectorRange(first: 0, count: 1), SectorRange(first: last, count: 1)], "the first and last sectors are always read")
    }
}

/// The scan judged by a profile's thresholds, and stopped early by an abort or an unplug.
@Suite struct SurfaceScanLimitTests {
    @Test func profileThresholdsDecideBetweenWarnAndFail() {
        let device = MemoryBlockDevice(sizeBytes: 4 << 20)
        device.configure { $0.badSectors = [10, 11, 12] }
        var limits = SurfaceThresholds()
        limits.unreadableSectorsFail = 4
        let tolerated = SurfaceScanner(device: device, options: SurfaceScanOptions(mode: .full, thresholds: limits)).run()
        #expect(tolerated.verdict == .warn && tolerated.unreadableSectors == 3 && tolerated.thresholds == limits)
        limits.unreadableSectorsFail = 3
        let failed = SurfaceScanner(device: device, options: SurfaceScanOptions(mode: .full, thresholds: limits)).run()
        #expect(failed.verdict == .fail)
        // Slow reads fail only when the profile gives slowReadsFail.
        device.configure { $0.badSectors = [] }
        var slow = SurfaceThresholds()
        slow.slowMilliseconds = 1
        let judged = slow.judge(slowReads: 50, slowest: .init(offset: 0, length: 4096, milliseconds: 9), unreadable: [])
        #expect(judged.verdict == .warn && judged.findings == ["50 reads slower than 1 ms (slowest 9 ms at byte 0)"])
        slow.slowReadsFail = 50
        #expect(slow.judge(slowReads: 50, slowest: nil, unreadable: []).verdict == .fail)
        #expect(slow.judge(slowReads: 0, slowest: nil, unreadable: []) == (.pass, ["every read succeeded, none slower than 1 ms"]))
    }

    @Test func anAbortStopsTheScanAndACleanPartialScanProvesNothing() {
        let device = MemoryBlockDevice(sizeBytes: 8 << 20)
        let cancellation = WipeCancellation()
        let report = SurfaceScanner(device: device, options: SurfaceScanOptions(mode: .full), cancellation: cancellation).run { done, _ in
            if done >= 2 << 20 { cancellation.cancel(reason: 15) }
        }
        #expect(report.bytesRead == 2 << 20 && report.reads == 2)
        #expect(report.verdict == .unknown && report.stopped == "cancelled after 2097152 of 8388608 bytes")
        #expect(report.findings.first == "scan stopped: cancelled after 2097152 of 8388608 bytes")
    }

    @Test func anUnplugStopsTheScanInsteadOfNarrowingEverySector() {
        let device = MemoryBlockDevice(sizeBytes: 8 << 20)
        device.configure { $0.badSectors = [5] }
        let report = SurfaceScanner(device: device, options: SurfaceScanOptions(mode: .full)).run { done, _ in
            if done >= 3 << 20 { device.unplug() }
        }
        // What was found before the unplug stays; nothing after it is called unreadable.
        #expect(report.unreadable == [SectorRange(first: 5, count: 1)] && report.verdict == .fail)
        #expect(report.bytesRead == 3 << 20 && report.stopped == "the device went away at byte 3145728 (ENODEV)")
        #expect(device.failedRequestCount == 3, "the chunk, its narrowing, and one read after the unplug, not one per sector")
    }
}
