import Foundation
import CLethe
import LetheCore

/// Who runs a job, beyond its pid: a pid is reused after a crash or a reboot, so a job is
/// only still running when the same boot's process with that pid started at the same moment
/// (`/proc/PID/stat` field 22, clock ticks since boot).
public struct ProcessIdentity: Sendable, Equatable {
    public var pid: Int32
    /// Start time in clock ticks after boot (nil when unreadable).
    public var startTicks: Int64?
    /// `/proc/sys/kernel/random/boot_id`.
    public var bootId: String?

    /// This process.
    public static func current() -> ProcessIdentity {
        let pid = getpid()
        return ProcessIdentity(pid: pid, startTicks: startTicks(of: pid), bootId: bootId())
    }

    /// This boot's id.
    public static func bootId(file: String = "/proc/sys/kernel/random/boot_id") -> String? {
        Sysfs.read(file)
    }

    /// When process `pid` started, in clock ticks after boot; nil when there is none.
    public static func startTicks(of pid: Int32, proc: String = "/proc") -> Int64? {
        guard let text = Sysfs.read("\(proc)/\(pid)/stat") else { return nil }
        return startTicks(statLine: text)
    }

    /// Field 22 of a `/proc/PID/stat` line. The command name (field 2) is in parentheses and
    /// may itself hold spaces and parentheses, so fields are counted after the last `)`.
    public static func startTicks(statLine: String) -> Int64? {
        guard let close = statLine.lastIndex(of: ")") else { return nil }
        let fields = statLine[statLine.index(after: close)...].split(separator: " ")
        // After the name: state is field 3, so field 22 is the 20th.
        guard fields.count >= 20 else { return nil }
        return Int64(fields[19])
    }

    /// Whether the process that recorded (`pid`, `startTicks`, `bootId`) is still running.
    /// A different boot, no such pid, or a pid now held by a process that started at another
    /// moment all mean it is gone. Without a recorded start time (rows written before it was
    /// kept) only the pid is checked.
    public static func isRunning(pid: Int32?, startTicks recorded: Int64?, bootId recordedBoot: String?) -> Bool {
        guard let pid, pid > 0 else { return false }
        if let recordedBoot, recordedBoot != bootId() { return false }
        guard let now = startTicks(of: pid) else { return false }
        if let recorded { return recorded == now }
        return true
    }
}

/// The process's own memory.
public enum ProcessMemory {
    /// Gives the free memory of every C allocator arena back to the kernel (malloc_trim). A
    /// job's threads free what they used, but glibc keeps it in per-thread arenas; the daemon
    /// calls this when a job ends.
    public static func returnFreedMemory() {
        _ = lethe_malloc_trim()
    }
}
