/// The daemon's log lines follow one convention, `DEVICE: job ID: what happened` (or
/// `DEVICE: what happened`); this reads the device and the job back out of a line, so the
/// journal can carry them as fields (`journalctl -u lethe JOB_ID=…`).
public struct LogLine: Sendable, Equatable {
    /// The device path the line is about (`/dev/sdb`, `ios:UDID`, `adb:SERIAL`), if any.
    public var device: String?
    /// The job id, if the line names one.
    public var jobId: String?

    /// Reads `line`; a line that is not about a device gives two nils.
    public init(_ line: String) {
        let parts = line.split(separator: ": ", maxSplits: 2, omittingEmptySubsequences: false)
        guard let first = parts.first, Self.isDevice(first) else { return }
        device = String(first)
        if parts.count > 1, parts[1].hasPrefix("job ") {
            let id = parts[1].dropFirst(4)
            if ReportIDShape.isValid(id) { jobId = String(id) }
        }
    }

    static func isDevice(_ text: Substring) -> Bool {
        !text.contains(" ") && (text.hasPrefix("/dev/") || text.hasPrefix("ios:") || text.hasPrefix("adb:") || text.hasPrefix("usb:"))
    }
}

/// Job ids are ULIDs: 26 characters of Crockford base32.
enum ReportIDShape {
    static func isValid(_ text: Substring) -> Bool {
        text.count == 26 && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) }
    }
}
