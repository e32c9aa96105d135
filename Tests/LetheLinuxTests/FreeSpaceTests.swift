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

    @Test func anEarlierFillsLeftoversAreRemovedFirstAndCountAsFree() throws {
        guard PhoneTests.hasADB else { return print("skipped: adb is not installed (apt-get install adb)") }
        let (connected, partition) = try Self.phone(free: 100 * Self.mebibyte)
        defer { connected.stop() }
        // What an unplugged fill left: 8 MiB in the fill folder.
        try connected.client.push(serial: connected.serial, path: "/data/local/tmp/lethe-fill/fill-00001.bin", size: 8 * Self.mebibyte, produce: { _, _ in }, sent: { _ in true })
        #expect(partition.freeBytes == 92 * Self.mebibyte)
        let outcome = FreeSpaceFill.run(connected.client, serial: connected.serial, options: Self.options())
        let record = try #require(outcome.record)
        #expect(outcome.succeeded && record.freeBytesBefore == 100 * Self.mebibyte && record.bytesWritten == 84 * Self.mebibyte, "\(record)")
        #expect(partition.files.isEmpty)
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

/// The daemon with the shipped profiles in a fresh state folder (key and a technician's
/// token), following a private adb server; its jobs for one phone through the API.
final class PhoneDaemon {
    let state: String
    let tech: String
    let base: String
    let daemon: LineWatcher

    init(harness: ADBHarness) throws {
        state = NSTemporaryDirectory() + "lethe-phoned-\(UUID().uuidString)"
        #expect(try Host.lethe("keys", "init", "--state-dir", state).status == 0)
        tech = try Host.lethe("tokens", "add", "bench", "--role", "technician", "--state-dir", state).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let port = Host.freePort()
        base = "http://127.0.0.1:\(port)"
        daemon = try LineWatcher(Host.lethe, [
            "daemon", "--state-dir", state, "--profiles", repo.appendingPathComponent("profiles").path, "--listen", "127.0.0.1:\(port)",
            "--adb-port", String(harness.port), "--phone-wait-seconds", "30",
        ])
    }

    /// The jobs of the phone at adb serial `serial`.
    func jobs(_ serial: String) -> [[String: Any]] {
        ((DaemonTests.http("GET", "\(base)/api/v1/jobs", token: tech)?.json as? [[String: Any]]) ?? []).filter { $0["device"] as? String == "adb:\(serial)" }
    }

    /// Stops the daemon (idempotent) and checks its audit chain.
    func stopAndVerifyAudit() throws {
        daemon.stop()
        #expect(try Host.lethe("audit", "verify", "--state-dir", state).status == 0)
    }

    deinit {
        daemon.stop()
        try? FileManager.default.removeItem(atPath: state)
    }
}

/// Through the daemon: the shipped android profile overwrites free space before the reset,
/// and an unplug mid-fill ends the job interrupted, with a signed record but no certificate;
/// when the phone docks again its fill files are removed before anything else is sent to it.
@Suite(.serialized) struct FreeSpaceDaemonTests {
    @Test func anUnplugMidFillLeavesNoFillFilesAndNoCertificate() throws {
        guard PhoneTests.hasADB, Host.canLoop else { return print("skipped: needs adb and root (the daemon's device watcher)") }
        // 360 MiB free: with the 64 MiB reserve, a 256 MiB file and a 40 MiB one. The cable is
        // pulled 8 MiB into the second.
        let (connected, partition) = try FreeSpaceTests.phone(free: 360 << 20)
        defer { connected.stop() }
        let (harness, phone, serial) = (connected.harness, connected.phone, connected.serial)
        let commandsAtUnplug = Mutex<Int?>(nil)
        partition.setFaults { faults in
            faults.onStored = { stored in
                // About 2 s for the first file, so that the bay card shows the fill's progress.
                if stored < 256 << 20 { usleep(500) }
                guard stored >= 264 << 20, commandsAtUnplug.withLock({ $0 == nil }) else { return }
                commandsAtUnplug.withLock { $0 = phone.commands.count }
                DispatchQueue.global().async { phone.vanish() }
            }
        }
        let bench = try PhoneDaemon(harness: harness)
        let (base, tech, daemon) = (bench.base, bench.tech, bench.daemon)
        func jobs() -> [[String: Any]] { bench.jobs(serial) }
        let waiting = try #require(DaemonTests.poll(30) { jobs().first { $0["state"] as? String == "waiting" } }, "no job for the phone: \(daemon.stderr)")
        let id = try #require(waiting["id"] as? String)
        #expect(DaemonTests.http("POST", "\(base)/api/v1/jobs/\(id)/start", token: tech)?.status == 202)
        // Progress on the job (and the bay card): bytes, rate and time left.
        let filling = DaemonTests.poll(30) { jobs().first { $0["id"] as? String == id && ($0["message"] as? String ?? "").hasPrefix("overwriting free space: ") } }
        #expect(filling?["step"] as? String == "write" && (filling?["bytesPerSecond"] as? Double ?? 0) > 0 && filling?["etaSeconds"] != nil, "\(String(describing: filling))")
        #expect((filling?["message"] as? String ?? "").contains(" of 296.0 MiB, "), "\(String(describing: filling))")
        let ended = try #require(DaemonTests.poll(60) { jobs().first { $0["id"] as? String == id && $0["step"] as? String == "done" } }, "\(daemon.stderr)")
        #expect(ended["state"] as? String == "interrupted" && ended["certified"] as? Bool == false, "\(ended)")
        #expect((ended["error"] as? String ?? "").contains("the phone went away") && (ended["error"] as? String ?? "").contains("the phone was not reset"), "\(ended)")
        #expect(!phone.commands.contains("recovery --wipe_data"), "never reset after a broken fill")
        // The first file is still on the phone; the record is signed and is not a certificate.
        #expect(partition.files.keys.sorted() == ["/data/local/tmp/lethe-fill/fill-00001.bin"], "\(partition.files)")
        let recordId = try #require(ended["reportId"] as? String)
        let record = (DaemonTests.http("GET", "\(base)/api/v1/reports/\(recordId)")?.json as? [String: Any])?["report"] as? [String: Any]
        let fill = (record?["sanitization"] as? [String: Any])?["freeSpaceOverwrite"] as? [String: Any]
        #expect(record?["certified"] as? Bool == false && fill?["result"] as? String == "failed" && fill?["bytesWritten"] as? Int == 256 << 20, "\(String(describing: record))")
        let reports = DaemonTests.http("GET", "\(base)/api/v1/reports?serial=TESTP6SERIAL01", token: tech)?.json as? [[String: Any]] ?? []
        // The record of the wipe and the refurb report: neither is certified.
        #expect(reports.count == 2 && reports.allSatisfy { ($0["certified"] as? Int) == 0 }, "\(reports)")

        // Docked again: the leftovers go first.
        let before = try #require(commandsAtUnplug.withLock { $0 })
        phone.replug()
        let replug = Replugger(harness, serial: serial)
        defer { replug.stop() }
        #expect(DaemonTests.poll(30) { partition.files.isEmpty ? true : nil } == true, "\(partition.files) \(daemon.stderr)")
        let after = Array(phone.commands.dropFirst(before))
        #expect(after.first == "ls /data/local/tmp/lethe-fill", "the first command after the dock: \(after.prefix(4))")
        #expect(daemon.waitForStderr("removed 1 fill files", timeout: 10), "\(daemon.stderr)")
        let nextJob = DaemonTests.poll(30) { jobs().first { $0["state"] as? String == "waiting" } }
        #expect(nextJob != nil, "the re-docked phone waits for the technician again")
        replug.stop()
        try bench.stopAndVerifyAudit()
        let audit = try Host.run("sqlite3", ["\(bench.state)/lethe.sqlite", "SELECT kind FROM audit WHERE kind = 'phone.fill-removed'"]).stdout
        #expect(audit.contains("phone.fill-removed"), "\(audit)")
    }

    @Test func anAbortMidFillStopsItRemovesTheFillAndResetsNothing() throws {
        guard PhoneTests.hasADB, Host.canLoop else { return print("skipped: needs adb and root (the daemon's device watcher)") }
        let (connected, partition) = try FreeSpaceTests.phone(free: 360 << 20)
        defer { connected.stop() }
        let (harness, phone, serial) = (connected.harness, connected.phone, connected.serial)
        // About 1 ms a chunk: a fill of some 5 s, long enough to abort.
        partition.setFaults { $0.onStored = { _ in usleep(1000) } }
        let bench = try PhoneDaemon(harness: harness)
        let (base, tech, daemon) = (bench.base, bench.tech, bench.daemon)
        func job(_ id: String? = nil) -> [String: Any]? { bench.jobs(serial).first { id == nil || $0["id"] as? String == id } }
        let id = try #require(DaemonTests.poll(30) { job().flatMap { $0["state"] as? String == "waiting" ? $0["id"] as? String : nil } }, "\(daemon.stderr)")
        #expect(DaemonTests.http("POST", "\(base)/api/v1/jobs/\(id)/start", token: tech)?.status == 202)
        #expect(DaemonTests.poll(30) { (job(id)?["message"] as? String ?? "").hasPrefix("overwriting free space: ") ? true : nil } == true, "\(daemon.stderr)")
        #expect(DaemonTests.http("POST", "\(base)/api/v1/jobs/\(id)/abort", token: tech)?.status == 202)
        #expect(DaemonTests.poll(30) { daemon.stderr.contains("free-space overwrite stopped") ? true : nil } == true, "\(daemon.stderr)")
        #expect(DaemonTests.poll(10) { partition.files.isEmpty ? true : nil } == true, "\(partition.files)")
        // The record is written after the log line: wait for the job's end.
        let ended = try #require(DaemonTests.poll(10) { job(id).flatMap { $0["reportId"] != nil ? $0 : nil } }, "\(String(describing: job(id)))")
        #expect(ended["state"] as? String == "aborted" && ended["certified"] as? Bool != true, "\(ended)")
        #expect(!phone.commands.contains("recovery --wipe_data"), "an aborted fill never goes on to the reset")
        try bench.stopAndVerifyAudit()
    }
}
