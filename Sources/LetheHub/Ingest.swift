import Crypto
import Foundation
import LetheCore
import LetheReports
import LetheSync
import PostgresNIO

/// A refused request: the HTTP status, the field (header, member or path) that is wrong, and
/// why in plain words. Nothing of a refused request is stored.
public struct HubProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var field: String
    public var message: String

    public init(_ status: Int, field: String, _ message: String) {
        self.status = status
        self.field = field
        self.message = message
    }

    public var description: String { "\(status) \(field): \(message)" }

    /// PostgreSQL's text cannot hold NUL: such input is refused by name, never a server error.
    public static func checkText(_ value: String?, field: String) throws(HubProblem) {
        guard let value else { return }
        if value.utf8.contains(0) { throw HubProblem(400, field: field, "contains a NUL character") }
        if value.utf8.count > 4096 { throw HubProblem(400, field: field, "is longer than 4096 bytes") }
    }

    /// Whether any string or member name in a JSON value holds NUL (unordered, so cheap; the
    /// path is then found in a stable order by ``nulPath(in:path:)``).
    static func containsNUL(_ value: JSONValue) -> Bool {
        switch value {
        case .string(let text): return text.utf8.contains(0)
        case .array(let values): return values.contains(where: containsNUL)
        case .object(let members): return members.contains { $0.key.utf8.contains(0) || containsNUL($0.value) }
        default: return false
        }
    }

    /// Whether any string in a JSON value holds NUL (the path of the first, or nil).
    static func nulPath(in value: JSONValue, path: String = "body") -> String? {
        switch value {
        case .string(let text): return text.utf8.contains(0) ? path : nil
        case .array(let values):
            for (index, element) in values.enumerated() { if let found = nulPath(in: element, path: "\(path)[\(index)]") { return found } }
            return nil
        case .object(let members):
            for (key, element) in members.sorted(by: { $0.key < $1.key }) {
                if key.utf8.contains(0) { return path }
                if let found = nulPath(in: element, path: path == "body" ? key : "\(path).\(key)") { return found }
            }
            return nil
        default: return nil
        }
    }
}

/// What a stored record holds, read from its signed documents (never from the unsigned summary
/// where the signed one says it).
struct IngestedRecord: Sendable {
    var record: CatalogRecord
    var station: String
    var bodySHA256: String
    var body: String
    var imei: String?
    var serial: String?
    var model: String?
    var certified: Bool?
    var status: String?
    var locks: [String]
    var benchSeconds: Int?
    var reports: [(id: String, kind: String, kid: String, digest: String, issuedAt: Date?, file: String)]
}

/// Ingest: a station's catalog POST (`catalog-api.yaml`), checked against the station's
/// registered HMAC secret and signing keys, stored with its documents and an outbox row in one
/// transaction, exactly once per Idempotency-Key.
public struct HubIngest: Sendable {
    let db: HubDatabase
    let registry: HubRegistry
    /// This instance's name (on the record, for the audit).
    let instance: String

    public init(database: HubDatabase, instance: String) {
        db = database
        registry = HubRegistry(database: database)
        self.instance = instance
    }

    /// Receipt of a stored (or already stored) record.
    public struct Receipt: Codable, Sendable, Equatable {
        public var recordId: String
        public var duplicate: Bool
    }

    /// Checks and stores one POST. Throws ``HubProblem`` for anything refused, or a database
    /// error (the caller answers 503: the station tries again).
    public func ingest(station: String?, idempotencyKey: String?, signature: String?, body: Data) async throws -> Receipt {
        guard let key = idempotencyKey, !key.isEmpty else { throw HubProblem(400, field: "Idempotency-Key", "the header is missing") }
        guard key.count <= 128, key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw HubProblem(400, field: "Idempotency-Key", "use at most 128 letters, digits, '-', '_' or '.'")
        }
        guard let stationId = station, !stationId.isEmpty else { throw HubProblem(400, field: "X-Lethe-Station", "the header is missing: the hub needs the station's id to check its signature") }
        guard HubRegistry.isValidStationId(stationId) else { throw HubProblem(400, field: "X-Lethe-Station", "not a station id") }
        guard let credentials = try await registry.credentials(id: stationId) else {
            throw HubProblem(403, field: "X-Lethe-Station", "station \(stationId) is not enrolled at this hub (an admin runs `lethe-hub stations add`)")
        }
        if let revoked = credentials.revokedAt {
            throw HubProblem(403, field: "X-Lethe-Station", "station \(stationId) was revoked at \(Self.iso8601(revoked)); nothing it sends is accepted")
        }
        guard let signature else { throw HubProblem(401, field: CatalogSignature.header, "the header is missing") }
        guard CatalogSignature.isValid(signature, body: body, secret: credentials.secret) else {
            throw HubProblem(401, field: CatalogSignature.header, "does not match the body: wrong shared secret for station \(stationId), or the body was altered")
        }
        let parsed = try Self.parse(body, key: key, credentials: credentials)
        return try await store(parsed, key: key)
    }

    /// Everything that needs no database: the record, its station, its signed documents.
    static func parse(_ body: Data, key: String, credentials: HubRegistry.Credentials) throws -> IngestedRecord {
        let value: JSONValue
        do {
            value = try JSONValue.parse(body)
        } catch {
            throw HubProblem(400, field: "body", "the body is not a catalog record: not JSON: \(error)")
        }
        if HubProblem.containsNUL(value), let path = HubProblem.nulPath(in: value) {
            throw HubProblem(400, field: path, "contains a NUL character (\\u0000), which no record needs and the database cannot store")
        }
        let record: CatalogRecord
        do {
            record = try CatalogRecord.parse(value)
        } catch let error as DecodingError {
            let (field, why) = Self.describe(error)
            throw HubProblem(400, field: field, "the body is not a catalog record: \(why)")
        } catch {
            throw HubProblem(400, field: "body", "the body is not a catalog record: \(error)")
        }
        guard record.schema == "lethe.catalog-record/1" else { throw HubProblem(400, field: "schema", "\(record.schema) is not lethe.catalog-record/1") }
        guard record.recordId == key else { throw HubProblem(400, field: "recordId", "\(record.recordId) is not the Idempotency-Key \(key)") }
        guard record.station == credentials.id else {
            throw HubProblem(400, field: "station", "the record says \(record.station), the X-Lethe-Station header \(credentials.id)")
        }
        guard record.sequence >= 1 else { throw HubProblem(400, field: "sequence", "must be 1 or more") }
        var verified: [String: VerifiedReport] = [:]
        for (name, document) in [("report", record.report), ("certificateDocument", record.certificateDocument ?? .null)] where document != .null {
            verified[name] = try Self.verify(document, field: name, credentials: credentials)
        }
        if let problem = CatalogReceiver.disagreement(record, report: verified["report"], certificate: verified["certificateDocument"]) {
            let field = problem.split(separator: ":").first.map(String.init) ?? "report"
            throw HubProblem(422, field: field.contains(" ") ? "report" : field, problem)
        }
        let refurb = verified["report"]!.signed.document
        let certificate = verified["certificateDocument"]?.signed.document
        let certified: Bool? = certificate.map { if case .bool(let value)? = $0["certified"] { value } else { false } }
        var reports: [(id: String, kind: String, kid: String, digest: String, issuedAt: Date?, file: String)] = []
        for (name, kind) in [("report", "refurb"), ("certificateDocument", "certificate")] {
            guard let report = verified[name] else { continue }
            let file = CanonicalReportFile.text(of: name == "report" ? record.report : record.certificateDocument ?? .null, verified: report.signed)
            reports.append((
                report.reportId, kind, report.keyId, report.signed.digest, report.signed.document["issuedAt"]?.stringValue.flatMap(Self.date(iso8601:)), file))
        }
        let imeis: [String] = if case .array(let values)? = refurb["device"]?["imeis"] { values.compactMap(\.stringValue) } else { [] }
        let findings: [String] = if case .array(let values)? = refurb["diagnostics"]?["findings"] { values.compactMap(\.stringValue) } else { [] }
        var benchSeconds: Int?
        if let started = certificate?["sanitization"]?["startedAt"]?.stringValue.flatMap(Self.date(iso8601:)),
           let created = Self.date(iso8601: record.createdAt), created >= started {
            benchSeconds = Int(created.timeIntervalSince(started))
        }
        return IngestedRecord(
            record: record, station: credentials.id, bodySHA256: Hex.sha256(body), body: String(decoding: body, as: UTF8.self),
            imei: imeis.first ?? record.device.imei, serial: refurb["device"]?["serial"]?.stringValue, model: refurb["device"]?["model"]?.stringValue,
            certified: certified, status: certificate?["status"]?.stringValue, locks: HubLocks.names(in: findings), benchSeconds: benchSeconds,
            reports: reports)
    }

    /// Verifies one signed document against the station's keys: a key of another station, an
    /// unknown key and a revoked key are each refused by name.
    static func verify(_ document: JSONValue, field: String, credentials: HubRegistry.Credentials) throws -> VerifiedReport {
        let usable = credentials.keys.filter { $0.revokedAt == nil }
        let verified: VerifiedReport
        do throws(ReportVerificationError) {
            verified = try ReportVerifier.verify(file: document, trusted: usable.map(\.jwk))
        } catch {
            if error.reason == .untrustedKey, let kid = document["protected"]?.stringValue.flatMap(Base64URL.decode).flatMap({ try? JSONValue.parse($0) })?["kid"]?.stringValue,
               let revoked = credentials.keys.first(where: { $0.kid == kid })?.revokedAt {
                throw HubProblem(403, field: field, "signed by key \(kid) of station \(credentials.id), revoked at \(iso8601(revoked))")
            }
            let status = error.reason == .untrustedKey ? 403 : 422
            throw HubProblem(status, field: field, error.reason == .untrustedKey
                ? "signed by a key that is not one of station \(credentials.id)'s registered keys: \(error.message)"
                : "the signature does not verify: \(error.message)")
        }
        guard verified.signed.document["station"]?["id"]?.stringValue == credentials.id else {
            throw HubProblem(422, field: "\(field).station.id", "the signed document names station \(verified.signed.document["station"]?["id"]?.stringValue ?? "none"), not \(credentials.id)")
        }
        guard ReportID.isValid(verified.reportId) else { throw HubProblem(422, field: "\(field).reportId", "\(verified.reportId) is not a report id") }
        return verified
    }

    /// Stores the record, its reports and its outbox row in one statement (`hub_ingest`, one
    /// round trip, atomic). The same key with the same body is a duplicate (200); with another
    /// body, a conflict (409); a report id already stored with other content, a conflict too.
    func store(_ item: IngestedRecord, key: String) async throws -> Receipt {
        let r = item.record
        let ids = item.reports.map(\.id), kinds = item.reports.map(\.kind), kids = item.reports.map(\.kid), digests = item.reports.map(\.digest)
        let issued = item.reports.map { $0.issuedAt.map(Self.iso8601) ?? "" }, files = item.reports.map(\.file)
        // Interpolated for its bindings only (in IngestStatement's order); sent as a prepared
        // statement, parsed once per connection.
        let query: PostgresQuery = """
            \(key) \(item.station) \(item.bodySHA256) \(item.body) \(r.sequence) \(r.reportId) \(r.certificate?.id) \(item.serial) \(item.imei)
            \(item.model) \(r.device.mediaType) \(r.lot) \(r.supplier) \(r.grade) \(item.certified) \(item.status) \(r.batteryHealthPercent)
            \(r.diagnosticsVerdict) \(item.locks) \(item.benchSeconds) \(Self.date(iso8601: r.createdAt)) \(instance) \(ids) \(kinds) \(kids)
            \(digests) \(issued) \(files)
            """
        let rows = try await db.rows("ingest", prepared: IngestStatement(bindings: query.binds))
        switch rows.first ?? "" {
        case "stored": return Receipt(recordId: key, duplicate: false)
        case "duplicate": return Receipt(recordId: key, duplicate: true)
        case "conflict": throw HubProblem(409, field: "Idempotency-Key", "\(key) was already used for a different record; a replay must carry the same body")
        case let other where other.hasPrefix("report:"):
            let id = String(other.dropFirst(7))
            let kind = item.reports.first { $0.id == id }?.kind
            throw HubProblem(409, field: kind == "refurb" ? "report" : "certificateDocument", "report \(id) is already stored with other content")
        case let other: throw HubDatabaseError(what: "ingest", message: "hub_ingest answered \(other)", sqlState: nil)
        }
    }

    /// The JSON path and message of a decoding error.
    static func describe(_ error: DecodingError) -> (field: String, message: String) {
        func path(_ context: DecodingError.Context, _ extra: String? = nil) -> String {
            let parts = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue } + (extra.map { [$0] } ?? [])
            return parts.isEmpty ? "body" : parts.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context): return (path(context, key.stringValue), "is required")
        case .typeMismatch(let type, let context): return (path(context), "expected \(type)")
        case .valueNotFound(let type, let context): return (path(context), "expected \(type), found null")
        case .dataCorrupted(let context): return (path(context), context.debugDescription)
        @unknown default: return ("body", "\(error)")
        }
    }

    /// RFC 3339 in UTC, with or without fractional seconds. FormatStyles are values parsed in
    /// Swift: a new `ISO8601DateFormatter` per call built an ICU formatter each time, a third
    /// of the hub's CPU per ingested record (perf, Benchmarks/hub.sh).
    static func date(iso8601 text: String) -> Date? {
        (try? plainStyle.parse(text)) ?? (try? fractionalStyle.parse(text))
    }

    /// `2026-12-06T22:00:30Z`.
    static func iso8601(_ date: Date) -> String { plainStyle.format(date) }

    private static let plainStyle = Date.ISO8601FormatStyle()
    private static let fractionalStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
}

/// `hub_ingest` as a prepared statement; `bindings` in the order of its parameters.
struct IngestStatement: PostgresPreparedStatement {
    typealias Row = String
    static let sql = """
        SELECT hub_ingest($1, $2, $3, $4, $5::int, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17::int, $18, $19, $20::int, $21,
            $22, $23, $24, $25, $26, $27, $28)
        """
    static let bindingDataTypes: [PostgresDataType] = [
        .text, .text, .text, .text, .int8, .text, .text, .text, .text, .text, .text, .text, .text, .text, .bool, .text, .int8, .text,
        .textArray, .int8, .timestamptz, .text, .textArray, .textArray, .textArray, .textArray, .textArray, .textArray,
    ]
    var bindings: PostgresBindings

    func makeBindings() throws -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) throws -> String { try row.decode(String.self) }
}

/// The locks a refurb report's findings name (the station writes them as `PhoneLocks.blockers`).
public enum HubLocks {
    /// `frp`, `knox`, `findMy`, `mdm`: the lock names the scorecards count.
    public static func names(in findings: [String]) -> [String] {
        var names: [String] = []
        for finding in findings {
            if finding.hasPrefix("Factory Reset Protection is on") { names.append("frp") }
            if finding.hasPrefix("Knox Guard is active") { names.append("knox") }
            if finding.hasPrefix("Find My (Activation Lock) is on") { names.append("findMy") }
            if finding.hasPrefix("the iPhone is supervised") || finding.hasPrefix("configuration profiles:") { names.append("mdm") }
        }
        return Array(Set(names)).sorted()
    }
}
