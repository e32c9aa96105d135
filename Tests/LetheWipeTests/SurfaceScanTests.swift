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
        options.slowMilliseconds = 0
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
