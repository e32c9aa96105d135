import AsyncHTTPClient
import Crypto
import Foundation
import Hummingbird
import LetheCore
import LetheStore
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Where and how records are delivered.
public struct DeliverySettings: Sendable {
    /// The catalog endpoint records are POSTed to.
    public var url: String
    /// The shared secret for the `X-Lethe-Signature` HMAC.
    public var secret: SymmetricKey
    /// This station's id (`X-Lethe-Station`).
    public var station: String
    /// Tries before a record becomes a dead letter.
    public var maxAttempts = 10
    /// First retry delay in seconds; doubles per try, with jitter, up to `maxDelay`.
    public var baseDelay = 1.0
    public var maxDelay = 300.0
    /// Requests in flight at once (records of different devices).
    public var concurrency = 8
    /// Seconds before a request is given up (and retried).
    public var timeout = 10.0

    /// Settings with the defaults above.
    public init(url: String, secret: SymmetricKey, station: String) {
        self.url = url
        self.secret = secret
        self.station = station
    }
}

/// Posts one record to the catalog and says what the answer means: a receipt (delivered), a
/// retry with its backoff, or a dead letter. Shared by the station's delivery and the hub's
/// forwarder, so both read a catalog's answers the same way.
public final class CatalogPoster: Sendable {
    let settings: DeliverySettings
    let client: HTTPClient

    /// A poster with its own HTTP client (shut down by ``shutdown()``).
    public init(settings: DeliverySettings) {
        self.settings = settings
        var configuration = HTTPClient.Configuration()
        let milliseconds = Int64(max(100, settings.timeout * 1000))
        configuration.timeout = .init(connect: .milliseconds(milliseconds), read: .milliseconds(milliseconds))
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, settings.concurrency))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes the HTTP client.
    public func shutdown() async {
        try? await client.shutdown()
    }
    /// Posts one record (its `attempt`th try) and classifies the answer.
    public func post(id: String, body: Data, attempt: Int) async -> Outbox.Result {
        var request = HTTPClientRequest(url: settings.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Idempotency-Key", value: id)
        request.headers.add(name: CatalogSignature.header, value: CatalogSignature.sign(body, secret: settings.secret))
        request.headers.add(name: "X-Lethe-Station", value: settings.station)
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(settings.timeout * 1000)))
            let data = Data(buffer: try await response.body.collect(upTo: 1 << 20))
            return classify(status: Int(response.status.code), retryAfter: response.headers.first(name: "Retry-After"), body: data, id: id, attempt: attempt)
        } catch {
            return retryOrDie("no answer from \(settings.url): \(Self.describe(error))", attempt: attempt, retryAfter: nil)
        }
    }

    /// What an HTTP answer means for the row.
    func classify(status: Int, retryAfter: String?, body: Data, id: String, attempt: Int) -> Outbox.Result {
        let message = Self.message(in: body)
        switch status {
        case 200..<300:
            // The receiver must acknowledge this very record: a proxy's HTML page is not a receipt.
            guard Self.acknowledges(body, recordId: id) else {
                return retryOrDie("HTTP \(status) but a malformed answer (no recordId \(id)): \(message)", attempt: attempt, retryAfter: nil)
            }
            return .delivered
        case 409:
            // "Already stored" counts as delivered only when the catalog says it is this record;
            // any other conflict (another record under the key, a lock, a proxy) is not a receipt.
            guard Self.acknowledges(body, recordId: id) else {
                return .dead(error: "HTTP 409 without a receipt for record \(id): \(message)")
            }
            return .delivered
        case 408, 425, 429, 500..<600:
            return retryOrDie("HTTP \(status): \(message)", attempt: attempt, retryAfter: retryAfter)
        default:
            let hint = status == 401 || status == 403 ? " (is the catalog secret right?)" : ""
            return .dead(error: "HTTP \(status): \(message)\(hint)")
        }
    }

    /// Whether an answer's JSON names this record (`{"recordId": ID}`): a receipt.
    static func acknowledges(_ body: Data, recordId: String) -> Bool {
        (try? JSONSerialization.jsonObject(with: body) as? [String: Any])?["recordId"] as? String == recordId
    }

    func retryOrDie(_ error: String, attempt: Int, retryAfter: String?) -> Outbox.Result {
        guard attempt < settings.maxAttempts else { return .dead(error: "gave up after \(attempt) tries: \(error)") }
        var delay = min(settings.maxDelay, settings.baseDelay * pow(2, Double(attempt - 1))) * Double.random(in: 0.5...1.0)
        if let retryAfter, let seconds = Self.seconds(retryAfter: retryAfter) { delay = max(delay, min(seconds, settings.maxDelay * 4)) }
        return .retry(error: error, after: Date().addingTimeInterval(delay))
    }

    /// Retry-After as seconds: delta-seconds or an HTTP-date.
    static func seconds(retryAfter value: String) -> Double? {
        if let seconds = Double(value.trimmingCharacters(in: .whitespaces)), seconds >= 0 { return seconds }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: value).map { max(0, $0.timeIntervalSinceNow) }
    }

    /// The server's message: `message` or `error` from a JSON body, else the start of the text.
    static func message(in body: Data) -> String {
        if let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
            let text = (object["message"] ?? object["error"]) as? String
        {
            return text
        }
        let text = String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "(empty body)" : text
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout: return "timed out"
            case .remoteConnectionClosed: return "the connection was closed before an answer"
            default: return "\(error)"
            }
        }
        if let error = error as? NIOConnectionError {
            return error.connectionErrors.first.map { describe($0.error) } ?? "cannot resolve \(error.host)"
        }
        if let error = error as? IOError {
            switch error.errnoCode {
            case ECONNREFUSED: return "connection refused (nothing listens there)"
            case ECONNRESET: return "connection reset by the peer"
            case EHOSTUNREACH, ENETUNREACH: return "host unreachable (errno \(error.errnoCode))"
            default: return "\(error)"
            }
        }
        return "\(error)"
    }

}

/// Posts outbox rows to the catalog: at least once per row, each with its Idempotency-Key (the
/// receiver deduplicates, so each arrives exactly once), HMAC-signed, with exponential backoff
/// and jitter (Retry-After honoured), dead letters after `maxAttempts` or on a 4xx.
public final class CatalogDelivery: Sendable {
    let outbox: Outbox
    let settings: DeliverySettings
    let poster: CatalogPoster
    let log: @Sendable (String) -> Void

    /// A delivery over `outbox` with its own HTTP client (shut down by ``shutdown()``).
    public init(outbox: Outbox, settings: DeliverySettings, log: @escaping @Sendable (String) -> Void) {
        self.outbox = outbox
        self.settings = settings
        poster = CatalogPoster(settings: settings)
        self.log = log
    }

    /// Closes the HTTP client.
    public func shutdown() async {
        await poster.shutdown()
    }

    /// One pass over the due rows: posts them (`concurrency` at a time) and records what
    /// happened, a batch per transaction. Returns how many were tried.
    @discardableResult
    public func sweep(now: Date = Date()) async -> Int {
        let rows: [OutboxRow]
        do {
            rows = try outbox.due(now: now, limit: settings.concurrency * 16)
        } catch {
            log("catalog sync: cannot read the outbox: \(error)")
            return 0
        }
        guard !rows.isEmpty else { return 0 }
        var results: [(id: String, result: Outbox.Result)] = []
        await withTaskGroup(of: (String, Outbox.Result).self) { group in
            var next = 0
            func add() {
                guard next < rows.count else { return }
                let row = rows[next]
                next += 1
                group.addTask { (row.id, await self.poster.post(id: row.id, body: Data(row.body.utf8), attempt: row.attempts + 1)) }
            }
            for _ in 0..<min(settings.concurrency, rows.count) { add() }
            for await (id, result) in group {
                results.append((id, result))
                add()
            }
        }
        do {
            try outbox.record(results)
        } catch {
            // Not recorded: the rows stay pending and are posted again (the receiver deduplicates).
            log("catalog sync: results not recorded (they will be sent again): \(error)")
        }
        for (id, result) in results {
            switch result {
            case .delivered: break
            case .retry(let error, let after):
                log("catalog sync: \(id): \(error); next try in \(Int(after.timeIntervalSinceNow.rounded())) s")
            case .dead(let error):
                log("catalog sync: \(id): DEAD LETTER: \(error) (retry with `lethe sync retry \(id)`)")
            }
        }
        return results.count
    }

    /// Sweeps until cancelled or the graceful shutdown: due rows at once, else a nap until the
    /// next row is due (at most `idle` seconds, so new rows go out quickly).
    public func run(idle: Double = 0.5) async {
        while !Task.isCancelled {
            let tried = await sweep()
            if tried > 0 { continue }
            let wait = (try? outbox.nextDue()).flatMap { $0 }.map { min(idle, max(0.01, $0.timeIntervalSinceNow)) } ?? idle
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int(wait * 1000))) }
            } catch {
                return
            }
        }
    }
}

/// The daemon's delivery service (ServiceGroup).
public struct CatalogDeliveryService: Service {
    let delivery: CatalogDelivery

    /// Creates the service.
    public init(delivery: CatalogDelivery) { self.delivery = delivery }

    public func run() async throws {
        await delivery.run()
        await delivery.shutdown()
    }
}
