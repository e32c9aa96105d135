import Foundation
import LetheCore
import LetheReports
import Testing

/// Reports checked by tools that are not Lethe: Python's `cryptography` and `jsonschema`,
/// `zbarimg` on the rendered QR code, `pdftotext` on the PDF; and `lethe wipe --report-dir`
/// end to end on a loop device.
@Suite struct ReportToolsTests {
    static var repo: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }
    static var lethe: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("lethe").path
    }
    static let python = "/usr/bin/python3"

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    @discardableResult
    static func run(_ tool: String, _ arguments: [String], cwd: String? = nil) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func which(_ tool: String) -> String? {
        ["/usr/bin", "/usr/sbin", "/bin", "/sbin"].map { "\($0)/\(tool)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "lethe-reports-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static var pythonReady: Bool {
        guard FileManager.default.isExecutableFile(atPath: python) else { return false }
        return (try? run(python, ["-c", "import cryptography, jsonschema"]).status) == 0
    }

    /// A sample certificate and refurb report written through ReportWriter.
    static func writeSamples(_ dir: String, language: ReportLanguage, model: String? = nil) throws -> (ReportWriter.Written, ReportWriter.Written, WipeCertificate) {
        var certificate = ReportSamples.certificate()
        if let model { certificate.device.model = model }
        let key = ReportSamples.testKey()
        let written = try ReportWriter.write(certificate: certificate, key: key, directory: dir, verifyBase: "https://verify.refurb.example", language: language)
        let refurb = ReportSamples.refurb(certificateDigest: written.signed.digest)
        let refurbWritten = try ReportWriter.write(refurb: refurb, key: key, directory: dir, verifyBase: "https://verify.refurb.example", language: language)
        let jwk = try JSONEncoder().encode(key.publicJWK)
        try jwk.write(to: URL(fileURLWithPath: "\(dir)/test.jwk"))
        return (written, refurbWritten, certificate)
    }

    @Test func pythonCryptographyVerifiesAndSchemaValidates() throws {
        guard Self.pythonReady else {
            print("skipped: needs /usr/bin/python3 with cryptography and jsonschema (python3-cryptography, python3-jsonschema)")
            return
        }
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (certificate, refurb, _) = try Self.writeSamples(dir, language: .en)
        let script = Self.repo.appendingPathComponent("Tests/LetheReportsTests/verify_jws.py").path
        let schemas = Self.repo.appendingPathComponent("reports/schema").path
        for (written, schema) in [(certificate, "wipe-certificate"), (refurb, "refurb-report")] {
            let ok = try Self.run(Self.python, [script, written.jsonPath, "\(dir)/test.jwk", "\(schemas)/\(schema).schema.json"])
            #expect(ok.status == 0, "\(ok.stdout) \(ok.stderr)")
            #expect(ok.stdout.hasPrefix("VALID"))
        }
        // Flip one byte of the payload, then of the signature: Python and Lethe both refuse.
        let original = try String(contentsOfFile: certificate.jsonPath, encoding: .utf8)
        let object = try JSONSerialization.jsonObject(with: Data(original.utf8)) as! [String: Any]
        for member in ["payload", "signature"] {
            var text = object[member] as! String
            let index = text.index(text.startIndex, offsetBy: 20)
            let replacement: Character = text[index] == "A" ? "B" : "A"
            text.replaceSubrange(index...index, with: String(replacement))
            let tampered = original.replacingOccurrences(of: object[member] as! String, with: text)
            let path = "\(dir)/tampered-\(member).json"
            try tampered.write(toFile: path, atomically: true, encoding: .utf8)
            let py = try Self.run(Self.python, [script, path, "\(dir)/test.jwk"])
            #expect(py.status == 1, "python accepted a changed \(member)")
            let ours = try Self.run(Self.lethe, ["report", "verify", path, "--trust", "\(dir)/test.jwk", "--state-dir", dir])
            #expect(ours.status == 1, "lethe accepted a changed \(member)")
            #expect(ours.stderr.contains("NOT VALID"))
        }
    }

    @Test func qrCodeDecodesToTheVerifyURL() throws {
        guard let zbarimg = Self.which("zbarimg"), let pdftoppm = Self.which("pdftoppm") else {
            print("skipped: needs zbarimg (zbar-tools) and pdftoppm (poppler-utils)")
            return
        }
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for language in ReportLanguage.allCases {
            let (certificate, refurb, _) = try Self.writeSamples(dir, language: language)
            for written in [certificate, refurb] {
                let prefix = "\(dir)/\(written.reportId)-\(language.rawValue)"
                let render = try Self.run(pdftoppm, ["-r", "150", "-png", "-f", "1", "-l", "1", written.pdfPath, prefix])
                #expect(render.status == 0, "\(render.stderr)")
                let png = try #require(try FileManager.default.contentsOfDirectory(atPath: dir).first { "\(dir)/\($0)".hasPrefix(prefix) && $0.hasSuffix(".png") })
                let scan = try Self.run(zbarimg, ["-q", "--raw", "\(dir)/\(png)"])
                let url = scan.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(url == "https://verify.refurb.example/verify/\(written.reportId)?d=\(written.signed.digest)", "\(language): \(scan.stdout) \(scan.stderr)")
            }
        }
    }

    @Test func pdfTextHasSerialMethodAndStatusInBothLanguages() throws {
        guard let pdftotext = Self.which("pdftotext") else {
            print("skipped: needs pdftotext (poppler-utils)")
            return
        }
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let expected: [ReportLanguage: [String]] = [
            .en: ["ERASED AND VERIFIED", "Serial number", "Method", "Certificate of Data Sanitization"],
            .zhCN: ["已清除并验证", "序列号", "方法", "数据清除证书"],
        ]
        for language in ReportLanguage.allCases {
            let (certificate, refurb, _) = try Self.writeSamples(dir, language: language)
            // Lines wrap where the layout wraps them: compare with whitespace collapsed.
            let text = try Self.run(pdftotext, [certificate.pdfPath, "-"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            for needle in ["WD-WCC6Y3KJ0RXX", "dod-3", certificate.reportId] + expected[language]! {
                #expect(text.contains(needle), "\(language): \(needle) missing")
            }
            let refurbText = try Self.run(pdftotext, [refurb.pdfPath, "-"]).stdout
            #expect(refurbText.contains("WD-WCC6Y3KJ0RXX"))
            #expect(refurbText.contains(certificate.reportId), "the refurb report names its certificate")
        }
    }

    /// An erase with exceptions, or one that was not read back, is a signed record, never
    /// called a certificate, in the JSON or on paper.
    @Test func anUncertifiedEraseIsNotCalledACertificateOnPaper() throws {
        guard let pdftotext = Self.which("pdftotext") else {
            print("skipped: needs pdftotext (poppler-utils)")
            return
        }
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sample = ReportSamples.certificate()
        var sanitization = sample.sanitization
        sanitization.badSectors = [SectorRange(first: 1_234_567, count: 8)]
        sanitization.exceptions = "8 sector(s) could not be overwritten; destroy it"
        var unverified = sample.verification
        unverified.result = "skipped"
        let cases: [(WipeStatus, ReportSanitization, ReportVerification, String)] = [
            (.erasedWithExceptions, sanitization, sample.verification, "ERASED WITH EXCEPTIONS: NOT CERTIFIED"),
            (.erased, sample.sanitization, unverified, "ERASED, NOT VERIFIED: NOT CERTIFIED"),
        ]
        for (status, sanitization, verification, verdict) in cases {
            let document = WipeCertificate(
                reportId: ReportID.make(), issuedAt: sample.issuedAt, status: status, device: sample.device, sanitization: sanitization,
                verification: verification, tool: sample.tool, performedBy: sample.performedBy, verifiedBy: sample.verifiedBy,
                station: sample.station, destination: sample.destination)
            #expect(!document.certified)
            let written = try ReportWriter.write(
                certificate: document, key: ReportSamples.testKey(), directory: dir, verifyBase: "https://verify.refurb.example", language: .en)
            let text = try Self.run(pdftotext, [written.pdfPath, "-"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(text.contains("Record of Data Sanitization (not a certificate)") && !text.contains("Certificate of Data Sanitization"), "\(text)")
            #expect(text.contains(verdict), "\(verdict) missing")
            if status == .erasedWithExceptions { #expect(text.contains("LBA 1234567") && text.contains("Next step")) }
        }
    }

    /// A 900-character model (firmware strings can be anything): every character is on the
    /// page, wrapped, none cut off.
    @Test func longFieldsWrapAndNothingIsCutOff() throws {
        guard let pdftotext = Self.which("pdftotext") else { return }
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // No hyphens: pdftotext joins a line ending in "-" as a hyphenated word and drops it.
        let long = (0..<90).map { String(format: "SEG%03d_XY", $0) }.joined()
        let (certificate, _, _) = try Self.writeSamples(dir, language: .en, model: long)
        let text = try Self.run(pdftotext, [certificate.pdfPath, "-"]).stdout
        let squeezed = text.filter { !$0.isWhitespace }
        #expect(squeezed.contains(long), "the long model was cut")
        let pages = try Self.run(Self.which("pdfinfo") ?? "/usr/bin/pdfinfo", [certificate.pdfPath]).stdout
        #expect(pages.contains("Pages:"))
    }

    @Test func templatesAndSamplesInTheRepoAreCurrent() throws {
        for language in ReportLanguage.allCases {
            let file = Self.repo.appendingPathComponent("reports/templates/\(language.rawValue).json")
            let onDisk = try JSONValue.parse(Data(contentsOf: file))
            #expect(onDisk == JSONValue.object(language.strings.mapValues { .string($0) }), "reports/templates/\(language.rawValue).json is stale: run `lethe report strings --lang \(language.rawValue)`")
        }
        let key = try JSONDecoder().decode(PublicJWK.self, from: Data(contentsOf: Self.repo.appendingPathComponent("reports/samples/test-key.pub.jwk")))
        for id in ["01KAQ2M7Y8Z3B4C5D6E7F8G9H0", "01KAQ2M7Y8Z3B4C5D6E7F8G9H1"] {
            let data = try Data(contentsOf: Self.repo.appendingPathComponent("reports/samples/\(id).json"))
            let verified = try ReportVerifier.verify(fileData: data, trusted: [key])
            #expect(verified.reportId == id)
        }
    }
}
