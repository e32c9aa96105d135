import Foundation
import LetheCore
import PostgresNIO

/// Supply quality for one supplier or lot: what its items turned out to be at the bench.
public struct HubScorecard: Codable, Sendable, Equatable {
    public var group: String
    public var units: Int
    /// Items with a certified erase.
    public var erased: Int
    public var failedDiagnostics: Int
    /// Items with any lock, and per lock (`frp`, `findMy`, `knox`, `mdm`).
    public var locked: Int
    public var locks: [String: Int]
    /// Battery health buckets: `90+`, `80-89`, `70-79`, `<70`, `unknown`.
    public var battery: [String: Int]
    /// Grades A–E.
    public var grades: [String: Int]
    /// Median seconds from the erase's start to the record (nil when none is known).
    public var medianBenchSeconds: Int?
}

/// Scorecards per supplier or per lot, over the latest record of each item.
public struct HubScorecards: Sendable {
    let db: HubDatabase

    public init(database: HubDatabase) { db = database }

    /// `by`: `supplier` or `lot`.
    public func cards(by: String) async throws -> [HubScorecard] {
        guard by == "supplier" || by == "lot" else { throw HubProblem(400, field: "by", "\(by) is not supplier or lot") }
        let column = by == "lot" ? "lot" : "supplier"
        // Built from constants only: `column` is one of two names chosen above, never input.
        let sql = """
            WITH latest AS (
                SELECT DISTINCT ON (coalesce(serial, imei, id)) * FROM record ORDER BY coalesce(serial, imei, id), sequence DESC, received_at DESC)
            SELECT coalesce(\(column), '(none)'), count(*)::int,
                count(*) FILTER (WHERE certified)::int, count(*) FILTER (WHERE diagnostics_verdict = 'fail')::int,
                count(*) FILTER (WHERE cardinality(locks) > 0)::int,
                count(*) FILTER (WHERE 'frp' = ANY(locks))::int, count(*) FILTER (WHERE 'findMy' = ANY(locks))::int,
                count(*) FILTER (WHERE 'knox' = ANY(locks))::int, count(*) FILTER (WHERE 'mdm' = ANY(locks))::int,
                count(*) FILTER (WHERE battery_health >= 90)::int, count(*) FILTER (WHERE battery_health BETWEEN 80 AND 89)::int,
                count(*) FILTER (WHERE battery_health BETWEEN 70 AND 79)::int, count(*) FILTER (WHERE battery_health < 70)::int,
                count(*) FILTER (WHERE battery_health IS NULL)::int,
                count(*) FILTER (WHERE grade = 'A')::int, count(*) FILTER (WHERE grade = 'B')::int, count(*) FILTER (WHERE grade = 'C')::int,
                count(*) FILTER (WHERE grade = 'D')::int, count(*) FILTER (WHERE grade = 'E')::int,
                (percentile_disc(0.5) WITHIN GROUP (ORDER BY bench_seconds))::int
            FROM latest GROUP BY 1 ORDER BY 1
            """
        let rows = try await db.rows(
            "scorecards", PostgresQuery(unsafeSQL: sql),
            as: (String, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int?).self)
        return rows.map { r in
            HubScorecard(
                group: r.0, units: r.1, erased: r.2, failedDiagnostics: r.3, locked: r.4,
                locks: ["frp": r.5, "findMy": r.6, "knox": r.7, "mdm": r.8],
                battery: ["90+": r.9, "80-89": r.10, "70-79": r.11, "<70": r.12, "unknown": r.13],
                grades: ["A": r.14, "B": r.15, "C": r.16, "D": r.17, "E": r.18], medianBenchSeconds: r.19)
        }
    }
}
