import Foundation
import LetheCore
import LetheReports
import LetheStore

/// Sample catalog records, for tests and the sync benchmark: the sample refurb report and
/// certificate, signed with the public RFC 8032 TEST key (never a station's key).
public enum CatalogSamples {
    /// Queues `count` records for `devices` devices (`serial:SYNC-0`…) in `stateDirectory`'s
    /// outbox, and writes `test-key.jwk` (the key the receiver must trust) beside it. Returns
    /// the record ids in the order queued.
    public static func fill(stateDirectory: String, records count: Int, devices: Int) throws -> [String] {
        let store = try Store(stateDirectory: stateDirectory)
        let key = ReportSamples.testKey()
        let certificate = try SignedReport.sign(ReportSamples.certificate(), type: SignedReport.certificateType, key: key)
        let refurb = ReportSamples.refurb(certificateDigest: certificate.digest)
        let signed = try SignedReport.sign(refurb, type: SignedReport.refurbType, key: key)
        try JSONEncoder().encode(key.publicJWK).write(to: URL(fileURLWithPath: "\(stateDirectory)/test-key.jwk"))
        let at = Store.iso8601(Date())
        var ids: [String] = []
        // Batches of 500 per transaction.
        var n = 0
        while n < count {
            let batch = min(500, count - n)
            let first = n
            let made = try store.write { db in
                try (first..<(first + batch)).map { index in
                    try Outbox.enqueue(db, jobId: nil, deviceKey: "serial:SYNC-\(index % max(1, devices))", at: at) { sequence in
                        let id = ReportID.make()
                        let record = try CatalogRecord(
                            recordId: id, station: "sample-station", sequence: sequence, createdAt: at, refurb: refurb,
                            refurbFile: signed.fileData, certificateFile: certificate.fileData, certified: true, verifyBase: "http://127.0.0.1:8765")
                        return (id, try record.body())
                    }.id
                }
            }
            ids += made
            n += batch
        }
        return ids
    }
}
