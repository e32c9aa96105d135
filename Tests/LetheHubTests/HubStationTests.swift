import Foundation
import LetheCore
import LetheHub
import LetheReports
import LetheSync
import Testing

/// A real station daemon (its demo drive erased and certified on a loop device) delivering to
/// the hub with nothing changed but its catalog and verify URLs; the hub forwards to the shop;
/// a buyer's browser checks the certificate itself (WebCrypto Ed25519 against the JWKS).
@Suite(.serialized, .timeLimit(.minutes(5))) struct HubStationTests {
    static var canLoop: Bool { getuid() == 0 && FileManager.default.fileExists(atPath: "/dev/loop-control") }

    static func chromium(_ url: String) throws -> String {
        try Bench.run(
            "/usr/bin/chromium", ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom", url], timeout: 90
        ).stdout
    }

    @Test func aStationDeliversThroughTheHubAndABuyerChecksItInTheBrowser() async throws {
        guard Self.canLoop else {
            print("skipped: needs root (the station's demo drive is a loop device)")
            return
        }
        let cluster = try PrivateCluster()
        defer { cluster.stop() }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hub-station-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let state = "\(folder)/station"
        let lethe = Bench.letheBinary
        #expect(try Bench.run(lethe, ["keys", "init", "--state-dir", state]).status == 0)
        let exported = try Bench.run(lethe, ["keys", "export", "--state-dir", state])
        try exported.stdout.write(toFile: "\(folder)/station.jwk", atomically: true, encoding: .utf8)
        try "station-secret-0123456789\n".write(toFile: "\(folder)/catalog.secret", atomically: true, encoding: .utf8)
        try "shop-secret-0123456789abcd\n".write(toFile: "\(folder)/shop.secret", atomically: true, encoding: .utf8)
        let enrolled = try cluster.hub("stations", "add", "bench-7", "--name", "Bench 7", "--jwk", "\(folder)/station.jwk", "--secret-file", "\(folder)/catalog.secret")
        #expect(enrolled.status == 0, "\(enrolled.stderr)")

        let shopPort = Bench.freePort(), hubPort = Bench.freePort(), stationPort = Bench.freePort()
        let shop = try Child("shop", lethe, [
            "catalog", "serve", "--listen", "127.0.0.1:\(shopPort)", "--db", "\(folder)/shop.sqlite", "--secret-file", "\(folder)/shop.secret",
            "--trust", "\(folder)/station.jwk",
        ])
        defer { shop.stop() }
        let hub = try startHub(cluster, name: "hub-a", port: hubPort, catalog: ("http://127.0.0.1:\(shopPort)/v1/records", "\(folder)/shop.secret"))
        defer { hub.stop() }
        let base = "http://127.0.0.1:\(hubPort)"
        // The station: only its catalog URL and verify base point at the hub.
        try """
            station:
              id: bench-7
              name: Bench 7
              verifyBaseURL: \(base)
            catalog:
              url: \(base)/v1/records
              secretFile: \(folder)/catalog.secret
            intake:
              lot: LOT-77
              supplier: Acme
            """.write(toFile: "\(folder)/lethe.yaml", atomically: true, encoding: .utf8)
        let daemon = try Child("station", lethe, [
            "daemon", "--demo", "--state-dir", state, "--config", "\(folder)/lethe.yaml", "--profiles", Bench.repo.appendingPathComponent("profiles").path,
            "--listen", "127.0.0.1:\(stationPort)", "--no-phones",
        ])
        defer { daemon.stop() }
        // The technician grades the certified drive; that issues the refurb report and the record.
        var token: String?
        var graded = false
        let delivered = eventually(120) {
            if token == nil, let range = daemon.stderr.range(of: #"token=lethe_[A-Za-z0-9_-]+"#, options: .regularExpression) {
                token = String(daemon.stderr[range].dropFirst(6))
            }
            if let token, !graded {
                let jobs = HTTP.request("GET", "http://127.0.0.1:\(stationPort)/api/v1/jobs", headers: ["Authorization": "Bearer \(token)"])?.json as? [[String: Any]] ?? []
                if let job = jobs.first(where: { $0["step"] as? String == "grade" })?["id"] as? String {
                    graded = HTTP.request(
                        "POST", "http://127.0.0.1:\(stationPort)/api/v1/jobs/\(job)/grade",
                        headers: ["Authorization": "Bearer \(token)", "Content-Type": "application/json"], body: Data(#"{"grade": "B"}"#.utf8))?.status == 200
                }
            }
            return (try? cluster.sql("SELECT count(*) FROM outbox WHERE state = 'delivered'")) == "1"
        }
        #expect(delivered, "station: \(daemon.stderr.suffix(2000)) hub: \(hub.stderr.suffix(1500))")
        #expect(try cluster.sql("SELECT station_id || ' ' || lot || ' ' || supplier || ' ' || certified FROM record") == "bench-7 LOT-77 Acme true")
        let shopRecords = HTTP.request("GET", "http://127.0.0.1:\(shopPort)/v1/records")?.json as? [[String: Any]] ?? []
        #expect(shopRecords.count == 1, "the shop holds \(shopRecords.count)")

        // The QR code's URL, as the station printed it: the hub's verify page.
        let body = try cluster.sql("SELECT body FROM record")
        let record = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        let verifyURL = try #require((record?["certificate"] as? [String: Any])?["verifyURL"] as? String)
        #expect(verifyURL.hasPrefix("\(base)/verify/") && verifyURL.contains("?d="), "\(verifyURL)")
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium") else {
            print("skipped the browser: apt-get install chromium")
            return
        }
        let page = try Self.chromium(verifyURL)
        #expect(page.contains("Erase certified") && page.contains("matches the signed document"), "\(page.suffix(3000))")
        #expect(page.contains("data-result=\"valid\"") && page.contains("Checked in this browser: the signature is valid") && page.contains("the QR code digest matches"), "\(page.suffix(3000))")
        // A QR code whose digest is not this document's: the browser says so.
        let wrong = try Self.chromium(verifyURL.replacingOccurrences(of: "?d=", with: "?d=AAAA"))
        #expect(wrong.contains("data-result=\"invalid\"") && wrong.contains("does NOT match"), "\(wrong.suffix(2000))")
        // A document altered in the hub's database: the hub flags it, and the browser's own check fails too.
        let certificate = try cluster.sql("SELECT certificate_id FROM record")
        _ = try cluster.sql("""
            UPDATE report SET file = jsonb_set(file::jsonb, '{signature}', to_jsonb(translate(file::jsonb->>'signature', 'ABCDEFGHIJKLMNOP', 'BCDEFGHIJKLMNOPA')))::text
            WHERE id = '\(certificate)'
            """)
        let tampered = try Self.chromium("\(base)/verify/\(certificate)")
        #expect(tampered.contains("Do NOT trust this report") && tampered.contains("data-result=\"invalid\""), "\(tampered.suffix(2000))")
        // The key revoked: the page says so in both checks.
        #expect(try cluster.hub("stations", "revoke", "bench-7").status == 0)
        let refurb = try cluster.sql("SELECT id FROM report WHERE kind = 'refurb'")
        let afterRevocation = try Self.chromium("\(base)/verify/\(refurb)")
        #expect(afterRevocation.contains("this key was revoked"), "\(afterRevocation.suffix(2000))")
    }
}
