import Foundation
import LetheCore
import LetheReports
import Testing

/// Canonical JSON, keys, signing and verification, without the file system.
@Suite struct SigningTests {
    static let key = ReportSamples.testKey()

    @Test func canonicalJSONFollowsRFC8785() throws {
        // Members sorted by UTF-16 code units (RFC 8785 §3.2.3 example order), minimal escapes.
        let value = JSONValue.object([
            "\u{20ac}": .string("Euro Sign"), "\r": .string("Carriage Return"), "\u{fb33}": .string("Hebrew Letter Dalet With Dagesh"),
            "1": .string("One"), "\u{1f600}": .string("Emoji: Grinning Face"), "\u{80}": .string("Control\u{7f}"),
            "\u{f6}": .string("Latin Small Letter O With Diaeresis"),
        ])
        let text = String(decoding: value.canonicalData, as: UTF8.self)
        #expect(text == #"{"\r":"Carriage Return","1":"One","\#u{80}":"Control\#u{7f}","\#u{f6}":"Latin Small Letter O With Diaeresis","\#u{20ac}":"Euro Sign","\#u{1f600}":"Emoji: Grinning Face","\#u{fb33}":"Hebrew Letter Dalet With Dagesh"}"#)
        let escapes = JSONValue.string("a\"b\\c\u{8}\u{9}\u{a}\u{c}\u{d}\u{0}\u{1f}/é")
        #expect(String(decoding: escapes.canonicalData, as: UTF8.self) == #""a\"b\\c\b\t\n\f\r\u0000\u001f/é""#)
        #expect(try JSONValue.parse(escapes.canonicalData) == escapes)
    }

    @Test func theSameDocumentAlwaysGivesTheSameBytes() throws {
        let a = try JSONValue.encode(ReportSamples.certificate()).canonicalData
        let b = try JSONValue.encode(ReportSamples.certificate()).canonicalData
        #expect(a == b)
        // Reparsing and re-serializing is stable too.
        #expect(try JSONValue.parse(a).canonicalData == a)
        // Ed25519 (RFC 8032) is deterministic: the same key and bytes, the same signature.
        let first = try SignedReport.sign(ReportSamples.certificate(), type: SignedReport.certificateType, key: Self.key)
        let second = try SignedReport.sign(ReportSamples.certificate(), type: SignedReport.certificateType, key: Self.key)
        #expect(first.fileData == second.fileData)
    }

    @Test func parserRefusesWhatIsNotLetheJSON() {
        for bad in [#"{"a":1,"a":2}"#, #"{"a":1.5}"#, #"{"a":1e3}"#, #"{"a":"#, #"{"a":"\ud800"}"#, "[1,]", "{\"a\":\"x\u{1}\"}"] {
            #expect(throws: JSONParseError.self, "\(bad)") { try JSONValue.parse(Data(bad.utf8)) }
        }
    }

    /// RFC 8037 Appendix A: the thumbprint of the test key.
    @Test func keyIdIsTheRFC7638Thumbprint() {
        #expect(Self.key.publicJWK.x == "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
        #expect(Self.key.keyId == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
    }

    /// RFC 8037 Appendix A.4: the `EdDSA` JWS example verifies (its payload is not a Lethe
    /// document, so it stops there, after the signature check).
    @Test func acceptsTheOlderEdDSAAlgorithm() throws {
        let file = #"{"protected":"eyJhbGciOiJFZERTQSJ9","payload":"RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc","signature":"hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"}"#
        #expect {
            try ReportVerifier.verify(fileData: Data(file.utf8), trusted: [Self.key.publicJWK])
        } throws: { error in
            (error as? ReportVerificationError)?.reason == .badPayload
        }
    }

    /// The hub's stored text is read on its bytes: it gives the same report as the full path,
    /// and every altered text gets the full path's verdict (or falls back to it).
    @Test func canonicalFileTextVerifiesAsTheFullPathDoes() throws {
        let signed = try SignedReport.sign(ReportSamples.certificate(), type: SignedReport.certificateType, key: Self.key)
        let canonical = String(decoding: try JSONValue.parse(signed.fileData).canonicalData, as: UTF8.self)
        let parts = try #require(CanonicalReportFile(text: canonical))
        // Assembled from the verified parts, the same text as canonicalizing the whole file.
        let full0 = try ReportVerifier.verify(fileData: signed.fileData, trusted: [Self.key.publicJWK])
        #expect(CanonicalReportFile.text(of: try JSONValue.parse(signed.fileData), verified: full0.signed) == canonical)
        #expect(parts.payload == signed.payload && parts.protectedHeader == signed.protectedHeader)
        let fast = try ReportVerifier.verify(canonicalFileText: canonical, trusted: [Self.key.publicJWK])
        let full = try ReportVerifier.verify(fileData: signed.fileData, trusted: [Self.key.publicJWK])
        #expect(fast.signed.digest == full.signed.digest && fast.reportId == full.reportId && fast.signed.document == full.signed.document)

        func reason(_ text: String) -> ReportVerificationError.Reason? {
            do {
                _ = try ReportVerifier.verify(canonicalFileText: text, trusted: [Self.key.publicJWK])
                return nil
            } catch {
                return error.reason
            }
        }
        // The readable copy edited: not the shape (it is no longer the payload), so the full path names it.
        let edited = canonical.replacingOccurrences(of: "WD-WCC6Y3KJ0RXX", with: "WD-WCC6Y3KJ0RXY")
        #expect(CanonicalReportFile(text: edited) == nil)
        #expect(reason(edited) == .readableCopyAltered)
        // The signature changed, the shape intact.
        var signature = signed.signature
        signature[signature.startIndex] ^= 0x80
        let forged = String(decoding: try JSONValue.parse(SignedReport(payload: signed.payload, protectedHeader: signed.protectedHeader, signature: signature, document: signed.document).fileData).canonicalData, as: UTF8.self)
        #expect(CanonicalReportFile(text: forged) != nil)
        #expect(reason(forged) == .badSignature)
        // Pretty-printed, an extra member, truncated: the full path's verdicts.
        #expect(reason(String(decoding: signed.fileData, as: UTF8.self)) == nil)
        #expect(reason(canonical.replacingOccurrences(of: "{\"payload\"", with: "{\"extra\":1,\"payload\"")) == nil)
        #expect(reason(String(canonical.prefix(canonical.utf8.count / 2))) == .unreadable)
        #expect(reason(canonical + " ") == nil)
        #expect(reason(canonical + "x") == .unreadable)
        // Empty or odd members: never the fast path, never a crash.
        #expect(CanonicalReportFile(text: "") == nil)
        #expect(reason(#"{"payload":"","protected":"","report":,"signature":""}"#) == .unreadable)
        #expect(reason(#"{"payload":"","protected":"","report":null,"signature":""}"#) == .badHeader)
    }

    @Test func tamperingIsRejectedWithTheReason() throws {
        let signed = try SignedReport.sign(ReportSamples.certificate(), type: SignedReport.certificateType, key: Self.key)
        let good = signed.fileData
        let verified = try ReportVerifier.verify(fileData: good, trusted: [Self.key.publicJWK])
        #expect(verified.reportId == "01KAQ2M7Y8Z3B4C5D6E7F8G9H0")
        #expect(verified.keyId == Self.key.keyId)

        func reason(_ data: Data, trusted: [PublicJWK] = [Self.key.publicJWK]) -> ReportVerificationError.Reason? {
            do {
                _ = try ReportVerifier.verify(fileData: data, trusted: trusted)
                return nil
            } catch {
                return error.reason
            }
        }
        // One changed byte in the signed payload.
        var payload = signed.payload
        payload[payload.index(payload.startIndex, offsetBy: 40)] ^= 0x01
        let alteredPayload = SignedReport(payload: payload, protectedHeader: signed.protectedHeader, signature: signed.signature, document: signed.document)
        #expect(reason(alteredPayload.fileData) == .badSignature)
        // One changed byte in the signature.
        var signature = signed.signature
        signature[signature.startIndex] ^= 0x80
        let alteredSignature = SignedReport(payload: signed.payload, protectedHeader: signed.protectedHeader, signature: signature, document: signed.document)
        #expect(reason(alteredSignature.fileData) == .badSignature)
        // The readable copy changed (a serial edited by hand).
        let edited = String(decoding: good, as: UTF8.self).replacingOccurrences(of: "WD-WCC6Y3KJ0RXX", with: "WD-WCC6Y3KJ0RXY")
        #expect(reason(Data(edited.utf8)) == .readableCopyAltered)
        // Truncated.
        #expect(reason(good.prefix(good.count / 2)) == .unreadable)
        // Another station's key.
        let other = try StationKey(seed: Data(repeating: 7, count: 32))
        let foreign = try SignedReport.sign(ReportSamples.certificate(), type: SignedReport.certificateType, key: other)
        do {
            _ = try ReportVerifier.verify(fileData: foreign.fileData, trusted: [Self.key.publicJWK])
            Issue.record("a foreign key was accepted")
        } catch {
            #expect(error.reason == .untrustedKey)
            #expect(error.message.contains(other.keyId) && error.message.contains("not a trusted station key"))
        }
        // A key swapped in under the trusted kid still fails the signature.
        var impostor = other.publicJWK
        impostor.kid = Self.key.keyId
        #expect(reason(foreign.fileData, trusted: [impostor]) == .untrustedKey)
        #expect(reason(good, trusted: [impostor]) == .badSignature)
    }

    @Test func controlCharactersAndOddStringsAreEscapedNotFatal() throws {
        var certificate = ReportSamples.certificate()
        certificate.device.model = "ST1000\u{0}\u{1b}[31mRED\u{7f}\u{85}\u{fffd}"
        certificate.device.serial = "Z\u{202e}1X"  // right-to-left override
        let signed = try SignedReport.sign(certificate, type: SignedReport.certificateType, key: Self.key)
        let text = String(decoding: signed.payload, as: UTF8.self)
        #expect(text.contains(#"ST1000\u0000\u001b[31mRED"#))
        let verified = try ReportVerifier.verify(fileData: signed.fileData, trusted: [Self.key.publicJWK])
        let decoded = try JSONDecoder().decode(WipeCertificate.self, from: verified.signed.payload)
        #expect(decoded.device.model == certificate.device.model)
        let pdf = try ReportRenderer.certificatePDF(signed, certificate: certificate, verifyBase: "https://v.example", language: .en)
        #expect(pdf.starts(with: Data("%PDF".utf8)))
        #expect(ReportRenderer.printableText("A\u{0}B\u{1b}") == "A\\u{0}B\\u{1b}")
    }

    @Test func reportIdsAreULIDs() {
        let id = ReportID.make(milliseconds: 1_763_820_309_000, random: (0xffff, 0))
        #expect(id.count == 26)
        #expect(ReportID.isValid(id))
        // 16 one-bits then 64 zero-bits: three full characters, then one high bit (16 = "G").
        #expect(id.hasSuffix("ZZZG000000000000"))
        let ids = (0..<1000).map { _ in ReportID.make() }
        #expect(Set(ids).count == 1000)
        #expect(!ReportID.isValid("../../etc/passwd"))
    }

    @Test func certifiedOnlyWhenErasedAndVerified() {
        var c = ReportSamples.certificate()
        #expect(c.certified)
        let unverified = WipeCertificate(
            reportId: c.reportId, issuedAt: c.issuedAt, status: .erased, device: c.device, sanitization: c.sanitization,
            verification: ReportVerification(mode: "off", method: "none", result: "skipped", bytesVerified: 0, coverageBasisPoints: 0, mismatchedSectors: 0),
            tool: c.tool, performedBy: c.performedBy, verifiedBy: c.verifiedBy, station: c.station, destination: c.destination)
        #expect(!unverified.certified)
        c = WipeCertificate(
            reportId: c.reportId, issuedAt: c.issuedAt, status: .aborted, device: c.device, sanitization: c.sanitization,
            verification: c.verification, tool: c.tool, performedBy: c.performedBy, verifiedBy: c.verifiedBy, station: c.station,
            destination: c.destination)
        #expect(!c.certified)
    }
}
