import Foundation
import LetheCore
import LetheHub
import LetheReports
import LetheSync
import Synchronization
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Two hub instances on one cluster, 50 stations delivering at once, through a hub killed with
/// -9 mid-ingest, PostgreSQL restarted, a connection pool larger than the server allows, and a
/// shop catalog that answers 503 and resets connections: every record is stored once and
/// forwarded once.
/// What the delivering threads share.
final class DeliveryLedger: @unchecked Sendable {
    private let lock = NSLock()
    private var _refused: [String] = []
    private var _ids: Set<String> = []
    private var _delivered = 0
    private var _retries: [String: Int] = [:]

    func refuse(_ why: String) { lock.withLock { _refused.append(why) } }
    func made(_ id: String) { lock.withLock { _ = _ids.insert(id) } }
    func deliveredOne() { lock.withLock { _delivered += 1 } }
    func retried(_ why: String) { lock.withLock { _retries[why, default: 0] += 1 } }
    var retries: [String: Int] { lock.withLock { _retries } }
    var refused: [String] { lock.withLock { _refused } }
    var ids: Set<String> { lock.withLock { _ids } }
    var delivered: Int { lock.withLock { _delivered } }
}

@Suite(.serialized, .timeLimit(.minutes(8))) struct HubFaultTests {
    /// A station's delivery loop, as the real one behaves: any answer that is not a receipt is
    /// tried again (here on the other instance, as a load balancer would).
    static func deliver(_ id: String, _ body: Data, station: SimulatedStation, bases: [String], session: URLSession, ledger: DeliveryLedger) -> Int {
        var attempt = 0
        while attempt < 400 {
            let base = bases[(attempt + Int.random(in: 0...1)) % bases.count]
            attempt += 1
            var request = URLRequest(url: URL(string: "\(base)/v1/records")!)
            request.httpMethod = "POST"
            request.timeoutInterval = 15
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.setValue(id, forHTTPHeaderField: "Idempotency-Key")
            request.setValue(station.id, forHTTPHeaderField: "X-Lethe-Station")
            request.setValue(CatalogSignature.sign(body, secret: station.fileSecret), forHTTPHeaderField: "X-Lethe-Signature")
            request.httpBody = body
            let done = DispatchSemaphore(value: 0)
            let answer = Mutex<(Int, Data)?>(nil)
            session.dataTask(with: request) { data, response, _ in
                if let response = response as? HTTPURLResponse { answer.withLock { $0 = (response.statusCode, data ?? Data()) } }
                done.signal()
            }.resume()
            done.wait()
            guard let (status, data) = answer.withLock({ $0 }) else {
                ledger.retried("no answer")
                usleep(200_000)
                continue
            }
            let receipt = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["recordId"] as? String == id
            if (200..<300).contains(status), receipt { return attempt }
            if status >= 500 || status == 409 {
                ledger.retried("HTTP \(status)")
                usleep(100_000)
                continue
            }
            ledger.refuse("\(id): HTTP \(status) \(String(decoding: data, as: UTF8.self))")
            return attempt
        }
        ledger.refuse("\(id): never delivered")
        return attempt
    }

    @Test func twoHubsFiftyStationsThroughFaultsStoreAndForwardEachRecordOnce() async throws {
        // Hub B's pool of 2 connections is exhausted by its own requests, which wait for it (or
        // get a 503 after 10 s). A server limit below the pools' sizes starved the forwarders
        // for minutes when the whole suite ran at once; the pool fault is the hub's own here.
        let cluster = try PrivateCluster(maxConnections: 60)
        defer { cluster.stop() }
        let stations = (1...50).map { SimulatedStation(id: "bench-\($0)") }
        try enrol(stations, cluster: cluster)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hub-faults-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }

        // The shop's catalog: the reference receiver, trusting every station's key, failing
        // the first 40 posts with 503 and resetting the next 20 after storing them.
        let secretFile = folder.appendingPathComponent("shop.secret").path
        try "shop-secret-0123456789abcdef\n".write(toFile: secretFile, atomically: true, encoding: .utf8)
        var trust: [String] = []
        for station in stations {
            let path = folder.appendingPathComponent("\(station.id).jwk").path
            try JSONEncoder().encode(station.key.publicJWK).write(to: URL(fileURLWithPath: path))
            trust += ["--trust", path]
        }
        let catalogPort = Bench.freePort()
        let catalog = try Child("catalog", Bench.letheBinary, [
            "catalog", "serve", "--listen", "127.0.0.1:\(catalogPort)", "--db", folder.appendingPathComponent("shop.sqlite").path,
            "--secret-file", secretFile, "--fail-first", "40", "--reset-first", "20",
        ] + trust)
        defer { catalog.stop() }
        #expect(HTTP.waitUntilUp("http://127.0.0.1:\(catalogPort)/healthz"), "\(catalog.stderr)")
        let shop = (url: "http://127.0.0.1:\(catalogPort)/v1/records", secretFile: secretFile)

        let ports = [Bench.freePort(), Bench.freePort()]
        let extra = ["--connections", "24", "--lease-seconds", "3"]
        var hubA = try startHub(cluster, name: "hub-a", port: ports[0], catalog: shop, extra: extra)
        let hubB = try startHub(cluster, name: "hub-b", port: ports[1], catalog: shop, extra: ["--connections", "2", "--lease-seconds", "3"])
        defer {
            hubA.stop()
            hubB.stop()
        }
        let bases = ports.map { "http://127.0.0.1:\($0)" }

        // 50 stations at once, 6 records each, on their own threads.
        let perStation = 6
        let ledger = DeliveryLedger()
        let group = DispatchGroup()
        for station in stations {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                let configuration = URLSessionConfiguration.ephemeral
                configuration.httpMaximumConnectionsPerHost = 2
                let session = URLSession(configuration: configuration)
                for item in 0..<perStation {
                    guard let (id, body) = try? station.record(item: item, lot: "LOT-\(item % 3)", supplier: "supplier-\(item % 2)", verifyBase: bases[0]) else {
                        ledger.refuse("\(station.id): could not make a record")
                        continue
                    }
                    ledger.made(id)
                    _ = Self.deliver(id, body, station: station, bases: bases, session: session, ledger: ledger)
                    ledger.deliveredOne()
                }
            }
        }
        let total = stations.count * perStation
        // The faults, at a third and at two thirds of the deliveries.
        #expect(eventually(120) { ledger.delivered >= total / 3 }, "stuck at \(ledger.delivered)")
        hubA.kill9()
        usleep(500_000)
        hubA = try startHub(cluster, name: "hub-a2", port: ports[0], catalog: shop, extra: extra)
        #expect(eventually(120) { ledger.delivered >= 2 * total / 3 }, "stuck at \(ledger.delivered)")
        try cluster.restart()
        let finished = group.wait(timeout: .now() + 240)
        #expect(finished == .success, "stations still delivering after 240 s: \(ledger.delivered) of \(total)")
        #expect(ledger.refused.isEmpty, "\(ledger.refused.prefix(5))")

        // Stored once each: exactly the records the stations made.
        let expected = ledger.ids
        #expect(expected.count == total)
        #expect(try cluster.sql("SELECT count(*) FROM record") == String(total))
        let stored = Set(try cluster.sql("SELECT id FROM record").split(separator: "\n").map(String.init))
        #expect(stored == expected)
        // Forwarded once each: the outbox drains, nothing dead, and the shop holds every record once.
        let drained = eventually(180) { (try? cluster.sql("SELECT count(*) FROM outbox WHERE state = 'delivered'")) == String(total) }
        #expect(drained, "outbox: \((try? cluster.sql("SELECT state || ' ' || count(*) FROM outbox GROUP BY state")) ?? "?") hubs: \(hubA.stderr.suffix(1500)) \(hubB.stderr.suffix(1500))")
        #expect(try cluster.sql("SELECT count(*) FROM outbox WHERE state = 'dead'") == "0")
        let shopRecords = HTTP.request("GET", "http://127.0.0.1:\(catalogPort)/v1/records")?.json as? [[String: Any]] ?? []
        let shopIds = shopRecords.compactMap { $0["id"] as? String }
        #expect(shopIds.count == total && Set(shopIds) == expected, "the shop holds \(shopIds.count) records, \(Set(shopIds).count) distinct")
        // Both instances took part in forwarding, and the faults happened.
        let forwarders = try cluster.sql("SELECT DISTINCT leased_by FROM outbox ORDER BY 1").split(separator: "\n")
        #expect(forwarders.count >= 2, "\(forwarders)")
        let attempts = Int(try cluster.sql("SELECT sum(attempts) FROM outbox")) ?? 0
        #expect(attempts > total, "the catalog's 503s and resets should have cost retries (\(attempts) attempts)")
        // The faults happened: the stations saw a dead instance (no answer); the server restarted
        // and refused connections beyond its limit.
        let retries = ledger.retries
        #expect(retries["no answer", default: 0] > 0, "\(retries)")
        let serverLog = (try? String(contentsOfFile: "\(cluster.directory)/server.log", encoding: .utf8)) ?? ""
        #expect(serverLog.contains("received fast shutdown request"), "PostgreSQL was not restarted")
        print("hub faults: \(total) records; station retries \(retries); forward attempts \(attempts)")
    }
}
