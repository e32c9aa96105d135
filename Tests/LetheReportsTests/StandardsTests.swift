import Foundation
import LetheCore
import LetheReports
import Testing

/// Certificates in the words of NIST SP 800-88 Rev. 2 and IEEE 2883-2022 (schema 2), and
/// certificates signed under schema 1 still verify and render, their category meaning the same.
@Suite struct StandardsTests {
    @Test func everyMethodNamesItsIEEE2883Technique() {
        #expect(SanitizationStandards(method: .firmware(.nvmeSanitizeCrypto)).summary == "Purge — IEEE 2883: NVMe Sanitize, Crypto Erase")
        #expect(SanitizationStandards(method: .firmware(.tcgPsidRevert)).interface == "TCG")
        let clear = SanitizationStandards(method: WipeMethod.named("nist-clear")!)
        #expect(clear.category == "Clear" && clear.interface == nil && clear.technique.hasPrefix("Overwrite"))
        #expect(clear.nist == "NIST SP 800-88 Rev. 2 (September 2025)" && clear.ieee2883 == "IEEE 2883-2022")
        for method in WipeMethod.all where !method.picksStrongestPurge {
            let standards = SanitizationStandards(method: method)
            // The category keeps its meaning: the same as the certificate's Rev. 1 field.
            #expect(standards.category == method.category.rawValue && !standards.technique.isEmpty, "\(method.name)")
        }
    }

    @Test func aNewCertificateCarriesBothStandardsInJSONAndPDF() throws {
        let certificate = ReportSamples.certificate()
        #expect(certificate.schema == "lethe.wipe-certificate/2")
        #expect(certificate.sanitization.standards?.summary == "Clear — IEEE 2883: Overwrite (host writes to every user-addressable sector, then a read-back)")
        let dir = try ReportToolsTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let written = try ReportWriter.write(
            certificate: certificate, key: ReportSamples.testKey(), directory: dir, verifyBase: "https://verify.refurb.example", language: .en)
        let payload = try JSONSerialization.jsonObject(with: ReportVerifier.verify(fileData: Data(contentsOf: URL(fileURLWithPath: written.jsonPath)), trusted: [ReportSamples.testKey().publicJWK]).signed.payload) as? [String: Any]
        let standards = (payload?["sanitization"] as? [String: Any])?["standards"] as? [String: Any]
        #expect(standards?["ieee2883"] as? String == "IEEE 2883-2022" && standards?["nist"] as? String == "NIST SP 800-88 Rev. 2 (September 2025)")
        if let pdftotext = ReportToolsTests.which("pdftotext") {
            let text = try ReportToolsTests.run(pdftotext, [written.pdfPath, "-"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(text.contains("Clear — IEEE 2883: Overwrite") && text.contains("NIST SP 800-88 Rev. 2"), "\(text.prefix(1500))")
        }
    }

    @Test func aCertificateOfSchemaOneStillVerifiesAndRenders() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/certificate-schema1.json")
        let verified = try ReportVerifier.verify(fileData: Data(contentsOf: file), trusted: [ReportSamples.testKey().publicJWK])
        #expect(verified.schema == "lethe.wipe-certificate/1" && WipeCertificate.isCertificate(schema: verified.schema))
        let certificate = try JSONDecoder().decode(WipeCertificate.self, from: verified.signed.payload)
        #expect(certificate.sanitization.standards == nil && certificate.sanitization.category == "Clear")
        let pdf = try ReportWriter.renderPDF(verified, verifyBase: "https://verify.refurb.example", language: .en)
        let dir = try ReportToolsTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/old.pdf"
        try pdf.write(to: URL(fileURLWithPath: path))
        if let pdftotext = ReportToolsTests.which("pdftotext") {
            let text = try ReportToolsTests.run(pdftotext, [path, "-"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(text.contains("Clear (NIST SP 800-88 Rev. 1)") && !text.contains("IEEE 2883:"), "\(text.prefix(1500))")
        }
    }
}
