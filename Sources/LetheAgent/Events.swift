import Foundation
import LetheCore
import Synchronization

/// One thing that changed on the bench, as sent on `GET /api/v1/events` (Server-Sent Events).
public enum BenchEvent: Sendable {
    /// A job was created or changed (progress, step, verdict).
    case job(JobView)
    /// A device was docked.
    case device(DeviceRecord)
    /// A device left.
    case deviceRemoved(path: String)
    /// Nothing happened for a while; keeps proxies and browsers from closing the stream.
    case heartbeat

    /// The event as an SSE frame: `event: NAME`, `data: JSON`, blank line.
    public var frame: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        func data<T: Encodable>(_ value: T) -> String { String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self) }
        switch self {
        case .job(let job): return "event: job\ndata: \(data(job))\n\n"
        case .device(let device): return "event: device\ndata: \(data(device))\n\n"
        case .deviceRemoved(let path): return "event: deviceRemoved\ndata: \(data(["path": path]))\n\n"
        case .heartbeat: return ": heartbeat\n\n"
        }
    }
}

/// Fans bench events out to every open event stream. A slow reader never blocks the bench: each
/// subscriber keeps only its newest events (older progress is superseded anyway).
public final class EventHub: Sendable {
    private let subscribers = Mutex<[UUID: AsyncStream<BenchEvent>.Continuation]>([:])

    /// Creates a hub with no subscribers.
    public init() {}

    /// How many streams are open (for /metrics).
    public var subscriberCount: Int { subscribers.withLock { $0.count } }

    /// Sends `event` to every subscriber.
    public func publish(_ event: BenchEvent) {
        for continuation in subscribers.withLock({ Array($0.values) }) { continuation.yield(event) }
    }

    /// A new stream of events, starting with `initial`. It ends when the consumer stops
    /// iterating (the client went away) or ``finishAll()`` is called.
    public func subscribe(initial: [BenchEvent]) -> AsyncStream<BenchEvent> {
        let id = UUID()
        let (stream, continuation) = AsyncStream.makeStream(of: BenchEvent.self, bufferingPolicy: .bufferingNewest(256))
        for event in initial { continuation.yield(event) }
        continuation.onTermination = { [weak self] _ in _ = self?.subscribers.withLock { $0.removeValue(forKey: id) } }
        subscribers.withLock { $0[id] = continuation }
        return stream
    }

    /// Ends every stream (at shutdown, so open responses complete).
    public func finishAll() {
        for continuation in subscribers.withLock({ Array($0.values) }) { continuation.finish() }
    }
}
