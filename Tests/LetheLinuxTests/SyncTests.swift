import Foundation
import LetheCore
import LetheReports
import LetheStore
import LetheSync
import Testing

/// Catalog sync against the real reference receiver (`lethe catalog serve`) over real HTTP on
/// 127.0.0.1, delivered by the real daemon, with faults: 503s with Retry-After, connections reset
/// after the record was stored, slow answers that time out, the receiver killed and restarted, the daemon killed with -9 mid-delivery. Every
/// record arrives exactly once, none is lost, each device's records arrive in order.
@Suite(.serialized) struct SyncTests {
    static let secret = "sync-test-secret-0123456789abcdef"

    /// A state directory with `count` records for `devices` devices in its outbox (the sample
    /// reports, signed with the TEST key the receiver is told to trust), and the shared secret.
    static func station(records count: Int, devices: Int) throws -> (state: String, ids: [String]) {
        let state = NSTemporaryDirectory() + "lethe-sync-\(UUID().uuidString)"
        let ids = try CatalogSamples.fill(stateDirectory: state, records: count, devices: devices)
        try Self.secret.write(toFile: "\(state)/secret", atomically: true, encoding: .utf8)
        return (state, ids)
    }

    static func receiver(_ state: String, port: Int, db: String, _ extra: [String] = []) throws -> LineWatcher {
        let watcher = try LineWatcher(Host.lethe, [
            "catalog", "serve", "--listen", "127.0.0.1:\(port)", "--db", db, "--secret-file", "\(state)/secret", "--trust", "\(state)/test-key.jwk",
        ] + extra)
        #expect(DaemonTests.poll(20) { DaemonTests.http("GET", "http://127.0.0.1:\(port)/healthz")?.status == 200 ? true : nil } == true, "receiver: \(watcher.stderr)")
        return watcher
    }

    static func received(port: Int) -> [[String: Any]] {
        (DaemonTests.http("GET", "http://127.0.0.1:\(port)/v1/records")?.json as? [[String: Any]]) ?? []
    }

    @Test func everyRecordArrivesExactlyOnceInOrderThroughFaults() throws {
        guard Host.canLoop else {
            print("skipped: needs root (the daemon's device watcher)")
            return
        }
        let (state, ids) = try Self.station(records: 40, devices: 5)
        defer { try? FileManager.default.removeItem(atPath: state) }
        let port = 21000 + Int(getpid() % 9000), daemonPort = port + 1
        let db = "\(state)/catalog.sqlite"
        // The receiver meets the posts with its faults in turn: 503 (Retry-After: 1) to the first
        // 6; the next 4 are stored but their connections reset (RST) before the answer; the next
        // 10 answer after 2 s, longer than the 1 s the daemon waits.
        var receiver = try Self.receiver(state, port: port, db: db, [
            "--fail-first", "6", "--retry-after", "1", "--reset-first", "4", "--delay-first", "10", "--delay-seconds", "2",
        ])
        let daemonArguments = [
            "daemon", "--state-dir", state, "--profiles", "\(state)/no-profiles", "--listen", "127.0.0.1:\(daemonPort)",
            "--catalog-url", "http://127.0.0.1:\(port)/v1/records", "--catalog-secret-file", "\(state)/secret",
            "--catalog-max-attempts", "50", "--catalog-retry-seconds", "0.05", "--catalog-timeout-seconds", "1",
        ]
        try FileManager.default.createDirectory(atPath: "\(state)/no-profiles", withIntermediateDirectories: true)
        try? "name: none\nmatch: {transport: adb}\nerase: {method: zero}\n".write(toFile: "\(state)/no-profiles/none.yaml", atomically: true, encoding: .utf8)
        _ = try Host.run(Host.lethe, ["keys", "init", "--state-dir", state])
        var daemon = try LineWatcher(Host.lethe, daemonArguments)
        defer { daemon.stop() }
        // Some arrive; then the receiver is killed and restarted, with fresh faults.
        #expect(DaemonTests.poll(60) { Self.received(port: port).count >= 5 ? true : nil } == true, "\(daemon.stderr)")
        kill(receiver.process.processIdentifier, SIGKILL)
        receiver.process.waitUntilExit()
        usleep(1_500_000)
        receiver = try Self.receiver(state, port: port, db: db, ["--fail-first", "3", "--garbage-first", "2"])
        // Then the daemon is killed with -9 mid-delivery and restarted.
        #expect(DaemonTests.poll(60) { Self.received(port: port).count >= 15 ? true : nil } == true, "\(daemon.stderr)")
        let firstLog = daemon.stderr
        #expect(firstLog.contains("HTTP 503: injected fault"), "the 503s were met: \(firstLog)")
        #expect(firstLog.contains("connection reset by the peer"), "the resets were met: \(firstLog)")
        #expect(firstLog.contains("timed out"), "the slow answers timed out: \(firstLog)")
        #expect(firstLog.contains("no answer from"), "the receiver's restart was met: \(firstLog)")
        kill(daemon.process.processIdentifier, SIGKILL)
        daemon.process.waitUntilExit()
        daemon = try LineWatcher(Host.lethe, daemonArguments)
        let all = DaemonTests.poll(90) { () -> [[String: Any]]? in
            let got = Self.received(port: port)
            return got.count >= ids.count ? got : nil
        }
        let got = try #require(all, "only \(Self.received(port: port).count) of \(ids.count) arrived: \(daemon.stderr)")
        // Exactly once: every id, no other, none twice.
        let gotIds = got.compactMap { $0["id"] as? String }
        #expect(gotIds.count == ids.count && Set(gotIds) == Set(ids))
        // In order per device: the sequences of each device arrive rising.
        var lastSequence: [String: Int] = [:]
        let byId = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, $0 % 5) })
        for record in got {
            let device = byId[record["id"] as? String ?? ""] ?? -1
            let sequence = record["sequence"] as? Int ?? 0
            #expect(sequence > lastSequence["\(device)", default: 0], "device \(device): \(sequence) after \(lastSequence["\(device)", default: 0])")
            lastSequence["\(device)"] = sequence
        }
        // The outbox agrees, and the faults were met and survived.
        let status = try Host.run(Host.lethe, ["sync", "status", "--json", "--state-dir", state])
        let summary = (try? JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["summary"] as? [String: Any]
        #expect(summary?["delivered"] as? Int == ids.count && summary?["pending"] as? Int == 0 && summary?["dead"] as? Int == 0, "\(status.stdout)")
        // The answers that were no receipt (200 with an HTML page) were tried again, not taken as delivered.
        #expect(daemon.stderr.contains("malformed answer") || firstLog.contains("malformed answer"), "\(daemon.stderr)")
        kill(daemon.process.processIdentifier, SIGTERM)
        daemon.process.waitUntilExit()
        #expect(try Host.lethe("audit", "verify", "--state-dir", state).status == 0)
        receiver.stop()
    }

    @Test func rejectionsWrongSecretsAndUnreachableHostsBecomeDeadLettersWithTheReason() throws {
        let (state, ids) = try Self.station(records: 3, devices: 1)
        defer { try? FileManager.default.removeItem(atPath: state) }
        let port = 21000 + Int((getpid() + 4000) % 9000)
        // Wrong secret: 401, dead at once, the message says so.
        try "another-secret-entirely-0123456789".write(toFile: "\(state)/wrong", atomically: true, encoding: .utf8)
        let receiver = try Self.receiver(state, port: port, db: "\(state)/catalog.sqlite")
        defer { receiver.stop() }
        let wrong = try Host.run(Host.lethe, ["sync", "--once", "--url", "http://127.0.0.1:\(port)/v1/records", "--secret-file", "\(state)/wrong", "--state-dir", state])
        #expect(wrong.status == 1)
        let dead = try Host.run(Host.lethe, ["sync", "status", "--state-dir", state]).stdout
        #expect(dead.contains("pending 2, delivered 0, dead 1"), "the later records of the device wait behind the dead letter: \(dead)")
        #expect(dead.contains("HTTP 401") && dead.contains("secret"), "\(dead)")
        #expect(Self.received(port: port).isEmpty)

        // Unreachable: tries are counted, the error named, dead after --max-attempts.
        #expect(try Host.lethe("sync", "retry", "--dead", "--state-dir", state).status == 0)
        let closed = port + 2
        for _ in 0..<2 {
            _ = try Host.run(Host.lethe, ["sync", "--once", "--url", "http://127.0.0.1:\(closed)/v1/records", "--secret-file", "\(state)/secret", "--max-attempts", "1", "--state-dir", state])
        }
        let unreachable = try Host.run(Host.lethe, ["sync", "status", "--state-dir", state]).stdout
        #expect(unreachable.contains("gave up after 1 tries: no answer from http://127.0.0.1:\(closed)"), "\(unreachable)")

        // Retried with the right secret and a live receiver: all three arrive, in order.
        #expect(try Host.run(Host.lethe, ["sync", "retry", ids[0], "--state-dir", state]).stdout.contains("requeued 1"))
        let good = try Host.run(Host.lethe, ["sync", "--once", "--url", "http://127.0.0.1:\(port)/v1/records", "--secret-file", "\(state)/secret", "--state-dir", state])
        #expect(good.status == 0, "\(good.stdout) \(good.stderr)")
        #expect(Self.received(port: port).compactMap { $0["id"] as? String } == ids)
        // Posting the same record again is answered as a duplicate, not stored twice.
        #expect(try Host.lethe("sync", "status", "--state-dir", state).stdout.contains("pending 0, delivered 3, dead 0"))
    }
}
