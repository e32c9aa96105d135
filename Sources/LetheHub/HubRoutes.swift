import Foundation
import HTTPTypes
import Hummingbird
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
        // A second result: from a station (its HMAC over the body) or QA (a token).
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
            } else if let refusal = await authorize(request, .qa) {
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
                try HubProblem.checkText(parameters["serial"], field: "serial")
                try HubProblem.checkText(parameters["imei"], field: "imei")
                guard let held = try await sampling.held(serial: parameters["serial"], imei: parameters["imei"]) else {
                    return Self.problem(HubProblem(404, field: "serial", "no instructions for this device"))
                }
                let answer = CatalogInstructionsAnswer(
                    note: "HOLD: drawn for independent verification (sample \(held.sampleId) of lot \(held.lot)); re-read it (`lethe verify`) and record the result",
                    matchedBy: parameters["serial"] != nil ? "serial" : "imei", lot: held.lot, hold: true)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                let data = try encoder.encode(answer)
                var headers = HTTPFields()
                headers[HTTPField.Name(CatalogSignature.header)!] = CatalogSignature.sign(CatalogSignature.answerBytes(target: target, body: data), secret: credentials.secret)
                headers[.contentType] = "application/json"
                return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
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

/// The hub's answer to a station's instructions lookup.
struct CatalogInstructionsAnswer: Encodable {
    var note: String
    var matchedBy: String
    var lot: String
    var hold: Bool
}
