import CLethe
import Foundation
import LetheCore

#if canImport(Glibc)
import Glibc
#endif

/// Runs a program with posix_spawn and reaps it with waitpid. Foundation's Process notices
/// the child's end through a descriptor the child inherits; a program that forks a daemon (`adb
/// start-server`) hands that descriptor on, and Process then waits for the daemon, for ever.
public enum Subprocess {
    /// What the program printed (stdout and stderr together) and how it ended.
    public struct Result: Sendable {
        public var status: Int32
        public var output: String
    }

    /// Runs `executable` with `arguments`, stdin from /dev/null, stdout and stderr to a
    /// temporary file; kills it after `timeout` seconds (`.timedOut`).
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String], timeout: Double) throws(LetheError) -> Result {
        let log = NSTemporaryDirectory() + "lethe-spawn-\(UUID().uuidString).log"
        defer { unlink(log) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of ours: a daemon it forks (the adb server) must not hold our
        // descriptors, such as the one our own parent watches to see us exit.
        lethe_spawn_closefrom(&actions, 3)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard spawned == 0 else {
            throw LetheError(.unavailable, path: executable, errno: ErrorNumber(spawned), "cannot run \(executable): \(String(cString: strerror(spawned)))")
        }
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        var killed = false
        while true {
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid { break }
            if done < 0, errno != EINTR { break }
            if !killed, Date() > deadline {
                kill(pid, SIGKILL)
                killed = true
            }
            usleep(10_000)
        }
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        if killed { throw LetheError(.timedOut, path: executable, "\(executable) \(arguments.joined(separator: " ")) did not finish in \(Int(timeout)) s") }
        // WIFEXITED / WEXITSTATUS, spelled out (they are macros).
        let exited = status & 0x7f == 0
        return Result(status: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), output: output)
    }
}
