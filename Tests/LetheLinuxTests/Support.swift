import Foundation
import Synchronization
import Testing

/// Runs programs and creates loop devices for the integration tests. Everything a test
/// creates, it removes.
enum Host {
    static var isRoot: Bool { getuid() == 0 }
    static var canLoop: Bool { isRoot && FileManager.default.fileExists(atPath: "/dev/loop-control") && which("losetup") != nil }

    /// A TCP port of 127.0.0.1 that nothing listens on now (the kernel's choice, so tests that
    /// run at once never pick the same one).
    static func freePort() -> Int {
        // Never the same port twice in one run, even when the kernel offers it again.
        while true {
            let port = anyFreePort()
            if handedOut.withLock({ $0.insert(port).inserted }) { return port }
        }
    }

    private static let handedOut = Mutex<Set<Int>>([])

    private static func anyFreePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The build products folder (where `lethe` sits beside the test bundle).
    static var products: URL {
        URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
            .deletingLastPathComponent()
    }

    static var lethe: String { products.appendingPathComponent("lethe").path }

    static func which(_ tool: String) -> String? {
        for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(tool)") {
            return "\(dir)/\(tool)"
        }
        return nil
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        /// The last JSON object line on stdout.
        var lastJSON: [String: Any]? {
            for line in stdout.split(separator: "\n").reversed() {
                if let data = line.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
                    return object
                }
            }
            return nil
        }
    }

    /// Runs a program to completion (killed after `timeout` seconds).
    @discardableResult
    /// `environment` replaces the test's own when given; `directory` is the working directory.
    static func run(
        _ executable: String, _ arguments: [String], timeout: Double = 120, environment: [String: String]? = nil, directory: String? = nil,
        onStart: ((Process) -> Void)? = nil
    ) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : (which(executable) ?? executable))
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        onStart?(process)
        let deadline = Date().addingTimeInterval(timeout)
        // Drain pipes on background threads so a chatty child never blocks.
        let outData = Drain(out.fileHandleForReading), errData = Drain(err.fileHandleForReading)
        while process.isRunning {
            if Date() > deadline { process.terminate(); break }
            usleep(20_000)
        }
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: outData.text(), stderr: errData.text())
    }

    static func lethe(_ arguments: String..., timeout: Double = 120) throws -> Result {
        try run(Self.lethe, arguments, timeout: timeout)
    }
}

/// Reads a pipe to its end on a thread of its own.
final class Drain: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread {
            self.data = handle.readDataToEndOfFile()
            self.done.signal()
        }.start()
    }

    func text() -> String {
        done.wait()
        return String(decoding: data, as: UTF8.self)
    }
}

/// A loop device over a sparse temporary file, detached and deleted on deinit.
final class LoopDevice {
    let path: String
    let backing: String

    init(sizeBytes: Int, fill: UInt8? = nil) throws {
        backing = NSTemporaryDirectory() + "lethe-test-\(UUID().uuidString).img"
        _ = FileManager.default.createFile(atPath: backing, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: backing))
        if let fill {
            let block = Data(repeating: fill, count: 1 << 20)
            for _ in 0..<(sizeBytes / (1 << 20)) { handle.write(block) }
        }
        try handle.truncate(atOffset: UInt64(sizeBytes))
        try handle.close()
        let result = try Host.run("losetup", ["-f", "--show", "--direct-io=on", backing])
        guard result.status == 0 else {
            try? FileManager.default.removeItem(atPath: backing)
            throw TestFailure("losetup failed: \(result.stderr)")
        }
        path = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private var attached = true

    /// Detaches now (the hotplug tests watch this happen); deinit then only deletes the file,
    /// so it never detaches a loop device another test bound to the same number since.
    func detach() throws {
        guard attached else { return }
        attached = false
        let result = try Host.run("losetup", ["-d", path])
        guard result.status == 0 else { throw TestFailure("losetup -d \(path) failed: \(result.stderr)") }
    }

    deinit {
        if attached { _ = try? Host.run("losetup", ["-d", path]) }
        try? FileManager.default.removeItem(atPath: backing)
    }

    /// Detaches this loop device and binds `other` (a new file of `bytes`, filled with `fill`)
    /// to the same node: another medium at the same path. Returns the swap, or nil when another
    /// test took the freed node first (then nothing can be proven, and nothing of the other
    /// test's is detached). `swap.finish()` detaches and deletes it.
    func swapMedium(bytes: Int, fill: UInt8) throws -> SwappedMedium? {
        let other = NSTemporaryDirectory() + "lethe-test-\(UUID().uuidString).img"
        _ = FileManager.default.createFile(atPath: other, contents: Data(repeating: fill, count: bytes))
        try detach()
        guard try Host.run("losetup", [path, other]).status == 0 else {
            try? FileManager.default.removeItem(atPath: other)
            print("skipped: \(path) was taken by another test before it could be bound again")
            return nil
        }
        return SwappedMedium(node: path, file: other)
    }

    /// Reads the whole device (through the loop device, with the cache dropped).
    func contents() throws -> Data {
        _ = try? Host.run("blockdev", ["--flushbufs", path])
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        return try handle.readToEnd() ?? Data()
    }

    /// Writes bytes at an offset through the device and syncs.
    func poke(_ bytes: [UInt8], at offset: UInt64) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: offset)
        handle.write(Data(bytes))
        try handle.synchronize()
        try handle.close()
        _ = try? Host.run("blockdev", ["--flushbufs", path])
    }
}

/// A temporary regular file (a "disk image"), deleted on deinit.
final class TemporaryImage {
    let path = NSTemporaryDirectory() + "lethe-image-\(UUID().uuidString).img"

    init(bytes: Int, fill: UInt8 = 0) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(repeating: fill, count: bytes)) else {
            throw TestFailure("cannot create \(path)")
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A long-running child whose stdout lines and stderr are collected as they arrive, each
/// stdout line with the time it was read.
final class LineWatcher: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var lines: [(Date, String)] = []
    private var errors = ""

    init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        Thread { [self] in
            var pending = Data()
            while true {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: 0x0a) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    lock.withLock { lines.append((Date(), line)) }
                }
            }
        }.start()
        Thread { [self] in
            while true {
                let chunk = err.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                lock.withLock { errors += String(decoding: chunk, as: UTF8.self) }
            }
        }.start()
    }

    var stderr: String { lock.withLock { errors } }
    /// The stdout lines so far.
    var stdoutLines: [String] { lock.withLock { lines.map(\.1) } }

    /// Waits until stderr contains `text`.
    func waitForStderr(_ text: String, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if stderr.contains(text) { return true }
            usleep(10_000)
        }
        return false
    }

    /// The first JSON line after `index` matching `predicate`, with when it arrived.
    func waitForJSON(timeout: Double, where predicate: ([String: Any]) -> Bool) -> (Date, [String: Any])? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let snapshot = lock.withLock { lines }
            for (time, line) in snapshot {
                if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], predicate(object) {
                    return (time, object)
                }
            }
            usleep(5_000)
        }
        return nil
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    deinit { stop() }
}

extension Host {
    /// Checks a signed certificate the way a buyer's tool would: Python's `cryptography` for the
    /// signature with the station's public key, `jsonschema` for the schema
    /// (Tests/LetheReportsTests/verify_jws.py). Nil when python3 is not installed.
    /// `schema` is `wipe-certificate` or `refurb-report`.
    static func pythonVerifyCertificate(_ file: String, state: String, schema: String = "wipe-certificate") throws -> Result? {
        guard which("python3") != nil else { return nil }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return try run("python3", [
            repo.appendingPathComponent("Tests/LetheReportsTests/verify_jws.py").path, file, "\(state)/keys/station.pub.jwk",
            repo.appendingPathComponent("reports/schema/\(schema).schema.json").path,
        ])
    }
}

/// Another medium bound to a loop node another test device had (``LoopDevice/swapMedium(bytes:fill:)``).
struct SwappedMedium {
    let node: String
    let file: String

    /// Its bytes, read from the file.
    func contents() throws -> Data { try Data(contentsOf: URL(fileURLWithPath: file)) }

    /// Detaches it and deletes the file.
    func finish() {
        _ = try? Host.run("losetup", ["-d", node])
        try? FileManager.default.removeItem(atPath: file)
    }
}
