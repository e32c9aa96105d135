import Foundation
import Testing

/// `lethe wipe --report-dir` on real loop devices: the key is required before anything is
/// written, a verified erase gets a certificate, an unverified one only a record, and another
/// station's key is not trusted.
@Suite struct ReportWipeTests {
    static func stateDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "lethe-state-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func noStationKeyMeansNothingIsWritten() throws {
        guard Host.canLoop else {
            print("skipped: needs root and loop devices")
            return
        }
        let state = try Self.stateDirectory()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let loop = try LoopDevice(sizeBytes: 8 << 20, fill: 0xab)
        let result = try Host.lethe("wipe", loop.path, "--method", "zero", "--yes", "--report-dir", "\(state)/reports", "--state-dir", state)
        #expect(result.status == 2)
        #expect(result.stderr.contains("no station key") && result.stderr.contains("lethe keys init"), "\(result.stderr)")
        #expect(try loop.contents().allSatisfy { $0 == 0xab }, "the device was written without a key")
        #expect(!FileManager.default.fileExists(atPath: "\(state)/keys/station.jwk"), "a key was created behind the operator's back")
    }

    /// A loop device has no firmware erase: a named firmware method is refused before a byte is
    /// written; `nist-purge` falls back to Clear and the certificate (schema-valid) says why.
    @Test func firmwareMethodsOnADeviceWithoutFirmware() throws {
        guard Host.canLoop else { return }
        let state = try Self.stateDirectory()
        defer { try? FileManager.default.removeItem(atPath: state) }
        #expect(try Host.lethe("keys", "init", "--state-dir", state).status == 0)
        let loop = try LoopDevice(sizeBytes: 8 << 20, fill: 0x6b)
        let refused = try Host.lethe("wipe", loop.path, "--method", "ata-secure-erase", "--yes", "--state-dir", state)
        #expect(refused.status == 2 && refused.stderr.contains("a loop device has no firmware erase commands"), "\(refused.stderr)")
        #expect(try loop.contents().allSatisfy { $0 == 0x6b }, "written although refused")
        let purge = try Host.lethe("wipe", loop.path, "--method", "nist-purge", "--yes", "--json", "--report-dir", "\(state)/reports", "--state-dir", state)
        #expect(purge.status == 0 && purge.stderr.contains("fell back to NIST Clear"), "\(purge.stderr)")
        let reportId = try #require(purge.lastJSON?["reportId"] as? String)
        let file = "\(state)/reports/\(reportId).json"
        let report = (try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any])?["report"] as? [String: Any]
        let sanitization = report?["sanitization"] as? [String: Any]
        #expect(report?["certified"] as? Bool == true && sanitization?["category"] as? String == "Clear" && sanitization?["method"] as? String == "nist-clear")
        #expect((sanitization?["choice"] as? String ?? "").contains("a loop device has no firmware erase commands"), "\(String(describing: sanitization))")
        #expect(try loop.contents().allSatisfy { $0 == 0 })
        if let python = try Host.pythonVerifyCertificate(file, state: state) {
            #expect(python.stdout.hasPrefix("VALID"), "\(python.stdout) \(python.stderr)")
        }
    }

    /// `lethe wipe --surface full`: the real device is read end to end before the erase, and the
    /// scan (coverage, latency, thresholds, verdict) is in the signed refurb report, its schema
    /// and its PDF.
    @Test func surfaceScanGoesInTheRefurbReport() throws {
        guard Host.canLoop else { return }
        let state = try Self.stateDirectory()
        defer { try? FileManager.default.removeItem(atPath: state) }
        #expect(try Host.lethe("keys", "init", "--state-dir", state).status == 0)
        let loop = try LoopDevice(sizeBytes: 16 << 20, fill: 0x2e)
        let bad = try Host.lethe("wipe", loop.path, "--method", "zero", "--surface", "quick", "--yes", "--state-dir", state)
        #expect(bad.status == 64 && bad.stderr.contains("quick"), "\(bad.status) \(bad.stderr)")
        let wipe = try Host.lethe("wipe", loop.path, "--method", "nist-clear", "--surface", "full", "--yes", "--json", "--report-dir", "\(state)/reports", "--state-dir", state)
        #expect(wipe.status == 0, "\(wipe.stderr)")
        #expect(wipe.stderr.contains("reading the surface (full) before erasing") && wipe.stderr.contains("lethe: surface PASS: every read succeeded"), "\(wipe.stderr)")
        let line = try #require(wipe.stderr.split(separator: "\n").first { $0.contains("refurb report ") }, "\(wipe.stderr)")
        let refurbFile = try #require(line.split(separator: " ").first { $0.hasSuffix(".json") }.map(String.init))
        let refurb = (try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: refurbFile))) as? [String: Any])?["report"] as? [String: Any]
        let diagnostics = refurb?["diagnostics"] as? [String: Any]
        let surface = try #require(diagnostics?["surface"] as? [String: Any], "\(String(describing: refurb))")
        #expect(surface["mode"] as? String == "full" && surface["verdict"] as? String == "pass")
        #expect(surface["bytesRead"] as? Int == 16 << 20 && surface["coverageBasisPoints"] as? Int == 10000 && surface["reads"] as? Int == 16)
        #expect(surface["unreadableSectors"] as? Int == 0 && (surface["latencyMicroseconds"] as? [String: Any])?["p50"] != nil)
        #expect((surface["thresholds"] as? [String: Any])?["slowMilliseconds"] as? Int == 200)
        // No SMART on a loop device: a clean read does not make it grade A.
        #expect(diagnostics?["verdict"] as? String == "unknown" && refurb?["grade"] as? String == "C")
        #expect(try loop.contents().allSatisfy { $0 == 0 }, "the scan read; the erase still ran")
        if let python = try Host.pythonVerifyCertificate(refurbFile, state: state, schema: "refurb-report") {
            #expect(python.stdout.hasPrefix("VALID"), "\(python.stdout) \(python.stderr)")
        }
        if let pdftotext = Host.which("pdftotext") {
            let text = try Host.run(pdftotext, ["-layout", refurbFile.replacingOccurrences(of: ".json", with: ".pdf"), "-"]).stdout
            #expect(text.contains("Surface scan") && text.contains("100.00 % (full), 16.0 MiB in 16 reads"), "\(text)")
        }
    }

    @Test func verifiedEraseGetsACertificateUnverifiedOnlyARecord() throws {
        guard Host.canLoop else { return }
        let state = try Self.stateDirectory()
        let other = try Self.stateDirectory()
        defer {
            try? FileManager.default.removeItem(atPath: state)
            try? FileManager.default.removeItem(atPath: other)
        }
        #expect(try Host.lethe("keys", "init", "--state-dir", state).status == 0)
        let again = try Host.lethe("keys", "init", "--state-dir", state)
        #expect(again.status == 2 && again.stderr.contains("refusing to replace"))
        let mode = try FileManager.default.attributesOfItem(atPath: "\(state)/keys/station.jwk")[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let loop = try LoopDevice(sizeBytes: 16 << 20, fill: 0x5a)
        let reports = "\(state)/reports"
        let wipe = try Host.lethe("wipe", loop.path, "--method", "nist-clear", "--yes", "--json", "--report-dir", reports, "--state-dir", state, "--operator", "Test Operator")
        #expect(wipe.status == 0, "\(wipe.stderr)")
        let reportId = try #require(wipe.lastJSON?["reportId"] as? String)
        let file = "\(reports)/\(reportId).json"
        #expect(FileManager.default.fileExists(atPath: "\(reports)/\(reportId).pdf"))
        let verify = try Host.lethe("report", "verify", file, "--state-dir", state)
        #expect(verify.status == 0, "\(verify.stderr)")
        let document = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any]
        let report = try #require(document?["report"] as? [String: Any])
        #expect(report["certified"] as? Bool == true)
        #expect(report["status"] as? String == "erased")
        #expect((report["performedBy"] as? [String: Any])?["name"] as? String == "Test Operator")
        #expect((report["verification"] as? [String: Any])?["result"] as? String == "passed")
        // The private key never appears in a report.
        let privateJWK = try String(contentsOfFile: "\(state)/keys/station.jwk", encoding: .utf8)
        let d = try #require((try JSONSerialization.jsonObject(with: Data(privateJWK.utf8)) as? [String: Any])?["d"] as? String)
        #expect(!(try String(contentsOfFile: file, encoding: .utf8)).contains(d))

        // Another station does not trust this one's key, and says so.
        #expect(try Host.lethe("keys", "init", "--state-dir", other).status == 0)
        let foreign = try Host.lethe("report", "verify", file, "--state-dir", other)
        #expect(foreign.status == 1)
        #expect(foreign.stderr.contains("not a trusted station key"), "\(foreign.stderr)")
        // ...until it is told to.
        let exported = try Host.lethe("keys", "export", "--state-dir", state)
        let jwk = "\(other)/peer.jwk"
        try exported.stdout.write(toFile: jwk, atomically: true, encoding: .utf8)
        #expect(try Host.lethe("keys", "trust", jwk, "--state-dir", other).status == 0)
        #expect(try Host.lethe("report", "verify", file, "--state-dir", other).status == 0)

        // No verification: a signed record that says so, never a certificate.
        let unverified = try Host.lethe("wipe", loop.path, "--method", "zero", "--verify", "off", "--yes", "--json", "--report-dir", reports, "--state-dir", state)
        #expect(unverified.status == 0, "\(unverified.stderr)")
        #expect(unverified.stderr.contains("NOT a certificate"))
        let recordId = try #require(unverified.lastJSON?["reportId"] as? String)
        let record = try Host.lethe("report", "verify", "\(reports)/\(recordId).json", "--state-dir", state)
        #expect(record.status == 0)
        #expect(record.stdout.contains("not a certificate"))
        let show = try Host.lethe("report", "show", "\(reports)/\(recordId).json", "--state-dir", state)
        #expect(show.stdout.contains("certified: no"))
    }
}

extension ReportWipeTests {
    /// A damaged key file is named and refused; it is not silently replaced.
    @Test func damagedKeyIsRefusedNotReplaced() throws {
        let state = try Self.stateDirectory()
        defer { try? FileManager.default.removeItem(atPath: state) }
        #expect(try Host.lethe("keys", "init", "--state-dir", state).status == 0)
        let path = "\(state)/keys/station.jwk"
        try Data("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"abc\",\"d\":\"!!\"}".utf8).write(to: URL(fileURLWithPath: path))
        let show = try Host.lethe("keys", "show", "--state-dir", state)
        #expect(show.status == 2)
        #expect(show.stderr.contains(path) && show.stderr.contains("damaged"), "\(show.stderr)")
        let again = try Host.lethe("keys", "init", "--state-dir", state)
        #expect(again.status == 2, "a damaged key must not be replaced without the operator deciding to")
        #expect(try String(contentsOfFile: path, encoding: .utf8).contains("!!"))
    }
}
