import Crypto
import Foundation
import LetheCore

/// base64url without padding (RFC 7515 §2).
public enum Base64URL {
    /// Unpadded base64url (RFC 4648 section 5).
    public static func encode(_ data: Data) -> String {
        var bytes = [UInt8](data.base64EncodedData())
        while bytes.last == UInt8(ascii: "=") { bytes.removeLast() }
        for i in bytes.indices {
            if bytes[i] == UInt8(ascii: "+") { bytes[i] = UInt8(ascii: "-") } else if bytes[i] == UInt8(ascii: "/") { bytes[i] = UInt8(ascii: "_") }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The bytes of unpadded base64url text; nil if any character is outside the alphabet.
    public static func decode(_ text: String) -> Data? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count + 3)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): bytes.append(byte)
            case UInt8(ascii: "-"): bytes.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"): bytes.append(UInt8(ascii: "/"))
            default: return nil
            }
        }
        while bytes.count % 4 != 0 { bytes.append(UInt8(ascii: "=")) }
        return Data(base64Encoded: Data(bytes))
    }
}

/// An Ed25519 public key as a JWK (RFC 8037).
public struct PublicJWK: Codable, Sendable, Equatable {
    public var kty = "OKP"
    public var crv = "Ed25519"
    public var x: String
    /// The RFC 7638 thumbprint.
    public var kid: String
    public var use: String? = "sig"
    public var alg: String? = "Ed25519"

    /// The JWK for a raw 32-byte public key.
    public init(raw: Data) {
        x = Base64URL.encode(raw)
        kid = Self.thumbprint(x: x)
    }

    /// RFC 7638: SHA-256 over `{"crv":"Ed25519","kty":"OKP","x":"…"}`, base64url.
    public static func thumbprint(x: String) -> String {
        let members = JSONValue.object(["crv": .string("Ed25519"), "kty": .string("OKP"), "x": .string(x)])
        return Base64URL.encode(Data(SHA256.hash(data: members.canonicalData)))
    }

    /// The CryptoKit key, or nil if `x` is not 32 bytes of base64url.
    public var key: Curve25519.Signing.PublicKey? {
        guard kty == "OKP", crv == "Ed25519", let raw = Base64URL.decode(x), raw.count == 32 else { return nil }
        return try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
    }
}

/// The station's signing key: Ed25519, created once (`lethe keys init`), stored 0600 as a
/// private JWK under the state directory, never written into a report.
public struct StationKey: Sendable {
    let privateKey: Curve25519.Signing.PrivateKey
    /// The public half, as published.
    public let publicJWK: PublicJWK
    /// The RFC 7638 thumbprint (the JWS `kid`).
    public var keyId: String { publicJWK.kid }

    /// Wraps a private key.
    public init(privateKey: Curve25519.Signing.PrivateKey) {
        self.privateKey = privateKey
        publicJWK = PublicJWK(raw: privateKey.publicKey.rawRepresentation)
    }

    /// A key from a 32-byte seed (test keys and samples only).
    public init(seed: Data) throws {
        self.init(privateKey: try Curve25519.Signing.PrivateKey(rawRepresentation: seed))
    }

    /// `<state>/keys/station.jwk` (private, 0600).
    public static func privatePath(stateDirectory: String) -> String { "\(stateDirectory)/keys/station.jwk" }
    /// `<state>/keys/station.pub.jwk`.
    public static func publicPath(stateDirectory: String) -> String { "\(stateDirectory)/keys/station.pub.jwk" }
    /// `<state>/keys/trusted/`: other stations' public JWKs that `lethe report verify` accepts.
    public static func trustedDirectory(stateDirectory: String) -> String { "\(stateDirectory)/keys/trusted" }

    struct PrivateJWK: Codable {
        var kty: String
        var crv: String
        var x: String
        var d: String
    }

    /// Creates the station key. Refuses when one exists: a station keeps its identity.
    public static func create(stateDirectory: String) throws(LetheError) -> StationKey {
        let path = privatePath(stateDirectory: stateDirectory)
        guard !FileManager.default.fileExists(atPath: path) else {
            throw LetheError(.invalidArgument, path: path, "a station key already exists; refusing to replace it (reports signed with it would no longer match this station)")
        }
        let key = StationKey(privateKey: Curve25519.Signing.PrivateKey())
        let jwk = PrivateJWK(kty: "OKP", crv: "Ed25519", x: key.publicJWK.x, d: Base64URL.encode(key.privateKey.rawRepresentation))
        do {
            try FileManager.default.createDirectory(atPath: "\(stateDirectory)/keys", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let data = try JSONEncoder().encode(jwk)
            // Created 0600 from the start: the private key is never world-readable, not even briefly.
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            fsync(fd)
            close(fd)
            guard written == data.count else { throw POSIXError(.EIO) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(key.publicJWK).write(to: URL(fileURLWithPath: publicPath(stateDirectory: stateDirectory)))
        } catch {
            throw LetheError(.ioFailure, path: path, errno: (error as? POSIXError).map { ErrorNumber($0.code.rawValue) }, "cannot write the station key: \(error.localizedDescription)")
        }
        return key
    }

    /// Loads the station key. A missing key is an error that says how to create one: a key is
    /// never made behind the operator's back.
    public static func load(stateDirectory: String) throws(LetheError) -> StationKey {
        let path = privatePath(stateDirectory: stateDirectory)
        guard FileManager.default.fileExists(atPath: path) else {
            throw LetheError(.deviceNotFound, path: path, errno: .noEntry, "no station key; create one once with `lethe keys init` (state directory \(stateDirectory))")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LetheError(.permissionDenied, path: path, errno: ErrorNumber(errno), "cannot read the station key (run as the station's user or root)")
        }
        guard let jwk = try? JSONDecoder().decode(PrivateJWK.self, from: data), jwk.kty == "OKP", jwk.crv == "Ed25519",
            let seed = Base64URL.decode(jwk.d), seed.count == 32, let key = try? StationKey(seed: seed)
        else {
            throw LetheError(.invalidArgument, path: path, "the station key file is damaged (not an Ed25519 private JWK)")
        }
        guard key.publicJWK.x == jwk.x else {
            throw LetheError(.invalidArgument, path: path, "the station key file is damaged (public part does not match the private key)")
        }
        return key
    }

    /// Signs bytes (Ed25519, RFC 8032).
    public func sign(_ data: Data) throws -> Data {
        try privateKey.signature(for: data)
    }
}

/// A report signed as a JWS (RFC 7515) in the flattened JSON serialization, with the readable
/// document beside it:
///
/// ```
/// {"payload": B64URL(canonical JSON), "protected": B64URL({"alg":"Ed25519","kid":…,"typ":…}),
///  "signature": B64URL(Ed25519), "report": {the same document, readable}}
/// ```
///
/// JOSE libraries verify it as it is (RFC 7515 §7.2.1: unknown members are ignored); Lethe
/// also checks that `report` is exactly the signed payload.
public struct SignedReport: Sendable {
    /// The canonical JSON that was signed.
    public let payload: Data
    /// The protected header, base64url as in the file.
    public let protectedHeader: String
    public let signature: Data
    /// The document.
    public let document: JSONValue

    /// Assembles a signed report from its parts (as read from a file, or altered in a test).
    public init(payload: Data, protectedHeader: String, signature: Data, document: JSONValue) {
        self.payload = payload
        self.protectedHeader = protectedHeader
        self.signature = signature
        self.document = document
    }

    /// `typ` of wipe certificates.
    public static let certificateType = "lethe-wipe-certificate+json"
    /// `typ` of refurb reports.
    public static let refurbType = "lethe-refurb-report+json"

    /// base64url SHA-256 of the signed bytes: what the QR code carries.
    public var digest: String { Base64URL.encode(Data(SHA256.hash(data: payload))) }

    /// The compact serialization (`header.payload.signature`), for tools that want it.
    public var compact: String { "\(protectedHeader).\(Base64URL.encode(payload)).\(Base64URL.encode(signature))" }

    /// Signs a document with the station key.
    public static func sign<T: Encodable>(_ document: T, type: String, key: StationKey) throws -> SignedReport {
        let value = try JSONValue.encode(document)
        let payload = value.canonicalData
        let header = JSONValue.object(["alg": .string("Ed25519"), "kid": .string(key.keyId), "typ": .string(type)])
        let protected = Base64URL.encode(header.canonicalData)
        let signature = try key.sign(Data("\(protected).\(Base64URL.encode(payload))".utf8))
        return SignedReport(payload: payload, protectedHeader: protected, signature: signature, document: value)
    }

    /// The file: JOSE members first, then the readable report, indented.
    public var fileData: Data {
        let object = JSONValue.object([
            "payload": .string(Base64URL.encode(payload)), "protected": .string(protectedHeader),
            "signature": .string(Base64URL.encode(signature)), "report": document,
        ])
        return object.prettyData()
    }
}

/// A report file in its canonical text, `{"payload":"…","protected":"…","report":PAYLOAD,"signature":"…"}`,
/// read on the bytes: the JWS members as they are written, and the readable copy checked to be
/// byte for byte the signed payload. Any other text is nil (parse it as JSON instead).
public struct CanonicalReportFile: Sendable {
    public var payloadText: String
    public var protectedHeader: String
    public var signatureText: String
    /// The decoded payload (the signed bytes).
    public var payload: Data

    /// The canonical text of `file`, a report file whose signature and readable copy were
    /// verified as `signed`: assembled from the parts (the readable copy is then the payload's
    /// bytes) rather than canonicalized again. A file of any other shape is canonicalized.
    public static func text(of file: JSONValue, verified signed: SignedReport) -> String {
        let payloadText = Base64URL.encode(signed.payload), signatureText = Base64URL.encode(signed.signature)
        func plain(_ text: String) -> Bool {
            text.utf8.allSatisfy { $0 < 0x80 && ($0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "=") || ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7a)) }
        }
        guard case .object(let members) = file, members.count == 4, let readable = members["report"], readable != .null,
            members["payload"]?.stringValue == payloadText, members["protected"]?.stringValue == signed.protectedHeader,
            members["signature"]?.stringValue == signatureText, plain(signed.protectedHeader)
        else {
            return String(decoding: file.canonicalData, as: UTF8.self)
        }
        var out: [UInt8] = []
        out.reserveCapacity(signed.payload.count * 7 / 3 + 200)
        out.append(contentsOf: Array("{\"payload\":\"\(payloadText)\",\"protected\":\"\(signed.protectedHeader)\",\"report\":".utf8))
        out.append(contentsOf: signed.payload)
        out.append(contentsOf: Array(",\"signature\":\"\(signatureText)\"}".utf8))
        return String(decoding: out, as: UTF8.self)
    }

    public init?(text: String) {
        var text = text
        guard let parts = text.withUTF8({ Self.read($0) }) else { return nil }
        (payloadText, protectedHeader, signatureText, payload) = parts
    }

    private static func read(_ bytes: UnsafeBufferPointer<UInt8>) -> (String, String, String, Data)? {
        var index = 0
        func literal(_ expected: StaticString) -> Bool {
            let count = expected.utf8CodeUnitCount
            guard bytes.count - index >= count, memcmp(bytes.baseAddress! + index, expected.utf8Start, count) == 0 else { return false }
            index += count
            return true
        }
        func plainString() -> String? {
            let start = index
            while index < bytes.count, bytes[index] != UInt8(ascii: "\""), bytes[index] != UInt8(ascii: "\\") { index += 1 }
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        }
        guard bytes.count > 0, literal("{\"payload\":\""), let payloadText = plainString(), literal("\",\"protected\":\""),
            let protected = plainString(), literal("\",\"report\":"), let payload = Base64URL.decode(payloadText),
            !payload.isEmpty, bytes.count - index >= payload.count,
            payload.withUnsafeBytes({ memcmp(bytes.baseAddress! + index, $0.baseAddress!, payload.count) == 0 })
        else { return nil }
        index += payload.count
        guard literal(",\"signature\":\""), let signatureText = plainString(), literal("\"}"), index == bytes.count else { return nil }
        return (payloadText, protected, signatureText, payload)
    }
}

/// Why a report did not verify.
public struct ReportVerificationError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable {
        case unreadable, notAJWS, badHeader, unsupportedAlgorithm, untrustedKey, badSignature, readableCopyAltered, badPayload
    }

    public var reason: Reason
    public var message: String
    public var description: String { message }
}

/// A verified report.
public struct VerifiedReport: Sendable {
    public var signed: SignedReport
    /// The `kid` it was signed with.
    public var keyId: String
    /// `typ` from the header.
    public var type: String
    /// `lethe.wipe-certificate/1` or `lethe.refurb-report/1`.
    public var schema: String
    public var reportId: String
}

/// Checks signed report files.
public enum ReportVerifier {
    /// Verifies a report file against trusted public keys. Accepts `alg` `Ed25519` (RFC 9864)
    /// and the older `EdDSA` (RFC 8037); every failure names what is wrong.
    public static func verify(fileData: Data, trusted: [PublicJWK]) throws(ReportVerificationError) -> VerifiedReport {
        let file: JSONValue
        do {
            file = try JSONValue.parse(fileData)
        } catch {
            throw ReportVerificationError(reason: .unreadable, message: "not a complete JSON document (truncated or damaged): \(error)")
        }
        return try verify(file: file, trusted: trusted)
    }

    /// Verifies a report file kept as its canonical text (RFC 8785, as the hub stores it):
    /// `{"payload":"…","protected":"…","report":PAYLOAD,"signature":"…"}`, where the readable
    /// copy is byte for byte the signed payload. That shape is checked on the bytes, so the file
    /// is not parsed and the readable copy not canonicalized again; the signature, the
    /// payload's canonical form and everything else are checked as ``verify(file:trusted:)``
    /// checks them. Any other text (extra members, escapes, an altered copy) takes the full
    /// path, which names what is wrong.
    public static func verify(canonicalFileText text: String, trusted: [PublicJWK]) throws(ReportVerificationError) -> VerifiedReport {
        guard let parts = CanonicalReportFile(text: text) else { return try verify(fileData: Data(text.utf8), trusted: trusted) }
        return try verify(parts, trusted: trusted)
    }

    /// Verifies a report file already read as ``CanonicalReportFile`` (its readable copy is the
    /// payload by construction).
    public static func verify(_ parts: CanonicalReportFile, trusted: [PublicJWK]) throws(ReportVerificationError) -> VerifiedReport {
        try verify(
            payloadText: parts.payloadText, payload: parts.payload, protected: parts.protectedHeader, signatureText: parts.signatureText,
            readable: nil, trusted: trusted)
    }

    /// Verifies a report file already parsed (for instance embedded in a larger document).
    public static func verify(file: JSONValue, trusted: [PublicJWK]) throws(ReportVerificationError) -> VerifiedReport {
        func fail(_ reason: ReportVerificationError.Reason, _ message: String) -> ReportVerificationError {
            ReportVerificationError(reason: reason, message: message)
        }
        guard let payloadText = file["payload"]?.stringValue, let protected = file["protected"]?.stringValue,
            let signatureText = file["signature"]?.stringValue
        else {
            throw fail(.notAJWS, "not a signed report: the payload, protected and signature members are required")
        }
        guard let payload = Base64URL.decode(payloadText) else { throw ReportVerificationError(reason: .notAJWS, message: "a JWS member is not base64url") }
        return try verify(payloadText: payloadText, payload: payload, protected: protected, signatureText: signatureText, readable: file["report"], trusted: trusted)
    }

    /// The checks after the JWS members are found: the header, the key, the signature, the
    /// payload's canonical form and, when given, the readable copy.
    private static func verify(
        payloadText: String, payload: Data, protected: String, signatureText: String, readable: JSONValue?, trusted: [PublicJWK]
    ) throws(ReportVerificationError) -> VerifiedReport {
        func fail(_ reason: ReportVerificationError.Reason, _ message: String) -> ReportVerificationError {
            ReportVerificationError(reason: reason, message: message)
        }
        guard let headerData = Base64URL.decode(protected), let signature = Base64URL.decode(signatureText) else {
            throw fail(.notAJWS, "a JWS member is not base64url")
        }
        guard let header = try? JSONValue.parse(headerData), let alg = header["alg"]?.stringValue else {
            throw fail(.badHeader, "the protected header is not JSON with an alg")
        }
        guard alg == "Ed25519" || alg == "EdDSA" else {
            throw fail(.unsupportedAlgorithm, "algorithm \"\(alg)\" is not accepted (Ed25519, or EdDSA with an Ed25519 key)")
        }
        let kid = header["kid"]?.stringValue ?? ""
        guard let jwk = trusted.first(where: { $0.kid == kid }) ?? (kid.isEmpty && trusted.count == 1 ? trusted.first : nil),
            let key = jwk.key
        else {
            let known = trusted.map(\.kid).joined(separator: ", ")
            throw fail(.untrustedKey, "signed by key \(kid.isEmpty ? "(no kid)" : kid), which is not a trusted station key (trusted: \(known.isEmpty ? "none" : known)); another station's report needs its public JWK in keys/trusted/")
        }
        guard key.isValidSignature(signature, for: Data("\(protected).\(payloadText)".utf8)) else {
            throw fail(.badSignature, "the signature does not match: the report was altered after signing, or not signed by key \(kid)")
        }
        guard let document = try? JSONValue.parse(payload), document.canonicalData == payload else {
            throw fail(.badPayload, "the signed payload is not canonical JSON")
        }
        // The same value as the signed document (whose canonical bytes are the payload): the
        // same canonical bytes, without writing them again.
        if let readable, readable != document {
            throw fail(.readableCopyAltered, "the signature is valid, but the readable \"report\" copy differs from what was signed; trust only the payload")
        }
        let signed = SignedReport(payload: payload, protectedHeader: protected, signature: signature, document: document)
        return VerifiedReport(
            signed: signed, keyId: kid, type: header["typ"]?.stringValue ?? "", schema: document["schema"]?.stringValue ?? "",
            reportId: document["reportId"]?.stringValue ?? "")
    }
}

/// Report ids: ULIDs (RFC-less but common: 48-bit time in ms + 80 random bits, Crockford
/// base32, 26 characters). Sortable by time, URL-safe, unique per station.
public enum ReportID {
    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    /// A new id for `date`.
    public static func make(date: Date = Date()) -> String {
        var generator = SystemRandomNumberGenerator()
        return make(milliseconds: UInt64(date.timeIntervalSince1970 * 1000), random: (generator.next(), generator.next()))
    }

    /// The id for a time and 80 bits of randomness (the low 80 bits of the pair).
    public static func make(milliseconds: UInt64, random: (UInt64, UInt64)) -> String {
        var chars: [Character] = []
        for shift in stride(from: 45, through: 0, by: -5) { chars.append(alphabet[Int((milliseconds >> UInt64(shift)) & 31)]) }
        let high = random.0 & 0xffff  // 16 bits
        let low = random.1  // 64 bits
        // 80 bits = 16 characters.
        for i in 0..<16 {
            let bit = 75 - 5 * i
            let value: UInt64 = bit >= 64 ? (high >> UInt64(bit - 64)) & 31
                : bit > 59 ? ((high << UInt64(64 - bit)) | (low >> UInt64(bit))) & 31
                : (low >> UInt64(bit)) & 31
            chars.append(alphabet[Int(value)])
        }
        return String(chars)
    }

    /// Whether text looks like a report id (safe to use in a path and a URL).
    public static func isValid(_ text: String) -> Bool {
        text.count == 26 && text.allSatisfy { alphabet.contains($0) }
    }
}
