import Crypto
import Foundation
import LetheCore
import LetheReports
import LetheSync
import PostgresNIO

/// One drawn verification sample.
public struct HubSample: Codable, Sendable, Equatable {
    public struct Item: Codable, Sendable, Equatable {
        public var recordId: String
        public var serial: String?
        public var imei: String?
        public var station: String
        public var state: String
    }

    public var sampleId: Int
    public var lot: String
    /// The seed the draw used: with it, anyone can draw the same items again.
    public var seed: String
    public var percent: Double
    /// Items in the lot when it was drawn.
    public var population: Int
    public var drawnBy: String
    public var items: [Item]
}

/// Independent verification sampling (R2v3 Appendix B: at least 5% of each lot). The hub draws
/// the items per lot with a recorded seed, the station learns through the instructions API to
/// hold them, and the second result (who, when, what) is recorded against the item.
public struct HubSampling: Sendable {
    let db: HubDatabase

    public init(database: HubDatabase) { db = database }

    /// The items a seeded draw picks: ranked by SHA-256 of seed and record id, the first
    /// ⌈population × percent⌉ (at least one). Deterministic, so an auditor can redo it.
    public static func draw(_ recordIds: [String], seed: String, percent: Double) -> [String] {
        guard !recordIds.isEmpty else { return [] }
        let count = min(recordIds.count, max(1, Int((Double(recordIds.count) * percent / 100).rounded(.up))))
        let ranked = recordIds.map { id in (id, Hex.encode(SHA256.hash(data: Data("\(seed)\n\(id)".utf8)))) }.sorted { $0.1 < $1.1 }
        return ranked.prefix(count).map(\.0)
    }

    /// Draws a sample of `lot` (the latest record of each item in it).
    public func drawSample(lot: String, percent: Double = 5, seed given: String? = nil, by: String) async throws -> HubSample {
        try HubProblem.checkText(lot, field: "lot")
        try HubProblem.checkText(given, field: "seed")
        guard percent >= 5, percent <= 100 else { throw HubProblem(400, field: "percent", "\(percent) is not 5…100 (R2v3 asks for at least 5%)") }
        let seed = given ?? Base64URL.encode(Data((0..<16).map { _ in UInt8.random(in: 0...255) }))
        return try await db.transaction("draw sample") { tx in
            let rows = try await tx.rows("""
                SELECT DISTINCT ON (coalesce(serial, imei, id)) id, serial, imei, station_id FROM record
                WHERE lot = \(lot) ORDER BY coalesce(serial, imei, id), sequence DESC, received_at DESC
                """, as: (String, String?, String?, String).self)
            guard !rows.isEmpty else { throw HubProblem(404, field: "lot", "no records in lot \(lot)") }
            let picked = Set(Self.draw(rows.map(\.0), seed: seed, percent: percent))
            let sampleId = try await tx.rows("""
                INSERT INTO sample (lot, seed, percent, population, drawn_by) VALUES (\(lot), \(seed), \(percent), \(rows.count), \(by)) RETURNING id
                """, as: Int.self).first ?? 0
            var items: [HubSample.Item] = []
            for (id, serial, imei, station) in rows where picked.contains(id) {
                try await tx.run("""
                    INSERT INTO sample_item (sample_id, record_id, serial, imei, station_id) VALUES (\(sampleId), \(id), \(serial), \(imei), \(station))
                    """)
                items.append(.init(recordId: id, serial: serial, imei: imei, station: station, state: "hold"))
            }
            return HubSample(sampleId: sampleId, lot: lot, seed: seed, percent: percent, population: rows.count, drawnBy: by, items: items.sorted { $0.recordId < $1.recordId })
        }
    }

    /// The held item matching a station's instructions query (by serial or IMEI), if any.
    public func held(serial: String?, imei: String?) async throws -> (sampleId: Int, lot: String, recordId: String)? {
        let rows = try await db.rows("sample hold", """
            SELECT si.sample_id, s.lot, si.record_id FROM sample_item si JOIN sample s ON s.id = si.sample_id
            WHERE si.state = 'hold' AND ((\(serial)::text IS NOT NULL AND si.serial = \(serial)) OR (\(imei)::text IS NOT NULL AND si.imei = \(imei)))
            ORDER BY si.sample_id DESC LIMIT 1
            """, as: (Int, String, String).self)
        return rows.first.map { ($0.0, $0.1, $0.2) }
    }

    /// A second result, from the station that re-read the item or from QA (the station's
    /// `lethe sync sample-result` sends the same value).
    public typealias Result = SampleResultReport

    /// Records a second result against the held item; names what is missing or unknown.
    public func record(_ result: Result, station: String?) async throws -> (sampleId: Int, recordId: String) {
        guard result.serial != nil || result.imei != nil else { throw HubProblem(400, field: "serial", "give serial or imei") }
        for (value, field) in [(result.serial, "serial"), (result.imei, "imei"), (result.result, "result"), (result.checkedBy, "checkedBy")] {
            try HubProblem.checkText(value, field: field)
        }
        guard !result.checkedBy.trimmingCharacters(in: .whitespaces).isEmpty else { throw HubProblem(400, field: "checkedBy", "who re-read it is required") }
        guard !result.result.isEmpty, result.result.count <= 2000 else { throw HubProblem(400, field: "result", "say what was checked (at most 2000 characters)") }
        let state = result.passed ? "passed" : "failed"
        let by = station.map { "\(result.checkedBy) at station \($0)" } ?? result.checkedBy
        let rows = try await db.rows("sample result", """
            UPDATE sample_item SET state = \(state), result = \(result.result), checked_by = \(by), checked_at = now()
            WHERE state = 'hold' AND (\(station)::text IS NULL OR station_id = \(station))
              AND ((\(result.serial)::text IS NOT NULL AND serial = \(result.serial)) OR (\(result.imei)::text IS NOT NULL AND imei = \(result.imei)))
            RETURNING sample_id, record_id
            """, as: (Int, String).self)
        guard let first = rows.first else {
            throw HubProblem(404, field: result.serial != nil ? "serial" : "imei", "no item \(result.serial ?? result.imei ?? "") is held for verification\(station.map { " at station \($0)" } ?? "")")
        }
        return (first.0, first.1)
    }

    /// A lot's samples, with their items.
    public func samples(lot: String) async throws -> [HubSample] {
        let samples = try await db.rows("samples", "SELECT id, seed, percent::float8, population, drawn_by FROM sample WHERE lot = \(lot) ORDER BY id", as: (Int, String, Double, Int, String).self)
        var result: [HubSample] = []
        for (id, seed, percent, population, by) in samples {
            let items = try await db.rows("sample items", "SELECT record_id, serial, imei, station_id, state FROM sample_item WHERE sample_id = \(id) ORDER BY record_id", as: (String, String?, String?, String, String).self)
            result.append(HubSample(
                sampleId: id, lot: lot, seed: seed, percent: percent, population: population, drawnBy: by,
                items: items.map { .init(recordId: $0.0, serial: $0.1, imei: $0.2, station: $0.3, state: $0.4) }))
        }
        return result
    }
}
