import Foundation
import LetheCore
import Synchronization

/// The adb server on this machine: 127.0.0.1 and `ANDROID_ADB_SERVER_PORT` (else 5037), reached
/// over TCP, and started with `adb start-server` (Debian package `adb`) when nothing listens.
public enum LocalADBServer {
    /// The server's port from the environment, else 5037.
    public static func port(environment: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        environment["ANDROID_ADB_SERVER_PORT"].flatMap { Int($0) }.flatMap { (1...65535).contains($0) ? $0 : nil } ?? 5037
    }

    /// Connects to the server.
    public static func connector(port: Int) -> @Sendable (Duration) throws(LetheError) -> any ByteStream {
        { timeout throws(LetheError) in try TCPStream.connect(host: "127.0.0.1", port: port, timeout: timeout) }
    }

    /// `adb` on the PATH, if installed.
    public static func adbExecutable(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        let path = environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/adb" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Starts the server (`adb -P PORT start-server`, at most 30 s), or says why it cannot.
    public static func starter(port: Int, environment: [String: String] = ProcessInfo.processInfo.environment) -> @Sendable () throws(LetheError) -> Void {
        { () throws(LetheError) in
            guard let adb = adbExecutable(environment: environment) else {
                throw LetheError(
                    .unavailable, path: "127.0.0.1:\(port)",
                    "no adb server listens on 127.0.0.1:\(port), and there is no `adb` to start one: apt-get install adb")
            }
            let result = try Subprocess.run(adb, ["-P", String(port), "start-server"], environment: environment, timeout: 30)
            guard result.status == 0 else {
                throw LetheError(.unavailable, path: adb, "adb start-server failed (exit \(result.status)): \(result.output.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            startedHere.withLock { _ = $0.insert(port) }
        }
    }

    /// The ports of the servers this process started.
    private static let startedHere = Mutex<Set<Int>>([])

    /// Stops the server on `port` if this process started it (`adb -P PORT kill-server`, at
    /// most 10 s), and says so; a server that someone else started is left running. The adb
    /// server ignores SIGTERM, so without this a stopping daemon leaves it behind (under
    /// systemd, the unit's stop waits out TimeoutStopSec and ends in SIGKILL).
    public static func stopIfStartedHere(port: Int, environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard startedHere.withLock({ $0.remove(port) }) != nil, let adb = adbExecutable(environment: environment) else { return nil }
        do throws(LetheError) {
            let result = try Subprocess.run(adb, ["-P", String(port), "kill-server"], environment: environment, timeout: 10)
            return result.status == 0 ? "stopped the adb server it started on 127.0.0.1:\(port)" : "adb kill-server failed (exit \(result.status))"
        } catch {
            return "adb kill-server: \(error.message)"
        }
    }
}
