import Foundation
import LetheCore
import LetheAgent
import LetheLinux
import Testing

/// The daemon as a `Type=notify` unit: READY=1 once it serves, WATCHDOG=1 while the bench
/// answers, STOPPING=1 when SIGTERM starts the graceful stop. systemd's side is a datagram
/// socket of the test's own, named by NOTIFY_SOCKET as systemd names its socket.
@Suite struct SystemdNotifyTests {
    @Test func theEnvironmentIsReadAsSystemdMeansIt() {
        #expect(!SystemdNotifier(environment: [:]).isActive)
        #expect(SystemdNotifier(environment: [:]).notify("READY=1") == nil)
        let ours = SystemdNotifier(environment: ["NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"], pid: 42)
        #expect(ours.watchdogInterval == .seconds(15))
        // The watchdog is for another process (a parent shell), or there is none.
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "41"], pid: 42).watchdogInterval == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "/run/x"]).watchdogInterval == nil)
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "30000000"]).watchdogInterval == nil)
    }

    /// `systemd-analyze verify` on deploy/lethe.service, its binary pointed at this build:
    /// no error and no warning (an unknown or misspelt key is only a warning to systemd).
    @Test(.enabled(if: Host.which("systemd-analyze") != nil)) func theUnitVerifies() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let unit = try String(contentsOf: repo.appendingPathComponent("deploy/lethe.service"), encoding: .utf8)
        let dir = try scratchDirectory("lethe-unit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try unit.replacingOccurrences(of: "/usr/bin/lethe", with: Host.lethe).write(toFile: "\(dir)/lethe.service", atomically: true, encoding: .utf8)
        let verified = try Host.run("systemd-analyze", ["verify", "\(dir)/lethe.service"])
        #expect(verified.status == 0 && verified.stderr.isEmpty && verified.stdout.isEmpty, "\(verified.stdout)\(verified.stderr)")
        #expect(unit.contains("Type=notify") && unit.contains("WatchdogSec="))
    }

    @Test func theDaemonSaysReadyAliveAndStopping() throws {
        let dir = try scratchDirectory("lethe-notify")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socketPath = "\(dir)/notify"
        let listener = try DatagramListener(path: socketPath)

        let state = "\(dir)/state"
        #expect(try Host.lethe("keys", "init", "--state-dir", state).status == 0)
        let port = Host.freePort()
        let daemon = try LineWatcher(
            Host.lethe, ["daemon", "--no-phones", "--state-dir", state, "--listen", "127.0.0.1:\(port)"],
            environment: ["NOTIFY_SOCKET": socketPath, "WATCHDOG_USEC": "1000000"])
        defer { daemon.stop() }
        let alive = listener.receive(until: 30) { got in
            got.contains { $0.hasPrefix("READY=1") } && got.filter { $0 == "WATCHDOG=1" }.count >= 2
        }
        #expect(alive, "\(listener.messages) \(daemon.stderr)")
        let ready = listener.messages.first { $0.hasPrefix("READY=1") } ?? ""
        #expect(ready.contains("STATUS=serving http://127.0.0.1:\(port)/"), "\(ready)")
        daemon.process.terminate()
        #expect(listener.receive(until: 20) { $0.contains { $0.hasPrefix("STOPPING=1") } }, "\(listener.messages) \(daemon.stderr)")
        daemon.process.waitUntilExit()
        #expect(daemon.process.terminationStatus == 0, "\(daemon.stderr)")
    }
}

/// journald's side: the daemon's lines as native-protocol entries with DEVICE and JOB_ID, when
/// (and only when) its stderr is the stream `$JOURNAL_STREAM` names.
@Suite struct JournalTests {
    @Test func linesAndEntriesAreReadAsJournaldReadsThem() {
        let line = LogLine("/dev/sdb: job 01KAQ2M7Y8Z3B4C5D6E7F8G9H0: erasing with zero")
        #expect(line.device == "/dev/sdb" && line.jobId == "01KAQ2M7Y8Z3B4C5D6E7F8G9H0")
        #expect(LogLine("ios:00008030-001: phone docked").device == "ios:00008030-001")
        let other = LogLine("serving http://127.0.0.1:8765/ (dashboard)")
        #expect(other.device == nil && other.jobId == nil)
        #expect(LogLine("/dev/sdb: job not-an-id: x").jobId == nil)
        let entry = JournalWriter.encode([("MESSAGE", "two\nlines"), ("JOB_ID", "X"), ("bad name", "dropped")])
        var expected = Array("MESSAGE\n".utf8) + [9, 0, 0, 0, 0, 0, 0, 0] + Array("two\nlines\n".utf8)
        expected += Array("JOB_ID=X\n".utf8)
        #expect(entry == expected)
        // Not the journal's stream: no writer, plain stderr.
        #expect(JournalWriter(environment: [:]) == nil)
        #expect(JournalWriter(environment: ["JOURNAL_STREAM": "1:2"]) == nil)
    }

    /// A line about a device the bench has seen carries its bay and serial; one about an
    /// unknown device, or about none, carries neither.
    @Test func entriesCarryTheBayAndSerialOfTheirDevice() throws {
        let dir = try scratchDirectory("lethe-labels")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let listener = try DatagramListener(path: "\(dir)/journal")
        let stream = open("\(dir)/stderr", O_CREAT | O_WRONLY, 0o600)
        defer { close(stream) }
        var status = stat()
        #expect(fstat(stream, &status) == 0)
        let writer = try #require(JournalWriter(
            environment: ["JOURNAL_STREAM": "\(status.st_dev):\(status.st_ino)", "LETHE_JOURNAL_SOCKET": "\(dir)/journal"], stderr: stream))
        let labels = DeviceLabels()
        labels.note(DeviceRecord(path: "/dev/sdb", kind: .drive, transport: .sata, serial: "S4EVNX0R123", bay: "Bay 3"))
        let label: (String) -> (bay: String?, serial: String?) = { path in labels[path].map { ($0.bay, $0.serial) } ?? (nil, nil) }
        #expect(writer.log("/dev/sdb: job 01KAQ2M7Y8Z3B4C5D6E7F8G9H0: erasing with zero", label: label))
        #expect(writer.log("/dev/sdc: removed", label: label))
        #expect(writer.log("serving http://127.0.0.1:8765/", label: label))
        #expect(listener.receive(until: 10) { $0.count == 3 })
        let entries = listener.messages
        #expect(entries.first?.contains("BAY=Bay 3\nSERIAL=S4EVNX0R123\n") == true, "\(entries)")
        #expect(entries.dropFirst().allSatisfy { !$0.contains("BAY=") && !$0.contains("SERIAL=") }, "\(entries)")
    }

    @Test(.enabled(if: Host.canLoop)) func theDemoJobIsFoundByItsJobId() throws {
        let dir = try scratchDirectory("lethe-journal")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socketPath = "\(dir)/journal"
        let listener = try DatagramListener(path: socketPath)

        // stderr is a file; JOURNAL_STREAM names it, as systemd names the journal's stream.
        let errPath = "\(dir)/stderr"
        FileManager.default.createFile(atPath: errPath, contents: nil)
        let errHandle = try #require(FileHandle(forWritingAtPath: errPath))
        var status = stat()
        #expect(fstat(errHandle.fileDescriptor, &status) == 0)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Host.lethe)
        process.arguments = ["daemon", "--demo", "--no-phones", "--state-dir", "\(dir)/state", "--listen", "127.0.0.1:\(Host.freePort())"]
        process.environment = ProcessInfo.processInfo.environment.merging([
            "JOURNAL_STREAM": "\(status.st_dev):\(status.st_ino)", "LETHE_JOURNAL_SOCKET": socketPath,
        ]) { $1 }
        process.standardError = errHandle
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer {
            if process.isRunning { process.interrupt() }
            process.waitUntilExit()
        }
        _ = listener.receive(until: 60) { $0.contains { $0.contains("erased, certificate") } }
        let entries = listener.messages
        let certified = try #require(entries.first { $0.contains("erased, certificate") }, "\(entries) \((try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")")
        let fields = Dictionary(certified.split(separator: "\n").compactMap { line -> (String, String)? in
            guard let eq = line.firstIndex(of: "=") else { return nil }
            return (String(line[..<eq]), String(line[line.index(after: eq)...]))
        }, uniquingKeysWith: { a, _ in a })
        #expect(fields["SYSLOG_IDENTIFIER"] == "lethe" && fields["DEVICE"]?.hasPrefix("/dev/loop") == true, "\(fields)")
        let job = try #require(fields["JOB_ID"])
        // Every line about that job carries the field: journalctl -u lethe JOB_ID=... finds them all.
        let aboutJob = entries.filter { $0.contains("job \(job)") }
        #expect(aboutJob.count >= 2 && aboutJob.allSatisfy { $0.contains("JOB_ID=\(job)\n") }, "\(aboutJob)")
        // Nothing of those lines went to stderr as well.
        #expect(!((try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "").contains("erased, certificate"))
    }
}

/// A Unix datagram socket of the test's own, standing where systemd or journald listens; it
/// keeps every message it receives.
final class DatagramListener {
    private let fd: Int32
    private(set) var messages: [String] = []

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard bound == 0 else {
            close(fd)
            throw TestFailure("bind \(path): errno \(errno)")
        }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Receives until `done` holds for the messages so far, or `seconds` pass; whether it held.
    func receive(until seconds: Double, _ done: ([String]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline, !done(messages) {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 { messages.append(String(decoding: buffer[0..<n], as: UTF8.self)) }
        }
        return done(messages)
    }

    deinit { close(fd) }
}

/// A new empty folder under the temporary directory, named `PREFIX-UUID`; the caller removes it.
func scratchDirectory(_ prefix: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}
