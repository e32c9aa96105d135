import Crypto
import Foundation
import LetheCore
import LetheReports
import PostgresNIO

/// One signing key a station has had.
public struct HubStationKey: Codable, Sendable, Equatable {
    public var kid: String
    public var stationId: String
    public var jwk: PublicJWK
    public var addedAt: Date
    /// When a rotation replaced it: its reports stay valid.
    public var retiredAt: Date?
    /// When it was revoked: nothing it signs is accepted any more, and reports it signed that
    /// arrived at or after this time are flagged.
    public var revokedAt: Date?

    /// `active`, `retired` or `revoked`.
    public var status: String { revokedAt != nil ? "revoked" : retiredAt != nil ? "retired" : "active" }
}

/// A station as registered at the hub.
public struct HubStation: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var createdAt: Date
    public var revokedAt: Date?
    public var keys: [HubStationKey]
}

/// Roles of hub tokens: `admin` does everything; `qa` searches, exports and samples; `station`
/// posts second results of verification samples.
public enum HubRole: String, Codable, Sendable, CaseIterable {
    case admin, qa, station

    /// Whether this role may do what `needed` may.
    public func allows(_ needed: HubRole) -> Bool { self == .admin || self == needed }
}

/// The registry of stations, their keys and secrets, and the hub's API tokens.
public struct HubRegistry: Sendable {
    let db: HubDatabase

    public init(database: HubDatabase) { db = database }

    /// Station ids: 1–64 letters, digits, `.`, `_`, `-`.
    public static func isValidStationId(_ id: String) -> Bool {
        (1...64).contains(id.count) && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    /// Reads a public JWK file (`lethe keys export`): Ed25519, and its kid is its thumbprint.
    public static func loadJWK(path: String) throws(LetheError) -> PublicJWK {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LetheError(.invalidArgument, path: path, errno: .noEntry, "cannot read the station's public key (make it with `lethe keys export > FILE` on the station)")
        }
        return try parseJWK(data, source: path)
    }

    /// Checks a JWK: an Ed25519 public key whose kid is its RFC 7638 thumbprint.
    public static func parseJWK(_ data: Data, source: String) throws(LetheError) -> PublicJWK {
        guard let jwk = try? JSONDecoder().decode(PublicJWK.self, from: data) else {
            throw LetheError(.invalidArgument, path: source, "not a JWK with kty, crv, x and kid")
        }
        guard jwk.key != nil else { throw LetheError(.invalidArgument, path: source, "x: not an Ed25519 public key (kty OKP, crv Ed25519, 32 bytes)") }
        let thumbprint = PublicJWK.thumbprint(x: jwk.x)
        guard jwk.kid == thumbprint else {
            throw LetheError(.invalidArgument, path: source, "kid: \(jwk.kid) is not the key's RFC 7638 thumbprint \(thumbprint)")
        }
        return jwk
    }

    /// Enrols a station with its first key and its HMAC secret.
    public func addStation(id: String, name: String, jwk: PublicJWK, secret: SymmetricKey) async throws {
        guard Self.isValidStationId(id) else {
            throw LetheError(.invalidArgument, "station id \"\(id)\": use 1–64 letters, digits, '.', '_' or '-'")
        }
        let secretBytes = secret.withUnsafeBytes { Data($0) }
        let keyText = String(decoding: try JSONEncoder().encode(jwk), as: UTF8.self)
        try await db.transaction("stations add") { tx in
            let inserted = try await tx.run(
                "INSERT INTO station (id, name, hmac_secret) VALUES (\(id), \(name), \(secretBytes)) ON CONFLICT (id) DO NOTHING RETURNING id")
                .collect().count
            guard inserted == 1 else { throw LetheError(.invalidArgument, "station \(id) is already enrolled (use `stations rotate` for a new key)") }
            try await Self.insertKey(jwk, text: keyText, station: id, on: tx)
        }
    }

    static func insertKey(_ jwk: PublicJWK, text: String, station: String, on tx: PostgresConnection) async throws {
        let rows = try await tx.run(
            "INSERT INTO station_key (kid, station_id, jwk) VALUES (\(jwk.kid), \(station), \(text)) ON CONFLICT (kid) DO NOTHING RETURNING kid"
        ).collect()
        guard rows.count == 1 else { throw LetheError(.invalidArgument, "key \(jwk.kid) is already registered (a station's key is its own)") }
    }

    /// Gives a station a new key; its other keys are retired (their reports stay valid).
    /// A new HMAC secret may come with it.
    public func rotate(id: String, jwk: PublicJWK, secret: SymmetricKey? = nil) async throws {
        let keyText = String(decoding: try JSONEncoder().encode(jwk), as: UTF8.self)
        let secretBytes = secret.map { $0.withUnsafeBytes { Data($0) } }
        try await db.transaction("stations rotate") { tx in
            let found = try await tx.rows("SELECT revoked_at FROM station WHERE id = \(id) FOR UPDATE", as: Date?.self)
            guard let first = found.first else { throw LetheError(.invalidArgument, "no station \(id) (see `lethe-hub stations list`)") }
            guard first == nil else { throw LetheError(.invalidArgument, "station \(id) is revoked; enrol it again under a new id") }
            try await tx.run("UPDATE station_key SET retired_at = now() WHERE station_id = \(id) AND retired_at IS NULL AND revoked_at IS NULL")
            try await Self.insertKey(jwk, text: keyText, station: id, on: tx)
            if let secretBytes { try await tx.run("UPDATE station SET hmac_secret = \(secretBytes) WHERE id = \(id)") }
        }
    }

    /// Revokes one key (`kid`), or the whole station and every key of it. Returns the kids revoked.
    public func revoke(id: String, kid: String? = nil) async throws -> [String] {
        try await db.transaction("stations revoke") { tx in
            let exists = try await tx.run("SELECT id FROM station WHERE id = \(id) FOR UPDATE").collect().count == 1
            guard exists else { throw LetheError(.invalidArgument, "no station \(id) (see `lethe-hub stations list`)") }
            let rows: [String]
            if let kid {
                rows = try await tx.rows(
                    "UPDATE station_key SET revoked_at = now() WHERE station_id = \(id) AND kid = \(kid) AND revoked_at IS NULL RETURNING kid"
                , as: String.self)
                guard !rows.isEmpty else { throw LetheError(.invalidArgument, "station \(id) has no unrevoked key \(kid)") }
            } else {
                try await tx.run("UPDATE station SET revoked_at = now() WHERE id = \(id) AND revoked_at IS NULL")
                rows = try await tx.rows(
                    "UPDATE station_key SET revoked_at = now() WHERE station_id = \(id) AND revoked_at IS NULL RETURNING kid"
                , as: String.self)
            }
            return rows
        }
    }

    /// Every station with its keys.
    public func stations() async throws -> [HubStation] {
        let rows = try await db.rows(
            "list stations", "SELECT id, name, created_at, revoked_at FROM station ORDER BY id", as: (String, String, Date, Date?).self)
        let keys = try await self.keys()
        return rows.map { id, name, created, revoked in
            HubStation(id: id, name: name, createdAt: created, revokedAt: revoked, keys: keys.filter { $0.stationId == id })
        }
    }

    /// Every station key ever registered (what `/.well-known/jwks.json` publishes).
    public func keys() async throws -> [HubStationKey] {
        let rows = try await db.rows(
            "list keys", "SELECT kid, station_id, jwk, added_at, retired_at, revoked_at FROM station_key ORDER BY station_id, added_at",
            as: (String, String, String, Date, Date?, Date?).self)
        return rows.compactMap { kid, station, text, added, retired, revoked in
            guard let jwk = try? JSONDecoder().decode(PublicJWK.self, from: Data(text.utf8)) else { return nil }
            return HubStationKey(kid: kid, stationId: station, jwk: jwk, addedAt: added, retiredAt: retired, revokedAt: revoked)
        }
    }

    /// What ingest needs of one station: its secret, whether it is revoked, and its keys.
    public struct Credentials: Sendable {
        public var id: String
        public var secret: SymmetricKey
        public var revokedAt: Date?
        public var keys: [HubStationKey]
    }

    /// The credentials of station `id`, or nil when there is no such station (one query).
    public func credentials(id: String) async throws -> Credentials? {
        let rows = try await db.rows("read station", prepared: CredentialsStatement(id: id))
        guard let first = rows.first else { return nil }
        let keys = rows.compactMap { _, _, kid, text, added, retired, revoked -> HubStationKey? in
            guard let kid, let text, let added, let jwk = HubVerification.key(text) else { return nil }
            return HubStationKey(kid: kid, stationId: id, jwk: jwk, addedAt: added, retiredAt: retired, revokedAt: revoked)
        }
        return Credentials(id: id, secret: SymmetricKey(data: first.0), revokedAt: first.1, keys: keys)
    }

    // MARK: tokens

    /// SHA-256 of a token, hex: all the hub stores of it.
    static func hash(_ token: String) -> String { Hex.sha256(Data(token.utf8)) }

    /// Makes a token for `name` (replacing any of that name) and returns it; only its hash is stored.
    public func addToken(name: String, role: HubRole) async throws -> String {
        var bytes = [UInt8](repeating: 0, count: 24)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &generator) }
        let token = "lethehub_" + Base64URL.encode(Data(bytes))
        let digest = Self.hash(token)
        try await db.execute(
            "add token",
            "INSERT INTO api_token (name, role, sha256) VALUES (\(name), \(role.rawValue), \(digest)) ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, sha256 = EXCLUDED.sha256, created_at = now()")
        return token
    }

    /// Removes a token; false when there was none of that name.
    public func removeToken(name: String) async throws -> Bool {
        try await !db.rows("remove token", "DELETE FROM api_token WHERE name = \(name) RETURNING name", as: String.self).isEmpty
    }

    /// The name and role of a presented token, or nil.
    public func role(of token: String) async throws -> (name: String, role: HubRole)? {
        let digest = Self.hash(token)
        let rows = try await db.rows("check token", "SELECT name, role FROM api_token WHERE sha256 = \(digest)", as: (String, String).self)
        guard let (name, role) = rows.first, let parsed = HubRole(rawValue: role) else { return nil }
        return (name, parsed)
    }
}

/// A station's secret and keys, read at every ingest: a prepared statement.
struct CredentialsStatement: HubByIdStatement {
    typealias Row = (Data, Date?, String?, String?, Date?, Date?, Date?)
    static let sql = """
        SELECT s.hmac_secret, s.revoked_at, k.kid, k.jwk, k.added_at, k.retired_at, k.revoked_at
        FROM station s LEFT JOIN station_key k ON k.station_id = s.id WHERE s.id = $1
        """
    var id: String

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}
