import Crypto
import Foundation
import LetheCore
import LetheHub
import LetheReports
import LetheSync
import Testing

/// Enrols simulated stations with the admin CLI, `lethe-hub stations add`, in a child process.
/// Never in this process: the test runner's cooperative pool is as wide as the machine has
/// cores, and the suites that block it (child processes, the lab's virtual machine) starved an
/// in-process PostgreSQL client until its 120 s deadline passed (CI, stop 24).
func enrol(_ stations: [SimulatedStation], cluster: PrivateCluster) throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hub-enrol-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    for station in stations {
        let jwk = "\(folder)/\(station.id).jwk", secret = "\(folder)/\(station.id).secret"
        try JSONEncoder().encode(station.key.publicJWK).write(to: URL(fileURLWithPath: jwk))
        try station.secretFileText.write(toFile: secret, atomically: true, encoding: .utf8)
        let added = try cluster.hub("stations", "add", station.id, "--name", "Simulated \(station.id)", "--jwk", jwk, "--secret-file", secret)
        guard added.status == 0 else { throw HarnessError("stations add \(station.id): \(added.stderr)") }
    }
}

/// Starts one hub instance on the cluster.
func startHub(_ cluster: PrivateCluster, name: String, port: Int, catalog: (url: String, secretFile: String)? = nil, extra: [String] = []) throws -> Child {
    var arguments = ["serve", "--database", cluster.url, "--listen", "127.0.0.1:\(port)", "--instance", name, "--log-level", "info"]
    if let catalog { arguments += ["--catalog-url", catalog.url, "--catalog-secret-file", catalog.secretFile] }
    let child = try Child(name, Bench.hubBinary, arguments + extra)
    guard HTTP.waitUntilUp("http://127.0.0.1:\(port)/healthz") else {
        let log = child.stderr
        child.stop()
        throw HarnessError("hub \(name) did not come up: \(log)")
    }
    return child
}

/// Ingest: what the hub accepts, and everything it refuses with a 4xx that names the field,
/// storing nothing of it.
@Suite(.serialized, .timeLimit(.minutes(5))) struct HubIngestTests {
    @Test func badInputIsRefusedByNameAndNeverStored() async throws {
        let cluster = try PrivateCluster()
        defer { cluster.stop() }
        let good = SimulatedStation(id: "bench-1"), other = SimulatedStation(id: "bench-2"), stranger = SimulatedStation(id: "bench-x")
        try enrol([good, other], cluster: cluster)
        let port = Bench.freePort()
        let hub = try startHub(cluster, name: "hub-a", port: port)
        defer { hub.stop() }
        let base = "http://127.0.0.1:\(port)"

        // A good record is stored once; the same request again is a duplicate, not a second row.
        let (id, body) = try good.record(item: 1, lot: "LOT-1", supplier: "Acme", verifyBase: base)
        let first = HTTP.post(base, station: good, id: id, body: body)
        #expect(first?.status == 201, "\(first?.text ?? "no answer") \(hub.stderr)")
        #expect((first?.json as? [String: Any])?["recordId"] as? String == id)
        let replay = HTTP.post(base, station: good, id: id, body: body)
        #expect(replay?.status == 200 && (replay?.json as? [String: Any])?["duplicate"] as? Bool == true, "\(replay?.text ?? "")")
        #expect(try cluster.sql("SELECT count(*) FROM record") == "1")

        func refused(_ answer: HTTP.Answer?, _ status: Int, field: String, says: String, _ comment: Comment? = nil) {
            let json = answer?.json as? [String: Any]
            #expect(answer?.status == status, "\(comment?.rawValue ?? "") \(answer?.text ?? "no answer")")
            #expect(json?["field"] as? String == field, "\(comment?.rawValue ?? "") \(answer?.text ?? "")")
            #expect((json?["message"] as? String ?? "").contains(says), "\(comment?.rawValue ?? "") \(answer?.text ?? "")")
        }
        // The same key again with another body (a replay that changed something): a conflict.
        var changed = try JSONSerialization.jsonObject(with: body) as! [String: Any]
        changed["sequence"] = 2
        refused(HTTP.post(base, station: good, id: id, body: try JSONSerialization.data(withJSONObject: changed)), 409, field: "Idempotency-Key", says: "different record")
        // A key that is not the record's.
        let (_, otherBody) = try good.record(item: 2, lot: "LOT-1", supplier: "Acme", verifyBase: base)
        refused(HTTP.post(base, station: good, id: id, body: otherBody), 400, field: "recordId", says: "is not the Idempotency-Key")
        // A wrong HMAC: another station's secret.
        let (id2, body2) = try good.record(item: 3, lot: "LOT-1", supplier: "Acme", verifyBase: base)
        refused(HTTP.post(base, station: good, id: id2, body: body2, secret: Data(other.secretFileText.dropLast().utf8)), 401, field: "X-Lethe-Signature", says: "wrong shared secret")
        // A forged signature: the report re-signed by a key the hub does not know, under the right HMAC.
        let forger = SimulatedStation(id: "bench-1")
        let (id3, forged) = try forger.record(item: 4, lot: "LOT-1", supplier: "Acme", verifyBase: base)
        refused(HTTP.post(base, station: good, id: id3, body: forged), 403, field: "report", says: "not one of station bench-1's registered keys")
        // A readable copy altered after signing (the grade raised), HMAC'd again by a careless proxy.
        var altered = try JSONSerialization.jsonObject(with: body2) as! [String: Any]
        var report = altered["report"] as! [String: Any]
        var readable = report["report"] as! [String: Any]
        readable["grade"] = "A+"
        report["report"] = readable
        altered["report"] = report
        let alteredBody = try JSONSerialization.data(withJSONObject: altered)
        refused(HTTP.post(base, station: good, id: id2, body: alteredBody), 422, field: "report", says: "readable")
        // An unknown station.
        let (id4, body4) = try stranger.record(item: 5, lot: nil, supplier: nil, verifyBase: base)
        refused(HTTP.post(base, station: stranger, id: id4, body: body4), 403, field: "X-Lethe-Station", says: "not enrolled")
        // A station posting another station's record under its own name.
        let (id5, body5) = try other.record(item: 6, lot: nil, supplier: nil, verifyBase: base)
        refused(HTTP.post(base, station: good, id: id5, body: body5, secret: Data(good.secretFileText.dropLast().utf8)), 400, field: "station", says: "X-Lethe-Station header bench-1")
        // Malformed JSON, a missing member, a wrong type.
        refused(HTTP.post(base, station: good, id: "01BAD", body: Data("{\"recordId\": ".utf8)), 400, field: "body", says: "not a catalog record")
        var missing = try JSONSerialization.jsonObject(with: body2) as! [String: Any]
        missing["grade"] = nil
        refused(HTTP.post(base, station: good, id: id2, body: try JSONSerialization.data(withJSONObject: missing)), 400, field: "grade", says: "is required")
        var retyped = try JSONSerialization.jsonObject(with: body2) as! [String: Any]
        retyped["sequence"] = "one"
        refused(HTTP.post(base, station: good, id: id2, body: try JSONSerialization.data(withJSONObject: retyped)), 400, field: "sequence", says: "expected")
        // A NUL in a string (PostgreSQL's text cannot hold it): refused by name, not a 503 the
        // station would retry forever.
        var nul = try JSONSerialization.jsonObject(with: body2) as! [String: Any]
        nul["sku"] = "SKU\u{0}1"
        refused(HTTP.post(base, station: good, id: id2, body: try JSONSerialization.data(withJSONObject: nul)), 400, field: "sku", says: "NUL")
        // Headers missing.
        refused(HTTP.request("POST", "\(base)/v1/records", headers: ["X-Lethe-Station": "bench-1"], body: body2), 400, field: "Idempotency-Key", says: "missing")
        refused(HTTP.request("POST", "\(base)/v1/records", headers: ["Idempotency-Key": id2], body: body2), 400, field: "X-Lethe-Station", says: "missing")
        // An oversized body.
        let huge = Data(repeating: 0x20, count: HubServer.maxBody + 1)
        refused(HTTP.post(base, station: good, id: id2, body: huge), 413, field: "body", says: "at most 16 MiB")
        #expect(try cluster.sql("SELECT count(*) FROM record") == "1", "a refused request left a row")
        #expect(try cluster.sql("SELECT count(*) FROM report") == "2")

        // Revoking the key: the next report it signed is refused by name, and the one stored
        // before the revocation stays valid.
        let revoked = try cluster.hub("stations", "revoke", "bench-1", "--kid", good.key.keyId)
        #expect(revoked.status == 0, "\(revoked.stderr)")
        refused(HTTP.post(base, station: good, id: id2, body: body2), 403, field: "report", says: "revoked at")
        let certificateId = try cluster.sql("SELECT certificate_id FROM record")
        let view = HTTP.request("GET", "\(base)/v1/reports/\(certificateId)")?.json as? [String: Any]
        #expect(view?["keyStatus"] as? String == "revoked" && (view?["flags"] as? [Any])?.isEmpty == true && view?["verdict"] as? String == "certified", "\(String(describing: view))")
        // Revoking the station: nothing it sends is accepted.
        #expect(try cluster.hub("stations", "revoke", "bench-2").status == 0)
        refused(HTTP.post(base, station: other, id: id5, body: body5), 403, field: "X-Lethe-Station", says: "revoked")
        #expect(try cluster.sql("SELECT count(*) FROM record") == "1")
    }

    /// Rotation keeps old reports valid and publishes every key; a stored report altered in
    /// the database shows as a failed signature; the CLI names its mistakes.
    @Test func rotationRevocationAndTamperingShowOnLookup() async throws {
        let cluster = try PrivateCluster()
        defer { cluster.stop() }
        let station = SimulatedStation(id: "bench-9")
        try enrol([station], cluster: cluster)
        let port = Bench.freePort()
        let hub = try startHub(cluster, name: "hub-a", port: port)
        defer { hub.stop() }
        let base = "http://127.0.0.1:\(port)"
        let (id, body) = try station.record(item: 1, lot: "L", supplier: "S", verifyBase: base)
        #expect(HTTP.post(base, station: station, id: id, body: body)?.status == 201)

        // Rotate to a new key (the same station id): the old report still verifies; the new
        // key signs the next one; the JWKS lists both.
        let successor = SimulatedStation(id: "bench-9")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hub-rotate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try JSONEncoder().encode(successor.key.publicJWK).write(to: folder.appendingPathComponent("new.jwk"))
        let rotated = try cluster.hub("stations", "rotate", "bench-9", "--jwk", folder.appendingPathComponent("new.jwk").path)
        #expect(rotated.status == 0 && rotated.stdout.contains(successor.key.keyId), "\(rotated.stdout) \(rotated.stderr)")
        let certificateId = try cluster.sql("SELECT certificate_id FROM record")
        let old = HTTP.request("GET", "\(base)/v1/reports/\(certificateId)")?.json as? [String: Any]
        #expect(old?["keyStatus"] as? String == "retired" && old?["signatureValid"] as? Bool == true && old?["verdict"] as? String == "certified")
        let jwks = HTTP.request("GET", "\(base)/.well-known/jwks.json")?.json as? [String: Any]
        let kids = (jwks?["keys"] as? [[String: Any]])?.compactMap { $0["kid"] as? String } ?? []
        #expect(Set(kids) == [station.key.keyId, successor.key.keyId])
        // The successor signs with the station's HMAC secret (unchanged by this rotation).
        let next = SimulatedStationWithSecret(station: successor, secret: station.fileSecret)
        let (id2, body2) = try successor.record(item: 2, lot: "L", supplier: "S", verifyBase: base)
        #expect(HTTP.request("POST", "\(base)/v1/records", headers: next.headers(id: id2, body: body2), body: body2)?.status == 201)

        // Tampering with the stored document (an insider edits the database): the lookup
        // verifies again and flags it.
        _ = try cluster.sql("UPDATE report SET file = replace(file, '\"certified\":true', '\"certified\":false') WHERE id = '\(certificateId)'")
        let tampered = HTTP.request("GET", "\(base)/v1/reports/\(certificateId)")?.json as? [String: Any]
        #expect(tampered?["signatureValid"] as? Bool == false && (tampered?["verdict"] as? String ?? "").hasPrefix("flagged"), "\(String(describing: tampered))")

        // Unknown ids: a 404 that names the id; a malformed id is simply unknown.
        #expect(HTTP.request("GET", "\(base)/v1/reports/01ZZZZZZZZZZZZZZZZZZZZZZZZ")?.status == 404)
        #expect(HTTP.request("GET", "\(base)/verify/..%2F..%2Fetc%2Fpasswd")?.status == 404)

        // The CLI: clear errors, exit 1.
        let duplicate = try cluster.hub("stations", "add", "bench-9", "--jwk", folder.appendingPathComponent("new.jwk").path, "--secret-file", "/nonexistent")
        #expect(duplicate.status != 0 && duplicate.stderr.contains("/nonexistent"), "\(duplicate.stderr)")
        let noStation = try cluster.hub("stations", "revoke", "nope")
        #expect(noStation.status == 1 && noStation.stderr.contains("no station nope"), "\(noStation.stderr)")
        let badURL = try Bench.run(Bench.hubBinary, ["stations", "list", "--database", "mysql://x"])
        #expect(badURL.status != 0 && badURL.stderr.contains("not a postgres:// URL"), "\(badURL.stderr)")
    }
}

/// schemathesis against the hub's OpenAPI document: whatever arrives, no answer is a server error.
@Suite(.serialized, .timeLimit(.minutes(8))) struct HubContractTests {
    @Test func schemathesisFindsNoServerErrorsInTheHub() async throws {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/schemathesis" }
        guard let schemathesis = path.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            print("skipped: schemathesis is not installed (python3 -m pip install schemathesis)")
            return
        }
        let cluster = try PrivateCluster()
        defer { cluster.stop() }
        let station = SimulatedStation(id: "bench-1")
        try enrol([station], cluster: cluster)
        let port = Bench.freePort()
        let hub = try startHub(cluster, name: "hub-a", port: port)
        defer { hub.stop() }
        let base = "http://127.0.0.1:\(port)"
        let (id, body) = try station.record(item: 1, lot: "LOT-1", supplier: "S", verifyBase: base)
        #expect(HTTP.post(base, station: station, id: id, body: body)?.status == 201)
        let qa = try cluster.hub("tokens", "add", "fuzz", "--role", "admin").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let run = try Bench.run(schemathesis, [
            "run", Bench.repo.appendingPathComponent("hub-api.yaml").path, "-u", base, "-c", "not_a_server_error", "-n", "40", "--seed", "1",
            "-H", "Authorization: Bearer \(qa)",
        ], timeout: 420)
        #expect(run.status == 0, "\(run.stdout.suffix(4000)) \(hub.stderr.suffix(2000))")
        #expect(run.stdout.contains("passed"))
        // Still serving, and nothing the fuzzer sent was stored.
        #expect(HTTP.request("GET", "\(base)/healthz")?.status == 200)
        #expect(try cluster.sql("SELECT count(*) FROM record") == "1")
    }
}

/// A rotated station: its new key with the secret it already had.
struct SimulatedStationWithSecret {
    var station: SimulatedStation
    var secret: SymmetricKey

    func headers(id: String, body: Data) -> [String: String] {
        ["Content-Type": "application/json", "Idempotency-Key": id, "X-Lethe-Station": station.id, "X-Lethe-Signature": CatalogSignature.sign(body, secret: secret)]
    }
}
