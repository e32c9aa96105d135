import LetheCore
import Synchronization

/// A `CommandTransport` that answers from a script: recorded response bytes or failures per
/// command name. It records what was sent, so a test can check the exact CDB or opcode.
public final class ScriptedTransport: CommandTransport {
    /// One scripted answer.
    public enum Reply: Sendable {
        case data([UInt8])
        case failure(status: String, errno: ErrorNumber? = nil)
    }

    public let path: String
    private let replies: [String: Reply]
    private let log = Mutex<[DeviceCommand]>([])

    /// Creates a transport for `path` answering `replies[command.name]`; a command without a
    /// reply fails with "not scripted".
    public init(path: String = "/dev/scripted", replies: [String: Reply]) {
        self.path = path
        self.replies = replies
    }

    /// The commands sent, in order.
    public var sent: [DeviceCommand] { log.withLock { $0 } }

    public func execute(_ command: DeviceCommand) throws(CommandFailure) -> [UInt8] {
        log.withLock { $0.append(command) }
        switch replies[command.name] {
        case .data(let bytes):
            return bytes
        case .failure(let status, let errno):
            throw CommandFailure(command: command.name, path: path, errno: errno, status: status)
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
