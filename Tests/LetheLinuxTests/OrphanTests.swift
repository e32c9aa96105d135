import Foundation
import LetheAgent
import LetheLinux
import LetheStore
import Testing

/// A job is orphaned when the process that ran it is gone: same boot, same pid and the same
/// start time, or it is not that process (issue 15, item 8: a pid alone is reused).
@Suite struct OrphanTests {
    @Test func theStartTimeIsReadPastAStrangeCommandName() {
        let line = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 12345678 300"
        #expect(ProcessIdentity.startTicks(statLine: line) == 987_654)
        #expect(ProcessIdentity.startTicks(statLine: "garbage") == nil)
        #expect(ProcessIdentity.startTicks(statLine: "1 (x) S 1 2") == nil)
    }

    @Test func aReusedPidOrAnotherBootIsNotTheProcessThatRanTheJob() throws {
        let state = NSTemporaryDirectory() + "lethe-orphans-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        let store = try Store(stateDirectory: state)
        let me = ProcessIdentity.current()
        #expect(me.startTicks != nil && me.bootId != nil)
        func row(_ id: String, start: Int64?, boot: String?) -> JobRow {
            var job = JobRow(id: id, devicePath: "/dev/loop9", serial: nil, model: nil, method: "zero", profile: nil, status: "running", startedAt: "2026-12-06T00:00:00Z")
            job.pid = me.pid
            job.processStart = start
            job.bootId = boot
            return job
        }
        let rows = [
            row("alive", start: me.startTicks, boot: me.bootId),
            // Before this fix these two were taken for running: the pid exists (it is this test).
            row("reused-pid", start: (me.startTicks ?? 0) - 1, boot: me.bootId),
            row("other-boot", start: me.startTicks, boot: "00000000-0000-0000-0000-000000000000"),
            row("old-row", start: nil, boot: nil),
        ]
        try store.write { db in for row in rows { try row.insert(db) } }
        let marked = try store.markOrphanedJobsInterrupted(isRunning: JobRow.processIsRunning)
        #expect(Set(marked) == ["reused-pid", "other-boot"], "\(marked)")
        let states = Dictionary(try store.jobs().map { ($0.id, $0.status) }, uniquingKeysWith: { a, _ in a })
        #expect(states["alive"] == "running" && states["old-row"] == "running", "a row without a start time falls back to the pid")
    }
}
