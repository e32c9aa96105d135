import Foundation
import LetheCore

/// One `sync:` stream carrying file after file, as `adb push` of many files does: each file's
/// SEND, DATA and DONE go out without waiting for the phone's answer to the one before, so the
/// data in flight never drains between files; the answers (OKAY or FAIL, in order) are read as
/// they come and by ``settle()``. A phone that refuses a write answers FAIL and closes the
/// stream: the files after it were never stored. Blocking; one thread.
public final class ADBSyncSession {
    let client: ADBClient
    let serial: String
    let timeout: Duration
    private let stream: any ByteStream
    /// Files sent whose answer has not come yet, in order.
    private var unanswered: [String] = []
    /// Files the phone answered OKAY since the last ``settle()``.
    private var stored: [String] = []

    /// Opens the stream.
    public init(_ client: ADBClient, serial: String, timeout: Duration = .seconds(60)) throws(LetheError) {
        self.client = client
        self.serial = serial
        self.timeout = timeout
        stream = try client.openSync(serial: serial, timeout: timeout)
    }

    /// Closes the stream (answers still due are lost: call ``settle()`` first).
    public func close() { stream.close() }

    /// Sends a file of `size` bytes to `path`. `produce` fills each chunk with the bytes at its
    /// offset in the file; `sent` is told the bytes sent so far and stops the transfer by
    /// returning false (thrown as `.cancelled`). A FAIL that arrives meanwhile (for this file
    /// or one before it: no space, an I/O error) is thrown as `.ioFailure` naming that file;
    /// the phone deletes its partial file. `timeout` bounds each network write.
    public func send(
        path: String, size: UInt64, mode: Int = 0o600, produce: (UnsafeMutableRawBufferPointer, UInt64) -> Void, sent: (UInt64) -> Bool
    ) throws(LetheError) {
        let header = Array("\(path),\(mode)".utf8)
        unanswered.append(path)
        try stream.write(ADBClient.syncHeader("SEND", header.count) + header, deadline: ContinuousClock.now + timeout)
        // Sixteen chunks (1 MiB) per network write: fewer system calls.
        let batch = 16
        var message = [UInt8](repeating: 0, count: batch * (8 + ADBClient.syncChunk))
        var offset: UInt64 = 0
        var sinceCheck: UInt64 = 0
        while offset < size {
            var used = 0
            for _ in 0..<batch where offset < size {
                let length = Int(min(UInt64(ADBClient.syncChunk), size - offset))
                message.withUnsafeMutableBytes { raw in
                    ADBClient.putHeader("DATA", length, into: raw, at: used)
                    produce(UnsafeMutableRawBufferPointer(rebasing: raw[(used + 8)..<(used + 8 + length)]), offset)
                }
                used += 8 + length
                offset += UInt64(length)
            }
            // A full batch goes as it is; only the last one is cut to size.
            try stream.write(used == message.count ? message : Array(message[0..<used]), deadline: ContinuousClock.now + timeout)
            sinceCheck += UInt64(used)
            // A phone that fails a write says so at once: look every 8 MiB rather than sending
            // the rest of the file into its drain.
            if sinceCheck >= 8 << 20 {
                sinceCheck = 0
                try readAnswers(waiting: false)
            }
            guard sent(offset) else { throw LetheError(.cancelled, path: "\(serial): \(path)", "stopped while sending") }
        }
        try stream.write(ADBClient.syncHeader("DONE", Int(Date().timeIntervalSince1970)), deadline: ContinuousClock.now + timeout)
    }

    /// Waits for every answer still due; returns the files stored since the last call, in order.
    public func settle() throws(LetheError) -> [String] {
        try readAnswers(waiting: true)
        defer { stored = [] }
        return stored
    }

    /// The files answered OKAY so far and not yet returned by ``settle()``.
    public var storedSoFar: [String] { stored }

    /// Reads the answers that have come (all that are due, when `waiting`).
    private func readAnswers(waiting: Bool) throws(LetheError) {
        while let path = unanswered.first {
            let what = "\(serial): \(path)"
            let header: [UInt8]
            if waiting {
                header = try stream.read(exactly: 8, deadline: ContinuousClock.now + timeout, what: what)
            } else {
                let first: [UInt8]
                do {
                    first = try stream.read(upTo: 8, deadline: ContinuousClock.now)
                } catch where error.code == .timedOut {
                    return
                }
                guard !first.isEmpty else { throw LetheError(.deviceVanished, path: what, "the phone closed the file transfer (unplugged?)") }
                header = first.count == 8 ? first : first + (try stream.read(exactly: 8 - first.count, deadline: ContinuousClock.now + timeout, what: what))
            }
            unanswered.removeFirst()
            if let failure = try ADBClient.failure(header, stream, deadline: ContinuousClock.now + timeout, what: what) { throw failure }
            stored.append(path)
        }
    }
}
