import Foundation
import LetheCore

/// One phone as the adb server lists it (`host:devices-l`).
public struct ADBDevice: Codable, Sendable, Equatable {
    public var serial: String
    /// `device` (ready), `unauthorized` (USB debugging not approved on the phone), `offline`,
    /// `authorizing`, `connecting`, `recovery`, `sideload`, `bootloader`, `no permissions`…
    public var state: String
    public var product: String?
    public var model: String?
    public var device: String?
    public var transportId: Int?

    /// A device.
    public init(serial: String, state: String, product: String? = nil, model: String? = nil, device: String? = nil, transportId: Int? = nil) {
        self.serial = serial
        self.state = state
        self.product = product
        self.model = model
        self.device = device
        self.transportId = transportId
    }

    /// What the technician should see for this state.
    public var stateDescription: String {
        switch state {
        case "device": "ready"
        case "unauthorized": "needs USB-debugging approval: unlock the phone and accept the prompt (tick \"Always allow\")"
        case "offline": "offline: re-plug the cable; if it stays offline, revoke USB-debugging authorizations on the phone"
        case "authorizing", "connecting": "connecting"
        case "no permissions": "no permission to open the USB device (udev rules for adb)"
        default: state
        }
    }
}

/// What a shell command printed and how it ended.
public struct ShellResult: Sendable, Equatable {
    public var stdout: String
    public var stderr: String
    /// The exit status (shell v2), or nil when the phone's adbd could not report it.
    public var exitCode: Int32?

    /// A result.
    public init(stdout: String, stderr: String = "", exitCode: Int32?) {
        self.stdout = stdout
        self.stderr = stderr
        self.exitCode = exitCode
    }
}

/// A client of the adb server's host protocol (the server on 127.0.0.1:5037, or the port in
/// `ANDROID_ADB_SERVER_PORT`). Requests are four hex digits of length and the service name;
/// answers are `OKAY` or `FAIL` and a hex4-length message. Every call has a deadline. Blocking:
/// call it from a thread of its own.
public final class ADBClient: Sendable {
    /// Opens a connection to the server (TCP in production, a fake in tests).
    public typealias Connector = @Sendable (_ timeout: Duration) throws(LetheError) -> any ByteStream
    /// Starts the server when nothing listens (`adb start-server`); throws when it cannot.
    public typealias Starter = @Sendable () throws(LetheError) -> Void

    let connector: Connector
    let starter: Starter?
    /// `127.0.0.1:5037`, for messages.
    public let server: String
    /// The time limit of each call, unless the call gives its own.
    public let timeout: Duration

    /// A client.
    public init(server: String, timeout: Duration = .seconds(10), connector: @escaping Connector, starter: Starter? = nil) {
        self.server = server
        self.timeout = timeout
        self.connector = connector
        self.starter = starter
    }

    // MARK: - Host requests

    /// The server's protocol version (`host:version`), e.g. 41.
    public func version() throws(LetheError) -> Int {
        let deadline = ContinuousClock.now + timeout
        let stream = try open("host:version", deadline: deadline)
        defer { stream.close() }
        let text = try readString(stream, deadline: deadline, what: "host:version")
        guard let version = Int(text, radix: 16) else {
            throw LetheError(.unexpectedOutput, path: "host:version", "the adb server at \(server) answered \"\(text.prefix(40))\", not a version")
        }
        return version
    }

    /// The phones the server sees, with their states (`host:devices-l`).
    public func devices() throws(LetheError) -> [ADBDevice] {
        let deadline = ContinuousClock.now + timeout
        let stream = try open("host:devices-l", deadline: deadline)
        defer { stream.close() }
        return Self.parseDevices(try readString(stream, deadline: deadline, what: "host:devices-l"))
    }

    /// `SERIAL  device product:x model:y device:z transport_id:3` lines.
    public static func parseDevices(_ text: String) -> [ADBDevice] {
        var found: [ADBDevice] = []
        for line in text.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard words.count >= 2 else { continue }
            var device = ADBDevice(serial: words[0], state: words[1])
            var rest = words.dropFirst(2)
            // `no permissions` is two words, with a hint after it in brackets.
            if device.state == "no", rest.first == "permissions" {
                device.state = "no permissions"
                rest = rest.dropFirst()
            }
            for word in rest {
                let pair = word.split(separator: ":", maxSplits: 1).map(String.init)
                guard pair.count == 2 else { continue }
                switch pair[0] {
                case "product": device.product = pair[1]
                case "model": device.model = pair[1]
                case "device": device.device = pair[1]
                case "transport_id": device.transportId = Int(pair[1])
                default: break
                }
            }
            found.append(device)
        }
        return found
    }

    /// Follows the server's device list (`host:track-devices`): calls `onChange` with the full
    /// list at once and after every change, until `shouldStop` says so (checked every second)
    /// or the server goes away (thrown). Blocks.
    public func trackDevices(shouldStop: @Sendable () -> Bool, onChange: ([ADBDevice]) -> Void) throws(LetheError) {
        let stream = try open("host:track-devices", deadline: ContinuousClock.now + timeout)
        defer { stream.close() }
        while !shouldStop() {
            let text: String
            do {
                text = try readString(stream, deadline: ContinuousClock.now + .seconds(1), what: "host:track-devices")
            } catch where error.code == .timedOut {
                continue
            }
            onChange(Self.parseDevices(text))
        }
    }

    /// The features the phone's adbd offers (`shell_v2`, `cmd`, …).
    public func features(serial: String) throws(LetheError) -> Set<String> {
        let deadline = ContinuousClock.now + timeout
        let stream = try open("host-serial:\(serial):features", deadline: deadline)
        defer { stream.close() }
        let text = try readString(stream, deadline: deadline, what: "features of \(serial)")
        return Set(text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) })
    }

    // MARK: - Shell

    /// Runs `command` on the phone. With shell v2 (every adbd since Android 7) stdout, stderr
    /// and the exit status come separately; without it, the status is read from a marker the
    /// command echoes. Throws when the phone vanishes, is unauthorized, or the time runs out.
    public func shell(serial: String, _ command: String, timeout: Duration? = nil) throws(LetheError) -> ShellResult {
        let deadline = ContinuousClock.now + (timeout ?? self.timeout)
        let v2 = (try? features(serial: serial))?.contains("shell_v2") ?? false
        let stream = try open("host:transport:\(serial)", deadline: deadline, device: serial)
        defer { stream.close() }
        if v2 {
            try request(stream, "shell,v2,raw:\(command)", deadline: deadline, device: serial)
            return try Self.readShellV2(stream, deadline: deadline, what: "\(serial): \(command)")
        }
        let marker = "LETHE-EXIT:"
        try request(stream, "shell:\(command); echo \(marker)$?", deadline: deadline, device: serial)
        var output: [UInt8] = []
        while true {
            let chunk = try stream.read(upTo: 65536, deadline: deadline)
            if chunk.isEmpty { break }
            output += chunk
        }
        var text = String(decoding: output, as: UTF8.self)
        var code: Int32?
        if let range = text.range(of: marker, options: .backwards) {
            code = Int32(text[range.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines))
            text = String(text[..<range.lowerBound])
        }
        return ShellResult(stdout: text, exitCode: code)
    }

    /// Shell v2 frames: one byte id (1 stdout, 2 stderr, 3 exit), four bytes little-endian
    /// length, data. The exit frame ends the command.
    static func readShellV2(_ stream: any ByteStream, deadline: ContinuousClock.Instant, what: String) throws(LetheError) -> ShellResult {
        let frames = try readShellV2Frames(stream, deadline: deadline, what: what)
        return ShellResult(stdout: String(decoding: frames.stdout, as: UTF8.self), stderr: String(decoding: frames.stderr, as: UTF8.self), exitCode: frames.exitCode)
    }

    /// Shell v2 frames as bytes, until the exit frame.
    static func readShellV2Frames(_ stream: any ByteStream, deadline: ContinuousClock.Instant, what: String) throws(LetheError) -> (stdout: [UInt8], stderr: [UInt8], exitCode: Int32) {
        var stdout: [UInt8] = [], stderr: [UInt8] = []
        while true {
            let header = try stream.read(upTo: 5, deadline: deadline)
            if header.isEmpty {
                throw LetheError(.deviceVanished, path: what, "the phone closed the shell before it reported an exit status (unplugged or rebooting?)")
            }
            let full = header.count == 5 ? header : header + (try stream.read(exactly: 5 - header.count, deadline: deadline, what: what))
            let length = Int(full[1]) | Int(full[2]) << 8 | Int(full[3]) << 16 | Int(full[4]) << 24
            guard length <= 16 << 20 else { throw LetheError(.unexpectedOutput, path: what, "a shell frame of \(length) bytes: not shell v2") }
            let data = length > 0 ? try stream.read(exactly: length, deadline: deadline, what: what) : []
            switch full[0] {
            case 1: stdout += data
            case 2: stderr += data
            case 3:
                guard let code = data.first else { throw LetheError(.unexpectedOutput, path: what, "an exit frame without a status") }
                return (stdout, stderr, Int32(code))
            default: continue
            }
        }
    }

    // MARK: - Protocol

    /// Connects (starting the server once when nothing listens) and sends `service`.
    func open(_ service: String, deadline: ContinuousClock.Instant, device: String? = nil) throws(LetheError) -> any ByteStream {
        let stream: any ByteStream
        do {
            stream = try connector(max(.milliseconds(100), deadline - ContinuousClock.now))
        } catch where error.code == .unavailable {
            guard let starter else { throw error }
            try starter()
            stream = try connector(max(.milliseconds(100), deadline - ContinuousClock.now))
        }
        do {
            try request(stream, service, deadline: deadline, device: device)
        } catch {
            stream.close()
            throw error
        }
        return stream
    }

    /// Sends one request and reads `OKAY`, or turns `FAIL` into an error.
    func request(_ stream: any ByteStream, _ service: String, deadline: ContinuousClock.Instant, device: String?) throws(LetheError) {
        let payload = Array(service.utf8)
        guard payload.count <= 0xffff else { throw LetheError(.invalidArgument, path: service, "an adb request is at most 65535 bytes") }
        try stream.write(Array(Self.hex4(payload.count).utf8) + payload, deadline: deadline)
        let status = try stream.read(exactly: 4, deadline: deadline, what: service)
        switch String(decoding: status, as: UTF8.self) {
        case "OKAY":
            return
        case "FAIL":
            let message = (try? readString(stream, deadline: deadline, what: service)) ?? "(no reason given)"
            throw Self.failure(message, service: service, device: device, server: server)
        default:
            throw LetheError(.unexpectedOutput, path: server, "\(service): the adb server answered \(status), not OKAY or FAIL: is something else listening on \(server)?")
        }
    }

    /// A `FAIL` message as an error a technician can act on.
    static func failure(_ message: String, service: String, device: String?, server: String) -> LetheError {
        let path = device ?? service
        if message.contains("unauthorized") {
            return LetheError(.unauthorized, path: path, "\(message): unlock the phone and accept the USB-debugging prompt")
        }
        if message.contains("not found") || message.contains("offline") || message.contains("no devices") {
            return LetheError(.deviceVanished, path: path, "the adb server says: \(message)")
        }
        return LetheError(.unexpectedOutput, path: path, "the adb server at \(server) refused \(service): \(message)")
    }

    /// A hex4-length string.
    func readString(_ stream: any ByteStream, deadline: ContinuousClock.Instant, what: String) throws(LetheError) -> String {
        let header = try stream.read(exactly: 4, deadline: deadline, what: what)
        guard let length = Int(String(decoding: header, as: UTF8.self), radix: 16) else {
            throw LetheError(.unexpectedOutput, path: what, "a length of \"\(String(decoding: header, as: UTF8.self))\" is not four hex digits")
        }
        return String(decoding: try stream.read(exactly: length, deadline: deadline, what: what), as: UTF8.self)
    }

    static func hex4(_ value: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
