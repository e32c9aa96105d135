import ArgumentParser
import Crypto
import Foundation
import Hummingbird
import LetheCore
import LetheHub
import LetheReports
import LetheSync
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

@main
struct LetheHubCommand: AsyncParsableCommand {
    /// The entry point: Swift Concurrency's global executor becomes NIO's event loops before
    /// anything runs, so a request's handler, its PostgreSQL query and its answer stay on the
    /// event loop threads instead of hopping to the cooperative pool and back at every await
    /// (perf: the thread switches were a tenth of the hub's CPU per lookup). Nothing in the hub
    /// blocks a thread: files are small and read once, everything else is NIO.
    static func main() async {
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "lethe-hub",
        abstract: "The fleet hub: every station's records in one registry on PostgreSQL, verification for every buyer.",
        discussion: """
            Stations deliver to the hub with the catalog protocol they already speak (set their catalog URL to the hub's /v1/records); the hub checks each document against the station's registered key, stores it, forwards it to the shop's catalog exactly once, and answers the QR code's /verify/{id} for buyers. Run two or more instances on one database: they share everything through it.

            The database comes from --database or LETHE_HUB_DATABASE.

            Examples:
              lethe-hub migrate --database postgres://lethe@/lethe?host=/run/postgresql
              lethe-hub stations add bench-07 --name "Bench 7, Leeds" --jwk bench07.jwk --secret-file bench07.secret
              lethe-hub tokens add alice --role qa
              lethe-hub serve --database postgres://lethe@db:5432/lethe --listen 0.0.0.0:8800 \\
                  --catalog-url https://shop.example/v1/records --catalog-secret-file shop.secret
              lethe-hub samples draw LOT-2026-12-01
            """,
        version: "0.1.0",
        subcommands: [Serve.self, Migrate.self, Stations.self, Tokens.self, Outbox.self, Samples.self, BenchLoad.self])
}

/// `--database`, shared by every command.
struct DatabaseOption: ParsableArguments {
    @Option(help: ArgumentHelp("The PostgreSQL URL (or LETHE_HUB_DATABASE).", valueName: "postgres://USER@HOST:PORT/DB"))
    var database: String?

    func url() throws -> DatabaseURL {
        guard let text = database ?? ProcessInfo.processInfo.environment["LETHE_HUB_DATABASE"] else {
            throw HubExit.fail("no database: give --database postgres://USER@HOST:PORT/DB or set LETHE_HUB_DATABASE")
        }
        do throws(LetheError) { return try DatabaseURL(text) } catch { throw HubExit.fail(error.description) }
    }

    /// Runs `body` with a small pool, migrated, then closes it.
    func with<T: Sendable>(migrate: Bool = true, _ body: @escaping @Sendable (HubDatabase) async throws -> T) async throws -> T {
        let db = HubDatabase(url: try url(), connections: 2, logger: HubLog.logger("lethe-hub.db", level: .error))
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { await db.run(); return nil }
            defer { group.cancelAll() }
            do {
                if migrate { _ = try await db.migrate() }
                return try await body(db)
            } catch let error as HubExit {
                throw error
            } catch let error as ValidationError {
                throw error
            } catch {
                throw HubExit.fail("\(error)")
            }
        }
    }
}

/// A clean failure: the message on stderr, exit 1 (or the given code).
struct HubExit: Error, CustomStringConvertible {
    var message: String
    var code: Int32 = 1
    var description: String { message }

    static func fail(_ message: String, code: Int32 = 1) -> HubExit { HubExit(message: message, code: code) }
}

extension HubExit {
    /// Prints and exits.
    static func report(_ error: HubExit) -> ExitCode {
        FileHandle.standardError.write(Data("lethe-hub: \(error.message)\n".utf8))
        return ExitCode(error.code)
    }
}

enum HubLog {
    static func logger(_ label: String, level: Logger.Level) -> Logger {
        var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = level
        return logger
    }

    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self)
    }
}

extension HubRole: ExpressibleByArgument {}

/// Runs a command body, turning ``HubExit`` into its message and exit code.
func hubRun(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as HubExit {
        throw HubExit.report(error)
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the hub: ingest, verification, QA, and the forwarder to the shop's catalog.",
        discussion: """
            Migrates the database first (one instance at a time). Without --catalog-url the hub stores and verifies but forwards nothing; the outbox keeps every record until a catalog is configured.

              lethe-hub serve --database postgres://lethe@127.0.0.1:5432/lethe --listen 127.0.0.1:8800

            Examples:
              lethe-hub serve --database postgres://lethe@/lethe?host=/run/postgresql --listen 0.0.0.0:8800
              lethe-hub serve --catalog-url https://shop.example/v1/records --catalog-secret-file shop.secret --instance hub-2
            """)

    @OptionGroup var db: DatabaseOption
    @Option(help: ArgumentHelp("Address to listen on.", valueName: "host:port")) var listen = "127.0.0.1:8800"
    @Option(help: ArgumentHelp("The shop's catalog endpoint records are forwarded to.", valueName: "url")) var catalogURL: String?
    @Option(help: ArgumentHelp("The shared secret for the catalog's HMAC (at least 16 bytes).", valueName: "file")) var catalogSecretFile: String?
    @Option(help: ArgumentHelp("The shop's instructions endpoint (its /v1/instructions): relayed to stations, with the hub's holds added.", valueName: "url")) var catalogLookupURL: String?
    @Option(help: "Database connections this instance may hold.") var connections = 16
    @Option(help: "This instance's name, on the records it stores and the rows it leases (default: host:pid).") var instance: String?
    @Option(help: "Seconds a forwarder leases an outbox row for.") var leaseSeconds = 30.0
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "notice"

    func run() async throws {
        try await hubRun {
            let url = try db.url()
            let address: (host: String, port: Int)
            do throws(LetheError) { address = try LetheError.listenAddress(listen) } catch { throw HubExit.fail(error.description) }
            let level = Logger.Level(rawValue: logLevel) ?? .notice
            let logger = HubLog.logger("lethe-hub", level: level)
            let name = instance ?? "\(ProcessInfo.processInfo.hostName):\(getpid())"
            var settings: DeliverySettings?
            if let catalogURL {
                guard let catalogSecretFile else { throw HubExit.fail("--catalog-url needs --catalog-secret-file") }
                do throws(LetheError) {
                    settings = DeliverySettings(url: catalogURL, secret: try CatalogSignature.loadSecret(path: catalogSecretFile), station: "hub")
                } catch {
                    throw HubExit.fail(error.description)
                }
            }
            let database = HubDatabase(url: url, connections: connections, logger: HubLog.logger("lethe-hub.db", level: .error))
            let metrics = HubMetrics()
            var lookup: CatalogLookup?
            if let catalogLookupURL {
                guard let settings else { throw HubExit.fail("--catalog-lookup-url needs --catalog-url and --catalog-secret-file") }
                lookup = CatalogLookup(url: catalogLookupURL, secret: settings.secret, station: "hub")
            }
            let server = HubServer(database: database, instance: name, metrics: metrics, logger: logger, lookup: lookup)
            let app = Application(
                router: server.router(), configuration: .init(address: .hostname(address.host, port: address.port), serverName: "lethe-hub"),
                onServerRunning: { [listen, name, url] _ in
                    logger.notice("lethe-hub \(name): serving http://\(listen)/ on \(url)")
                }, logger: HubLog.logger("lethe-hub.http", level: .warning))
            var services: [any Service] = [app]
            if let settings {
                services.append(HubForwarderService(forwarder: HubForwarder(
                    database: database, settings: settings, instance: name, leaseSeconds: leaseSeconds, metrics: metrics, logger: logger)))
                logger.notice("forwarding records to \(settings.url)")
            } else {
                logger.notice("no --catalog-url: records are stored and kept in the outbox, not forwarded")
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await database.run() }
                defer { group.cancelAll() }
                do {
                    let applied = try await database.migrate()
                    if !applied.isEmpty { logger.notice("database migrated: \(applied.map(String.init).joined(separator: ", "))") }
                } catch {
                    throw HubExit.fail("\(error)")
                }
                let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
                try await group.run()
            }
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply the database migrations (serve does this too).",
        discussion: """
            Examples:
              lethe-hub migrate --database postgres://lethe@/lethe?host=/run/postgresql
            """)
    @OptionGroup var db: DatabaseOption

    func run() async throws {
        try await hubRun {
            let applied = try await db.with(migrate: false) { try await $0.migrate() }
            print(applied.isEmpty ? "up to date" : "applied: \(applied.map(String.init).joined(separator: ", "))")
        }
    }
}
