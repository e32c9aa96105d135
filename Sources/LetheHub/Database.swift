import Crypto
import Foundation
import LetheCore
import Logging
import PostgresNIO

/// Where the hub's database is: a `postgres://` (or `postgresql://`) URL as libpq reads it.
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require]`; a Unix
/// socket is a `host` query parameter naming its directory (`?host=/run/postgresql`), or an
/// empty host with that parameter.
public struct DatabaseURL: Sendable, Equatable, CustomStringConvertible {
    public var user: String
    public var password: String?
    /// A TCP host, or nil for a Unix socket.
    public var host: String?
    public var port: Int
    /// The directory holding `.s.PGSQL.PORT`, for a Unix socket.
    public var socketDirectory: String?
    public var database: String
    public var sslMode: String

    /// Reads a URL; an error names what is wrong with it.
    public init(_ text: String) throws(LetheError) {
        func bad(_ why: String) -> LetheError {
            LetheError(.invalidArgument, "--database: \(why) (expected postgres://USER@HOST:PORT/DATABASE or postgres://USER@/DATABASE?host=/socket/dir)")
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme, ["postgres", "postgresql"].contains(scheme) else {
            throw bad("not a postgres:// URL")
        }
        guard let user = components.user, !user.isEmpty else { throw bad("no user name") }
        self.user = user
        password = components.password
        port = components.port ?? 5432
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !path.isEmpty, !path.contains("/") else { throw bad("no database name after the host") }
        database = path
        let query = components.queryItems ?? []
        sslMode = query.first { $0.name == "sslmode" }?.value ?? "prefer"
        guard ["disable", "prefer", "require"].contains(sslMode) else { throw bad("sslmode \(sslMode) is not disable, prefer or require") }
        let hostParameter = query.first { $0.name == "host" }?.value
        let hostPart = components.host.flatMap { $0.removingPercentEncoding ?? $0 } ?? ""
        if let directory = hostParameter ?? (hostPart.hasPrefix("/") ? hostPart : nil) {
            guard directory.hasPrefix("/") else { throw bad("host=\(directory) is not a socket directory") }
            socketDirectory = directory
            host = nil
        } else {
            guard !hostPart.isEmpty else { throw bad("no host") }
            host = hostPart
            socketDirectory = nil
        }
    }

    /// The URL without its password.
    public var description: String {
        let location = host.map { "\($0):\(port)" } ?? "?host=\(socketDirectory ?? "")"
        return host != nil ? "postgres://\(user)@\(location)/\(database)" : "postgres://\(user)@/\(database)\(location)&port=\(port)"
    }

    /// The client configuration, with a pool of at most `connections`.
    func configuration(connections: Int) -> PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let host {
            let tls: PostgresClient.Configuration.TLS = switch sslMode {
            case "disable": .disable
            case "require": .require(.makeClientConfiguration())
            default: .prefer(.makeClientConfiguration())
            }
            configuration = .init(host: host, port: port, username: user, password: password, database: database, tls: tls)
        } else {
            configuration = .init(
                unixSocketPath: "\(socketDirectory ?? "/run/postgresql")/.s.PGSQL.\(port)", username: user, password: password, database: database)
        }
        configuration.options.maximumConnections = max(1, connections)
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }
}

/// One numbered migration: statements run in one transaction. Once shipped, a migration is
/// never edited: the hub records each one's SHA-256 and refuses to start when a shipped one
/// changed.
public struct Migration: Sendable {
    public var number: Int
    public var name: String
    public var statements: [String]

    /// The checksum recorded when it was applied.
    public var sha256: String { Hex.sha256(Data(statements.joined(separator: ";\n").utf8)) }
}

/// The hub's database: a PostgresNIO client pool, migrations, and errors in plain words.
public final class HubDatabase: Sendable {
    /// The pool. Run it (``run()``) for as long as the database is used.
    public let client: PostgresClient
    public let url: DatabaseURL
    let logger: Logger
    /// Seconds a query may wait for a connection and run before it is given up.
    public let timeout: Double
    let sweeper = DeadlineSweeper()

    /// A pool of at most `connections` connections to `url`.
    public init(url: DatabaseURL, connections: Int = 16, timeout: Double = 10, logger: Logger = Logger(label: "lethe-hub.db")) {
        self.url = url
        self.logger = logger
        self.timeout = timeout
        client = PostgresClient(configuration: url.configuration(connections: connections), backgroundLogger: logger)
    }

    /// Runs the pool (and the deadlines' sweeper) until cancelled.
    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.client.run() }
            group.addTask { await self.sweeper.run() }
        }
    }

    /// `body` with a deadline: a pool that has no free connection (or a database that does not
    /// answer) within ``timeout`` is an error, never a hang. PostgreSQL's errors become
    /// ``HubDatabaseError``s; others pass through.
    public func withDeadline<T: Sendable>(_ what: String, seconds: Double? = nil, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let seconds = seconds ?? timeout
        // The body runs in its own task and the caller is answered by whichever comes first,
        // the body or the deadline. A task group would wait for a body that ignores
        // cancellation (a lease from a pool whose server restarted did): the request, and the
        // forwarder, hung for good.
        let outcome = DeadlineOutcome<T>()
        let sweeper = sweeper
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                    outcome.arm(continuation)
                    let work = Task { () -> Void in
                        do { outcome.finish(.success(try await body())) } catch { outcome.finish(.failure(error)) }
                    }
                    // One sweeper for every query's deadline, not a sleeping task and a timer
                    // per query (perf: timer upkeep and wake-ups on every lookup).
                    let ticket = sweeper.add(after: seconds) {
                        if outcome.finish(.failure(HubDatabaseError(what: what, message: "no answer within \(Int(seconds)) s (pool exhausted or database down)", sqlState: nil))) {
                            work.cancel()
                        }
                    }
                    outcome.onFinish = { sweeper.remove(ticket) }
                    outcome.onCancel = { work.cancel() }
                }
            } onCancel: {
                outcome.cancel()
            }
        } catch let error as PSQLError {
            throw HubDatabaseError(what: what, error: error)
        }
    }

    /// Runs `body` in one transaction, with the deadline.
    public func transaction<T: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let client = client
        let logger = logger
        return try await withDeadline(what) {
            do {
                return try await client.withTransaction(logger: logger) { try await body($0) }
            } catch let error as PostgresTransactionError {
                // The closure's own error (a refusal, say) comes out as itself; the database's as words.
                if let closure = error.closureError, !(closure is PSQLError) { throw closure }
                throw HubDatabaseError(what: what, error: error.closureError ?? error.beginError ?? error.commitError ?? error)
            }
        }
    }

    /// Rows of one query, decoded, with the deadline.
    public func rows<each Column: PostgresDecodable & Sendable>(
        _ what: String, _ query: PostgresQuery, as: (repeat each Column).Type
    ) async throws -> [(repeat each Column)] {
        let client = client
        return try await withDeadline(what) {
            var rows: [(repeat each Column)] = []
            for try await row in try await client.query(query).decode((repeat each Column).self) { rows.append(row) }
            return rows
        }
    }

    /// Rows of a prepared statement (parsed and planned once per connection), with the deadline.
    public func rows<Statement: PostgresPreparedStatement>(_ what: String, prepared statement: Statement) async throws -> [Statement.Row]
    where Statement.Row: Sendable {
        let client = client
        return try await withDeadline(what) {
            var rows: [Statement.Row] = []
            for try await row in try await client.execute(statement) { rows.append(row) }
            return rows
        }
    }

    /// Runs a statement, with the deadline.
    public func execute(_ what: String, _ query: PostgresQuery) async throws {
        let client = client
        _ = try await withDeadline(what) { try await client.query(query) }
    }

    /// Applies the migrations not yet applied, one instance at a time (an advisory lock), and
    /// checks that the applied ones are unchanged.
    public func migrate(_ migrations: [Migration] = HubSchema.migrations) async throws -> [Int] {
        let logger = logger
        // Longer than a request's deadline: another instance may hold the lock while it migrates.
        return try await withDeadline("migrate", seconds: max(timeout, 120)) {
            try await self.client.withConnection { connection in
                try await connection.query("SELECT pg_advisory_lock(\(HubSchema.migrationLock))", logger: logger)
                do {
                    let applied = try await Self.apply(migrations, on: connection, logger: logger)
                    try await connection.query("SELECT pg_advisory_unlock(\(HubSchema.migrationLock))", logger: logger)
                    return applied
                } catch {
                    _ = try? await connection.query("SELECT pg_advisory_unlock(\(HubSchema.migrationLock))", logger: logger)
                    throw error
                }
            }
        }
    }

    static func apply(_ migrations: [Migration], on connection: PostgresConnection, logger: Logger) async throws -> [Int] {
        try await connection.query(
            "CREATE TABLE IF NOT EXISTS hub_migration (number int PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
            logger: logger)
        var done: [Int: String] = [:]
        for try await (number, sha) in try await connection.query("SELECT number, sha256 FROM hub_migration", logger: logger).decode((Int, String).self) {
            done[number] = sha
        }
        var applied: [Int] = []
        for migration in migrations.sorted(by: { $0.number < $1.number }) {
            if let sha = done[migration.number] {
                guard sha == migration.sha256 else {
                    throw HubDatabaseError(
                        what: "migrate", message: "migration \(migration.number) (\(migration.name)) differs from the one this database applied: shipped migrations are never edited; add a new one",
                        sqlState: nil)
                }
                continue
            }
            try await connection.withTransaction(logger: logger) { tx in
                for statement in migration.statements { try await tx.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                try await tx.query(
                    "INSERT INTO hub_migration (number, name, sha256) VALUES (\(migration.number), \(migration.name), \(migration.sha256))", logger: logger)
            }
            applied.append(migration.number)
        }
        if let newest = done.keys.max(), newest > (migrations.map(\.number).max() ?? 0) {
            throw HubDatabaseError(what: "migrate", message: "the database has migration \(newest), newer than this hub knows: run the newer hub", sqlState: nil)
        }
        return applied
    }
}

/// A database failure, in words: what the hub was doing, and the server's message and SQLSTATE.
public struct HubDatabaseError: Error, Sendable, CustomStringConvertible {
    public var what: String
    public var message: String
    /// The SQLSTATE (`23505` unique violation, `57P01` admin shutdown, ...), when the server sent one.
    public var sqlState: String?

    public init(what: String, message: String, sqlState: String?) {
        self.what = what
        self.message = message
        self.sqlState = sqlState
    }

    /// From any error, reading PostgresNIO's server fields.
    public init(what: String, error: any Error) {
        self.what = what
        if let error = error as? PSQLError {
            sqlState = error.serverInfo?[.sqlState]
            if let server = error.serverInfo?[.message] {
                message = server
            } else {
                message = "\(error.code)" + (error.underlying.map { ": \($0)" } ?? "")
            }
        } else if let error = error as? HubDatabaseError {
            self = error
            return
        } else {
            message = "\(error)"
            sqlState = nil
        }
    }

    public var description: String { "database (\(what)): \(message)" + (sqlState.map { " [SQLSTATE \($0)]" } ?? "") }
}

/// Lowercase hex.
enum Hex {
    static func encode(_ data: some Sequence<UInt8>) -> String {
        // A table, not String(format:) per byte (which went through NSString on every ingest).
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in data {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let digits = Array("0123456789abcdef".utf8)
    static func sha256(_ data: Data) -> String { encode(SHA256.hash(data: data)) }
}

/// A prepared statement whose one parameter, `$1`, is the text id of what it reads (a
/// report, a station).
protocol HubByIdStatement: PostgresPreparedStatement {
    var id: String { get }
}

extension HubByIdStatement {
    static var bindingDataTypes: [PostgresDataType] { [.text] }

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(id)
        return bindings
    }
}

extension PostgresConnection {
    /// A statement in a transaction (the async query, without a logger of its own).
    @discardableResult
    func run(_ query: PostgresQuery) async throws -> PostgresRowSequence {
        try await self.query(query, logger: HubDatabase.quiet)
    }
}

extension HubDatabase {
    /// A logger that logs nothing (queries log at debug in PostgresNIO).
    static let quiet = Logger(label: "lethe-hub.query") { _ in SwiftLogNoOpLogHandler() }
}

extension PostgresConnection {
    /// Every row of a query, decoded.
    func rows<each Column: PostgresDecodable>(_ query: PostgresQuery, as: (repeat each Column).Type) async throws -> [(repeat each Column)] {
        var rows: [(repeat each Column)] = []
        for try await row in try await run(query).decode((repeat each Column).self) { rows.append(row) }
        return rows
    }
}
