import Crypto
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

/// A simulated station for the hub's tests, benchmark and demo: its own Ed25519 key and HMAC
/// secret, and catalog records about distinct items (their own report ids, serials, lots,
/// grades, batteries and locks), signed as a real station signs them.
public struct SimulatedStation: Sendable {
    public let id: String
    public let key: StationKey
    public let secret: SymmetricKey

    /// A station with a fresh key and secret.
    public init(id: String) {
        self.id = id
        key = StationKey(privateKey: Curve25519.Signing.PrivateKey())
        secret = SymmetricKey(size: .bits256)
    }

    /// The secret as a file's bytes (base64, as `head -c 32 /dev/urandom | base64` writes).
    public var secretFileText: String { secret.withUnsafeBytes { Data($0) }.base64EncodedString() + "\n" }

    /// The HMAC key a receiver reads from ``secretFileText`` (the file's bytes, trimmed).
    public var fileSecret: SymmetricKey { SymmetricKey(data: Data(secretFileText.dropLast().utf8)) }

    /// One item's record: certificate and refurb report signed with this station's key.
    /// `variant` picks the item's story (grade, battery, a lock, a failed erase) so scorecards
    /// have something to show.
    public func record(item: Int, lot: String?, supplier: String?, verifyBase: String, variant: Int? = nil, now: Date = Date()) throws -> (id: String, body: Data) {
        let story = variant ?? item
        let issued = Store.iso8601(now)
        var station = ReportSamples.station
        station.id = id
        station.name = "Simulated \(id)"
        station.keyId = key.keyId
        var certificate = ReportSamples.certificate()
        certificate.reportId = ReportID.make(date: now)
        certificate.issuedAt = issued
        certificate.station = station
        certificate.device.serial = "\(id.uppercased())-SN\(item)"
        certificate.sanitization.startedAt = Store.iso8601(now.addingTimeInterval(-Double(600 + (story % 7) * 300)))
        certificate.sanitization.finishedAt = issued
        let failed = story % 11 == 5
        if failed {
            certificate.status = .notErased
            certificate.certified = false
        }
        let signedCertificate = try SignedReport.sign(certificate, type: SignedReport.certificateType, key: key)
        var refurb = ReportSamples.refurb(certificateDigest: signedCertificate.digest)
        refurb.reportId = ReportID.make(date: now)
        refurb.issuedAt = issued
        refurb.station = station
        refurb.device = certificate.device
        refurb.certificate = CertificateReference(reportId: certificate.reportId, digest: signedCertificate.digest, status: certificate.status)
        refurb.grade = failed ? "D" : ["A", "B", "B", "C", "A", "B"][story % 6]
        refurb.battery = ReportBattery(healthPercent: 62 + (story * 7) % 38, cycleCount: 100 + story % 900, source: "simulated")
        if story % 9 == 4 {
            refurb.diagnostics.findings.append("Factory Reset Protection is on (simulated)")
            refurb.diagnostics.verdict = "fail"
        } else if story % 13 == 7 {
            refurb.diagnostics.findings.append("Find My (Activation Lock) is on (simulated)")
        }
        let signedRefurb = try SignedReport.sign(refurb, type: SignedReport.refurbType, key: key)
        let recordId = ReportID.make(date: now)
        var record = try CatalogRecord(
            recordId: recordId, station: id, sequence: 1, createdAt: issued, refurb: refurb, refurbFile: signedRefurb.fileData,
            certificateFile: signedCertificate.fileData, certified: certificate.certified, verifyBase: verifyBase)
        record.lot = lot
        record.supplier = supplier
        return (recordId, try record.body())
    }
}
