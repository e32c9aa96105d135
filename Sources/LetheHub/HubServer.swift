import Foundation
import HTTPTypes
import Hummingbird
import LetheCore
import LetheReports
import LetheSync
import Logging
import NIOCore

/// The hub's HTTP API (`hub-api.yaml`): ingest, public verification, the JWKS, QA search and
/// export, sampling, scorecards, health and metrics. Every handler reads and writes PostgreSQL
/// only, so any instance can answer any request.
public struct HubServer: Sendable {
    let db: HubDatabase
    let ingest: HubIngest
    let verification: HubVerification
    let registry: HubRegistry
    let search: HubSearch
    let sampling: HubSampling
    let metrics: HubMetrics
    let logger: Logger
    /// The shop's instructions endpoint, relayed to stations (nil: the hub answers holds only).
    let lookup: CatalogLookup?
    /// The largest body a station may post.
    public static let maxBody = 16 << 20

    public init(database: HubDatabase, instance: String, metrics: HubMetrics, logger: Logger, lookup: CatalogLookup? = nil) {
        self.lookup = lookup
        db = database
        ingest = HubIngest(database: database, instance: instance)
        verification = HubVerification(database: database)
        registry = HubRegistry(database: database)
        search = HubSearch(database: database)
        sampling = HubSampling(database: database)
        self.metrics = metrics
        self.logger = logger
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: (try? encoder.encode(value)) ?? Data("{}".utf8))))
    }

    struct ProblemBody: Encodable { var error: String; var field: String; var message: String }

    static func problem(_ problem: HubProblem, headers: HTTPFields = [:]) -> Response {
        let status = HTTPResponse.Status(code: problem.status)
        return json(ProblemBody(error: status.reasonPhrase, field: problem.field, message: problem.message), status: status, headers: headers)
    }

    /// A database that does not answer: 503 with Retry-After, so stations and clients try again.
    func unavailable(_ error: any Error, _ what: String) -> Response {
        logger.warning("\(what): \(error)")
        return Self.problem(HubProblem(503, field: "database", "the hub cannot reach its database: \(error)"), headers: [.retryAfter: "2"])
    }

    static func header(_ request: Request, _ name: String) -> String? {
        request.headers.first { $0.name.canonicalName == name.lowercased() }?.value
    }

    static func html(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// The bearer token's role, or the refusal (401 without a token, 403 with too little).
    func authorize(_ request: Request, _ needed: HubRole, or other: HubRole? = nil) async -> Response? {
        guard let value = Self.header(request, "Authorization"), value.hasPrefix("Bearer ") else {
            return Self.problem(HubProblem(401, field: "Authorization", "a bearer token is required (`lethe-hub tokens add NAME --role \(needed.rawValue)`)"))
        }
        do {
            guard let found = try await registry.role(of: String(value.dropFirst(7))) else {
                return Self.problem(HubProblem(401, field: "Authorization", "the token is not known to this hub"))
            }
            guard found.role.allows(needed) || other.map(found.role.allows) == true else {
                let roles = [needed, other].compactMap { $0?.rawValue }.joined(separator: " or ")
                return Self.problem(HubProblem(403, field: "Authorization", "token \(found.name) has role \(found.role.rawValue); this needs \(roles)"))
            }
            return nil
        } catch {
            return unavailable(error, "token check")
        }
    }

    static func parameters(_ request: Request) -> [String: String] {
        var result: [String: String] = [:]
        for (key, value) in request.uri.queryParameters { result[String(key)] = String(value) }
        return result
    }

    /// The router.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("healthz") { _, _ in
            do {
                _ = try await db.rows("health", "SELECT 1", as: Int.self)
                return Self.json(["status": "ok"])
            } catch {
                return unavailable(error, "health")
            }
        }
        router.get("metrics") { _, _ in
            do {
                let records = try await db.rows("metrics", "SELECT count(*)::int FROM record", as: Int.self).first ?? 0
                let stations = try await db.rows("metrics", "SELECT count(*)::int FROM station", as: Int.self).first ?? 0
                let outbox = try await db.rows("metrics", "SELECT state, count(*)::int FROM outbox GROUP BY state", as: (String, Int).self)
                let text = metrics.exposition(records: records, outbox: Dictionary(uniqueKeysWithValues: outbox), stations: stations)
                return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
            } catch {
                return unavailable(error, "metrics")
            }
        }
        router.post("v1/records") { request, _ in
            let body: Data
            do {
                body = Data(buffer: try await request.body.collect(upTo: Self.maxBody))
            } catch {
                metrics.ingested("refused")
                return Self.problem(HubProblem(413, field: "body", "a record is at most \(Self.maxBody >> 20) MiB"))
            }
            do {
                let receipt = try await ingest.ingest(
                    station: Self.header(request, "X-Lethe-Station"), idempotencyKey: Self.header(request, "Idempotency-Key"),
                    signature: Self.header(request, CatalogSignature.header), body: body)
                metrics.ingested(receipt.duplicate ? "duplicate" : "stored")
                return Self.json(receipt, status: receipt.duplicate ? .ok : .created)
            } catch let problem as HubProblem {
                metrics.ingested("refused")
                logger.notice("ingest refused: \(problem)")
                return Self.problem(problem)
            } catch {
                metrics.ingested("unavailable")
                return unavailable(error, "ingest")
            }
        }
        router.get("v1/reports/:id") { request, context in
            let id = context.parameters.get("id") ?? ""
            let start = ContinuousClock.now
            defer { metrics.lookupSeconds.recordNanoseconds(Int64((ContinuousClock.now - start) / .nanoseconds(1))) }
            do {
                guard let view = try await verification.lookup(id: id, digest: Self.parameters(request)["d"]) else {
                    return Self.problem(HubProblem(404, field: "id", "no report \(id) at this hub"))
                }
                return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: try view.json())))
            } catch {
                return unavailable(error, "lookup")
            }
        }
        router.get("verify/:id") { request, context in
            let id = context.parameters.get("id") ?? ""
            let start = ContinuousClock.now
            defer { metrics.lookupSeconds.recordNanoseconds(Int64((ContinuousClock.now - start) / .nanoseconds(1))) }
            do {
                guard let view = try await verification.lookup(id: id, digest: Self.parameters(request)["d"]) else {
                    var response = Self.html(VerifyPage.notFound(id: id))
                    response.status = .notFound
                    return response
                }
                return Self.html(VerifyPage.render(view))
            } catch {
                return unavailable(error, "verify page")
            }
        }
        router.get(".well-known/jwks.json") { _, _ in
            do {
                let body = HubVerification.jwks(try await registry.keys()).canonicalData
                return Response(
                    status: .ok, headers: [.contentType: "application/jwk-set+json", .cacheControl: "max-age=60"],
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
            } catch {
                return unavailable(error, "jwks")
            }
        }
        router.get("v1/records") { request, _ in
            if let refusal = await authorize(request, .qa) { return refusal }
            let parameters = Self.parameters(request)
            do {
                let rows = try await search.records(try HubQuery(parameters: parameters))
                switch parameters["format"] ?? "json" {
                case "json": return Self.json(rows)
                case "csv":
                    return Response(
                        status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"lethe-hub-export.csv\""],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: HubSearch.csv(rows))))
                case let other: return Self.problem(HubProblem(400, field: "format", "\(other) is not json or csv"))
                }
            } catch let problem as HubProblem {
                return Self.problem(problem)
            } catch {
                return unavailable(error, "search")
            }
        }
        addSamplingRoutes(to: router)
        return router
    }
}
