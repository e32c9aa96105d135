import Crypto
import Foundation
import LetheCore
import LetheReports
import LetheStore
@testable import LetheSync
import Testing

/// The catalog side of truth (issue 15, item 12): a 409 is delivered only with a receipt for
/// this record, and the reference receiver stores what the station's key signed, refusing a
/// summary that says otherwise.
@Suite struct CatalogTruthTests {
    @Test func a409IsDeliveredOnlyWithThisRecordsReceipt() async throws {
        let delivery = CatalogPoster(settings: DeliverySettings(url: "http://127.0.0.1:9/v1/records", secret: SymmetricKey(size: .bits256), station: "s"))
        #expect(delivery.classify(status: 409, retryAfter: nil, body: Data(#"{"recordId":"01RECORD","duplicate":true}"#.utf8), id: "01RECORD", attempt: 1) == .delivered)
        let other = delivery.classify(status: 409, retryAfter: nil, body: Data(#"{"error":"Conflict","message":"locked"}"#.utf8), id: "01RECORD", attempt: 1)
        if case .dead(let why) = other {
            #expect(why.contains("HTTP 409 without a receipt"))
        } else {
            Issue.record("a 409 without a receipt was taken as delivered: \(other)")
        }
        #expect(delivery.classify(status: 409, retryAfter: nil, body: Data(#"{"recordId":"01OTHER"}"#.utf8), id: "01RECORD", attempt: 1) != .delivered)
        await delivery.shutdown()
    }

    /// A record built from the signed samples, then its summary edited: each lie is refused.
    @Test func theReceiverRefusesASummaryThatContradictsTheSignedDocuments() throws {
        let key = ReportSamples.testKey()
        let certificate = ReportSamples.certificate()
        let signedCertificate = try SignedReport.sign(certificate, type: SignedReport.certificateType, key: key)
        let refurb = ReportSamples.refurb(certificateDigest: signedCertificate.digest)
        let signedRefurb = try SignedReport.sign(refurb, type: SignedReport.refurbType, key: key)
        let record = try CatalogRecord(
            recordId: "01RECORD", station: "bench-01", sequence: 1, createdAt: "2026-12-06T00:00:00Z", refurb: refurb,
            refurbFile: signedRefurb.fileData, certificateFile: signedCertificate.fileData, certified: certificate.certified, verifyBase: "https://v")
        let trusted = [key.publicJWK]
        let report = try ReportVerifier.verify(file: record.report, trusted: trusted)
        let document = try ReportVerifier.verify(file: record.certificateDocument!, trusted: trusted)
        #expect(CatalogReceiver.disagreement(record, report: report, certificate: document) == nil)

        var uncertified = record
        uncertified.certificate?.certified = !certificate.certified
        #expect(CatalogReceiver.disagreement(uncertified, report: report, certificate: document)?.contains("certificate.certified") == true)
        var regraded = record
        regraded.grade = "A+"
        #expect(CatalogReceiver.disagreement(regraded, report: report, certificate: document)?.contains("grade") == true)
        var reserialed = record
        reserialed.device.serial = "ANOTHER-DRIVE"
        #expect(CatalogReceiver.disagreement(reserialed, report: report, certificate: document)?.contains("device.serial") == true)
        var claims = record
        claims.certificate?.certified = true
        #expect(CatalogReceiver.disagreement(claims, report: report, certificate: nil)?.contains("no signed certificate") == true)
    }
}
