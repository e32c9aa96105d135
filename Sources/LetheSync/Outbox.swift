import Foundation
import GRDB
import LetheCore
import LetheStore

/// The catalog outbox over the store: rows are added in the same transaction as the result they
/// carry, picked in order per device, and marked delivered, retried or dead.
public struct Outbox: Sendable {
    /// The store.
    public let store: Store

    /// An outbox over `store`.
    public init(store: Store) { self.store = store }

    /// Adds a record inside a write transaction (the one that records the result). Its
    /// sequence is the device's next; `build` gets it and returns the record to post. `at` is
    /// the result's time (for the audit event); the row is due at once.
    @discardableResult
    public static func enqueue(
        _ db: Database, jobId: String?, deviceKey: String, at: String, build: (Int) throws -> (id: String, body: Data)
    ) throws -> OutboxRow {
        let last = try Int.fetchOne(db, sql: "SELECT MAX(sequence) FROM outbox WHERE deviceKey = ?", arguments: [deviceKey]) ?? 0
        let made = try build(last + 1)
        let row = OutboxRow(
            id: made.id, jobId: jobId, deviceKey: deviceKey, sequence: last + 1, body: String(decoding: made.body, as: UTF8.self),
            createdAt: Store.iso8601(Date()))
        try row.insert(db)
        try Store.appendAudit(db, kind: "outbox.queued", subject: row.id, detail: ["device": deviceKey, "sequence": String(row.sequence), "result": at])
        return row
    }

    /// The key a device's records are ordered under.
    public static func deviceKey(serial: String?, path: String) -> String {
        serial.map { "serial:\($0)" } ?? "path:\(path)"
    }

    /// Rows that may be posted now: for each device, its lowest pending record, if it is due
    /// and no dead letter comes before it (a device's records never overtake each other).
    public func due(now: Date = Date(), limit: Int = 64) throws(LetheError) -> [OutboxRow] {
        let at = Store.iso8601(now)
        return try store.read { db in
            // Each device's first undelivered record (through the partial index of open rows),
            // then those of them that are pending and due.
            try OutboxRow.fetchAll(db, sql: """
                SELECT o.* FROM (SELECT deviceKey, MIN(sequence) AS first FROM outbox WHERE state != 'delivered' GROUP BY deviceKey) AS head
                JOIN outbox o ON o.deviceKey = head.deviceKey AND o.sequence = head.first
                WHERE o.state = 'pending' AND o.nextAttemptAt <= ?
                ORDER BY o.createdAt, o.deviceKey LIMIT ?
                """, arguments: [at, limit])
        }
    }

    /// When the next pending row becomes due (nil when none is pending).
    public func nextDue() throws(LetheError) -> Date? {
        let text = try store.read { db in try String.fetchOne(db, sql: "SELECT MIN(nextAttemptAt) FROM outbox WHERE state = 'pending'") }
        return text.flatMap(Store.date(iso8601:))
    }

    /// What became of one try.
    public enum Result: Sendable, Equatable {
        case delivered
        /// Try again no earlier than `after`.
        case retry(error: String, after: Date)
        /// Give up: a dead letter, with why.
        case dead(error: String)
    }

    /// Records the results of a batch of tries in one transaction.
    public func record(_ results: [(id: String, result: Result)], now: Date = Date()) throws(LetheError) {
        let at = Store.iso8601(now)
        try store.write { db in
            for (id, result) in results {
                guard var row = try OutboxRow.fetchOne(db, key: id) else { continue }
                row.attempts += 1
                switch result {
                case .delivered:
                    row.state = "delivered"
                    row.deliveredAt = at
                    row.lastError = nil
                    try Store.appendAudit(db, kind: "outbox.delivered", subject: id, detail: ["attempts": String(row.attempts)])
                case .retry(let error, let after):
                    row.lastError = error
                    row.nextAttemptAt = Store.iso8601(after)
                case .dead(let error):
                    row.state = "dead"
                    row.lastError = error
                    try Store.appendAudit(db, kind: "outbox.dead", subject: id, detail: ["attempts": String(row.attempts), "error": error])
                }
                try row.update(db)
            }
        }
    }

    /// Puts dead letters (all, or one) back in the queue, due now, with their attempts reset.
    @discardableResult
    public func retry(id: String? = nil, now: Date = Date()) throws(LetheError) -> Int {
        let at = Store.iso8601(now)
        return try store.write { db in
            let rows = try id.map { try OutboxRow.filter(key: $0).fetchAll(db) } ?? OutboxRow.filter(Column("state") == "dead").fetchAll(db)
            var count = 0
            for var row in rows where row.state != "delivered" {
                row.state = "pending"
                row.attempts = 0
                row.nextAttemptAt = at
                try row.update(db)
                try Store.appendAudit(db, kind: "outbox.retry", subject: row.id, detail: [:])
                count += 1
            }
            return count
        }
    }

    /// Counts by state.
    public struct Summary: Codable, Sendable, Equatable {
        public var pending = 0
        public var delivered = 0
        public var dead = 0
    }

    /// How many rows are pending, delivered and dead.
    public func summary() throws(LetheError) -> Summary {
        try store.read { db in
            var summary = Summary()
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM outbox GROUP BY state") {
                let n: Int = row["n"]
                switch row["state"] as String {
                case "pending": summary.pending = n
                case "delivered": summary.delivered = n
                case "dead": summary.dead = n
                default: break
                }
            }
            return summary
        }
    }

    /// Rows in one state (or all), newest first, without their bodies.
    public func rows(state: String? = nil, limit: Int = 200) throws(LetheError) -> [OutboxRow] {
        try store.read { db in
            var request = OutboxRow.order(Column("createdAt").desc).limit(limit)
            if let state { request = request.filter(Column("state") == state) }
            return try request.fetchAll(db).map { row in
                var copy = row
                copy.body = ""
                return copy
            }
        }
    }
}
