import Crypto
import CryptoExtras
import Foundation
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

    /// The stream is the one the engine wrote before it moved to libcrypto (swift-crypto's
    /// AES-CTR): a pass written by an older Lethe verifies with this one. Offsets include the
    /// carry out of the counter's low 32 bits (2^32 blocks: byte 64 GiB) and the top of the
    /// offset range; lengths include ones that are not whole AES blocks.
    @Test(arguments: [UInt64(0), UInt64(4096), UInt64(1 << 36) - 32, UInt64(1 << 36) - 4096, UInt64(0x7FFF_FFFF_FFFF_F000)])
    func keystreamIsAES128CTRAsSwiftCryptoComputesIt(offset: UInt64) throws {
        let seed = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        for length in [16, 4096, 65_536 + 4096, 100] {
            let mine = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 16)
            defer { mine.deallocate() }
            Keystream(seed: seed).fill(mine, offset: offset)
            var nonce = Array(seed[16..<24])
            withUnsafeBytes(of: (offset / 16).bigEndian) { nonce.append(contentsOf: $0) }
            let reference = try AES._CTR.encrypt(
                [UInt8](repeating: 0, count: length), using: SymmetricKey(data: seed[0..<16]), nonce: try AES._CTR.Nonce(nonceBytes: nonce))
            #expect(Array(mine) == Array(reference), "offset \(offset), \(length) bytes")
        }
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

/// Checkpoints and resume: an interrupted erase picks up where its flushed writes end, with the
/// same seeds, and the finished erase verifies as if it had never stopped.
@Suite struct ResumeTests {
    /// Every write takes a little while, so a pass spans several checkpoints.
    static func slowDevice(fill: UInt8 = 0x5A) -> MemoryBlockDevice {
        let device = MemoryBlockDevice(sizeBytes: 16 * mib, fill: fill)
        return device
    }

    static func options(_ method: String, verify: VerificationMode) -> WipeOptions {
        var options = WipeOptions(
            method: WipeMethod.named(method)!, verification: verify, blockSize: 256 << 10, queueDepth: 2, progressInterval: 0.01)
        options.checkpointInterval = 0.01
        return options
    }

    @Test func anInterruptedPassResumesFromItsLastFlushedCheckpointAndCertifies() throws {
        let device = Self.slowDevice()
        let first = try WipeEngine(device: device, options: Self.options("dod-3", verify: .all))
        // 64 writes per pass: stop in the middle of pass 2 (0xFF).
        device.configure {
            $0.onWrite = { count in
                usleep(2_000)
                if count == 64 + 40 { first.cancellation.cancel(reason: 19) }
            }
        }
        var saved: [WipeCheckpoint] = []
        let stopped = first.run(checkpoint: { saved.append($0) })
        #expect(stopped.status == .aborted)
        #expect(stopped.error == "the device was unplugged")
        let point = try #require(saved.last)
        #expect(saved.first?.pass == 1 && saved.first?.offset == 0, "the seeds are saved before the first write")
        #expect(saved.contains { $0.pass == 1 && $0.phase == .write && $0.offset > 0 && $0.offset < UInt64(16 * mib) }, "checkpoints within a pass")
        #expect(point.pass == 2 && point.phase == .write)
        #expect(point.offset > 0 && point.offset < UInt64(16 * mib))
        #expect(point.passes.count == 1 && point.passes[0].verification == .passed)
        // Everything the checkpoint says is written holds pass 2's pattern.
        let contents = device.contents
        #expect(contents[0..<Int(point.offset)].allSatisfy { $0 == 0xFF })
        // The checkpoint survives a round trip through JSON (how the daemon stores it).
        let stored = try JSONDecoder().decode(WipeCheckpoint.self, from: try JSONEncoder().encode(point))
        #expect(stored == point)

        device.configure { $0.onWrite = nil }
        let writesBefore = device.writeCount
        let resumed = try WipeEngine(device: device, options: Self.options("dod-3", verify: .all), resumingFrom: stored).run()
        #expect(resumed.status == .erased)
        #expect(resumed.verification.result == .passed)
        #expect(resumed.passes.map(\.index) == [1, 2, 3])
        #expect(resumed.passes.allSatisfy { $0.completed && $0.verification == .passed })
        #expect(resumed.passes[1].resumedAt == point.offset)
        #expect(resumed.passes[1].bytesWritten == UInt64(16 * mib))
        #expect(resumed.bytesWritten == UInt64(3 * 16 * mib))
        // Pass 2 was written only above the checkpoint: (16 MiB - offset) + pass 3.
        let resumedWrites = device.writeCount - writesBefore
        #expect(resumedWrites == (16 * mib - Int(point.offset)) / (256 << 10) + 64)
        // Pass 3 is the random stream of the recorded seed: a fresh check of it passes.
        guard case .random = point.patterns[2] else { Issue.record("pass 3 should be random"); return }
        let check = try WipeEngine(device: device, options: Self.options("dod-3", verify: .all)).check(expecting: point.patterns[2])
        #expect(check.record.result == .passed)
    }

    @Test func aCheckpointThatClaimsMoreThanWasWrittenFailsVerification() throws {
        // A lying checkpoint (or writes lost in a power cut) must not be certified.
        let device = MemoryBlockDevice(sizeBytes: 8 * mib, fill: 0x77)
        let options = Self.options("zero", verify: .last)
        let point = WipeCheckpoint(
            method: "zero", sizeBytes: UInt64(8 * mib), patterns: [.bytes([0])], pass: 1, phase: .write, offset: UInt64(4 * mib),
            passes: [], verification: VerificationRecord(mode: .last, result: .notRun), badSectors: [], writeSeconds: 1)
        let outcome = try WipeEngine(device: device, options: options, resumingFrom: point).run()
        #expect(outcome.status == .notErased)
        #expect(outcome.verification.result == .failed)
        #expect(outcome.verification.firstMismatches.first?.offset == 0)
    }

    @Test func aResumeWithAnotherMethodOrSizeIsRefused() throws {
        let device = MemoryBlockDevice(sizeBytes: 8 * mib)
        let point = WipeCheckpoint(
            method: "dod-3", sizeBytes: UInt64(16 * mib), patterns: [.bytes([0]), .bytes([0xFF]), .random(seed: Array(repeating: 1, count: 32))],
            pass: 2, phase: .write, offset: 0, passes: [], verification: VerificationRecord(mode: .all, result: .notRun),
            badSectors: [], writeSeconds: 0)
        #expect(throws: LetheError.self) { try WipeEngine(device: device, options: Self.options("zero", verify: .last), resumingFrom: point) }
        do {
            _ = try WipeEngine(device: device, options: Self.options("dod-3", verify: .all), resumingFrom: point)
            Issue.record("a checkpoint for another size was accepted")
        } catch {
            #expect(error.description.contains("16777216"))
        }
    }

    @Test func aResumeDuringVerificationRereadsWithoutRewriting() throws {
        let device = MemoryBlockDevice(sizeBytes: 8 * mib, fill: 0)
        let point = WipeCheckpoint(
            method: "zero", sizeBytes: UInt64(8 * mib), patterns: [.bytes([0])], pass: 1, phase: .verify, offset: 0,
            passes: [PassRecord(index: 1, pattern: "0x00", bytesWritten: UInt64(8 * mib), completed: true, seconds: 1)],
            verification: VerificationRecord(mode: .last, result: .notRun), badSectors: [], writeSeconds: 1)
        let outcome = try WipeEngine(device: device, options: Self.options("zero", verify: .last), resumingFrom: point).run()
        #expect(outcome.status == .erased)
        #expect(device.writeCount == 0)
        #expect(outcome.verification.bytesVerified == UInt64(8 * mib))
    }
}
