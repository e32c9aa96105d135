import Crypto
import Foundation
import GRDB
import LetheCore

/// One entry of the audit log. Each entry's hash covers the previous entry's hash, so editing,
/// deleting or reordering any row breaks the chain from there on.
public struct AuditEvent: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "audit"
    public var id: Int64
    /// ISO 8601 UTC.
    public var at: String
    /// `job.started`, `job.finished`, `report.issued`, …
    public var kind: String
    /// What it is about (a device path, a job or report id).
    public var subject: String
    /// Details, as canonical-looking JSON text.
    public var detail: String
    /// The previous entry's hash (64 zeros for the first).
    public var previousHash: String
    /// SHA-256 over `previousHash`, id, at, kind, subject and detail (length-prefixed).
    public var hash: String

    /// The hash an entry must have.
    public static func computeHash(previous: String, id: Int64, at: String, kind: String, subject: String, detail: String) -> String {
        var data = Data()
        for field in [previous, String(id), at, kind, subject, detail] {
            let bytes = Data(field.utf8)
            var length = UInt32(bytes.count).bigEndian
            data.append(Data(bytes: &length, count: 4))
            data.append(bytes)
        }
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    public static let genesis = String(repeating: "0", count: 64)
}

/// A job as stored.
public struct JobRow: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "job"
    public var id: String
    public var devicePath: String
    public var serial: String?
    public var model: String?
    public var method: String
    public var profile: String?
    /// `running`, `erased`, `erasedWithExceptions`, `notErased`, `aborted`, `interrupted`.
    public var status: String
    public var startedAt: String
    public var finishedAt: String?
    public var bytesWritten: Int64
    public var error: String?
    public var reportId: String?
    /// The process running it, to tell a crashed job from a running one.
    public var pid: Int32?
    /// When that process started (clock ticks after boot): a reused pid is another process.
    public var processStart: Int64?
    /// The boot it ran in: after a reboot no job of the last boot is running.
    public var bootId: String?

    /// Creates a row.
    public init(id: String, devicePath: String, serial: String?, model: String?, method: String, profile: String?, status: String, startedAt: String) {
        self.id = id
        self.devicePath = devicePath
        self.serial = serial
        self.model = model
        self.method = method
        self.profile = profile
        self.status = status
        self.startedAt = startedAt
        bytesWritten = 0
    }
}

/// A report as stored (the signed file's digest and where it is).
public struct ReportRow: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "report"
    public var id: String
    public var jobId: String?
    /// `lethe.wipe-certificate/1` or `lethe.refurb-report/1`.
    public var schema: String
    public var serial: String?
    public var certified: Bool
    public var digest: String
    public var jsonPath: String
    public var pdfPath: String
    public var issuedAt: String

    /// Creates a row.
    public init(id: String, jobId: String?, schema: String, serial: String?, certified: Bool, digest: String, jsonPath: String, pdfPath: String, issuedAt: String) {
        self.id = id
        self.jobId = jobId
        self.schema = schema
        self.serial = serial
        self.certified = certified
        self.digest = digest
        self.jsonPath = jsonPath
        self.pdfPath = pdfPath
        self.issuedAt = issuedAt
    }
}

/// A record waiting to be (or already) delivered to the shop's catalog. Written in the same
/// transaction as the result it carries; delivered at least once and deduplicated by the
/// receiver on `id`, so it arrives exactly once.
public struct OutboxRow: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "outbox"
    /// The record id, also the Idempotency-Key.
    public var id: String
    public var jobId: String?
    /// The device the record is about (`serial:…` or `path:…`): its records go out in order.
    public var deviceKey: String
    /// 1, 2, 3… per device.
    public var sequence: Int
    /// The exact JSON body that is posted (and signed with the HMAC).
    public var body: String
    public var createdAt: String
    /// `pending`, `delivered` or `dead`.
    public var state: String
    public var attempts: Int
    /// The last failure in plain words (HTTP status and the server's message, or the network error).
    public var lastError: String?
    /// When the next try may happen (ISO 8601 UTC).
    public var nextAttemptAt: String
    public var deliveredAt: String?

    /// A new pending row.
    public init(id: String, jobId: String?, deviceKey: String, sequence: Int, body: String, createdAt: String) {
        self.id = id
        self.jobId = jobId
        self.deviceKey = deviceKey
        self.sequence = sequence
        self.body = body
        self.createdAt = createdAt
        state = "pending"
        attempts = 0
        nextAttemptAt = createdAt
    }
}

/// Why the audit chain does not verify.
public struct AuditChainBreak: Error, Sendable, Equatable, CustomStringConvertible {
    /// The first entry that does not check out.
    public var eventId: Int64
    public var reason: String
    public var description: String { "audit event \(eventId): \(reason)" }
}

/// The station's store: SQLite through GRDB, WAL mode, numbered migrations that are never
/// edited once shipped (add a new one instead).
public final class Store: Sendable {
    let pool: DatabasePool
    /// The database file.
    public let path: String

    /// Opens (and migrates) `<stateDirectory>/lethe.sqlite`.
    public init(stateDirectory: String) throws(LetheError) {
        path = "\(stateDirectory)/lethe.sqlite"
        do {
            try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch let error as DatabaseError {
            if let free = Self.freeBytes(stateDirectory), free < 1 << 20 {
                throw LetheError(.ioFailure, path: path, errno: .noSpace, "cannot open the store: the disk under \(stateDirectory) is full (\(free) bytes free); nothing was written")
            }
            throw LetheError(.ioFailure, path: path, errno: Self.errno(error), "cannot open the store: \(error.message ?? "\(error.resultCode)")")
        } catch {
            throw LetheError(.ioFailure, path: path, "cannot open the store: \(error.localizedDescription)")
        }
    }

    /// Bytes available to unprivileged writers on the file system holding `directory`.
    static func freeBytes(_ directory: String) -> UInt64? {
        var info = statvfs()
        guard statvfs(directory, &info) == 0 else { return nil }
        return UInt64(info.f_bavail) * UInt64(info.f_frsize)
    }

    static func errno(_ error: DatabaseError) -> ErrorNumber? {
        switch error.resultCode {
        case .SQLITE_FULL: .noSpace
        case .SQLITE_READONLY, .SQLITE_PERM: .accessDenied
        case .SQLITE_IOERR: .io
        default: nil
        }
    }

    /// The migrations, in order. Shipped ones are never edited.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: jobs, reports, audit chain") { db in
            try db.create(table: "job") { t in
                t.primaryKey("id", .text)
                t.column("devicePath", .text).notNull()
                t.column("serial", .text)
                t.column("model", .text)
                t.column("method", .text).notNull()
                t.column("profile", .text)
                t.column("status", .text).notNull()
                t.column("startedAt", .text).notNull()
                t.column("finishedAt", .text)
                t.column("bytesWritten", .integer).notNull().defaults(to: 0)
                t.column("error", .text)
                t.column("reportId", .text)
                t.column("pid", .integer)
            }
            try db.create(index: "job_serial", on: "job", columns: ["serial"])
            try db.create(table: "report") { t in
                t.primaryKey("id", .text)
                t.column("jobId", .text).references("job")
                t.column("schema", .text).notNull()
                t.column("serial", .text)
                t.column("certified", .boolean).notNull()
                t.column("digest", .text).notNull()
                t.column("jsonPath", .text).notNull()
                t.column("pdfPath", .text).notNull()
                t.column("issuedAt", .text).notNull()
            }
            try db.create(index: "report_serial", on: "report", columns: ["serial"])
            try db.create(table: "audit") { t in
                t.column("id", .integer).primaryKey()
                t.column("at", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("subject", .text).notNull()
                t.column("detail", .text).notNull()
                t.column("previousHash", .text).notNull()
                t.column("hash", .text).notNull().unique()
            }
        }
        migrator.registerMigration("v2: checkpoints, devices seen, diagnostics") { db in
            try db.create(table: "checkpoint") { t in
                t.primaryKey("jobId", .text).references("job")
                t.column("state", .text).notNull()
                t.column("updatedAt", .text).notNull()
            }
            try db.create(table: "deviceSeen") { t in
                t.primaryKey("key", .text)
                t.column("path", .text).notNull()
                t.column("serial", .text)
                t.column("model", .text)
                t.column("transport", .text).notNull()
                t.column("sizeBytes", .integer)
                t.column("firstSeen", .text).notNull()
                t.column("lastSeen", .text).notNull()
                t.column("timesSeen", .integer).notNull().defaults(to: 1)
            }
            try db.create(table: "diagnostic") { t in
                t.primaryKey("jobId", .text).references("job")
                t.column("verdict", .text).notNull()
                t.column("detail", .text).notNull()
                t.column("at", .text).notNull()
            }
        }
        migrator.registerMigration("v3: refurb reports awaiting the cosmetic grade") { db in
            try db.create(table: "refurbDraft") { t in
                t.primaryKey("jobId", .text).references("job")
                t.column("draft", .text).notNull()
                t.column("createdAt", .text).notNull()
            }
        }
        migrator.registerMigration("v4: catalog outbox") { db in
            try db.create(table: "outbox") { t in
                t.primaryKey("id", .text)
                t.column("jobId", .text).references("job")
                t.column("deviceKey", .text).notNull()
                t.column("sequence", .integer).notNull()
                t.column("body", .text).notNull()
                t.column("createdAt", .text).notNull()
                t.column("state", .text).notNull()
                t.column("attempts", .integer).notNull().defaults(to: 0)
                t.column("lastError", .text)
                t.column("nextAttemptAt", .text).notNull()
                t.column("deliveredAt", .text)
                t.uniqueKey(["deviceKey", "sequence"])
            }
            try db.create(index: "outbox_due", on: "outbox", columns: ["state", "nextAttemptAt"])
            try db.execute(sql: "CREATE INDEX outbox_open ON outbox(deviceKey, sequence) WHERE state != 'delivered'")
        }
        migrator.registerMigration("v5: catalog lookups (two-way mode)") { db in
            // No reference to job: the answer is kept when the job is queued, before it starts.
            try db.create(table: "catalogLookup") { t in
                t.primaryKey("jobId", .text)
                t.column("outcome", .text).notNull()
                t.column("matchedBy", .text)
                t.column("profile", .text)
                t.column("sku", .text)
                t.column("expectedSerial", .text)
                t.column("note", .text)
                t.column("detail", .text)
                t.column("askedAt", .text).notNull()
            }
        }
        migrator.registerMigration("v6: report IMEIs (phones are looked up by IMEI)") { db in
            try db.create(table: "reportImei") { t in
                t.column("reportId", .text).notNull().references("report")
                t.column("imei", .text).notNull()
                t.primaryKey(["reportId", "imei"])
            }
            try db.create(index: "reportImei_imei", on: "reportImei", columns: ["imei"])
        }
        migrator.registerMigration("v7: the process and boot that run a job (pids are reused)") { db in
            try db.alter(table: "job") { t in
                t.add(column: "processStart", .integer)
                t.add(column: "bootId", .text)
            }
        }
        migrator.registerMigration("v8: intake lot and supplier from the catalog's instructions") { db in
            try db.alter(table: "catalogLookup") { t in
                t.add(column: "lot", .text)
                t.add(column: "supplier", .text)
            }
        }
        return migrator
    }

    /// Records an issued report (row and audit event) inside a write transaction.
    /// A phone's IMEIs are kept beside the row so that the report can be found by any of them.
    public static func recordReport(_ db: Database, _ row: ReportRow, imeis: [String] = []) throws {
        try row.insert(db)
        for imei in Set(imeis) where !imei.isEmpty {
            try db.execute(sql: "INSERT INTO reportImei (reportId, imei) VALUES (?, ?)", arguments: [row.id, imei])
        }
        var detail = ["schema": row.schema, "digest": row.digest, "certified": String(row.certified)]
        if let jobId = row.jobId { detail["job"] = jobId }
        try appendAudit(db, kind: "report.issued", subject: row.id, detail: detail)
    }

    // MARK: - Catalog lookups

    /// Keeps what the catalog said about a queued job's device (two-way mode), with an audit
    /// event: the catalog's answer decides the profile run and the SKU sold under.
    public func recordCatalogLookup(_ row: CatalogLookupRow) throws(LetheError) {
        try write { db in
            try row.save(db)
            var detail = ["outcome": row.outcome]
            for (key, value) in [("matchedBy", row.matchedBy), ("profile", row.profile), ("sku", row.sku), ("expectedSerial", row.expectedSerial), ("detail", row.detail)] {
                if let value { detail[key] = value }
            }
            _ = try Self.appendAudit(db, kind: "catalog.lookup", subject: row.jobId, detail: detail)
        }
    }

    /// What the catalog said about a job's device, if it was asked.
    public static func catalogLookup(_ db: Database, jobId: String) throws -> CatalogLookupRow? {
        try CatalogLookupRow.fetchOne(db, key: jobId)
    }

    /// A job's refurb report draft (JSON) waiting for the cosmetic grade.
    public func refurbDraft(jobId: String) throws(LetheError) -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT draft FROM refurbDraft WHERE jobId = ?", arguments: [jobId]) }
    }

    // MARK: - Checkpoints

    /// Saves (replaces) a job's checkpoint: the erase's pass plan with its seeds and how far it
    /// got, as JSON. Written by the job's own thread every few seconds.
    public func saveCheckpoint(jobId: String, state: String, at date: Date = Date()) throws(LetheError) {
        let at = Self.iso8601(date)
        try write { db in
            try db.execute(
                sql: "INSERT INTO checkpoint (jobId, state, updatedAt) VALUES (?, ?, ?) ON CONFLICT(jobId) DO UPDATE SET state = excluded.state, updatedAt = excluded.updatedAt",
                arguments: [jobId, state, at])
        }
    }

    /// A job's last checkpoint (JSON), if it has one.
    public func checkpoint(jobId: String) throws(LetheError) -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT state FROM checkpoint WHERE jobId = ?", arguments: [jobId]) }
    }

    /// Forgets a job's checkpoint (once it finished and nothing is left to resume).
    public func deleteCheckpoint(jobId: String) throws(LetheError) {
        try write { db in try db.execute(sql: "DELETE FROM checkpoint WHERE jobId = ?", arguments: [jobId]) }
    }

    // MARK: - Devices seen, diagnostics

    /// Records that a device was docked (keyed by serial, else by path).
    public func recordDeviceSeen(path: String, serial: String?, model: String?, transport: String, sizeBytes: UInt64?, at date: Date = Date()) throws(LetheError) {
        let at = Self.iso8601(date)
        let key = serial.map { "serial:\($0)" } ?? "path:\(path)"
        try write { db in
            try db.execute(
                sql: """
                    INSERT INTO deviceSeen (key, path, serial, model, transport, sizeBytes, firstSeen, lastSeen) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(key) DO UPDATE SET path = excluded.path, model = excluded.model, sizeBytes = excluded.sizeBytes,
                        lastSeen = excluded.lastSeen, timesSeen = timesSeen + 1
                    """,
                arguments: [key, path, serial, model, transport, sizeBytes.map { Int64(clamping: $0) }, at, at])
        }
    }

    /// How many distinct devices were ever docked.
    public func devicesSeenCount() throws(LetheError) -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM deviceSeen") ?? 0 }
    }

    /// Records a job's pre-erase diagnostics (verdict and the assessment as JSON).
    public func recordDiagnostics(jobId: String, verdict: String, detail: String, at date: Date = Date()) throws(LetheError) {
        let at = Self.iso8601(date)
        try write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO diagnostic (jobId, verdict, detail, at) VALUES (?, ?, ?, ?)",
                arguments: [jobId, verdict, detail, at])
        }
    }

    /// A job's diagnostics verdict, if any were recorded.
    public func diagnosticsVerdict(jobId: String) throws(LetheError) -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT verdict FROM diagnostic WHERE jobId = ?", arguments: [jobId]) }
    }

    /// Runs a write transaction. A full disk or read-only store is a `LetheError` naming the
    /// database; the transaction is rolled back, so no record is half-written.
    public func write<T>(_ body: @escaping @Sendable (Database) throws -> T) throws(LetheError) -> T {
        do {
            return try pool.write(body)
        } catch let error as DatabaseError {
            let why = error.resultCode == .SQLITE_FULL ? "the disk under \((path as NSString).deletingLastPathComponent) is full" : (error.message ?? "\(error.resultCode)")
            throw LetheError(.ioFailure, path: path, errno: Self.errno(error), "store write failed, nothing was recorded: \(why)")
        } catch let error as LetheError {
            throw error
        } catch {
            throw LetheError(.ioFailure, path: path, "store write failed: \(error)")
        }
    }

    /// Runs a read.
    public func read<T>(_ body: @escaping @Sendable (Database) throws -> T) throws(LetheError) -> T {
        do {
            return try pool.read(body)
        } catch {
            throw LetheError(.ioFailure, path: path, "store read failed: \(error)")
        }
    }

    /// Appends an audit event inside a write transaction, chained to the last one.
    @discardableResult
    public static func appendAudit(_ db: Database, kind: String, subject: String, detail: [String: String] = [:], at date: Date = Date()) throws -> AuditEvent {
        let last = try AuditEvent.order(Column("id").desc).fetchOne(db)
        let id = (last?.id ?? 0) + 1
        let previous = last?.hash ?? AuditEvent.genesis
        let at = iso8601(date)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // The stored text is what is hashed, so it only has to be valid JSON, not canonical.
        let text = String(decoding: try encoder.encode(detail), as: UTF8.self)
        let event = AuditEvent(
            id: id, at: at, kind: kind, subject: subject, detail: text, previousHash: previous,
            hash: AuditEvent.computeHash(previous: previous, id: id, at: at, kind: kind, subject: subject, detail: text))
        try event.insert(db)
        return event
    }

    /// Checks every link of the audit chain. Returns how many events were checked.
    public func verifyAudit() throws(LetheError) -> Result<Int, AuditChainBreak> {
        let events = try read { db in try AuditEvent.order(Column("id")).fetchAll(db) }
        var previous = AuditEvent.genesis
        var expectedId: Int64 = 1
        for event in events {
            if event.id != expectedId {
                return .failure(AuditChainBreak(eventId: expectedId, reason: "missing (the log jumps to \(event.id)): a row was deleted"))
            }
            if event.previousHash != previous {
                return .failure(AuditChainBreak(eventId: event.id, reason: "does not link to the event before it: the chain was rewritten"))
            }
            let hash = AuditEvent.computeHash(previous: event.previousHash, id: event.id, at: event.at, kind: event.kind, subject: event.subject, detail: event.detail)
            if hash != event.hash {
                return .failure(AuditChainBreak(eventId: event.id, reason: "its content does not match its hash: the row was edited"))
            }
            previous = event.hash
            expectedId += 1
        }
        return .success(events.count)
    }

    /// The audit log, oldest first.
    public func auditLog(limit: Int = 1000) throws(LetheError) -> [AuditEvent] {
        try read { db in try AuditEvent.order(Column("id").desc).limit(limit).fetchAll(db).reversed() }
    }

    /// Reports, newest first, optionally for one serial and/or one IMEI (a phone's reports are
    /// found by any of its IMEIs).
    public func reports(serial: String? = nil, imei: String? = nil) throws(LetheError) -> [ReportRow] {
        try read { db in
            var request = ReportRow.order(Column("issuedAt").desc)
            if let serial { request = request.filter(Column("serial") == serial) }
            if let imei {
                request = request.filter(sql: "id IN (SELECT reportId FROM reportImei WHERE imei = ?)", arguments: [imei])
            }
            return try request.fetchAll(db)
        }
    }

    /// Marks `running` jobs whose process is gone as `interrupted` (kill -9, power cut), with
    /// an audit event each. Returns their ids. `isRunning` says whether the process a row names
    /// (pid, start time, boot id) still runs: a pid alone is reused after a crash or reboot.
    @discardableResult
    public func markOrphanedJobsInterrupted(now: Date = Date(), isRunning: @escaping @Sendable (JobRow) -> Bool) throws(LetheError) -> [String] {
        try write { db in
            var ids: [String] = []
            for var job in try JobRow.filter(Column("status") == "running").fetchAll(db) {
                if isRunning(job) { continue }
                job.status = "interrupted"
                job.finishedAt = Self.iso8601(now)
                job.error = "the process running it (pid \(job.pid ?? 0)) stopped before it finished"
                try job.update(db)
                try Self.appendAudit(db, kind: "job.interrupted", subject: job.id, detail: ["device": job.devicePath, "pid": String(job.pid ?? 0)], at: now)
                ids.append(job.id)
            }
            return ids
        }
    }

    /// Jobs, newest first.
    public func jobs() throws(LetheError) -> [JobRow] {
        try read { db in try JobRow.order(Column("startedAt").desc).fetchAll(db) }
    }

    /// ISO 8601 UTC with milliseconds (sorts as text).
    public static func iso8601(_ date: Date) -> String {
        date.formatted(iso8601Style)
    }

    /// `2026-11-23T03:30:18.123Z` (a value type: no formatter is made per call).
    static let iso8601Style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    /// Parses what ``iso8601(_:)`` writes.
    public static func date(iso8601 text: String) -> Date? {
        try? iso8601Style.parse(text)
    }
}

/// What the catalog answered when a job's device was docked (two-way mode).
public struct CatalogLookupRow: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "catalogLookup"
    public var jobId: String
    /// `instructions`, `unknown` (the catalog has none) or `unavailable` (no usable answer).
    public var outcome: String
    public var matchedBy: String?
    public var profile: String?
    public var sku: String?
    public var expectedSerial: String?
    /// The catalog's note for the technician.
    public var note: String?
    /// The intake lot and supplier the catalog named.
    public var lot: String?
    public var supplier: String?
    /// What the station made of it (fallbacks, a held job), for the technician and the log.
    public var detail: String?
    public var askedAt: String

    /// A row.
    public init(jobId: String, outcome: String, askedAt: String) {
        self.jobId = jobId
        self.outcome = outcome
        self.askedAt = askedAt
    }
}
