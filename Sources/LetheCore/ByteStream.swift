/// A connected, blocking byte stream (a TCP connection to the adb server) with deadlines.
/// Implemented by LetheLinux (sockets) and by fakes; protocol code above it stays pure.
public protocol ByteStream: AnyObject, Sendable {
    /// Writes all of `bytes`, or throws (the peer went away, the deadline passed).
    func write(_ bytes: [UInt8], deadline: ContinuousClock.Instant) throws(LetheError)
    /// Reads at most `count` bytes; an empty result is the end of the stream. Throws
    /// `.timedOut` when nothing arrives before the deadline.
    func read(upTo count: Int, deadline: ContinuousClock.Instant) throws(LetheError) -> [UInt8]
    /// Closes the stream; later calls fail.
    func close()
}

extension ByteStream {
    /// Exactly `count` bytes, or an error naming `what` (end of stream is `.unexpectedOutput`).
    public func read(exactly count: Int, deadline: ContinuousClock.Instant, what: String) throws(LetheError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        while bytes.count < count {
            let chunk = try read(upTo: count - bytes.count, deadline: deadline)
            guard !chunk.isEmpty else {
                throw LetheError(.unexpectedOutput, path: what, "the connection closed after \(bytes.count) of \(count) bytes")
            }
            bytes += chunk
        }
        return bytes
    }
}
