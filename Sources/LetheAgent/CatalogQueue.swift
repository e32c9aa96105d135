import Foundation
import GRDB
import LetheCore
import LetheReports
import LetheStore
import LetheSync

/// Puts the catalog record of a refurb report just issued into the outbox, inside the
/// transaction that records the report (so either both are recorded or neither).
enum CatalogQueue {
    /// Whether a job with this status yields a catalog record: finished erases (sellable or not),
    /// not jobs that stopped part-way and may be resumed.
    static func carries(_ status: WipeStatus) -> Bool {
        status == .erased || status == .erasedWithExceptions || status == .notErased
    }

    static func enqueue(
        _ db: Database, jobId: String, refurb: RefurbReport, refurbPath: String, certificatePath: String?, certified: Bool,
        station: StationConfig, devicePath: String, at: String
    ) throws {
        let refurbFile = try Data(contentsOf: URL(fileURLWithPath: refurbPath))
        let certificateFile = try certificatePath.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        let lookup = try Store.catalogLookup(db, jobId: jobId)
        try Outbox.enqueue(db, jobId: jobId, deviceKey: Outbox.deviceKey(serial: refurb.device.serial, path: devicePath), at: at) { sequence in
            let id = ReportID.make()
            let record = try CatalogRecord(
                recordId: id, station: station.id, sequence: sequence, createdAt: at, refurb: refurb, refurbFile: refurbFile,
                certificateFile: certificateFile, certified: certified, verifyBase: station.verifyBaseURL, sku: lookup?.sku)
            var stamped = record
            stamped.lot = lookup?.lot ?? station.intakeLot
            stamped.supplier = lookup?.supplier ?? station.intakeSupplier
            return (id, try stamped.body())
        }
    }
}
