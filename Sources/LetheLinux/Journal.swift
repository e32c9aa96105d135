import Foundation
import LetheCore

/// journald's native protocol: one datagram per entry, `KEY=value` lines (a value holding a
/// newline is sent as `KEY`, newline, its length as 64-bit little-endian, the bytes, newline).
/// Used only when systemd connected stderr to the journal (`$JOURNAL_STREAM` names stderr's
/// device and inode), so fields such as `JOB_ID` reach `journalctl -u lethe JOB_ID=…`.
public struct JournalWriter: Sendable {
    /// journald's socket (`$LETHE_JOURNAL_SOCKET` replaces it, for tests).
    public let socketPath: String

    /// The writer when stderr goes to the journal, else nil (write to stderr as usual).
    public init?(environment: [String: String] = ProcessInfo.processInfo.environment, stderr descriptor: Int32 = STDERR_FILENO) {
        guard let stream = environment["JOURNAL_STREAM"] else { return nil }
        let parts = stream.split(separator: ":")
        var status = stat()
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]), fstat(descriptor, &status) == 0,
            UInt64(status.st_dev) == device, UInt64(status.st_ino) == inode
        else { return nil }
        socketPath = environment["LETHE_JOURNAL_SOCKET"] ?? "/run/systemd/journal/socket"
    }

    /// The datagram for `fields` (names are upper-case letters, digits and `_`; others are
    /// dropped, as journald would).
    public static func encode(_ fields: [(name: String, value: String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (name, value) in fields where !name.isEmpty && name.utf8.allSatisfy({ ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f }) {
            out.append(contentsOf: Array(name.utf8))
            let bytes = Array(value.utf8)
            if bytes.contains(0x0a) {
                out.append(0x0a)
                withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { out.append(contentsOf: $0) }
                out.append(contentsOf: bytes)
            } else {
                out.append(UInt8(ascii: "="))
                out.append(contentsOf: bytes)
            }
            out.append(0x0a)
        }
        return out
    }

    /// Sends one entry; false when journald did not take it (the caller writes to stderr).
    public func send(_ fields: [(name: String, value: String)]) -> Bool {
        if case .sent = UnixDatagram.send(Self.encode(fields), to: socketPath, flags: Int32(MSG_NOSIGNAL)) { return true }
        return false
    }

    /// One log line of the daemon as an entry: the message, priority 6 (info), the identifier,
    /// `DEVICE` and `JOB_ID` when the line names them (``LogLine``), and `BAY` and `SERIAL`
    /// when `label` knows them for that device.
    public func log(
        _ message: String, identifier: String = "lethe", label: (String) -> (bay: String?, serial: String?) = { _ in (nil, nil) }
    ) -> Bool {
        let line = LogLine(message)
        var fields: [(name: String, value: String)] = [("MESSAGE", "\(identifier): \(message)"), ("PRIORITY", "6"), ("SYSLOG_IDENTIFIER", identifier)]
        if let device = line.device {
            fields.append(("DEVICE", device))
            let known = label(device)
            if let bay = known.bay { fields.append(("BAY", bay)) }
            if let serial = known.serial { fields.append(("SERIAL", serial)) }
        }
        if let job = line.jobId { fields.append(("JOB_ID", job)) }
        return send(fields)
    }
}
