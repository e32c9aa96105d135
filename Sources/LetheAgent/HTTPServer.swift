import Foundation
import Hummingbird
import NIOPosix
import LetheCore
import LetheReports
import LetheStore
import LetheSync
import ServiceLifecycle

/// The daemon's HTTP API, the public verify page and the dashboard.
public enum HTTPServer {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    struct Problem: Encodable {
        var error: String
        var message: String
    }

    static func problem(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(Problem(error: status.reasonPhrase, message: message), status: status)
    }

    /// Checks the bearer token: the token's entry when allowed, else the 401/403 response.
    /// `queryToken` also accepts `?token=` (only for the event stream: browsers' EventSource
    /// cannot send headers).
    static func authorize(_ request: Request, _ needed: APIRole, tokens store: TokenStore, queryToken: Bool = false) -> Result<TokenFile.Entry, ProblemResponse> {
        let tokens = store.current
        let presented: String
        if let header = request.headers[.authorization], header.hasPrefix("Bearer ") {
            presented = String(header.dropFirst(7))
        } else if queryToken, let token = request.uri.queryParameters.get("token") {
            presented = token
        } else {
            return .failure(ProblemResponse(problem(.unauthorized, tokens.tokens.isEmpty
                ? "no API tokens are configured on this station; create one with `lethe tokens add NAME --role technician|qa`"
                : "send Authorization: Bearer TOKEN (role \(needed.rawValue) or technician)")))
        }
        guard let entry = tokens.entry(for: presented) else { return .failure(ProblemResponse(problem(.unauthorized, "unknown token"))) }
        guard entry.role.allows(needed) else {
            return .failure(ProblemResponse(problem(.forbidden, "token \(entry.name) has role \(entry.role.rawValue); this needs \(needed.rawValue == "qa" ? "qa or technician" : needed.rawValue)")))
        }
        return .success(entry)
    }

    /// A 4xx response as an error value.
    struct ProblemResponse: Error { var response: Response; init(_ response: Response) { self.response = response } }

    /// Runs blocking work (SQLite, reading or fsyncing files, signing and rendering PDFs) on
    /// NIO's thread pool, never on Swift's cooperative pool, which the HTTP server's other
    /// requests need.
    static func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(work)
    }

    /// Checks the bearer token: nil when allowed, else the 401/403 response.
    static func deny(_ request: Request, _ needed: APIRole, tokens: TokenStore, queryToken: Bool = false) -> Response? {
        if case .failure(let problem) = authorize(request, needed, tokens: tokens, queryToken: queryToken) { return problem.response }
        return nil
    }

    /// `GET /api/v1/outbox`.
    struct OutboxView: Encodable {
        var summary: Outbox.Summary
        var records: [OutboxRow]
    }

    /// The body of a grade request.
    struct GradeRequest: Decodable {
        var grade: String
        var notes: String?
    }

    /// `POST /api/v1/jobs/{id}/ACTION` with a JSON body, for technicians: 401/403 from the
    /// token, 400 naming the problem (with `example`) for a body that is not the JSON asked for,
    /// then the bench's answer or its error's status and message.
    /// The optional body of a start.
    struct StartRequest: Decodable, Sendable {
        /// A TCG revert in place of the profile's method (for a locked self-encrypting drive).
        var method: String?
        /// The PSID (tcg-psid-revert).
        var psid: String?
        /// The owner's SID password (tcg-revert-sp) or Admin1 password (tcg-crypto-erase).
        var password: String?
    }

    static func jobPost<Body: Decodable & Sendable>(
        _ router: Router<BasicRequestContext>, _ action: String, tokens: TokenStore, example: String,
        _ perform: @escaping @Sendable (String, Body, TokenFile.Entry) throws(Bench.StartError) -> JobView
    ) {
        router.post("api/v1/jobs/:id/\(action)") { request, context in
            let entry: TokenFile.Entry
            switch authorize(request, .technician, tokens: tokens) {
            case .failure(let problem): return problem.response
            case .success(let found): entry = found
            }
            let id = try context.parameters.require("id")
            let body: Body
            do {
                let buffer = try await request.body.collect(upTo: 64 << 10)
                body = try JSONDecoder().decode(Body.self, from: Data(buffer.readableBytesView))
            } catch let error as DecodingError {
                return problem(.badRequest, "the body must be JSON like \(example): \(describe(error))")
            } catch {
                return problem(.badRequest, "the body could not be read (at most 64 KiB of JSON): \(error)")
            }
            // Grading signs a report, renders its PDF and writes the store: a blocking job.
            let result: Result<JobView, Bench.StartError> = try await blocking { Result { () throws(Bench.StartError) in try perform(id, body, entry) } }
            switch result {
            case .success(let job): return json(job)
            case .failure(let error): return problem(HTTPResponse.Status(code: error.status), error.message)
            }
        }
    }

    /// The router: API under /api/v1 (bearer tokens: `qa` reads, `technician` also starts,
    /// aborts and resumes), and, public: /healthz, /metrics (counts only), /verify/{id}, single
    /// reports by id, the dashboard page.
    public static func router(bench: Bench, store: Store, trusted: [PublicJWK], tokens: TokenStore) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("healthz") { _, _ in json(["status": "ok"]) }
        router.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: bench.metricsText)))
        }
        router.get("api/v1/devices") { request, _ in deny(request, .qa, tokens: tokens) ?? json(bench.devices) }
        router.get("api/v1/jobs") { request, _ in deny(request, .qa, tokens: tokens) ?? json(bench.jobs) }
        router.get("api/v1/jobs/:id") { request, context in
            if let denied = deny(request, .qa, tokens: tokens) { return denied }
            let id = try context.parameters.require("id")
            guard let job = bench.job(id) else { return problem(.notFound, "no job \(id)") }
            return json(job)
        }
        // Start: no body, or {"method": "tcg-psid-revert", "psid": "…"} (or
        // {"method": "tcg-crypto-erase", "password": "…"}) for a self-encrypting drive. The
        // PSID or password goes to the job's session and nowhere else: not logged, not stored.
        router.post("api/v1/jobs/:id/start") { request, context in
            if let denied = deny(request, .technician, tokens: tokens) { return denied }
            let id = try context.parameters.require("id")
            var start = StartRequest()
            do {
                let buffer = try await request.body.collect(upTo: 4 << 10)
                if buffer.readableBytes > 0 { start = try JSONDecoder().decode(StartRequest.self, from: Data(buffer.readableBytesView)) }
            } catch let error as DecodingError {
                return problem(.badRequest, "the body must be empty, or JSON like {\"method\": \"tcg-psid-revert\", \"psid\": \"…\"}: \(describe(error))")
            } catch {
                return problem(.badRequest, "the body could not be read (at most 4 KiB of JSON)")
            }
            let request = start
            let result: Result<JobView, Bench.StartError> = try await blocking {
                Result { () throws(Bench.StartError) in try bench.start(id, method: request.method, credential: (request.psid ?? request.password).map { Array($0.utf8) }) }
            }
            switch result {
            case .success(let job): return json(job, status: .accepted)
            case .failure(let error): return problem(HTTPResponse.Status(code: error.status), error.message)
            }
        }
        let actions: [(String, @Sendable (String) throws(Bench.StartError) -> JobView)] = [
            ("abort", { @Sendable id throws(Bench.StartError) in try bench.abort(id) }),
            ("resume", { @Sendable id throws(Bench.StartError) in try bench.resume(id) }),
        ]
        for (action, perform) in actions {
            router.post("api/v1/jobs/:id/\(action)") { request, context in
                if let denied = deny(request, .technician, tokens: tokens) { return denied }
                let id = try context.parameters.require("id")
                // A resume reads its checkpoint from the store.
                let result: Result<JobView, Bench.StartError> = try await blocking { Result { () throws(Bench.StartError) in try perform(id) } }
                switch result {
                case .success(let job): return json(job, status: .accepted)
                case .failure(let error): return problem(HTTPResponse.Status(code: error.status), error.message)
                }
            }
        }
        jobPost(router, "grade", tokens: tokens, example: #"{"grade": "B", "notes": "light scratches"}"#) { (id, body: GradeRequest, entry) throws(Bench.StartError) in
            try bench.grade(id, grade: body.grade, notes: body.notes, by: entry.name)
        }
        jobPost(router, "checks", tokens: tokens, example: #"{"screen": "pass", "speaker": "fail"}"#) { (id, results: [String: String], entry) throws(Bench.StartError) in
            try bench.recordFunctionChecks(id, results: results, by: entry.name)
        }
        let outbox = Outbox(store: store)
        router.get("api/v1/outbox") { request, _ in
            if let denied = deny(request, .qa, tokens: tokens) { return denied }
            let state = request.uri.queryParameters.get("state").map { String($0) }
            if let state, !["pending", "delivered", "dead"].contains(state) {
                return problem(.badRequest, "state must be pending, delivered or dead, not \"\(state)\"")
            }
            let result: Result<OutboxView, LetheError> = try await blocking {
                Result { () throws(LetheError) in OutboxView(summary: try outbox.summary(), records: try outbox.rows(state: state)) }
            }
            switch result {
            case .success(let view): return json(view)
            case .failure(let error): return problem(.serviceUnavailable, error.message)
            }
        }
        router.post("api/v1/outbox/:id/retry") { request, context in
            if let denied = deny(request, .technician, tokens: tokens) { return denied }
            let id = try context.parameters.require("id")
            let result: Result<Int, LetheError> = try await blocking {
                Result { () throws(LetheError) in id == "dead" ? try outbox.retry() : try outbox.retry(id: id) }
            }
            switch result {
            case .success(let count):
                guard count > 0 || id == "dead" else { return problem(.notFound, "no undelivered record \(id)") }
                return json(["requeued": count], status: .accepted)
            case .failure(let error):
                return problem(.serviceUnavailable, error.message)
            }
        }
        router.get("api/v1/events") { request, _ in
            if let denied = deny(request, .qa, tokens: tokens, queryToken: true) { return denied }
            let stream = bench.events.subscribe(initial: bench.snapshotEvents)
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
                    for await event in stream.cancelOnGracefulShutdown() {
                        try await writer.write(ByteBuffer(string: event.frame))
                    }
                    try await writer.finish(nil)
                })
        }
        router.get("api/v1/reports") { request, _ in
            if let denied = deny(request, .qa, tokens: tokens) { return denied }
            let serial = request.uri.queryParameters.get("serial")
            let imei = request.uri.queryParameters.get("imei")
            if let imei, !(14...16).contains(imei.count) || !imei.allSatisfy(\.isASCII) || !imei.allSatisfy(\.isNumber) {
                return problem(.badRequest, "imei: expected 14 to 16 digits, got \"\(imei)\"")
            }
            let result: Result<[ReportRow], LetheError> = try await blocking { Result { () throws(LetheError) in try store.reports(serial: serial, imei: imei) } }
            switch result {
            case .success(let rows): return json(rows)
            case .failure(let error): return problem(.internalServerError, error.message)
            }
        }
        router.get("api/v1/reports/:id") { _, context in
            let raw = try context.parameters.require("id")
            let pdf = raw.hasSuffix(".pdf")
            let id = pdf ? String(raw.dropLast(4)) : raw
            guard ReportID.isValid(id) else { return problem(.badRequest, "\"\(id)\" is not a report id") }
            let found: (row: ReportRow?, data: Data?) = try await blocking {
                let row = (try? store.read({ db in try ReportRow.fetchOne(db, key: id) })) ?? nil
                return (row, row.flatMap { FileManager.default.contents(atPath: pdf ? $0.pdfPath : $0.jsonPath) })
            }
            guard found.row != nil else { return problem(.notFound, "no report \(id)") }
            guard let data = found.data else {
                return problem(.notFound, "report \(id) is recorded but its file is missing")
            }
            return Response(
                status: .ok, headers: [.contentType: pdf ? "application/pdf" : "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
        }
        router.get("verify/:id") { request, context in
            let id = try context.parameters.require("id")
            let digest = request.uri.queryParameters.get("d").map { String($0) }
            return html(try await blocking { verifyPage(id: id, digest: digest, store: store, trusted: trusted) })
        }
        router.get("/") { _, _ in html(Dashboard.page) }
        return router
    }

    /// A decoding error in plain words, naming the field.
    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, _): return "field \"\(key.stringValue)\" is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "field \"\(path(context))\" has the wrong type (\(context.debugDescription))"
        case .dataCorrupted(let context):
            return path(context).isEmpty ? "not valid JSON" : "field \"\(path(context))\": \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// The public page the QR code points at: verdict, and whether the signature checks.
    static func verifyPage(id: String, digest: String?, store: Store, trusted: [PublicJWK]) -> String {
        func page(_ title: String, _ color: String, _ body: String) -> String {
            "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'><title>\(escape(title))</title><body style='font-family:sans-serif;max-width:40em;margin:2em auto'><h1 style='color:\(color)'>\(escape(title))</h1>\(body)</body>"
        }
        guard ReportID.isValid(id), let row = try? store.read({ db in try ReportRow.fetchOne(db, key: id) }),
            let data = FileManager.default.contents(atPath: row.jsonPath)
        else {
            return page("Unknown certificate", "#b00", "<p>No report with id <code>\(escape(id))</code> was issued by this station.</p>")
        }
        switch Result(catching: { () throws(ReportVerificationError) -> VerifiedReport in try ReportVerifier.verify(fileData: data, trusted: trusted) }) {
        case .failure(let error):
            return page("Signature does NOT verify", "#b00", "<p>\(escape(error.message))</p>")
        case .success(let verified):
            let document = verified.signed.document
            let status = document["status"]?.stringValue ?? document["grade"]?.stringValue ?? "?"
            let certified: Bool = { if case .bool(let b)? = document["certified"] { return b } else { return false } }()
            let serial = document["device"]?["serial"]?.stringValue ?? "unknown"
            let model = document["device"]?["model"]?.stringValue ?? "unknown"
            let digestLine: String
            if let digest {
                digestLine = digest == verified.signed.digest
                    ? "<p>The digest in the QR code matches the signed document.</p>"
                    : "<p style='color:#b00'><b>The digest in the QR code does not match this document.</b></p>"
            } else {
                digestLine = ""
            }
            let title = WipeCertificate.isCertificate(schema: verified.schema)
                ? (certified ? "Erase certified: \(status)" : "NOT certified: \(status)") : "Refurb report: grade \(status)"
            return page(title, certified || !WipeCertificate.isCertificate(schema: verified.schema) ? "#17803d" : "#b00", """
                <p>Report <code>\(escape(id))</code>, signed by station key <code>\(escape(verified.keyId))</code>: the signature is valid.</p>
                \(digestLine)
                <p>Device: \(escape(model)), serial <code>\(escape(serial))</code></p>
                <p><a href="/api/v1/reports/\(escape(id)).pdf">PDF</a> · <a href="/api/v1/reports/\(escape(id))">signed JSON</a></p>
                """)
        }
    }
}
