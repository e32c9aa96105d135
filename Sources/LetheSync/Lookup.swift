import AsyncHTTPClient
import Crypto
import Foundation
import LetheConfig
import LetheCore
import NIOCore

/// Who was docked: the keys the catalog may know the device by.
public struct CatalogQuery: Sendable, Equatable {
    public var serial: String?
    public var imei: String?
    public var model: String?
    /// The bay label (from the station's bay map).
    public var bay: String?
    /// The station's device node (for benches with no serial reader).
    public var device: String?

    /// A query.
    public init(serial: String? = nil, imei: String? = nil, model: String? = nil, bay: String? = nil, device: String? = nil) {
        self.serial = serial
        self.imei = imei
        self.model = model
        self.bay = bay
        self.device = device
    }

    /// The query's keys in the order the catalog tries them (model is context, not a key).
    public var keys: [(name: String, value: String)] {
        [("serial", serial), ("imei", imei), ("bay", bay), ("device", device)].compactMap { name, value in value.map { (name, $0) } }
    }

    /// `serial=…&imei=…&model=…&bay=…&device=…&station=…`, percent-encoded.
    func queryString(station: String) -> String {
        var components = URLComponents()
        let pairs: [(String, String?)] = [("serial", serial), ("imei", imei), ("model", model), ("bay", bay), ("device", device), ("station", station)]
        components.queryItems = pairs.compactMap { name, value in value.map { URLQueryItem(name: name, value: $0) } }
        // `+` is a space to many servers: encode it.
        return (components.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
    }
}

/// The catalog's answer, as the workflow uses it.
public enum CatalogAnswer: Sendable, Equatable {
    /// The catalog knows the device.
    case instructions(CatalogInstructions)
    /// 404: the catalog has nothing for it (the station's own profile match applies).
    case unknown
    /// No usable answer (timeout, unreachable, 5xx, malformed, refused): the station falls back
    /// to its own profile match. The text says why, for the log and the job.
    case unavailable(String)
}

/// Asks the catalog what to do with a docked device: `GET {lookupURL}?serial=…` signed with
/// the shared secret (`X-Lethe-Signature` over the request target), with a short timeout. Any
/// failure is an answer (``CatalogAnswer/unavailable(_:)``), never a thrown error: the bench
/// keeps working when the catalog is down.
public final class CatalogLookup: Sendable {
    /// The lookup endpoint (`…/v1/instructions`).
    public let url: String
    let secret: SymmetricKey
    let station: String
    /// Seconds before the station stops waiting and uses its own profile match.
    public let timeout: Double
    let client: HTTPClient

    /// A lookup with its own HTTP client (closed by ``shutdown()``).
    public init(url: String, secret: SymmetricKey, station: String, timeout: Double = 3) {
        self.url = url
        self.secret = secret
        self.station = station
        self.timeout = timeout
        var configuration = HTTPClient.Configuration()
        let milliseconds = Int64(max(100, timeout * 1000))
        configuration.timeout = .init(connect: .milliseconds(milliseconds), read: .milliseconds(milliseconds))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes the HTTP client.
    public func shutdown() async {
        try? await client.shutdown()
    }

    /// The request target that is signed: the URL's path and query exactly as sent.
    static func target(of url: String) -> String {
        guard let components = URLComponents(string: url) else { return url }
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        return components.percentEncodedQuery.map { "\(path)?\($0)" } ?? path
    }

    /// Asks; at most `timeout` seconds.
    public func ask(_ query: CatalogQuery) async -> CatalogAnswer {
        let full = url + (url.contains("?") ? "&" : "?") + query.queryString(station: station)
        var request = HTTPClientRequest(url: full)
        request.method = .GET
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: CatalogSignature.header, value: CatalogSignature.sign(Data(Self.target(of: full).utf8), secret: secret))
        request.headers.add(name: "X-Lethe-Station", value: station)
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
            let body = Data(buffer: try await response.body.collect(upTo: 1 << 20))
            let signature = response.headers.first(name: CatalogSignature.header)
            return Self.interpret(
                status: Int(response.status.code), body: body, url: url, signature: signature, target: Self.target(of: full), secret: secret)
        } catch {
            let why = CatalogPoster.describe(error)
            return .unavailable("no answer from \(url): \(why == "timed out" ? "timed out after \(Self.seconds(timeout))" : why)")
        }
    }

    /// "3 s", "0.5 s".
    public static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }

    /// What an HTTP answer means. Instructions count only when signed with the shared secret
    /// over the request they answer (``CatalogSignature/answerBytes(target:body:)``): anybody
    /// on the path could otherwise pick the profile a drive is erased with.
    static func interpret(status: Int, body: Data, url: String, signature: String?, target: String, secret: SymmetricKey) -> CatalogAnswer {
        switch status {
        case 200:
            guard let signature else {
                return .unavailable("HTTP 200 from \(url) without a \(CatalogSignature.header) header: an unsigned answer is not trusted")
            }
            guard CatalogSignature.isValid(signature, body: CatalogSignature.answerBytes(target: target, body: body), secret: secret) else {
                return .unavailable("HTTP 200 from \(url) with a \(CatalogSignature.header) that does not match the answer and the request (wrong secret, altered, or an answer to another request)")
            }
            guard let instructions = CatalogInstructions.decode(answer: body) else {
                return .unavailable("HTTP 200 from \(url) but not instructions: \(CatalogPoster.message(in: body))")
            }
            return .instructions(instructions)
        case 404:
            return .unknown
        default:
            let hint = status == 401 || status == 403 ? " (is the catalog secret right?)" : ""
            return .unavailable("HTTP \(status) from \(url): \(CatalogPoster.message(in: body))\(hint)")
        }
    }
}
