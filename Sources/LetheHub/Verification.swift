import Foundation
import LetheCore
import LetheReports
import PostgresNIO
import Synchronization

/// What the hub knows of one report, as `GET /v1/reports/{id}` answers and the verify page shows.
public struct HubReportView: Encodable, Sendable {
    public var reportId: String
    /// `certificate` or `refurb`.
    public var kind: String
    /// The verdict a buyer reads: `certified`, `not certified (STATUS)`, `refurb report, grade G`,
    /// or `flagged: WHY` (a revoked key, a signature that does not verify).
    public var verdict: String
    public var certified: Bool
    public var status: String?
    public var grade: String?
    public var station: String
    public var stationName: String
    public var keyId: String
    /// `active`, `retired` or `revoked`.
    public var keyStatus: String
    public var keyRevokedAt: String?
    /// Why the report must not be trusted (empty when nothing is wrong).
    public var flags: [String]
    /// Whether the signature verifies against the station's registered key (checked now).
    public var signatureValid: Bool
    /// base64url SHA-256 of the signed bytes (what the QR code carries).
    public var digest: String
    /// Whether the digest from the QR code matches (nil when none was given).
    public var digestMatches: Bool?
    public var method: String?
    public var category: String?
    public var manufacturer: String?
    public var model: String?
    public var serial: String?
    public var mediaType: String?
    public var issuedAt: String?
    public var receivedAt: String
    /// The independent verification of the item, when it was sampled.
    public var sample: HubSampleState?
    /// The JWS members of the stored file, as stored (the verify page checks them in the browser).
    public var jws: HubJWSParts
    /// The same, as stored (canonical JSON text): spliced into the JSON answer as it is.
    public var fileText: String

    enum CodingKeys: String, CodingKey {
        case reportId, kind, verdict, certified, status, grade, station, stationName, keyId, keyStatus, keyRevokedAt, flags, signatureValid
        case digest, digestMatches, method, category, manufacturer, model, serial, mediaType, issuedAt, receivedAt, sample
    }

    /// The JSON answer: the view's members (sorted, absent when nil, as `JSONEncoder` with
    /// sorted keys writes them), then `file` (the stored text, not re-encoded). Written with
    /// the canonical writer, not `JSONEncoder`: this is every buyer's lookup.
    public func json() throws -> Data {
        var members: [String: JSONValue] = [
            "reportId": .string(reportId), "kind": .string(kind), "verdict": .string(verdict), "certified": .bool(certified),
            "station": .string(station), "stationName": .string(stationName), "keyId": .string(keyId), "keyStatus": .string(keyStatus),
            "flags": .array(flags.map(JSONValue.string)), "signatureValid": .bool(signatureValid), "digest": .string(digest),
            "receivedAt": .string(receivedAt),
        ]
        let optional: [(String, String?)] = [
            ("status", status), ("grade", grade), ("keyRevokedAt", keyRevokedAt), ("method", method), ("category", category),
            ("manufacturer", manufacturer), ("model", model), ("serial", serial), ("mediaType", mediaType), ("issuedAt", issuedAt),
        ]
        for case let (name, value?) in optional { members[name] = .string(value) }
        if let digestMatches { members["digestMatches"] = .bool(digestMatches) }
        if let sample {
            var fields: [String: JSONValue] = ["state": .string(sample.state)]
            for case let (name, value?) in [("checkedBy", sample.checkedBy), ("checkedAt", sample.checkedAt), ("result", sample.result)] {
                fields[name] = .string(value)
            }
            members["sample"] = .object(fields)
        }
        var data = JSONValue.object(members).canonicalData
        data.removeLast()  // "}"
        data.append(contentsOf: Array(",\"file\":".utf8))
        data.append(contentsOf: Array((fileText.isEmpty ? "null" : fileText).utf8))
        data.append(UInt8(ascii: "}"))
        return data
    }
}

/// A lookup's one query, prepared: parsed and planned once per connection, not per request.
struct LookupStatement: HubByIdStatement {
    typealias Row = (String, String, String, String, String, Date?, Date?, String, Date, String, String?, String?, Date?, String?)
    static let sql = """
        SELECT r.kind, r.station_id, s.name, r.kid, k.jwk, k.retired_at, k.revoked_at, r.file, r.received_at, r.record_id,
               si.state, si.checked_by, si.checked_at, si.result
        FROM report r JOIN station s ON s.id = r.station_id JOIN station_key k ON k.kid = r.kid
        LEFT JOIN LATERAL (SELECT x.state, x.checked_by, x.checked_at, x.result FROM sample_item x
                           WHERE x.record_id = r.record_id ORDER BY x.sample_id DESC LIMIT 1) si ON true
        WHERE r.id = $1
        """
    var id: String

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

/// A stored report's JWS members, as text.
public struct HubJWSParts: Sendable, Equatable {
    public var protectedHeader: String
    public var payload: String
    public var signature: String
}

/// The sampling state of a record as the verify page shows it.
public struct HubSampleState: Codable, Sendable, Equatable {
    public var state: String
    public var checkedBy: String?
    public var checkedAt: String?
    public var result: String?
}

/// Public verification: lookups of stored reports, checked again at every lookup against the
/// registered keys (so a database row altered after ingest shows as a failed signature).
public struct HubVerification: Sendable {
    let db: HubDatabase

    public init(database: HubDatabase) { db = database }

    /// The view of report `id`, or nil when the hub has none. `digest` is the QR code's `d`.
    public func lookup(id: String, digest: String?) async throws -> HubReportView? {
        guard ReportID.isValid(id) else { return nil }
        let rows = try await db.rows("lookup report", prepared: LookupStatement(id: id))
        guard let (kind, station, stationName, kid, jwkText, retired, revoked, fileText, received, _, sampleState, checkedBy, checkedAt, sampleResult) = rows.first else {
            return nil
        }
        // The stored text is canonical: read on its bytes (no parse of the whole file), and
        // parsed as JSON only when it is not in that shape (an altered row, say).
        let canonical = CanonicalReportFile(text: fileText)
        let file: JSONValue? = canonical == nil ? ((try? JSONValue.parse(Data(fileText.utf8))) ?? .null) : nil
        let parts = HubJWSParts(
            protectedHeader: canonical?.protectedHeader ?? file?["protected"]?.stringValue ?? "",
            payload: canonical?.payloadText ?? file?["payload"]?.stringValue ?? "",
            signature: canonical?.signatureText ?? file?["signature"]?.stringValue ?? "")
        var flags: [String] = []
        var signatureValid = false
        var signedDigest = ""
        // What the page shows when the signature does not verify: the readable copy, unverified.
        func unverified() -> JSONValue { file?["report"] ?? canonical.flatMap { try? JSONValue.parse($0.payload) } ?? .null }
        var document: JSONValue = .null
        if let jwk = Self.key(jwkText) {
            do throws(ReportVerificationError) {
                let verified: VerifiedReport
                if let canonical {
                    verified = try ReportVerifier.verify(canonical, trusted: [jwk])
                } else {
                    verified = try ReportVerifier.verify(file: file ?? .null, trusted: [jwk])
                }
                signatureValid = verified.reportId == id
                signedDigest = verified.signed.digest
                document = verified.signed.document
                if !signatureValid { flags.append("the signed document is report \(verified.reportId), not \(id)") }
            } catch {
                flags.append("the signature does not verify: \(error.message)")
                document = unverified()
            }
        } else {
            flags.append("the station key \(kid) is unreadable at the hub")
            document = unverified()
        }
        let issued = document["issuedAt"]?.stringValue
        if let revoked {
            let issuedDate = issued.flatMap(HubIngest.date(iso8601:))
            if received >= revoked || (issuedDate.map { $0 >= revoked } ?? false) {
                flags.append("signed with key \(kid), which was revoked at \(HubIngest.iso8601(revoked)), before this report was signed or received")
            }
        }
        let certified: Bool = if case .bool(let value)? = document["certified"] { value } else { false }
        let status = document["status"]?.stringValue
        let grade = document["grade"]?.stringValue
        let verdict: String
        if !flags.isEmpty {
            verdict = "flagged: \(flags[0])"
        } else if kind == "certificate" {
            verdict = certified ? "certified" : "not certified (\(status ?? "no status"))"
        } else {
            verdict = "refurb report, grade \(grade ?? "?")"
        }
        return HubReportView(
            reportId: id, kind: kind, verdict: verdict, certified: certified && flags.isEmpty, status: status, grade: grade, station: station,
            stationName: stationName, keyId: kid, keyStatus: revoked != nil ? "revoked" : retired != nil ? "retired" : "active",
            keyRevokedAt: revoked.map(HubIngest.iso8601), flags: flags, signatureValid: signatureValid && flags.allSatisfy { !$0.hasPrefix("the signature") },
            digest: signedDigest, digestMatches: digest.map { $0 == signedDigest && !signedDigest.isEmpty },
            method: document["sanitization"]?["method"]?.stringValue, category: document["sanitization"]?["category"]?.stringValue,
            manufacturer: document["device"]?["manufacturer"]?.stringValue, model: document["device"]?["model"]?.stringValue,
            serial: document["device"]?["serial"]?.stringValue, mediaType: document["device"]?["mediaType"]?.stringValue,
            issuedAt: issued, receivedAt: HubIngest.iso8601(received),
            sample: sampleState.map { HubSampleState(state: $0, checkedBy: checkedBy, checkedAt: checkedAt.map(HubIngest.iso8601), result: sampleResult) },
            jws: parts, fileText: fileText)
    }

    /// A station key from its stored JWK text, decoded once per text (keys are immutable; the
    /// text is the cache key, so a changed row is decoded afresh).
    static func key(_ text: String) -> PublicJWK? {
        if let known = keys.withLock({ $0[text] }) { return known }
        guard let jwk = try? JSONDecoder().decode(PublicJWK.self, from: Data(text.utf8)) else { return nil }
        keys.withLock { cache in
            if cache.count >= 4096 { cache.removeAll() }
            cache[text] = jwk
        }
        return jwk
    }

    private static let keys = Mutex<[String: PublicJWK]>([:])

    /// The JWKS of every station key ever registered (retired and revoked ones too, so old
    /// reports stay checkable; a revoked key carries `revoked_at`, which the page reads).
    public static func jwks(_ keys: [HubStationKey]) -> JSONValue {
        .object(["keys": .array(keys.map { key in
            var members: [String: JSONValue] = [
                "kty": .string(key.jwk.kty), "crv": .string(key.jwk.crv), "x": .string(key.jwk.x), "kid": .string(key.kid),
                "use": .string("sig"), "alg": .string("Ed25519"), "station": .string(key.stationId), "status": .string(key.status),
            ]
            if let revoked = key.revokedAt { members["revoked_at"] = .string(HubIngest.iso8601(revoked)) }
            return .object(members)
        })])
    }
}
