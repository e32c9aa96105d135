import Foundation
import LetheCore
import LethePhones
import LetheTesting
import LetheWipe
import Synchronization
import Testing

/// The free-space overwrite of an Android phone through the real adb server: keystream files
/// pushed through the sync service into the simulated phone's data partition, read back with
/// `dd` (or pulled), removed; and each fault the issue names: storage that fills sooner or
/// later than `df` says, a write error, dropped writes, a phone that refuses the shell, a
/// partition already full.
@Suite(.serialized) struct FreeSpaceTests {
    static let mebibyte: UInt64 = 1 << 20

    /// Small files and reserve, so that a few tens of MiB make several files.
    static func options(_ mode: FreeSpaceOverwriteMode = .sample) -> FreeSpaceFill.Options {
        var options = FreeSpaceFill.Options(mode: mode)
        options.reserveBytes = 16 * mebibyte
        options.fileBytes = 8 * mebibyte
        options.samples = 32
        return options
    }

    /// A Pixel 6 whose data partition has `free` bytes free, with `faults`.
    static func phone(free: UInt64, faults: SimulatedDataPartition.Faults = .init(), refuseShell: Bool = false) throws -> (ConnectedPhone, SimulatedDataPartition) {
        var script = try PhoneScripts.pixel6ReadyForReset(freeBytes: free)
        let partition = try #require(script.dataPartition)
        partition.setFaults { $0 = faults }
        script.refuseShell = refuseShell
        return (try ConnectedPhone(script: script), partition)
    }

    static func seedBytes(_ hex: String) -> [UInt8] {
        stride(from: 0, to: hex.count, by: 2).map { UInt8(hex.dropFirst($0).prefix(2), radix: 16)! }
    }

    @Test func theFillIsTheRecordedKeystreamReadBackAndRemoved() throws {
        guard PhoneTests.hasADB else { return print("skipped: adb is not installed (apt-get install adb)") }
        // Keep the first file as the phone stored it, to check it against the recorded seed.
        let firstFile = Mutex<[UInt8]?>(nil)
        var faults = SimulatedDataPartition.Faults()
        let holder = Mutex<SimulatedDataPartition?>(nil)
        faults.onStored = { _ in
            guard let partition = holder.withLock({ $0 }), firstFile.withLock({ $0 == nil }) else { return }
            if let bytes = partition.contents("/data/local/tmp/lethe-fill/fill-00001.bin") { firstFile.withLock { $0 = bytes } }
        }
        let (connected, partition) = try Self.phone(free: 100 * Self.mebibyte, faults: faults)
        holder.withLock { $0 = partition }
        defer { connected.stop() }
        var lines: [FreeSpaceFill.Progress] = []
        let outcome = FreeSpaceFill.run(connected.client, serial: connected.serial, options: Self.options()) { lines.append($0) }
        let record = try #require(outcome.record, "\(outcome)")
        #expect(outcome.succeeded && outcome.error == nil && record.result == "passed", "\(outcome)")
        // 100 MiB free less the 16 MiB reserve: ten 8 MiB files and one of 4 MiB.
        #expect(record.bytesWritten == 84 * Self.mebibyte && record.files == 11 && record.freeBytesBefore == 100 * Self.mebibyte, "\(record)")
        #expect(record.samples == 32 && record.bytesVerified == 32 * 64 * 1024 && record.mismatches == 0 && record.filesRemoved)
        #expect(partition.files.isEmpty && partition.freeBytes == 100 * Self.mebibyte, "the fill files must be gone: \(partition.files)")
        #expect(connected.phone.commands.contains("sync") && connected.phone.commands.filter { $0.hasPrefix("dd if=") }.count == 32)
        // The last region of the fill is always among the samples (the last written, the first lost).
        #expect(connected.phone.commands.contains("dd if=/data/local/tmp/lethe-fill/fill-00011.bin bs=65536 skip=63 count=1 2>/dev/null"))
        let stored = try #require(firstFile.withLock { $0 })
        var expected = [UInt8](repeating: 0, count: stored.count)
        expected.withUnsafeMutableBytes { Keystream(seed: Self.seedBytes(record.seed)).fill($0, offset: 0) }
        #expect(stored.count == 8 << 20 && stored == expected, "the phone must hold the keystream of the recorded seed")
        #expect(record.summary.contains("84.0 MiB written in 11 files on /data") && record.scope.contains("flash spare blocks"), "\(record.summary)")
        #expect(!lines.isEmpty || record.bytesPerSecond > 50 << 20, "progress once a second on a slow fill")
    }

    @Test func fullModeReadsEveryByteBack() throws {
        guard PhoneTests.hasADB else { return print("skipped: adb is not installed (apt-get install adb)") }
        let (connected, partition) = try Self.phone(free: 40 * Self.mebibyte)
        defer { connected.stop() }
        let outcome = FreeSpaceFill.run(connected.client, serial: connected.serial, options: Self.options(.full))
        let record = try #require(outcome.record)
        #expect(outcome.succeeded && record.mode == "full" && record.bytesWritten == 24 * Self.mebibyte && record.bytesVerified == record.bytesWritten, "\(record)")
        #expect(record.samples == 24 * 16 && record.mismatches == 0 && partition.files.isEmpty)
    }

    @Test func writesThePhoneDropsAreCaughtByTheSampleAndNothingIsReset() throws {
        guard PhoneTests.hasADB else { return print("skipped: adb is not installed (apt-get install adb)") }
        var faults = SimulatedDataPartition.Faults()
        faults.dropWrites = true
        let (connected, partition) = try Self.phone(free: 40 * Self.mebibyte, faults: faults)
        defer { connected.stop() }
        let outcome = FreeSpaceFill.run(connected.client, serial: connected.serial, options: Self.options())
        #expect(!outcome.succeeded && outcome.record?.result == "failed" && outcome.record?.mismatches == 32, "\(outcome)")
        #expect(outcome.error?.contains("did not keep what it acknowledged") == true && partition.files.isEmpty)
    }

    @Test func aPartitionThatFillsSoonerThanDfSaysStopsTheFillAtTheRefusedFile() throws {
        guard PhoneTests.hasADB else { return print("skipped: adb is not installed (apt-get install adb)") }
        // df says 30 MiB more than there is: the partition is full before the reserve is reached.
        var faults = SimulatedDataPartition.Faults()
        faults.reportedFreeSkew = 30 << 20
        let (connected, partition) = try Self.phone(free: 40 * Self.mebibyte, faults: faults)
        defer { connected.stop() }
        let outcome = FreeSpaceFill.run(connected.client, serial: connected.serial, options: Self.options())
        let record = try #require(outcome.record)
        #expect(outcome.succeeded && record.result == "passed" && record.bytesWritten == 40 * Self.mebibyte, "\(record)")
        #expect(record.notes.contains { $0.contains("ran out of space") && $0.contains("at file 6") }, "\(record.notes)")
        #expect(partition.files.isEmpty)
    }

    @Test func aPartitionThatFillsLaterThanDfSaysIsFollowedToTheReserve() throws {
        guard PhoneTests.hasADB else { return print("skipped: adb is not installed (apt-get install adb)") }
        // Android clears app caches when storage runs low: 20 MiB comes free mid-fill, and the
        // df reading after each file takes the fill into it, down to the reserve.
        var faults = SimulatedDataPartition.Faults()
        faults.releasesWhenLow = (30 << 20, 20 << 20)
        let (connected, partition) = try Self.phone(free: 60 * Self.mebibyte, faults: faults)
        defer { connected.stop() }
        let outcome = FreeSpaceFill.run(connected.client, serial: connected.serial, options: Self.options())
        let record = try #require(outcome.record)
        #expect(outcome.succeeded && record.freeBytesBefore == 60 * Self.mebibyte && record.bytesWritten == 64 * Self.mebibyte, "\(record)")
        #expect(partition.files.isEmpty && partition.freeBytes == 80 * Self.mebibyte)
        // df that reports less than there is, all along: the fill never writes into what df
        // calls the reserve, so it stops at df's figure (24 MiB of the real 44).
        let (again, partitionAgain) = try Self.phone(free: 60 * Self.mebibyte)
        defer { again.stop() }
        partitionAgain.setFaults { $0.reportedFreeSkew = -(20 << 20) }
        let second = try #require(FreeSpaceFill.run(again.client, serial: again.serial, options: Self.options()).record)
        #expect(second.freeBytesBefore == 40 * Self.mebibyte && second.bytesWritten == 24 * Self.mebibyte, "\(second)")
    }

    @Test func aWriteErrorStopsTheFillRemovesItsFilesAndSaysWhy() throws {
        guard PhoneTests.hasADB else { return print("skipped: adb is not installed (apt-get install adb)") }
        var faults = SimulatedDataPartition.Faults()
        faults.failWritesAfter = 20 << 20
        let (connected, partition) = try Self.phone(free: 100 * Self.mebibyte, faults: faults)
        defer { connected.stop() }
        let outcome = FreeSpaceFill.run(connected.client, serial: connected.serial, options: Self.options())
        #expect(!outcome.succeeded && !outcome.vanished && outcome.record?.result == "failed", "\(outcome)")
        #expect(outcome.error?.contains("I/O error") == true && outcome.error?.contains("fill-00003.bin") == true, "\(outcome.error ?? "")")
        #expect(outcome.record?.bytesWritten == 16 * Self.mebibyte && outcome.record?.filesRemoved == true && partition.files.isEmpty)
    }

    @Test func aPhoneThatRefusesTheShellGetsNothingWritten() throws {
        guard PhoneTests.hasADB else { return print("skipped: adb is not installed (apt-get install adb)") }
        let (connected, partition) = try Self.phone(free: 100 * Self.mebibyte, refuseShell: true)
        defer { connected.stop() }
        let outcome = FreeSpaceFill.run(connected.client, serial: connected.serial, options: Self.options())
        #expect(!outcome.succeeded && outcome.record == nil && outcome.error?.contains("could not start") == true, "\(outcome)")
        #expect(partition.files.isEmpty && partition.freeBytes == 100 * Self.mebibyte)
    }

    @Test func aPartitionAlreadyFullIsSkippedAndSaysSo() throws {
        guard PhoneTests.hasADB else { return print("skipped: adb is not installed (apt-get install adb)") }
        let (connected, partition) = try Self.phone(free: 10 * Self.mebibyte)
        defer { connected.stop() }
        let outcome = FreeSpaceFill.run(connected.client, serial: connected.serial, options: Self.options())
        let record = try #require(outcome.record)
        #expect(outcome.succeeded && record.result == "skipped" && record.bytesWritten == 0 && record.files == 0, "\(record)")
        #expect(record.summary.contains("not done: only 10.0 MiB of /data was free, not more than the 16.0 MiB left for Android"), "\(record.summary)")
        #expect(partition.files.isEmpty && !connected.phone.commands.contains("sync"))
    }
}
