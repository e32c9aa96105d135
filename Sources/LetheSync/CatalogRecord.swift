import Crypto
import Foundation
import LetheCore
import LetheReports

/// One refurbished item as the shop's catalog receives it (`catalog-api.yaml`, `Record`): who it
/// is, how it graded, what the diagnostics said, its certificate, and the signed documents
/// themselves. `recordId` is also the Idempotency-Key.
public struct CatalogRecord: Codable, Sendable, Equatable {
    /// Identity of the item.
    public struct Identity: Codable, Sendable, Equatable {
        public var serial: String?
        public var imei: String?
        public var manufacturer: String?
        public var model: String?
        public var capacityBytes: UInt64?
        public var mediaType: String
    }

    /// The certificate, and where a buyer checks it.
    public struct Certificate: Codable, Sendable, Equatable {
        public var id: String
        public var certified: Bool
        public var status: String
        public var verifyURL: String
    }

    public var schema = "lethe.catalog-record/1"
    public var recordId: String
    /// The station that produced it.
    public var station: String
    /// 1, 2, 3… per device: a later record about the same device supersedes an earlier one.
    public var sequence: Int
    public var createdAt: String
    public var device: Identity
    /// The sale grade (A best).
    public var grade: String
    public var gradeReason: String
    public var cosmeticGrade: String?
    public var batteryHealthPercent: Int?
    /// `pass`, `warn`, `fail`, `unknown`, and the findings in plain words.
    public var diagnosticsVerdict: String
    public var diagnosticsFindings: [String]
    public var certificate: Certificate?
    /// The SKU the catalog gave when the device was docked (two-way mode).
    public var sku: String?
    /// The intake lot the item arrived in, and its supplier (from the catalog's instructions
    /// or the technician at dock time): what the hub's supply scorecards group by.
    public var lot: String?
    public var supplier: String?
    /// The refurb report id.
    public var reportId: String
    /// The signed refurb report, as issued (flattened JWS with its readable copy): the body's
    /// `report` member.
    public var report: JSONValue = .null
    /// The signed wipe certificate, as issued: the body's `certificateDocument` member.
    public var certificateDocument: JSONValue?

    enum CodingKeys: String, CodingKey {
        case schema, recordId, station, sequence, createdAt, device, grade, gradeReason, cosmeticGrade, batteryHealthPercent
        case diagnosticsVerdict, diagnosticsFindings, certificate, sku, lot, supplier, reportId
    }

    /// Builds the record for a refurb report just issued.
    public init(
        recordId: String, station: String, sequence: Int, createdAt: String, refurb: RefurbReport, refurbFile: Data,
        certificateFile: Data?, certified: Bool, verifyBase: String, sku: String? = nil
    ) throws {
        self.sku = sku
        self.recordId = recordId
        self.station = station
        self.sequence = sequence
        self.createdAt = createdAt
        let d = refurb.device
        device = Identity(
            serial: d.serial, imei: nil, manufacturer: d.manufacturer, model: d.model, capacityBytes: d.sizeBytes, mediaType: d.mediaType)
        grade = refurb.grade
        gradeReason = refurb.gradeReason
        cosmeticGrade = refurb.cosmetic?.grade
        batteryHealthPercent = refurb.battery?.healthPercent
        diagnosticsVerdict = refurb.diagnostics.verdict
        diagnosticsFindings = refurb.diagnostics.findings
        certificate = refurb.certificate.map {
            Certificate(
                id: $0.reportId, certified: certified, status: $0.status.rawValue,
                verifyURL: ReportRenderer.verifyURL(base: verifyBase, reportId: $0.reportId, digest: $0.digest))
        }
        reportId = refurb.reportId
        report = try JSONValue.parse(refurbFile)
        certificateDocument = try certificateFile.map { try JSONValue.parse($0) }
    }

    /// The body as posted: canonical JSON (RFC 8785) of the record with its two documents, so
    /// the HMAC is over exactly these bytes.
    public func body() throws -> Data {
        guard case .object(var members) = try JSONValue.encode(self) else { throw LetheError(.invalidArgument, "a catalog record did not encode as a JSON object") }
        members["report"] = report
        if let certificateDocument { members["certificateDocument"] = certificateDocument }
        return JSONValue.object(members).canonicalData
    }

    /// Reads a posted body: the record and its two documents.
    public static func parse(_ body: Data) throws -> CatalogRecord {
        try parse(try JSONValue.parse(body))
    }

    /// Reads a posted body already parsed. The summary is decoded without the two documents
    /// (which are most of the bytes, and which the decoder would only skip).
    public static func parse(_ value: JSONValue) throws -> CatalogRecord {
        guard case .object(var members) = value else {
            throw DecodingError.typeMismatch(CatalogRecord.self, .init(codingPath: [], debugDescription: "expected a JSON object"))
        }
        let report = members.removeValue(forKey: "report")
        let certificateDocument = members.removeValue(forKey: "certificateDocument")
        var record = try JSONDecoder().decode(CatalogRecord.self, from: JSONValue.object(members).canonicalData)
        record.report = report ?? .null
        record.certificateDocument = certificateDocument
        return record
    }
}

/// The `X-Lethe-Signature` header: `sha256=` and the hex HMAC-SHA256 of the body with the shared
/// secret from the station config.
public enum CatalogSignature {
    /// The header's name.
    public static let header = "X-Lethe-Signature"

    /// The header value for `body`.
    public static func sign(_ body: Data, secret: SymmetricKey) -> String {
        "sha256=" + HMAC<SHA256>.authenticationCode(for: body, using: secret).map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `value` is the right header for `body` (compared in constant time).
    public static func isValid(_ value: String, body: Data, secret: SymmetricKey) -> Bool {
        guard value.hasPrefix("sha256="), let mac = Data(hex: String(value.dropFirst(7))) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: body, using: secret)
    }

    /// The signed bytes of a catalog answer: the request target it answers (path and query as
    /// sent), a newline, and the body. Bound to the request, an answer for one device cannot
    /// be replayed for another.
    public static func answerBytes(target: String, body: Data) -> Data {
        Data(target.utf8) + Data([0x0a]) + body
    }

    /// Reads a shared secret file: its bytes, trailing newline removed; at least 16 bytes.
    public static func loadSecret(path: String) throws(LetheError) -> SymmetricKey {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LetheError(.invalidArgument, path: path, errno: .noEntry, "cannot read the catalog secret file")
        }
        var bytes = data
        while let last = bytes.last, last == 0x0a || last == 0x0d { bytes.removeLast() }
        guard bytes.count >= 16 else {
            throw LetheError(.invalidArgument, path: path, "the catalog secret is \(bytes.count) bytes; use at least 16 (e.g. `head -c 32 /dev/urandom | base64 > FILE`)")
        }
        return SymmetricKey(data: bytes)
    }
}

extension Data {
    /// Bytes from lowercase or uppercase hex; nil if it is not hex.
    init?(hex: String) {
        guard hex.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.count / 2)
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        self.init(bytes)
    }
}
