import Foundation
import LetheCore
import PostgresNIO

/// A QA search: every given field must match; `from`/`to` bound the time the hub received it.
public struct HubQuery: Sendable, Equatable {
    public var serial: String?
    public var imei: String?
    public var station: String?
    public var lot: String?
    public var supplier: String?
    /// `certified`, `notCertified`, or a certificate status (`erased`, `notErased`, ...).
    public var status: String?
    public var from: Date?
    public var to: Date?
    public var limit = 1000

    public init() {}

    /// From query parameters; an error names the parameter.
    public init(parameters: [String: String]) throws(HubProblem) {
        for (name, value) in parameters { try HubProblem.checkText(value, field: name) }
        serial = parameters["serial"]
        imei = parameters["imei"]
        station = parameters["station"]
        lot = parameters["lot"]
        supplier = parameters["supplier"]
        status = parameters["status"]
        for (name, value) in [("from", parameters["from"]), ("to", parameters["to"])] {
            guard let value else { continue }
            guard let date = HubIngest.date(iso8601: value) ?? HubQuery.day(value) else {
                throw HubProblem(400, field: name, "\(value) is not a date (2026-12-06 or 2026-12-06T10:00:00Z)")
            }
            if name == "from" { from = date } else { to = value.count == 10 ? date.addingTimeInterval(86_400) : date }
        }
        if let text = parameters["limit"] {
            guard let value = Int(text), (1...100_000).contains(value) else { throw HubProblem(400, field: "limit", "\(text) is not 1…100000") }
            limit = value
        }
        let known: Set = ["serial", "imei", "station", "lot", "supplier", "status", "from", "to", "limit", "format"]
        if let unknown = parameters.keys.sorted().first(where: { !known.contains($0) }) {
            throw HubProblem(400, field: unknown, "unknown parameter (use \(known.sorted().joined(separator: ", ")))")
        }
    }

    static func day(_ text: String) -> Date? {
        guard text.count == 10 else { return nil }
        return HubIngest.date(iso8601: text + "T00:00:00Z")
    }
}

/// One record as QA lists and exports it.
public struct HubRecordRow: Codable, Sendable, Equatable {
    public var recordId: String
    public var station: String
    public var sequence: Int
    public var serial: String?
    public var imei: String?
    public var model: String?
    public var mediaType: String?
    public var lot: String?
    public var supplier: String?
    public var grade: String
    public var certified: Bool?
    public var status: String?
    public var batteryHealthPercent: Int?
    public var diagnosticsVerdict: String
    public var locks: [String]
    public var reportId: String
    public var certificateId: String?
    public var receivedAt: String
    /// The outbox state of the forward to the shop's catalog: pending, delivered, dead.
    public var forwarded: String
    /// The verification sample state, when the item was drawn: hold, passed, failed.
    public var sample: String?

    /// The CSV columns, in order.
    public static let columns = [
        "recordId", "station", "sequence", "serial", "imei", "model", "mediaType", "lot", "supplier", "grade", "certified", "status",
        "batteryHealthPercent", "diagnosticsVerdict", "locks", "reportId", "certificateId", "receivedAt", "forwarded", "sample",
    ]

    var csvFields: [String] {
        [recordId, station, String(sequence), serial ?? "", imei ?? "", model ?? "", mediaType ?? "", lot ?? "", supplier ?? "", grade,
         certified.map(String.init) ?? "", status ?? "", batteryHealthPercent.map(String.init) ?? "", diagnosticsVerdict,
         locks.joined(separator: " "), reportId, certificateId ?? "", receivedAt, forwarded, sample ?? ""]
    }
}

/// QA's search and audit export.
public struct HubSearch: Sendable {
    let db: HubDatabase

    public init(database: HubDatabase) { db = database }

    /// The records matching `query`, newest first.
    public func records(_ query: HubQuery) async throws -> [HubRecordRow] {
        let certified: Bool? = query.status == "certified" ? true : query.status == "notCertified" ? false : nil
        let status: String? = certified == nil ? query.status : nil
        let rows = try await db.rows("search", """
            SELECT r.id, r.station_id, r.sequence, r.serial, r.imei, r.model, r.media_type, r.lot, r.supplier, r.grade, r.certified, r.status,
                   r.battery_health, r.diagnostics_verdict, r.locks, r.report_id, r.certificate_id, r.received_at, o.state,
                   (SELECT state FROM sample_item si WHERE si.record_id = r.id ORDER BY sample_id DESC LIMIT 1)
            FROM record r JOIN outbox o ON o.record_id = r.id
            WHERE (\(query.serial)::text IS NULL OR r.serial = \(query.serial))
              AND (\(query.imei)::text IS NULL OR r.imei = \(query.imei))
              AND (\(query.station)::text IS NULL OR r.station_id = \(query.station))
              AND (\(query.lot)::text IS NULL OR r.lot = \(query.lot))
              AND (\(query.supplier)::text IS NULL OR r.supplier = \(query.supplier))
              AND (\(status)::text IS NULL OR r.status = \(status))
              AND (\(certified)::boolean IS NULL OR coalesce(r.certified, false) = \(certified))
              AND (\(query.from)::timestamptz IS NULL OR r.received_at >= \(query.from))
              AND (\(query.to)::timestamptz IS NULL OR r.received_at < \(query.to))
            ORDER BY r.received_at DESC, r.id DESC LIMIT \(query.limit)
            """, as: (String, String, Int, String?, String?, String?, String?, String?, String?, String, Bool?, String?, Int?, String, [String], String, String?, Date, String, String?).self)
        return rows.map { row in
            let (id, station, sequence, serial, imei, model, media, lot, supplier, grade, certified, status, battery, verdict, locks, report, certificate, received, forwarded, sample) = row
            return HubRecordRow(
                recordId: id, station: station, sequence: sequence, serial: serial, imei: imei, model: model, mediaType: media, lot: lot, supplier: supplier,
                grade: grade, certified: certified, status: status, batteryHealthPercent: battery, diagnosticsVerdict: verdict, locks: locks,
                reportId: report, certificateId: certificate, receivedAt: HubIngest.iso8601(received), forwarded: forwarded, sample: sample)
        }
    }

    /// RFC 4180 CSV with a header line.
    public static func csv(_ rows: [HubRecordRow]) -> String {
        ([HubRecordRow.columns] + rows.map(\.csvFields)).map { $0.map(csvField).joined(separator: ",") }.joined(separator: "\r\n") + "\r\n"
    }

    /// One CSV field: quoted when it must be; a leading =, +, - or @ (a formula to a
    /// spreadsheet, from a serial a supplier typed) gets a quote mark first.
    public static func csvField(_ field: String) -> String {
        let safe = field.first.map { "=+-@".contains($0) } == true ? "'" + field : field
        return safe.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) ? "\"" + safe.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : safe
    }
}
