import ArgumentParser
import AsyncHTTPClient
import Crypto
import Foundation
import LetheCore
import LetheReports
import LetheSync
import NIOCore

/// `lethe-hub bench`: the load for Benchmarks/hub.sh (hidden). `make` writes simulated stations
/// and their signed records to a folder; `post` delivers every record once, as stations do,
/// and prints the rate; `ids` prints the report ids for lookups.
struct BenchLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Load for the hub's benchmark (Benchmarks/hub.sh).",
        discussion: """
            Examples:
              lethe-hub bench make --stations 4 --records 2000 /tmp/hub-load
              lethe-hub bench post --url http://127.0.0.1:8800/v1/records --secret-file /tmp/hub-load/secret /tmp/hub-load
            """, shouldDisplay: false,
        subcommands: [Make.self, Post.self])

    struct Make: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write STATIONS simulated stations and RECORDS signed records to DIR.",
            discussion: """
                Examples:
                  lethe-hub bench make --stations 4 --records 2000 /tmp/hub-load
                """)
        @Option var stations = 20
        @Option var records = 2000
        @Option(help: "The verify base on the records.") var verifyBase = "http://127.0.0.1:8800"
        @Argument var directory: String

        func run() async throws {
            let fm = FileManager.default
            try fm.createDirectory(atPath: "\(directory)/stations", withIntermediateDirectories: true)
            try fm.createDirectory(atPath: "\(directory)/records", withIntermediateDirectories: true)
            let made = (1...stations).map { SimulatedStation(id: "bench-\($0)") }
            for station in made {
                try JSONEncoder().encode(station.key.publicJWK).write(to: URL(fileURLWithPath: "\(directory)/stations/\(station.id).jwk"))
                try station.secretFileText.write(toFile: "\(directory)/stations/\(station.id).secret", atomically: true, encoding: .utf8)
            }
            var index = ""
            var reports = ""
            for n in 0..<records {
                let station = made[n % made.count]
                let (id, body) = try station.record(item: n, lot: "LOT-\(n % 10)", supplier: "supplier-\(n % 4)", verifyBase: verifyBase)
                try body.write(to: URL(fileURLWithPath: "\(directory)/records/\(id).json"))
                index += "\(station.id) \(id)\n"
                if let value = try? JSONValue.parse(body), let certificate = value["certificate"]?["id"]?.stringValue { reports += "\(certificate)\n" }
            }
            try index.write(toFile: "\(directory)/index.txt", atomically: true, encoding: .utf8)
            try reports.write(toFile: "\(directory)/report-ids.txt", atomically: true, encoding: .utf8)
            print("\(records) records from \(stations) stations in \(directory)")
        }
    }

    struct Post: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Post every record in DIR once; print records per second as JSON.",
            discussion: """
                Examples:
                  lethe-hub bench post --url http://127.0.0.1:8800/v1/records --secret-file /tmp/hub-load/secret --concurrency 16 /tmp/hub-load
                """)
        @Option(help: "Receivers' /v1/records URLs, taken in turn (two hub instances, say).") var url: [String]
        @Option(help: "One shared secret for every record (the reference receiver); else each station's own.") var secretFile: String?
        @Option var concurrency = 32
        @Argument var directory: String

        func run() async throws {
            let index = try String(contentsOfFile: "\(directory)/index.txt", encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            var secrets: [String: SymmetricKey] = [:]
            let shared = try secretFile.map { path throws -> SymmetricKey in
                do throws(LetheError) { return try CatalogSignature.loadSecret(path: path) } catch { throw HubExit.fail(error.description) }
            }
            for entry in index where secrets[entry[0]] == nil {
                secrets[entry[0]] = try shared ?? CatalogSignature.loadSecret(path: "\(directory)/stations/\(entry[0]).secret")
            }
            let bodies = try index.map { try Data(contentsOf: URL(fileURLWithPath: "\(directory)/records/\($0[1]).json")) }
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            let urls = url
            let start = ContinuousClock.now
            let failures = await withTaskGroup(of: Int.self) { group in
                var next = 0
                var failures = 0
                func add() {
                    guard next < index.count else { return }
                    let n = next
                    next += 1
                    let station = index[n][0], id = index[n][1], body = bodies[n], secret = secrets[station]!
                    group.addTask {
                        for attempt in 0..<20 {
                            var request = HTTPClientRequest(url: urls[(n + attempt) % urls.count])
                            request.method = .POST
                            request.headers.add(name: "Content-Type", value: "application/json")
                            request.headers.add(name: "Idempotency-Key", value: id)
                            request.headers.add(name: "X-Lethe-Station", value: station)
                            request.headers.add(name: CatalogSignature.header, value: CatalogSignature.sign(body, secret: secret))
                            request.body = .bytes(ByteBuffer(bytes: body))
                            if let response = try? await client.execute(request, timeout: .seconds(30)) {
                                _ = try? await response.body.collect(upTo: 1 << 20)
                                if response.status.code < 300 { return 0 }
                                if response.status.code < 500 { return 1 }
                            }
                        }
                        return 1
                    }
                }
                for _ in 0..<concurrency { add() }
                for await failed in group {
                    failures += failed
                    add()
                }
                return failures
            }
            let seconds = Double((ContinuousClock.now - start) / .milliseconds(1)) / 1000
            try? await client.shutdown()
            print(#"{"records": \#(index.count), "failures": \#(failures), "seconds": \#(seconds), "perSecond": \#(Double(index.count) / seconds)}"#)
            if failures > 0 { throw ExitCode(1) }
        }
    }
}
