import LetheCore
import Synchronization

/// A `CommandTransport` that answers from a script: recorded response bytes or failures per
/// command name. It records what was sent, so a test can check the exact CDB or opcode.
public final class ScriptedTransport: CommandTransport {
    /// One scripted answer.
    public enum Reply: Sendable {
        /// Data-in bytes, no sense.
        case data([UInt8])
        /// A full response: data-in bytes, sense (ATA registers), NVMe completion.
        case response(CommandResponse)
        /// The command fails with this status text, errno, sense bytes or NVMe status.
        case failure(status: String, errno: ErrorNumber? = nil, sense: [UInt8] = [], nvmeStatus: Int? = nil)
    }

    public let path: String
    private struct State {
        var replies: [String: [Reply]]
        var sent: [DeviceCommand] = []
    }
    private let state: Mutex<State>
    private let effects: [String: @Sendable () -> Void]

    /// Creates a transport for `path` answering `replies[command.name]`; a command without a
    /// reply fails with "not scripted".
    public init(path: String = "/dev/scripted", replies: [String: Reply]) {
        self.path = path
        state = Mutex(State(replies: replies.mapValues { [$0] }))
        effects = [:]
    }

    /// Creates a transport whose answers to a command come in order (the last one repeats, as
    /// a status poll that keeps saying the same), and whose `effects` run when a command of
    /// that name succeeds (the in-memory device changes as the drive's erase would change it).
    public init(path: String = "/dev/scripted", sequences: [String: [Reply]], effects: [String: @Sendable () -> Void] = [:]) {
        self.path = path
        state = Mutex(State(replies: sequences))
        self.effects = effects
    }

    /// The commands sent, in order.
    public var sent: [DeviceCommand] { state.withLock { $0.sent } }

    /// The names of the commands sent, in order.
    public var sentNames: [String] { sent.map(\.name) }

    public func send(_ command: DeviceCommand) throws(CommandFailure) -> CommandResponse {
        let reply: Reply? = state.withLock { state in
            state.sent.append(command)
            guard var queue = state.replies[command.name], let first = queue.first else { return nil }
            if queue.count > 1 {
                queue.removeFirst()
                state.replies[command.name] = queue
            }
            return first
        }
        switch reply {
        case .data(let bytes):
            effects[command.name]?()
            return CommandResponse(data: bytes)
        case .response(let response):
            effects[command.name]?()
            return response
        case .failure(let status, let errno, let sense, let nvmeStatus):
            throw CommandFailure(command: command.name, path: path, errno: errno, status: status, sense: sense, nvmeStatus: nvmeStatus)
        case nil:
            throw CommandFailure(command: command.name, path: path, status: "not scripted")
        }
    }
}

/// Parsers for dumps as people post them.
public enum HexDump {
    /// 16-bit words from `hdparm --Istdout` (8 words a line) or CrystalDiskInfo's
    /// IDENTIFY_DEVICE table (`000: 0040 3FFF …`, a header row first), as little-endian bytes.
    public static func ataWords(_ text: String) -> [UInt8] {
        var words: [UInt16] = []
        for line in text.split(separator: "\n") {
            var body = Substring(line)
            if let colon = body.firstIndex(of: ":") {
                // "000: ..." rows carry a label; "/dev/sda:" lines are headers.
                guard body[..<colon].allSatisfy(\.isNumber) else { continue }
                body = body[body.index(after: colon)...]
            }
            let fields = body.split(separator: " ")
            guard !fields.isEmpty, fields.allSatisfy({ $0.count == 4 }) else { continue }
            let parsed = fields.compactMap { UInt16($0, radix: 16) }
            guard parsed.count == fields.count else { continue }
            words += parsed
        }
        return words.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
    }
}
