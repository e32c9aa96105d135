import AsyncHTTPClient
import Crypto
import Foundation
import LetheCore
import NIOCore

/// A station's second result for an item the hub drew for independent verification
/// (`POST /v1/samples/results` on the hub, HMAC-signed with the station's catalog secret).
public struct SampleResultReport: Codable, Sendable, Equatable {
    public var serial: String?
    public var imei: String?
    public var passed: Bool
    /// What was done and seen (`lethe verify --expect zero: no differing sector`).
    public var result: String
    /// Who re-read it.
    public var checkedBy: String

    public init(serial: String?, imei: String?, passed: Bool, result: String, checkedBy: String) {
        self.serial = serial
        self.imei = imei
        self.passed = passed
        self.result = result
        self.checkedBy = checkedBy
    }

    /// The hub's results endpoint for a station whose catalog URL is the hub's `/v1/records`.
    public static func endpoint(catalogURL: String) -> String {
        let base = catalogURL.hasSuffix("/v1/records") ? String(catalogURL.dropLast("/v1/records".count)) : catalogURL
        return base + "/v1/samples/results"
    }

    /// Posts it; returns the status and the hub's answer (its message on a refusal).
    public func send(to url: String, secret: SymmetricKey, station: String, timeout: Double = 10) async throws(LetheError) -> (status: Int, body: String) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body: Data
        do { body = try encoder.encode(self) } catch { throw LetheError(.invalidArgument, "cannot encode the result: \(error)") }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: CatalogSignature.header, value: CatalogSignature.sign(body, secret: secret))
        request.headers.add(name: "X-Lethe-Station", value: station)
        request.body = .bytes(ByteBuffer(bytes: body))
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = client.shutdown() }
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
            let data = Data(buffer: try await response.body.collect(upTo: 1 << 20))
            return (Int(response.status.code), CatalogPoster.message(in: data))
        } catch {
            throw LetheError(.ioFailure, path: url, "no answer from the hub: \(CatalogPoster.describe(error))")
        }
    }
}
