import Foundation
import LetheCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A phone's adbd, simulated on 127.0.0.1: it speaks the ADB transport protocol (24-byte
/// headers of six little-endian u32; CNXN, AUTH, OPEN, OKAY, WRTE, CLSE; shell v2 frames) so
/// the real adb server accepts it with `adb connect 127.0.0.1:PORT`, and answers shell
/// commands from a script (recorded outputs of real phones). It can refuse authorization,
/// reboot into a new state (a factory reset), and vanish (an unplugged cable).
public final class SimulatedADBD: @unchecked Sendable {
    /// What one shell command prints, and what it does to the phone.
    public struct Answer: Sendable {
        public var stdout: String
        public var stderr: String
        public var exitCode: UInt8
        /// After answering, the phone reboots (drops every connection, refuses new ones for
        /// `seconds`) and comes back as `state`. Nil state: it never comes back.
        public var reboot: (seconds: Double, state: String?)?
        /// Binary stdout (`dd`), sent instead of `stdout` when set.
        public var binaryStdout: [UInt8]?

        /// An answer.
        public init(stdout: String = "", stderr: String = "", exitCode: UInt8 = 0, reboot: (seconds: Double, state: String?)? = nil) {
            self.stdout = stdout
            self.stderr = stderr
            self.exitCode = exitCode
            self.reboot = reboot
        }
    }

    /// Which answers the phone gives in each of its states (`normal`, `oobe`, …), by exact
    /// command line.
    public struct Script: Sendable {
        public var banner: [String: String]
        public var features: [String] = ["shell_v2", "cmd"]
        public var states: [String: [String: Answer]]
        public var initialState: String
        /// When true the phone never accepts the host's key: the server lists it `unauthorized`.
        public var refuseAuthorization = false
        /// When true every shell service is closed at once (a phone whose policy forbids it).
        public var refuseShell = false
        /// The user-data partition the `sync` service and the file commands work on; nil: the
        /// phone offers no `sync` service.
        public var dataPartition: SimulatedDataPartition?
        /// The states whose arrival after a reboot empties the data partition (a factory reset).
        public var wipesData: Set<String> = ["oobe"]

        /// A script.
        public init(banner: [String: String], states: [String: [String: Answer]], initialState: String) {
            self.banner = banner
            self.states = states
            self.initialState = initialState
        }
    }

    static let cnxn: UInt32 = 0x4e58_4e43, auth: UInt32 = 0x4854_5541, open: UInt32 = 0x4e45_504f
    static let okay: UInt32 = 0x5941_4b4f, clse: UInt32 = 0x4553_4c43, wrte: UInt32 = 0x4554_5257
    static let version: UInt32 = 0x0100_0001

    /// The port it listens on.
    public let port: Int
    private let listener: Int32
    private let script: Script
    private struct Shared {
        var state: String
        var downUntil: Date?
        var gone = false
        var stopped = false
        var commands: [String] = []
        var connections: [Int32] = []
    }
    private let shared: Mutex<Shared>

    /// Listens on an ephemeral port of 127.0.0.1 (above the emulator range adb scans).
    public init(script: Script) throws {
        self.script = script
        shared = Mutex(Shared(state: script.initialState))
        let (fd, port) = try LoopbackListener.socket(name: "simulated adbd")
        self.port = port
        listener = fd
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "simulated-adbd"
        thread.start()
    }

    deinit { stop() }

    /// The shell commands run so far, in order.
    public var commands: [String] { shared.withLock { $0.commands } }
    /// The state it is in now.
    public var state: String { shared.withLock { $0.state } }

    /// The cable goes back in after ``vanish()``: connections are accepted again (the adb
    /// server must `adb connect` again, as USB re-enumerates).
    public func replug() { shared.withLock { $0.gone = false } }

    /// The cable is pulled: every connection drops and none is accepted again.
    public func vanish() {
        let open = shared.withLock { s in
            s.gone = true
            return s.connections
        }
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    /// Stops listening and drops every connection.
    public func stop() {
        let (wasStopped, open) = shared.withLock { s in
            let was = s.stopped
            s.stopped = true
            s.gone = true
            return (was, s.connections)
        }
        guard !wasStopped else { return }
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                return
            }
            let refuse = shared.withLock { s -> Bool in
                if s.gone || s.stopped { return true }
                if let until = s.downUntil, Date() < until { return true }
                s.connections.append(fd)
                return false
            }
            if refuse {
                close(fd)
                continue
            }
            let thread = Thread { [self] in
                serve(fd)
                shared.withLock { $0.connections.removeAll { $0 == fd } }
                close(fd)
            }
            thread.name = "simulated-adbd-conn"
            thread.start()
        }
    }

    // MARK: - Messages

    struct Message {
        var command: UInt32, arg0: UInt32, arg1: UInt32
        var payload: [UInt8]
    }

    private func readExactly(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = bytes[got...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { return nil }
            got += n
        }
        return bytes
    }

    private func receive(_ fd: Int32) -> Message? {
        guard let header = readExactly(fd, 24) else { return nil }
        func word(_ i: Int) -> UInt32 { header[i * 4..<i * 4 + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) } }
        guard word(5) == word(0) ^ 0xffff_ffff else { return nil }
        let length = Int(word(3))
        guard length <= 1 << 20 else { return nil }
        let payload = length > 0 ? readExactly(fd, length) : []
        guard let payload else { return nil }
        return Message(command: word(0), arg0: word(1), arg1: word(2), payload: payload)
    }

    @discardableResult
    private func send(_ fd: Int32, _ command: UInt32, _ arg0: UInt32, _ arg1: UInt32, _ payload: [UInt8] = []) -> Bool {
        var bytes: [UInt8] = []
        let checksum = payload.reduce(UInt32(0)) { $0 &+ UInt32($1) }
        for word in [command, arg0, arg1, UInt32(payload.count), checksum, command ^ 0xffff_ffff] {
            bytes += [UInt8(word & 0xff), UInt8(word >> 8 & 0xff), UInt8(word >> 16 & 0xff), UInt8(word >> 24)]
        }
        bytes += payload
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    private var bannerBytes: [UInt8] {
        let properties = script.banner.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value);" }.joined()
        return Array("device::\(properties)features=\(script.features.joined(separator: ","))".utf8)
    }

    // MARK: - One connection from the adb server

    private func serve(_ fd: Int32) {
        var nextId: UInt32 = 1
        var pending: [Message] = []
        var maxData = 4096
        var syncSessions: [UInt32: SimulatedDataPartition.SyncSession] = [:]
        func next() -> Message? { pending.isEmpty ? receive(fd) : pending.removeFirst() }
        while let message = next() {
            switch message.command {
            case Self.cnxn:
                maxData = max(256, min(Int(message.arg1), 256 * 1024))
                if script.refuseAuthorization {
                    send(fd, Self.auth, 1, 0, (0..<20).map { _ in UInt8.random(in: 0...255) })
                } else {
                    send(fd, Self.cnxn, Self.version, UInt32(256 * 1024), bannerBytes)
                }
            case Self.auth:
                // A signature (2) is never accepted; a public key (3) waits for the phone's
                // prompt, which nobody answers: the server lists it `unauthorized`.
                if message.arg0 == 2 { send(fd, Self.auth, 1, 0, (0..<20).map { _ in UInt8.random(in: 0...255) }) }
            case Self.open:
                let localId = nextId
                nextId += 1
                let service = String(decoding: message.payload.prefix { $0 != 0 }, as: UTF8.self)
                if service == "sync:", let partition = script.dataPartition {
                    syncSessions[localId] = SimulatedDataPartition.SyncSession(partition)
                    send(fd, Self.okay, localId, message.arg0)
                    continue
                }
                guard let (answer, v2) = answer(to: service) else {
                    send(fd, Self.clse, 0, message.arg0)
                    continue
                }
                send(fd, Self.okay, localId, message.arg0)
                var data: [UInt8] = []
                if v2 {
                    func frame(_ id: UInt8, _ bytes: [UInt8]) -> [UInt8] {
                        let n = UInt32(bytes.count)
                        return [id, UInt8(n & 0xff), UInt8(n >> 8 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 24)] + bytes
                    }
                    if let binary = answer.binaryStdout {
                        data += frame(1, binary)
                    } else if !answer.stdout.isEmpty {
                        data += frame(1, Array(answer.stdout.utf8))
                    }
                    if !answer.stderr.isEmpty { data += frame(2, Array(answer.stderr.utf8)) }
                    data += frame(3, [answer.exitCode])
                } else {
                    data = (answer.binaryStdout ?? Array(answer.stdout.utf8)) + Array(answer.stderr.utf8)
                }
                guard let closed = stream(data, fd: fd, localId: localId, remoteId: message.arg0, maxData: maxData, pending: &pending) else { return }
                if !closed { send(fd, Self.clse, localId, message.arg0) }
                if let restart = answer.reboot {
                    reboot(after: restart.seconds, into: restart.state)
                    return
                }
            case Self.wrte:
                send(fd, Self.okay, message.arg1, message.arg0)
                if let session = syncSessions[message.arg1] {
                    let answer = session.feed(message.payload)
                    guard let closed = stream(answer, fd: fd, localId: message.arg1, remoteId: message.arg0, maxData: maxData, pending: &pending) else { return }
                    if closed || session.finished {
                        syncSessions[message.arg1] = nil
                        if !closed { send(fd, Self.clse, message.arg1, message.arg0) }
                    }
                }
            case Self.clse:
                // The host closed a stream: a SEND in progress is dropped (adbd unlinks it).
                syncSessions[message.arg1] = nil
            default:
                continue
            }
        }
    }

    /// Sends `data` on a stream in WRTE messages of at most `maxData`, each waiting for the
    /// server's OKAY (anything else that arrives is kept in `pending`). Returns whether the
    /// server closed the stream, or nil when the connection is gone.
    private func stream(_ data: [UInt8], fd: Int32, localId: UInt32, remoteId: UInt32, maxData: Int, pending: inout [Message]) -> Bool? {
        var offset = 0
        while offset < data.count {
            let chunk = Array(data[offset..<min(data.count, offset + maxData)])
            guard send(fd, Self.wrte, localId, remoteId, chunk) else { return nil }
            offset += chunk.count
            while true {
                guard let reply = receive(fd) else { return nil }
                if reply.command == Self.okay, reply.arg1 == localId { break }
                if reply.command == Self.clse, reply.arg1 == localId { return true }
                pending.append(reply)
            }
        }
        return false
    }

    /// The answer to a service, and whether it is shell v2; nil for services it does not offer.
    private func answer(to service: String) -> (Answer, Bool)? {
        let v2: Bool
        let command: String
        if service.hasPrefix("shell,v2,raw:") {
            (v2, command) = (true, String(service.dropFirst("shell,v2,raw:".count)))
        } else if service.hasPrefix("shell,v2:") {
            (v2, command) = (true, String(service.dropFirst("shell,v2:".count)))
        } else if service.hasPrefix("shell:") {
            (v2, command) = (false, String(service.dropFirst("shell:".count)))
        } else {
            return nil
        }
        if script.refuseShell { return nil }
        let state = shared.withLock { s in
            s.commands.append(command)
            return s.state
        }
        if let partition = script.dataPartition, let found = partition.shell(command) { return (found, v2) }
        let table = script.states[state] ?? [:]
        if let found = table[command] { return (found, v2) }
        // Without shell v2 the client appends `; echo MARKER$?`: answer the command itself.
        if !v2, let range = command.range(of: "; echo "), let found = table[String(command[..<range.lowerBound])] {
            let marker = command[range.upperBound...].replacingOccurrences(of: "$?", with: String(found.exitCode))
            var echoed = found
            echoed.stdout += marker + "\n"
            return (echoed, v2)
        }
        let name = command.split(separator: " ").first.map(String.init) ?? command
        return (Answer(stderr: "/system/bin/sh: \(name): inaccessible or not found\n", exitCode: 127), v2)
    }

    /// Drops every connection and refuses new ones for `seconds`; then answers as `state`.
    public func reboot(after seconds: Double, into state: String?) {
        let open = shared.withLock { s in
            s.downUntil = Date().addingTimeInterval(seconds)
            if let state { s.state = state } else { s.gone = true }
            return s.connections
        }
        if let state, script.wipesData.contains(state) { script.dataPartition?.factoryReset() }
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
    }
}
