import Crypto
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdCore
import LetheCore
import LetheReports
import LetheStore
import NIOCore
import NIOHTTPTypes
import Synchronization

/// Faults the reference receiver injects (for fault tests and demos). Posts meet them in
/// arrival order, one phase after the other: the first `failFirst` posts answer `failStatus`
/// (with `Retry-After: retryAfter`); the next `resetFirst` are stored but their connection is
/// reset (TCP RST) instead of answered; the next `delayFirst` answer only after
/// `delaySeconds`; the next `garbageFirst` get a 200 that is no receipt. Later posts meet none.
public struct ReceiverFaults: Sendable {
    public var failFirst = 0
    public var failStatus = 503
    public var retryAfter: Int?
    /// Posts whose answer is lost to a connection reset (after the record was stored).
    public var resetFirst = 0
    public var delayFirst = 0
    public var delaySeconds = 0.0
    /// Posts that get `200 OK` with an HTML page (a captive portal's, say).
    public var garbageFirst = 0
    /// Seconds every instructions lookup waits before it is answered.
    public var lookupDelaySeconds = 0.0

    /// No faults.
    public init() {}

    /// Whether any fault is asked for.
    public var isEmpty: Bool { failFirst + resetFirst + delayFirst + garbageFirst == 0 }
}

/// The fault one post meets.
enum InjectedFault: String, Sendable {
    case fail, reset, slow, garbage

    /// The request header the injector hands the fault to the route in (stripped from clients).
    static let field = HTTPField.Name("X-Lethe-Injected-Fault")!
}

/// Numbers the posts in arrival order and gives each its fault, phase after phase.
final class FaultPlan: Sendable {
    let faults: ReceiverFaults
    private let posts = Atomic<Int>(0)

    init(_ faults: ReceiverFaults) { self.faults = faults }

    /// The fault of the next post, or nil once every phase is spent.
    func next() -> InjectedFault? {
        var number = posts.wrappingAdd(1, ordering: .relaxed).newValue
        let phases: [(Int, InjectedFault)] = [(faults.failFirst, .fail), (faults.resetFirst, .reset), (faults.delayFirst, .slow), (faults.garbageFirst, .garbage)]
        for (count, fault) in phases {
            if number <= count { return fault }
            number -= count
        }
        return nil
    }
}

/// A channel handler (after HTTP decoding) that gives each POST its fault from the plan. A
/// `reset` post goes on to the route and is stored, but where its answer would be written the
/// connection is closed with SO_LINGER 0: the kernel sends RST, as a dropped NAT entry or a
/// restarted proxy would, and the station never learns that the record arrived.
final class FaultInjector: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let plan: FaultPlan
    /// Per request on this connection, in order: whether its answer is to be a reset.
    private var resets: [Bool] = []

    init(plan: FaultPlan) { self.plan = plan }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else { return context.fireChannelRead(data) }
        head.headerFields[InjectedFault.field] = nil
        let fault = head.method == .post ? plan.next() : nil
        resets.append(fault == .reset)
        if let fault, fault != .reset { head.headerFields[InjectedFault.field] = fault.rawValue }
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .head = unwrapOutboundIn(data), !resets.isEmpty, resets.removeFirst() {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let linger0 = (context.channel as? any SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0))
                ?? context.eventLoop.makeSucceededVoidFuture()
            linger0.whenComplete { _ in bound.value.close(promise: nil) }
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(data, promise: promise)
    }
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
    let faults: FaultPlan?
    let lookupDelay: Double

    /// Opens (or creates) the receiver's database.
    public init(database path: String, secret: SymmetricKey, trusted: [PublicJWK], faults: ReceiverFaults = ReceiverFaults()) throws(LetheError) {
        do {
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
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
            Self.registerInstructions(&migrator)
            try migrator.migrate(pool)
        } catch {
            throw LetheError(.ioFailure, path: path, "cannot open the receiver's database: \(error)")
        }
        self.secret = secret
        self.trusted = trusted
        self.faults = faults.isEmpty ? nil : FaultPlan(faults)
        lookupDelay = faults.lookupDelaySeconds
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

    /// Handles one POST: its injected fault first, then key, size, HMAC, record, signatures, dedup.
    func receive(idempotencyKey: String?, signature: String?, fault: InjectedFault?, body: Data) async -> Response {
        if let plan = faults, let fault {
            switch fault {
            case .fail:
                var headers: HTTPFields = [:]
                if let after = plan.faults.retryAfter { headers[.retryAfter] = String(after) }
                return Self.problem(HTTPResponse.Status(code: plan.faults.failStatus), "injected fault", headers: headers)
            case .garbage:
                return Response(status: .ok, headers: [.contentType: "text/html"], body: ResponseBody(byteBuffer: ByteBuffer(string: "<html><body>Welcome to the warehouse Wi-Fi</body></html>")))
            case .slow:
                try? await Task.sleep(for: .milliseconds(Int(plan.faults.delaySeconds * 1000)))
            case .reset:
                break
            }
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
        var signed: [String: VerifiedReport] = [:]
        for (name, document) in [("report", record.report), ("certificateDocument", record.certificateDocument ?? .null)] where document != .null {
            do throws(ReportVerificationError) {
                signed[name] = try ReportVerifier.verify(file: document, trusted: trusted)
            } catch {
                return Self.problem(.unprocessableContent, "\(name): the signature does not verify: \(error.message)")
            }
        }
        // The record's summary fields are only HMAC'd with the shared secret; what is stored is
        // what the station's signing key signed, and a summary that says otherwise is refused.
        if let problem = Self.disagreement(record, report: signed["report"], certificate: signed["certificateDocument"]) {
            return Self.problem(.unprocessableContent, problem)
        }
        let certifiedBySignature: Bool? = signed["certificateDocument"].flatMap {
            if case .bool(let value)? = $0.signed.document["certified"] { value } else { nil }
        }
        let row = ReceivedRecord(
            id: key, station: record.station, serial: signed["report"]?.signed.document["device"]?["serial"]?.stringValue,
            sequence: record.sequence, grade: signed["report"]?.signed.document["grade"]?.stringValue ?? record.grade,
            certified: record.certificate == nil ? nil : (certifiedBySignature ?? false), receivedAt: Store.iso8601(Date()),
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

    /// Where the record's summary contradicts its signed documents (nil: it does not). The
    /// refurb report must be there and be the record's; the grade and serial must be what it
    /// signed; a certificate summary must match the signed certificate (id, status,
    /// `certified`), and `certified: true` needs that signed certificate.
    public static func disagreement(_ record: CatalogRecord, report: VerifiedReport?, certificate: VerifiedReport?) -> String? {
        guard let report else { return "the record carries no signed refurb report" }
        let document = report.signed.document
        if report.reportId != record.reportId { return "report is \(report.reportId), the record says \(record.reportId)" }
        if let grade = document["grade"]?.stringValue, grade != record.grade {
            return "grade: the record says \(record.grade), the signed report \(grade)"
        }
        if document["device"]?["serial"]?.stringValue != record.device.serial {
            return "device.serial: the record says \(record.device.serial ?? "none"), the signed report \(document["device"]?["serial"]?.stringValue ?? "none")"
        }
        guard let summary = record.certificate else {
            return certificate == nil ? nil : "a signed certificate came without the record's certificate summary"
        }
        guard let certificate else {
            return summary.certified ? "certificate.certified is true, but no signed certificate came with the record" : nil
        }
        let signedCertified: Bool? = if case .bool(let value)? = certificate.signed.document["certified"] { value } else { nil }
        if certificate.reportId != summary.id { return "certificate.id: the record says \(summary.id), the signed certificate is \(certificate.reportId)" }
        if signedCertified != summary.certified {
            return "certificate.certified: the record says \(summary.certified), the signed certificate \(signedCertified.map(String.init) ?? "nothing")"
        }
        if let status = certificate.signed.document["status"]?.stringValue, status != summary.status {
            return "certificate.status: the record says \(summary.status), the signed certificate \(status)"
        }
        return nil
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

    /// The router: `POST /v1/records`, `GET /v1/records`, `GET /v1/records/{id}`,
    /// `GET|PUT /v1/instructions`, `GET /healthz`.
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
                idempotencyKey: Self.header(request, "Idempotency-Key"), signature: Self.header(request, CatalogSignature.header),
                fault: request.headers[InjectedFault.field].flatMap(InjectedFault.init(rawValue:)), body: body)
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
        addInstructionRoutes(to: router)
        return router
    }

    /// The HTTP/1 server to run the router on: with the fault injector on every connection when
    /// faults were asked for.
    public func server() -> HTTPServerBuilder {
        let plan = faults
        return .http1(configuration: HTTP1Channel.Configuration(additionalChannelHandlers: plan.map { [FaultInjector(plan: $0)] } ?? []))
    }
}
