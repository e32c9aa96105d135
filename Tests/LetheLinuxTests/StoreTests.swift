import Foundation
import LetheStore
import Testing

/// The store under `lethe wipe --report-dir`: jobs and reports recorded with an audit chain
/// that `lethe audit verify` checks; editing or deleting a row in SQLite is caught; a job
/// whose process was killed with -9 is marked interrupted and has no certificate.
@Suite struct StoreTests {
    static func sqlite(_ database: String, _ sql: String) throws -> Host.Result {
        try Host.run("sqlite3", [database, sql], timeout: 30)
    }

    @Test func auditChainVerifiesAndCatchesEdits() throws {
        guard Host.canLoop, Host.which("sqlite3") != nil else {
            print("skipped: needs root, loop devices and sqlite3")
            return
        }
        let state = NSTemporaryDirectory() + "lethe-store-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        #expect(try Host.lethe("keys", "init", "--state-dir", state).status == 0)
        let none = try Host.lethe("audit", "verify", "--state-dir", state)
        #expect(none.status == 2 && none.stderr.contains("no store yet"))
        let loop = try LoopDevice(sizeBytes: 8 << 20)
        for _ in 0..<2 {
            let wipe = try Host.lethe("wipe", loop.path, "--method", "zero", "--yes", "--report-dir", "\(state)/reports", "--state-dir", state)
            #expect(wipe.status == 0, "\(wipe.stderr)")
        }
        let good = try Host.lethe("audit", "verify", "--state-dir", state)
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stdout.contains("intact (10 events)"), "\(good.stdout)")  // per wipe: started, finished, 2 reports, catalog record queued
        let database = "\(state)/lethe.sqlite"
        let jobs = try Self.sqlite(database, "select status, count(*) from job group by status")
        #expect(jobs.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "erased|2")
        let certified = try Self.sqlite(database, "select count(*) from report where certified = 1")
        #expect(certified.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "2")

        // Edit one row's content: found, and named.
        _ = try Self.sqlite(database, "update audit set detail = replace(detail, 'erased', 'notErased') where id = 2")
        let edited = try Host.lethe("audit", "verify", "--state-dir", state)
        #expect(edited.status == 1)
        #expect(edited.stderr.contains("audit event 2") && edited.stderr.contains("edited"), "\(edited.stderr)")
        // Put it back, then delete a row instead.
        _ = try Self.sqlite(database, "update audit set detail = replace(detail, 'notErased', 'erased') where id = 2")
        #expect(try Host.lethe("audit", "verify", "--state-dir", state).status == 0)
        _ = try Self.sqlite(database, "delete from audit where id = 5")
        let deleted = try Host.lethe("audit", "verify", "--state-dir", state)
        #expect(deleted.status == 1)
        #expect(deleted.stderr.contains("audit event 5") && deleted.stderr.contains("deleted"), "\(deleted.stderr)")
    }

    @Test func killedJobIsInterruptedAndUncertified() throws {
        guard Host.canLoop, Host.which("sqlite3") != nil else { return }
        let state = NSTemporaryDirectory() + "lethe-store-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        #expect(try Host.lethe("keys", "init", "--state-dir", state).status == 0)
        let loop = try LoopDevice(sizeBytes: 1 << 30)
        // A slow erase (35 random passes) killed with -9 once it is under way.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Host.lethe)
        process.arguments = ["wipe", loop.path, "--method", "gutmann", "--yes", "--json", "--report-dir", "\(state)/reports", "--state-dir", state]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let database = "\(state)/lethe.sqlite"
        let deadline = Date().addingTimeInterval(30)
        var running = false
        while Date() < deadline {
            if (try? Self.sqlite(database, "select count(*) from job where status = 'running'"))?.stdout.hasPrefix("1") == true {
                running = true
                break
            }
            usleep(50_000)
        }
        #expect(running, "the job never showed as running")
        usleep(300_000)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(try Self.sqlite(database, "select status from job").stdout.hasPrefix("running"))

        // The next run (here: another wipe of the same device) finds the orphan.
        let next = try Host.lethe("wipe", loop.path, "--method", "zero", "--verify", "off", "--yes", "--report-dir", "\(state)/reports", "--state-dir", state)
        #expect(next.status == 0, "\(next.stderr)")
        let statuses = try Self.sqlite(database, "select status, reportId is null from job order by startedAt").stdout
        #expect(statuses.hasPrefix("interrupted|1"), "\(statuses)")
        let certificates = try Self.sqlite(database, "select count(*) from report where certified = 1").stdout
        #expect(certificates.hasPrefix("0"), "a killed job or an unverified one was certified")
        let log = try Host.lethe("audit", "log", "--state-dir", state).stdout
        #expect(log.contains("job.interrupted"))
        #expect(try Host.lethe("audit", "verify", "--state-dir", state).status == 0)
    }
}

extension StoreTests {
    /// A full disk under the state directory: the erase is refused before anything is written,
    /// with a message that says the disk is full, and no record is half-written.
    @Test func fullDiskRefusesBeforeWriting() throws {
        guard Host.canLoop, Host.which("mount") != nil else { return }
        let state = NSTemporaryDirectory() + "lethe-full-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: state) }
        guard try Host.run("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", state]).status == 0 else {
            print("skipped: cannot mount a tmpfs")
            return
        }
        defer { _ = try? Host.run("umount", [state]) }
        #expect(try Host.lethe("keys", "init", "--state-dir", state).status == 0)
        let loop = try LoopDevice(sizeBytes: 8 << 20, fill: 0x3c)
        #expect(try Host.lethe("wipe", loop.path, "--method", "zero", "--yes", "--report-dir", "\(state)/reports", "--state-dir", state).status == 0)
        // Fill the file system.
        _ = try Host.run("dd", ["if=/dev/zero", "of=\(state)/filler", "bs=64k"], timeout: 30)
        try loop.poke([0x3c, 0x3c, 0x3c, 0x3c], at: 0)
        let full = try Host.lethe("wipe", loop.path, "--method", "zero", "--yes", "--report-dir", "\(state)/reports", "--state-dir", state)
        #expect(full.status == 2)
        #expect(full.stderr.contains("is full"), "\(full.stderr)")
        #expect(try loop.contents().prefix(4) == Data([0x3c, 0x3c, 0x3c, 0x3c]), "erased without a way to record it")
        // What was recorded before is intact.
        try FileManager.default.removeItem(atPath: "\(state)/filler")
        #expect(try Host.lethe("audit", "verify", "--state-dir", state).status == 0)
    }

    /// A phone's reports are found by any of its IMEIs (dual SIM), a drive's by its serial; an
    /// IMEI nobody has finds nothing, and the audit chain still verifies.
    @Test func reportsAreFoundBySerialOrIMEI() throws {
        let state = NSTemporaryDirectory() + "lethe-imei-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        let store = try Store(stateDirectory: state)
        @Sendable func row(_ id: String, serial: String) -> ReportRow {
            ReportRow(id: id, jobId: nil, schema: "lethe.wipe-certificate/1", serial: serial, certified: true, digest: "sha256:00",
                      jsonPath: "/nonexistent/\(id).json", pdfPath: "/nonexistent/\(id).pdf", issuedAt: "2026-11-23T10:00:0\(id.suffix(1))Z")
        }
        try store.write { db in
            try Store.recordReport(db, row("LTH-PHONE-1", serial: "R3CTEST0S24"), imeis: ["490154203237518", "356938035643809"])
            try Store.recordReport(db, row("LTH-PHONE-2", serial: "R3CTEST0S24"), imeis: ["490154203237518", "356938035643809", "490154203237518"])
            try Store.recordReport(db, row("LTH-DRIVE-3", serial: "S4EVNX0M123456"))
        }
        #expect(try store.reports(imei: "356938035643809").map(\.id) == ["LTH-PHONE-2", "LTH-PHONE-1"])
        #expect(try store.reports(imei: "490154203237518").map(\.id) == ["LTH-PHONE-2", "LTH-PHONE-1"], "a repeated IMEI is kept once")
        #expect(try store.reports(imei: "000000000000000").isEmpty)
        #expect(try store.reports(serial: "S4EVNX0M123456").map(\.id) == ["LTH-DRIVE-3"])
        #expect(try store.reports(serial: "S4EVNX0M123456", imei: "490154203237518").isEmpty, "both filters apply")
        #expect(try store.reports().count == 3)
        let chain = try store.verifyAudit()
        guard case .success(let events) = chain else {
            Issue.record("the audit chain broke: \(chain)")
            return
        }
        #expect(events == 3, "one report.issued event per report")
    }
}
