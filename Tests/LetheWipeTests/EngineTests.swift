import LetheCore
import LetheTesting
import LetheWipe
import Testing

private let mib = 1 << 20

private func engine(
    _ device: MemoryBlockDevice, _ method: String, verify: VerificationMode? = nil, blockSize: Int = 256 << 10,
    queueDepth: Int = 4
) throws -> WipeEngine {
    let options = WipeOptions(
        method: WipeMethod.named(method)!, verification: verify, blockSize: blockSize, queueDepth: queueDepth,
        progressInterval: 0.01)
    return try WipeEngine(device: device, options: options)
}

@Suite struct WipeEngineTests {
    @Test func zeroPassLeavesOnlyZerosAndFlushes() throws {
        let device = MemoryBlockDevice(sizeBytes: 8 * mib)
        let outcome = try engine(device, "zero").run()
        #expect(outcome.status == .erased)
        #expect(outcome.bytesWritten == UInt64(8 * mib))
        #expect(outcome.verification.result == .passed)
        #expect(outcome.verification.bytesVerified == UInt64(8 * mib))
        #expect(device.contents.allSatisfy { $0 == 0 })
        #expect(device.flushCount >= 1)
    }

    @Test func randomPassIsVerifiedByRegeneratingTheStream() throws {
        let device = MemoryBlockDevice(sizeBytes: 4 * mib, fill: 0x5A)
        let outcome = try engine(device, "random", verify: .all).run()
        #expect(outcome.status == .erased)
        #expect(outcome.passes.first?.verification == .passed)
        let contents = device.contents
        // The old content is gone and the new content looks random (every byte value appears).
        #expect(contents.filter { $0 == 0x5A }.count < contents.count / 100)
        #expect(Set(contents).count == 256)
    }

    @Test func keystreamIsAddressableByOffset() {
        let seed = (0..<32).map { UInt8($0) }
        let whole = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 16)
        let parts = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 16)
        defer { whole.deallocate(); parts.deallocate() }
        let filler = PatternFiller(.random(seed: seed))
        filler.fill(whole, offset: 1 << 30)
        filler.fill(UnsafeMutableRawBufferPointer(rebasing: parts[4096...]), offset: (1 << 30) + 4096)
        filler.fill(UnsafeMutableRawBufferPointer(rebasing: parts[..<4096]), offset: 1 << 30)
        #expect(Array(whole) == Array(parts))
        PatternFiller(.random(seed: seed.reversed())).fill(parts, offset: 1 << 30)
        #expect(Array(whole) != Array(parts))
    }

    @Test func multiBytePatternsKeepTheirPhaseAcrossBlocks() throws {
        // 3-byte patterns over blocks that are not multiples of 3.
        let device = MemoryBlockDevice(sizeBytes: 2 * mib)
        let method = WipeMethod(name: "t", title: "t", passes: [.bytes([0x92, 0x49, 0x24])], defaultVerification: .last, reference: "test")
        let outcome = try WipeEngine(device: device, options: WipeOptions(method: method, blockSize: 64 << 10, queueDepth: 3)).run()
        #expect(outcome.status == .erased)
        let contents = device.contents
        #expect(contents.indices.allSatisfy { contents[$0] == [0x92, 0x49, 0x24][$0 % 3] })
    }

    @Test func everyPassOfAMultiPassMethodRunsAndIsVerifiedWithAll() throws {
        let device = MemoryBlockDevice(sizeBytes: 1 * mib)
        let outcome = try engine(device, "dod-7", verify: .all).run()
        #expect(outcome.status == .erased)
        #expect(outcome.passes.count == 7)
        #expect(outcome.passes.allSatisfy { $0.completed && $0.verification == .passed })
        #expect(outcome.verification.bytesVerified == UInt64(7 * mib))
        // The last pass of dod-7 is a single random byte repeated.
        let contents = device.contents
        #expect(contents.allSatisfy { $0 == contents[0] })
    }

    @Test func badSectorsAreNarrowedDownListedAndTheRestIsErased() throws {
        let bad: Set<UInt64> = [1000, 1001, 5000, 16383]
        var faults = MemoryBlockDevice.Faults()
        faults.badSectors = bad
        let device = MemoryBlockDevice(sizeBytes: 8 * mib, faults: faults)
        let outcome = try engine(device, "zero").run()
        #expect(outcome.status == .erasedWithExceptions)
        #expect(outcome.badSectors == [SectorRange(first: 1000, count: 2), SectorRange(first: 5000, count: 1), SectorRange(first: 16383, count: 1)])
        #expect(outcome.verification.result == .passed)
        #expect(outcome.bytesWritten == UInt64(8 * mib - 4 * 512))
        let contents = device.contents
        for sector in 0..<(8 * mib / 512) where !bad.contains(UInt64(sector)) {
            let range = (sector * 512)..<((sector + 1) * 512)
            #expect(contents[range].allSatisfy { $0 == 0 }, "sector \(sector)")
            if contents[range].contains(where: { $0 != 0 }) { break }
        }
        // Later passes skip known-bad sectors instead of hammering them again.
        let failuresAfterOnePass = device.failedRequestCount
        let second = try engine(device, "dod-3").run()
        #expect(second.status == .erasedWithExceptions)
        #expect(device.failedRequestCount - failuresAfterOnePass < failuresAfterOnePass * 2)
    }

    @Test func shortWritesAreContinued() throws {
        var faults = MemoryBlockDevice.Faults()
        faults.shortWriteEvery = 3
        let device = MemoryBlockDevice(sizeBytes: 4 * mib, faults: faults)
        let outcome = try engine(device, "one").run()
        #expect(outcome.status == .erased)
        #expect(device.contents.allSatisfy { $0 == 0xFF })
        #expect(device.writeCount > 4 * mib / (256 << 10))
    }

    @Test func aVanishedDeviceIsNotErasedAndSaysSo() throws {
        var faults = MemoryBlockDevice.Faults()
        faults.vanishAfterBytesWritten = UInt64(2 * mib)
        let device = MemoryBlockDevice(sizeBytes: 8 * mib, faults: faults)
        let outcome = try engine(device, "dod-3").run()
        #expect(outcome.status == .notErased)
        #expect(outcome.error?.contains("vanished") == true)
        #expect(outcome.error?.contains("ENODEV") == true)
        #expect(outcome.passes.count == 1 && !outcome.passes[0].completed)
        #expect(outcome.verification.result == .notRun)
    }

    @Test func writesThatDoNotStickFailVerification() throws {
        var faults = MemoryBlockDevice.Faults()
        faults.droppedWrites = [4097]
        let device = MemoryBlockDevice(sizeBytes: 4 * mib, fill: 0x33, faults: faults)
        let outcome = try engine(device, "zero").run()
        #expect(outcome.status == .notErased)
        #expect(outcome.verification.result == .failed)
        #expect(outcome.verification.mismatchedSectors == 1)
        #expect(outcome.verification.firstMismatches.first == Mismatch(offset: 4097 * 512, expected: 0, found: 0x33))
        #expect(outcome.error?.contains("verification") == true)
    }

    @Test func cancellationStopsAtABlockBoundaryAndReportsAborted() throws {
        let device = MemoryBlockDevice(sizeBytes: 16 * mib)
        let job = try engine(device, "gutmann", queueDepth: 2)
        device.configure { $0.onWrite = { count in if count == 10 { job.cancellation.cancel(reason: 2) } } }
        let outcome = job.run()
        #expect(outcome.status == .aborted)
        #expect(outcome.bytesWritten > 0 && outcome.bytesWritten < UInt64(16 * mib))
        #expect(outcome.bytesWritten % UInt64(256 << 10) == 0)
        #expect(outcome.error == "aborted by SIGINT")
        #expect(device.flushCount >= 1)
    }

    @Test func sampleVerificationReadsAtLeastTenPercentInAThousandSubsections() throws {
        let device = MemoryBlockDevice(sizeBytes: 8 * mib)
        let outcome = try engine(device, "random", verify: .sample).run()
        #expect(outcome.status == .erased)
        #expect(outcome.verification.sampleSubsections! >= 1000)
        #expect(outcome.verification.coverage >= 0.10)
        #expect(outcome.verification.bytesVerified >= UInt64(8 * mib / 10))
        #expect(outcome.verification.bytesVerified < UInt64(8 * mib / 2))
    }

    @Test func sampleVerificationCatchesCorruptionInASampledSector() throws {
        let device = MemoryBlockDevice(sizeBytes: 8 * mib)
        let job = try WipeEngine(device: device, options: WipeOptions(method: WipeMethod.named("zero")!, verification: .off))
        #expect(job.run().status == .erased)
        // Sector 0 is always sampled.
        device.poke([0x01], at: 100)
        let plan = SamplePlan(totalSectors: UInt64(8 * mib / 512), seed: 9)
        #expect(plan.ranges.first?.first == 0)
        let check = try WipeEngine(device: device, options: WipeOptions(method: WipeMethod.named("zero")!, verification: .sample, sampleSeed: 9))
            .check(expecting: .bytes([0]))
        #expect(check.record.result == .failed)
        #expect(check.record.firstMismatches == [Mismatch(offset: 100, expected: 0, found: 1)])
    }

    @Test func aFailedFlushIsRetriedOnce() throws {
        var faults = MemoryBlockDevice.Faults()
        faults.failFlushes = 1
        let device = MemoryBlockDevice(sizeBytes: 1 * mib, faults: faults)
        #expect(try engine(device, "zero").run().status == .erased)
        device.configure { $0.failFlushes = 2 }
        let outcome = try engine(device, "zero").run()
        #expect(outcome.status == .notErased)
        #expect(outcome.error?.contains("flush") == true)
    }

    @Test func progressIsReportedAndEndsComplete() throws {
        let device = MemoryBlockDevice(sizeBytes: 8 * mib)
        let job = try engine(device, "dod-3", blockSize: 64 << 10, queueDepth: 1)
        var snapshots: [WipeProgress] = []
        _ = job.run { snapshots.append($0) }
        #expect(!snapshots.isEmpty)
        #expect(snapshots.allSatisfy { $0.bytesTotal == UInt64(4 * 8 * mib) && $0.passCount == 3 })
        #expect(zip(snapshots, snapshots.dropFirst()).allSatisfy { $0.bytesDone <= $1.bytesDone })
    }

    @Test func badShapesAreRefusedWithTheDeviceNamed() {
        #expect(throws: LetheError.self) { try engine(MemoryBlockDevice(path: "tiny", sizeBytes: 2048), "zero") }
        do {
            _ = try engine(MemoryBlockDevice(path: "tiny", sizeBytes: 2048), "zero")
        } catch let error as LetheError {
            #expect(error.code == .deviceTooSmall)
            #expect(error.description.hasPrefix("tiny: device is too small"))
        } catch { Issue.record("unexpected \(error)") }
        do {
            _ = try engine(MemoryBlockDevice(path: "odd", sizeBytes: 1 * mib), "zero", blockSize: 5000)
        } catch let error as LetheError {
            #expect(error.code == .unalignedSize)
        } catch { Issue.record("unexpected \(error)") }
    }
}
