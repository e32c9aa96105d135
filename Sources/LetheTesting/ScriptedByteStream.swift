import LetheCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A ``ByteStream`` that answers from a script: what a server would send back, all at once,
/// then the end of the stream. It records what was written, so a test can check the exact
/// request bytes. With `stall`, it never answers (reads time out at their deadline).
public final class ScriptedByteStream: ByteStream {
    private struct State {
        var pending: [UInt8]
        var written: [UInt8] = []
        var closed = false
    }
    private let state: Mutex<State>
    private let stall: Bool

    /// A stream that will answer `reply` (bytes) after the request.
    public init(reply: [UInt8], stall: Bool = false) {
        state = Mutex(State(pending: reply))
        self.stall = stall
    }

    /// A stream that will answer `reply` (text).
    public convenience init(_ reply: String, stall: Bool = false) { self.init(reply: Array(reply.utf8), stall: stall) }

    /// Everything written so far, as text.
    public var written: String { String(decoding: state.withLock { $0.written }, as: UTF8.self) }

    public func write(_ bytes: [UInt8], deadline: ContinuousClock.Instant) throws(LetheError) {
        try state.withLock { s throws(LetheError) in
            guard !s.closed else { throw LetheError(.ioFailure, path: "scripted", "write after close") }
            s.written += bytes
        }
    }

    public func read(upTo count: Int, deadline: ContinuousClock.Instant) throws(LetheError) -> [UInt8] {
        if stall {
            while ContinuousClock.now < deadline { try? awaitSleep() }
            throw LetheError(.timedOut, path: "scripted", "no answer in time")
        }
        return state.withLock { s in
            let chunk = Array(s.pending.prefix(count))
            s.pending.removeFirst(chunk.count)
            return chunk
        }
    }

    public func close() { state.withLock { $0.closed = true } }

    private func awaitSleep() throws {
        var request = timespec(tv_sec: 0, tv_nsec: 10_000_000)
        nanosleep(&request, nil)
    }
}
