import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import LetheSync
import Synchronization
import Testing

/// The hub's test bench: a private PostgreSQL cluster (scripts/pg-private.sh), hub instances
/// and the reference catalog as real processes, and a small HTTP client. Everything a test
/// starts, it stops.
enum Bench {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The build products folder (where `lethe` and `lethe-hub` sit beside the test bundle).
    static var products: URL {
        URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
            .deletingLastPathComponent()
    }

    static var hubBinary: String { products.appendingPathComponent("lethe-hub").path }
    static var letheBinary: String { products.appendingPathComponent("lethe").path }

    /// A TCP port of 127.0.0.1 that nothing listens on now, never the same twice in a run.
    static func freePort() -> Int {
        while true {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            close(fd)
            let port = Int(UInt16(bigEndian: address.sin_port))
            if handedOut.withLock({ $0.insert(port).inserted }) { return port }
        }
    }

    private static let handedOut = Mutex<Set<Int>>([])

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Starts a program, its output to files; returns its pid.
    static func spawn(_ executable: String, _ arguments: [String], environment: [String: String], stdout: String, stderr: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0.key)=\($0.value)" }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard spawned == 0 else { throw HarnessError("cannot run \(executable): errno \(spawned)") }
        return pid
    }

    /// Runs a program to completion (killed after `timeout` seconds), its output through
    /// files. posix_spawn and waitpid rather than Foundation's Process: a script that starts a
    /// daemon (pg_ctl) left Process waiting for an exit it had already missed (a zombie).
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:], timeout: Double = 120) throws -> Result {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hub-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let outPath = folder.appendingPathComponent("out").path, errPath = folder.appendingPathComponent("err").path
        let pid = try spawn(executable, arguments, environment: environment, stdout: outPath, stderr: errPath)
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        var killed = false
        while waitpid(pid, &status, WNOHANG) == 0 {
            if !killed, Date() > deadline {
                kill(pid, SIGKILL)
                killed = true
            }
            usleep(10_000)
        }
        let exited = (status & 0x7f) == 0
        return Result(
            status: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f),
            stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }
}

/// A private PostgreSQL cluster in a temporary folder, stopped and removed by ``stop()``.
final class PrivateCluster: Sendable {
    let directory: String
    let url: String

    init(maxConnections: Int = 200) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-hub-pg-\(UUID().uuidString.prefix(8))").path
        let started = try Bench.run(
            "/bin/bash", [Bench.repo.appendingPathComponent("scripts/pg-private.sh").path, "start", directory, String(Bench.freePort()), String(maxConnections)],
            timeout: 300)
        guard started.status == 0, let line = started.stdout.split(separator: "\n").last else {
            throw HarnessError("cannot start a private PostgreSQL: \(started.stderr)")
        }
        url = String(line)
    }

    /// A fast restart: every connection is dropped.
    func restart() throws {
        let result = try Bench.run("/bin/bash", [Bench.repo.appendingPathComponent("scripts/pg-private.sh").path, "restart", directory])
        guard result.status == 0 else { throw HarnessError("restart failed: \(result.stderr)") }
    }

    func stop() {
        _ = try? Bench.run("/bin/bash", [Bench.repo.appendingPathComponent("scripts/pg-private.sh").path, "stop", directory])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs `lethe-hub` against this cluster.
    @discardableResult
    func hub(_ arguments: String...) throws -> Bench.Result {
        try Bench.run(Bench.hubBinary, arguments, environment: ["LETHE_HUB_DATABASE": url])
    }

    /// One value from psql (`-At`).
    func sql(_ query: String) throws -> String {
        let port = (try? String(contentsOfFile: "\(directory)/port", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "5432"
        let result = try Bench.run("/usr/bin/psql", ["-h", directory, "-p", port, "-U", "lethe", "-d", "lethe", "-At", "-c", query])
        guard result.status == 0 else { throw HarnessError("psql: \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A long-running child process (a hub instance, the reference catalog), its output in files.
final class Child: @unchecked Sendable {
    let pid: pid_t
    let folder: URL
    let name: String
    private var reaped = false

    init(_ name: String, _ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        self.name = name
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("hub-child-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        pid = try Bench.spawn(executable, arguments, environment: environment, stdout: "/dev/null", stderr: folder.appendingPathComponent("err").path)
    }

    var stderr: String { (try? String(contentsOf: folder.appendingPathComponent("err"), encoding: .utf8)) ?? "" }

    var isRunning: Bool {
        guard !reaped else { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { reaped = true }
        return !reaped
    }

    /// SIGKILL: no shutdown at all, as a crash or the OOM killer.
    func kill9() {
        guard isRunning else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        reaped = true
    }

    /// SIGTERM and wait (SIGKILL after 10 s).
    func stop() {
        if isRunning {
            kill(pid, SIGTERM)
            let deadline = Date().addingTimeInterval(10)
            while isRunning, Date() < deadline { usleep(20_000) }
            kill9()
        }
        try? FileManager.default.removeItem(at: folder)
    }
}

/// Blocking HTTP on loopback for the tests (URLSession, off the cooperative pool's back).
enum HTTP {
    struct Answer {
        var status: Int
        var headers: [String: String]
        var body: Data
        var json: Any? { try? JSONSerialization.jsonObject(with: body) }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    static func request(_ method: String, _ url: String, headers: [String: String] = [:], body: Data? = nil, timeout: Double = 15) -> Answer? {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        request.timeoutInterval = timeout
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        request.httpBody = body
        let box = Mutex<Answer?>(nil)
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, _ in
            if let response = response as? HTTPURLResponse {
                var fields: [String: String] = [:]
                for (key, value) in response.allHeaderFields { fields["\(key)".lowercased()] = "\(value)" }
                box.withLock { $0 = Answer(status: response.statusCode, headers: fields, body: data ?? Data()) }
            }
            done.signal()
        }.resume()
        done.wait()
        return box.withLock { $0 }
    }

    /// Waits until `url` answers 200.
    static func waitUntilUp(_ url: String, seconds: Double = 60) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if request("GET", url, timeout: 2)?.status == 200 { return true }
            usleep(100_000)
        }
        return false
    }

    /// A station's POST of one record.
    static func post(_ base: String, station: SimulatedStation, id: String, body: Data, secret: Data? = nil) -> Answer? {
        let signature = secret.map { CatalogSignature.sign(body, secret: .init(data: $0)) } ?? CatalogSignature.sign(body, secret: station.fileSecret)
        return request("POST", "\(base)/v1/records", headers: [
            "Content-Type": "application/json", "Idempotency-Key": id, "X-Lethe-Signature": signature, "X-Lethe-Station": station.id,
        ], body: body)
    }
}

/// Polls `condition` every 100 ms until it holds or `seconds` pass.
func eventually(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(100_000)
    }
    return try condition()
}
