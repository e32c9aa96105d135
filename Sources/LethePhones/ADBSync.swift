import Foundation
import LetheCore

/// The phone's file service (`sync:`, the protocol of `adb push` and `adb pull`), and shell
/// output as bytes. Requests are a four-letter id and a little-endian u32 (a length, or a
/// time); `SEND path,mode` is followed by `DATA` chunks of at most 64 KiB and `DONE mtime`,
/// answered `OKAY` or `FAIL message`; `RECV path` is answered with `DATA` chunks and `DONE`.
extension ADBClient {
    /// The largest DATA chunk the protocol allows.
    public static let syncChunk = 64 * 1024

    /// Writes a file of `size` bytes at `path` on the phone and waits for the phone's answer
    /// (see ``ADBSyncSession/send(path:size:mode:produce:sent:)``).
    public func push(
        serial: String, path: String, size: UInt64, mode: Int = 0o600, timeout: Duration = .seconds(60),
        produce: (UnsafeMutableRawBufferPointer, UInt64) -> Void, sent: (UInt64) -> Bool
    ) throws(LetheError) {
        let session = try ADBSyncSession(self, serial: serial, timeout: timeout)
        defer { session.close() }
        try session.send(path: path, size: size, mode: mode, produce: produce, sent: sent)
        _ = try session.settle()
    }

    /// Reads the file at `path`, handing each chunk (at most 64 KiB) to `consume` with its
    /// offset; `consume` stops the transfer by returning false.
    public func pull(
        serial: String, path: String, timeout: Duration = .seconds(60), consume: ([UInt8], UInt64) -> Bool
    ) throws(LetheError) {
        let what = "\(serial): \(path)"
        let stream = try openSync(serial: serial, timeout: timeout)
        defer { stream.close() }
        let name = Array(path.utf8)
        try stream.write(Self.syncHeader("RECV", name.count) + name, deadline: ContinuousClock.now + timeout)
        var offset: UInt64 = 0
        while true {
            let deadline = ContinuousClock.now + timeout
            let header = try stream.read(exactly: 8, deadline: deadline, what: what)
            let id = String(decoding: header[0..<4], as: UTF8.self)
            let length = Int(Self.word(header, 4))
            switch id {
            case "DATA":
                guard length <= Self.syncChunk else { throw LetheError(.unexpectedOutput, path: what, "a DATA chunk of \(length) bytes (at most 65536)") }
                let data = try stream.read(exactly: length, deadline: deadline, what: what)
                guard consume(data, offset) else { return }
                offset += UInt64(length)
            case "DONE":
                return
            case "FAIL":
                let text = String(decoding: try stream.read(exactly: min(length, 4096), deadline: deadline, what: what), as: UTF8.self)
                throw LetheError(.ioFailure, path: what, "the phone could not read it: \(text)")
            default:
                throw LetheError(.unexpectedOutput, path: what, "the sync service answered \"\(id)\", not DATA, DONE or FAIL")
            }
        }
    }

    /// Runs `command` with shell v2 and returns its stdout as bytes (binary output, `dd`).
    /// Throws `.unsupported` when the phone's adbd has no shell v2 (Android 6 and older).
    public func shellBytes(serial: String, _ command: String, timeout: Duration? = nil) throws(LetheError) -> (stdout: [UInt8], stderr: String, exitCode: Int32) {
        let deadline = ContinuousClock.now + (timeout ?? self.timeout)
        guard try features(serial: serial).contains("shell_v2") else {
            throw LetheError(.unsupported, path: serial, "the phone's adbd has no shell v2 (Android 7 or later), so binary output cannot be read")
        }
        let stream = try open("host:transport:\(serial)", deadline: deadline, device: serial)
        defer { stream.close() }
        try request(stream, "shell,v2,raw:\(command)", deadline: deadline, device: serial)
        let result = try Self.readShellV2Frames(stream, deadline: deadline, what: "\(serial): \(command)")
        return (result.stdout, String(decoding: result.stderr, as: UTF8.self), result.exitCode)
    }

    // MARK: - Protocol

    /// A `sync:` stream to the phone.
    func openSync(serial: String, timeout: Duration) throws(LetheError) -> any ByteStream {
        let deadline = ContinuousClock.now + timeout
        let stream = try open("host:transport:\(serial)", deadline: deadline, device: serial)
        do {
            try request(stream, "sync:", deadline: deadline, device: serial)
        } catch {
            stream.close()
            throw error
        }
        return stream
    }

    /// Nil for OKAY; the phone's FAIL message as an error; anything else is unexpected.
    static func failure(_ header: [UInt8], _ stream: any ByteStream, deadline: ContinuousClock.Instant, what: String) throws(LetheError) -> LetheError? {
        let id = String(decoding: header[0..<4], as: UTF8.self)
        let length = Int(word(header, 4))
        switch id {
        case "OKAY":
            return nil
        case "FAIL":
            let text = String(decoding: try stream.read(exactly: min(length, 4096), deadline: deadline, what: what), as: UTF8.self)
            return LetheError(.ioFailure, path: what, "the phone refused the write: \(text)")
        default:
            return LetheError(.unexpectedOutput, path: what, "the sync service answered \"\(id)\", not OKAY or FAIL")
        }
    }

    static func word(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }

    static func syncHeader(_ id: String, _ value: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 8)
        bytes.withUnsafeMutableBytes { putHeader(id, value, into: $0, at: 0) }
        return bytes
    }

    static func putHeader(_ id: String, _ value: Int, into raw: UnsafeMutableRawBufferPointer, at offset: Int) {
        for (i, byte) in id.utf8.prefix(4).enumerated() { raw[offset + i] = byte }
        for i in 0..<4 { raw[offset + 4 + i] = UInt8(truncatingIfNeeded: UInt32(truncatingIfNeeded: value) >> (8 * UInt32(i))) }
    }
}
