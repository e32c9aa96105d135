import Foundation
import LetheCore
import LetheSync
import Logging
import PostgresNIO
import ServiceLifecycle

/// Forwards stored records to the shop's catalog through the hub's outbox in PostgreSQL. Every
/// instance drains the same outbox: a batch is leased with `FOR UPDATE SKIP LOCKED` (so two
/// instances never take the same row at once) for `leaseSeconds`; a row whose instance died
/// comes due again when its lease ends. Each post carries the record id as its Idempotency-Key,
/// so the catalog stores it exactly once even when a lease outlives a slow post.
public final class HubForwarder: Sendable {
    let db: HubDatabase
    let poster: CatalogPoster
    let settings: DeliverySettings
    let instance: String
    let leaseSeconds: Double
    let metrics: HubMetrics?
    let logger: Logger

    /// A forwarder posting to `settings.url` (signed with `settings.secret`).
    public init(database: HubDatabase, settings: DeliverySettings, instance: String, leaseSeconds: Double = 30, metrics: HubMetrics? = nil, logger: Logger) {
        db = database
        poster = CatalogPoster(settings: settings)
        self.settings = settings
        self.instance = instance
        self.leaseSeconds = leaseSeconds
        self.metrics = metrics
        self.logger = logger
    }

    /// Leases due rows, posts them and records the results. Returns how many were tried.
    @discardableResult
    public func sweep() async -> Int {
        let leased: [(String, Int, String)]
        do {
            leased = try await db.rows("lease outbox", """
                WITH due AS (
                    SELECT record_id FROM outbox
                    WHERE state = 'pending' AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())
                    ORDER BY next_attempt_at LIMIT \(settings.concurrency * 8)
                    FOR UPDATE SKIP LOCKED)
                UPDATE outbox o SET lease_until = now() + make_interval(secs => \(leaseSeconds)), leased_by = \(instance)
                FROM due, record r WHERE o.record_id = due.record_id AND r.id = o.record_id
                RETURNING o.record_id, o.attempts, r.body
                """, as: (String, Int, String).self)
        } catch {
            logger.warning("forward: cannot lease the outbox: \(error)")
            return 0
        }
        guard !leased.isEmpty else { return 0 }
        let results = await withTaskGroup(of: (String, Outbox.Result).self) { group in
            var next = 0
            var results: [(String, Outbox.Result)] = []
            func add() {
                guard next < leased.count else { return }
                let (id, attempts, body) = leased[next]
                next += 1
                group.addTask { (id, await self.poster.post(id: id, body: Data(body.utf8), attempt: attempts + 1)) }
            }
            for _ in 0..<min(settings.concurrency, leased.count) { add() }
            for await result in group {
                results.append(result)
                add()
            }
            return results
        }
        for (id, result) in results {
            do {
                try await record(id: id, result: result)
            } catch {
                // Not recorded: the lease ends and the row is posted again (the catalog deduplicates).
                logger.warning("forward: \(id): result not recorded (it will be sent again): \(error)")
            }
        }
        return results.count
    }

    func record(id: String, result: Outbox.Result) async throws {
        let instance = instance
        switch result {
        case .delivered:
            try await db.execute("outbox delivered", """
                UPDATE outbox SET state = 'delivered', delivered_at = now(), attempts = attempts + 1, lease_until = NULL, last_error = NULL
                WHERE record_id = \(id) AND leased_by = \(instance) AND state = 'pending'
                """)
            metrics?.forwarded(result)
        case .retry(let error, let after):
            try await db.execute("outbox retry", """
                UPDATE outbox SET attempts = attempts + 1, next_attempt_at = \(after), lease_until = NULL, last_error = \(error)
                WHERE record_id = \(id) AND leased_by = \(instance) AND state = 'pending'
                """)
            metrics?.forwarded(result)
            logger.info("forward: \(id): \(error); next try at \(after)")
        case .dead(let error):
            try await db.execute("outbox dead", """
                UPDATE outbox SET state = 'dead', attempts = attempts + 1, lease_until = NULL, last_error = \(error)
                WHERE record_id = \(id) AND leased_by = \(instance) AND state = 'pending'
                """)
            metrics?.forwarded(result)
            logger.error("forward: \(id): DEAD LETTER: \(error) (retry with `lethe-hub outbox retry \(id)`)")
        }
    }

    /// Puts dead letters (one, or all) back in the queue. Returns how many.
    public static func retry(database: HubDatabase, id: String?) async throws -> Int {
        let rows = try await database.rows("outbox retry", """
            UPDATE outbox SET state = 'pending', next_attempt_at = now(), attempts = 0, last_error = NULL
            WHERE state = 'dead' AND (\(id)::text IS NULL OR record_id = \(id)) RETURNING record_id
            """, as: String.self)
        return rows.count
    }

    /// Sweeps until cancelled or the graceful shutdown; naps `idle` seconds when nothing is due.
    public func run(idle: Double = 0.2) async {
        while !Task.isCancelled {
            if await sweep() > 0 { continue }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int(idle * 1000))) }
            } catch {
                break
            }
        }
        await poster.shutdown()
    }
}

/// The forwarder as a service.
public struct HubForwarderService: Service {
    let forwarder: HubForwarder

    public init(forwarder: HubForwarder) { self.forwarder = forwarder }

    public func run() async throws { await forwarder.run() }
}
