import Crypto
import Foundation
import GRDB
import Hummingbird
import LetheCore
import LetheReports
import Synchronization

/// Faults the reference receiver injects (for fault tests and demos): the first `failFirst`
/// posts answer `failStatus` (with `Retry-After: retryAfter`), and the first `delayFirst`
/// posts answer only after `delaySeconds`; the first `garbageFirst` get a 200 that is no receipt.
public struct ReceiverFaults: Sendable {
    public var failFirst = 0
    public var failStatus = 503
    public var retryAfter: Int?
    public var delayFirst = 0
    public var delaySeconds = 0.0
    /// The first `garbageFirst` posts get `200 OK` with an HTML page (a captive portal's, say).
    public var garbageFirst = 0

    /// No faults.
    public init() {}
}

/// One record as the receiver lists it.
public struct ReceivedRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "record"
    /// The Idempotency-Key (= the record id).
    public var id: String
    public var station: String
    public var serial: String?
    public var sequence: Int
    public var grade: String
    public var certified: Bool?
    public var receivedAt: String
    public var body: String
}

/// `lethe catalog serve`: the reference catalog receiver. Stores records in SQLite, deduplicates
/// by Idempotency-Key, checks the HMAC and the signatures of the report and certificate, and
/// lists what it received. The contract is `catalog-api.yaml`.
public final class CatalogReceiver: Sendable {
    let pool: DatabasePool
    let secret: SymmetricKey
    let trusted: [PublicJWK]
    let faults: ReceiverFaults
    private let posts = Atomic<Int>(0)

    /// Opens (or creates) the receiver's database.
    public init(database path: String, secret: SymmetricKey, trusted: [PublicJWK], faults: ReceiverFaults = ReceiverFaults()) throws(LetheError) {
        do {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            pool = try DatabasePool(path: path)
            var migrator = DatabaseMigrator()
            migrator.registerMigration("v1: records") { db in
                try db.create(table: "record") { t in
                    t.primaryKey("id", .text)
                    t.column("station", .text).notNull()
                    t.column("serial", .text)
                    t.column("sequence", .integer).notNull()
                    t.column("grade", .text).notNull()
                    t.column("certified", .boolean)
                    t.column("receivedAt", .text).notNull()
                    t.column("body", .text).notNull()
                }
            }
            try migrator.migrate(pool)
        } catch {
            throw LetheError(.ioFailure, path: path, "cannot open the receiver's database: \(error)")
        }
        self.secret = secret
        self.trusted = trusted
        self.faults = faults
    }

    struct Problem: Encodable { var error: String; var message: String }
    struct Receipt: Encodable { var recordId: String; var duplicate: Bool }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status, headers: HTTPFields = [:]) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: (try? encoder.encode(value)) ?? Data())))
    }

    static func problem(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) -> Response {
        json(Problem(error: status.reasonPhrase, message: message), status: status, headers: headers)
    }

    /// Handles one POST: faults first, then key, size, HMAC, record, signatures, dedup.
    func receive(idempotencyKey: String?, signature: String?, body: Data) async -> Response {
        let number = posts.wrappingAdd(1, ordering: .relaxed).newValue
        if number <= faults.delayFirst { try? await Task.sleep(for: .milliseconds(Int(faults.delaySeconds * 1000))) }
        if number <= faults.garbageFirst {
            return Response(status: .ok, headers: [.contentType: "text/html"], body: ResponseBody(byteBuffer: ByteBuffer(string: "<html><body>Welcome to the warehouse Wi-Fi</body></html>")))
        }
        if number <= faults.failFirst {
            var headers: HTTPFields = [:]
            if let after = faults.retryAfter { headers[.retryAfter] = String(after) }
            return Self.problem(HTTPResponse.Status(code: faults.failStatus), "injected fault \(number) of \(faults.failFirst)", headers: headers)
        }
        guard let key = idempotencyKey, !key.isEmpty else { return Self.problem(.badRequest, "the Idempotency-Key header is missing") }
        guard let signature else { return Self.problem(.unauthorized, "the \(CatalogSignature.header) header is missing") }
        guard CatalogSignature.isValid(signature, body: body, secret: secret) else {
            return Self.problem(.unauthorized, "\(CatalogSignature.header) does not match the body: wrong shared secret, or the body was altered")
        }
        let record: CatalogRecord
        do {
            record = try CatalogRecord.parse(body)
        } catch {
            return Self.problem(.badRequest, "the body is not a catalog record: \(error)")
        }
        guard record.recordId == key else {
            return Self.problem(.badRequest, "Idempotency-Key \(key) is not the record's recordId \(record.recordId)")
        }
        for (name, document) in [("report", record.report), ("certificateDocument", record.certificateDocument ?? .null)] where document != .null {
            do throws(ReportVerificationError) {
                let verified = try ReportVerifier.verify(file: document, trusted: trusted)
                if name == "report", verified.reportId != record.reportId {
                    return Self.problem(.unprocessableContent, "report is \(verified.reportId), the record says \(record.reportId)")
                }
            } catch {
                return Self.problem(.unprocessableContent, "\(name): the signature does not verify: \(error.message)")
            }
        }
        let row = ReceivedRecord(
            id: key, station: record.station, serial: record.device.serial, sequence: record.sequence, grade: record.grade,
            certified: record.certificate?.certified, receivedAt: ISO8601DateFormatter().string(from: Date()),
            body: String(decoding: body, as: UTF8.self))
        do {
            let inserted = try await pool.write { db -> Bool in
                if try ReceivedRecord.exists(db, key: key) { return false }
                try row.insert(db)
                return true
            }
            return Self.json(Receipt(recordId: key, duplicate: !inserted), status: inserted ? .created : .ok)
        } catch {
            return Self.problem(.serviceUnavailable, "the receiver could not store the record: \(error)", headers: [.retryAfter: "5"])
        }
    }

    /// A request header by name (case-insensitive).
    static func header(_ request: Request, _ name: String) -> String? {
        request.headers.first { $0.name.canonicalName == name.lowercased() }?.value
    }

    /// Everything received, in the order it arrived, without bodies.
    public func records() throws -> [ReceivedRecord] {
        try pool.read { db in
            try ReceivedRecord.order(Column.rowID).fetchAll(db).map { var r = $0; r.body = ""; return r }
        }
    }

    /// The router: `POST /v1/records`, `GET /v1/records`, `GET /v1/records/{id}`, `GET /healthz`.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("healthz") { _, _ in Self.json(["status": "ok"], status: .ok) }
        router.post("v1/records") { request, _ in
            let body: Data
            do {
                body = Data(buffer: try await request.body.collect(upTo: 16 << 20))
            } catch {
                return Self.problem(.contentTooLarge, "a record is at most 16 MiB")
            }
            return await self.receive(
                idempotencyKey: Self.header(request, "Idempotency-Key"), signature: Self.header(request, CatalogSignature.header), body: body)
        }
        router.get("v1/records") { _, _ in
            do { return Self.json(try self.records(), status: .ok) } catch { return Self.problem(.internalServerError, "\(error)") }
        }
        router.get("v1/records/:id") { _, context in
            let id = try context.parameters.require("id")
            let row = try? await self.pool.read { db in try ReceivedRecord.fetchOne(db, key: id) }
            guard let row else { return Self.problem(.notFound, "no record \(id)") }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: row.body)))
        }
        return router
    }
}
