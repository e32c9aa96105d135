import LetheLinux
import LetheStore

extension JobRow {
    /// Records the process running the job: its pid, when it started, and the boot.
    mutating func run(by process: ProcessIdentity) {
        pid = process.pid
        processStart = process.startTicks
        bootId = process.bootId
    }

    /// Whether the process this row names still runs (same boot, same pid, same start time).
    public static func processIsRunning(_ row: JobRow) -> Bool {
        ProcessIdentity.isRunning(pid: row.pid, startTicks: row.processStart, bootId: row.bootId)
    }
}
