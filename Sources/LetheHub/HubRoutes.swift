import Foundation
import HTTPTypes
import Hummingbird
import LetheConfig
import LetheCore
import LetheReports
import LetheSync
import NIOCore

extension HubServer {
    /// Sampling, the stations' instructions, scorecards and the QA dashboard.
    func addSamplingRoutes(to router: Router<BasicRequestContext>) {
        struct DrawRequest: Decodable { var percent: Double?; var seed: String? }
        router.post("v1/lots/:lot/samples") { request, context in
            if let refusal = await authorize(request, .qa) { return refusal }
            let lot = context.parameters.get("lot") ?? ""
            do throws(HubProblem) { try HubProblem.checkText(lot, field: "lot") } catch { return Self.problem(error) }
            let body = Data(buffer: (try? await request.body.collect(upTo: 1 << 16)) ?? ByteBuffer())
            let asked: DrawRequest
            do {
                asked = body.isEmpty ? DrawRequest() : try JSONDecoder().decode(DrawRequest.self, from: body)
            } catch let error as DecodingError {
                let (field, why) = HubIngest.describe(error)
                return Self.problem(HubProblem(400, field: field, why))
            } catch {
                return Self.problem(HubProblem(400, field: "body", "not JSON"))
            }
            do {
                let who = Self.header(request, "X-Lethe-User") ?? "qa"
                return Self.json(try await sampling.drawSample(lot: lot, percent: asked.percent ?? 5, seed: asked.seed, by: who), status: .created)
            } catch let problem as HubProblem {
                return Self.problem(problem)
            } catch {
                return unavailable(error, "sample")
            }
        }
        router.get("v1/lots/:lot/samples") { request, context in
            if let refusal = await authorize(request, .qa) { return refusal }
            do {
                let lot = context.parameters.get("lot") ?? ""
                try HubProblem.checkText(lot, field: "lot")
                return Self.json(try await sampling.samples(lot: lot))
            } catch let problem as HubProblem {
                return Self.problem(problem)
            } catch {
                return unavailable(error, "samples")
            }
        }
        // A second result: from a station (its HMAC over the body), or a token of role qa or station.
        router.post("v1/samples/results") { request, _ in
            let body = Data(buffer: (try? await request.body.collect(upTo: 1 << 16)) ?? ByteBuffer())
            var station: String?
            if let stationId = Self.header(request, "X-Lethe-Station") {
                guard HubRegistry.isValidStationId(stationId) else { return Self.problem(HubProblem(400, field: "X-Lethe-Station", "not a station id")) }
                do {
                    guard let credentials = try await registry.credentials(id: stationId), credentials.revokedAt == nil else {
                        return Self.problem(HubProblem(403, field: "X-Lethe-Station", "station \(stationId) is not enrolled, or revoked"))
                    }
                    guard let signature = Self.header(request, CatalogSignature.header),
                        CatalogSignature.isValid(signature, body: body, secret: credentials.secret)
                    else {
                        return Self.problem(HubProblem(401, field: CatalogSignature.header, "missing or does not match the body"))
                    }
                    station = stationId
                } catch {
                    return unavailable(error, "sample result")
                }
            } else if let refusal = await authorize(request, .qa, or: .station) {
                return refusal
            }
            do {
                let result = try JSONDecoder().decode(HubSampling.Result.self, from: body)
                let (sampleId, recordId) = try await sampling.record(result, station: station)
                return Self.json(["sampleId": String(sampleId), "recordId": recordId, "state": result.passed ? "passed" : "failed"])
            } catch let error as DecodingError {
                let (field, why) = HubIngest.describe(error)
                return Self.problem(HubProblem(400, field: field, why))
            } catch let problem as HubProblem {
                return Self.problem(problem)
            } catch {
                return unavailable(error, "sample result")
            }
        }
        // The station's dock-time question (`catalog-api.yaml`): the hub answers `hold` for an
        // item drawn for verification, signed like a catalog's answer.
        router.get("v1/instructions") { request, _ in
            let target = request.head.path ?? "/"
            guard let stationId = Self.header(request, "X-Lethe-Station") else {
                return Self.problem(HubProblem(400, field: "X-Lethe-Station", "the header is missing"))
            }
            guard HubRegistry.isValidStationId(stationId) else { return Self.problem(HubProblem(400, field: "X-Lethe-Station", "not a station id")) }
            do {
                guard let credentials = try await registry.credentials(id: stationId), credentials.revokedAt == nil else {
                    return Self.problem(HubProblem(403, field: "X-Lethe-Station", "station \(stationId) is not enrolled, or revoked"))
                }
                guard let signature = Self.header(request, CatalogSignature.header),
                    CatalogSignature.isValid(signature, body: Data(target.utf8), secret: credentials.secret)
                else {
                    return Self.problem(HubProblem(401, field: CatalogSignature.header, "missing or does not match the request target"))
                }
                let parameters = Self.parameters(request)
                for name in ["serial", "imei", "model", "bay", "device"] { try HubProblem.checkText(parameters[name], field: name) }
                let query = CatalogQuery(
                    serial: parameters["serial"], imei: parameters["imei"], model: parameters["model"], bay: parameters["bay"], device: parameters["device"])
                guard !query.keys.isEmpty else { return Self.problem(HubProblem(400, field: "serial", "give at least one of serial, imei, bay, device")) }
                let held = try await sampling.held(serial: query.serial, imei: query.imei)
                // The shop's own instructions (profile, SKU, lot...), when the hub relays them.
                var answer: CatalogInstructions?
                if let lookup {
                    switch await lookup.ask(query) {
                    case .instructions(let said): answer = said
                    case .unknown: break
                    case .unavailable(let why):
                        if held == nil { return Self.problem(HubProblem(503, field: "catalog", "the shop's catalog did not answer usably: \(why)")) }
                        logger.warning("instructions: \(why); answering the hold alone")
                    }
                }
                guard held != nil || answer != nil else { return Self.problem(HubProblem(404, field: "serial", "no instructions for this device")) }
                var merged = answer ?? CatalogInstructions(matchedBy: query.serial != nil ? "serial" : query.keys.first?.name)
                if let held {
                    merged.hold = true
                    merged.lot = merged.lot ?? held.lot
                    let note = "HOLD: drawn for independent verification (sample \(held.sampleId) of lot \(held.lot)); re-read it (`lethe verify`) and record the result"
                    merged.note = merged.note.map { "\(note); \($0)" } ?? note
                }
                return try CatalogReceiver.signedAnswer(merged, target: target, secret: credentials.secret)
            } catch let problem as HubProblem {
                return Self.problem(problem)
            } catch {
                return unavailable(error, "instructions")
            }
        }
        router.get("v1/scorecards") { request, _ in
            if let refusal = await authorize(request, .qa) { return refusal }
            do {
                return Self.json(try await HubScorecards(database: db).cards(by: Self.parameters(request)["by"] ?? "supplier"))
            } catch let problem as HubProblem {
                return Self.problem(problem)
            } catch {
                return unavailable(error, "scorecards")
            }
        }
        router.get("/") { _, _ in Self.html(HubDashboard.page) }
    }
}

