import ArgumentParser
import Crypto
import Foundation
import LetheCore
import LetheHub
import LetheReports
import LetheSync

struct Stations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Enrol stations, list them, rotate and revoke their keys.",
        discussion: """
            A station's public key is its `lethe keys export`; its secret is the file its catalog settings use for the HMAC.

              lethe-hub stations add bench-07 --name "Bench 7" --jwk bench07.jwk --secret-file bench07.secret
              lethe-hub stations rotate bench-07 --jwk bench07-new.jwk      old reports stay valid
              lethe-hub stations revoke bench-07 --kid KID                  flags what it signs from now on

            Examples:
              lethe-hub stations add bench-07 --jwk bench07.jwk --secret-file bench07.secret
              lethe-hub stations list --json
              lethe-hub stations revoke bench-07
            """,
        subcommands: [Add.self, List.self, Rotate.self, Revoke.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enrol a station with its public key and HMAC secret.",
            discussion: """
                Examples:
                  lethe-hub stations add bench-07 --name "Bench 7, Leeds" --jwk bench07.jwk --secret-file bench07.secret
                """)
        @OptionGroup var db: DatabaseOption
        @Argument(help: "The station's id, as its station config names it.") var id: String
        @Option(help: "A readable name (default: the id).") var name: String?
        @Option(help: ArgumentHelp("The station's public JWK (`lethe keys export`).", valueName: "file")) var jwk: String
        @Option(help: ArgumentHelp("The station's catalog HMAC secret.", valueName: "file")) var secretFile: String

        func run() async throws {
            try await hubRun {
                let (key, secret) = try Self.read(jwk: jwk, secretFile: secretFile)
                try await db.with { [id, name] in try await HubRegistry(database: $0).addStation(id: id, name: name ?? id, jwk: key, secret: secret) }
                print("enrolled \(id) with key \(key.kid)")
            }
        }

        static func read(jwk: String, secretFile: String?) throws -> (PublicJWK, SymmetricKey?) {
            do throws(LetheError) {
                return (try HubRegistry.loadJWK(path: jwk), try secretFile.map { path throws(LetheError) in try CatalogSignature.loadSecret(path: path) })
            } catch {
                throw HubExit.fail(error.description)
            }
        }

        static func read(jwk: String, secretFile: String) throws -> (PublicJWK, SymmetricKey) {
            let (key, secret) = try read(jwk: jwk, secretFile: Optional(secretFile))
            return (key, secret!)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every station and its keys.",
            discussion: """
                Examples:
                  lethe-hub stations list
                  lethe-hub stations list --json --database postgres://lethe@/lethe?host=/run/postgresql
                """)
        @OptionGroup var db: DatabaseOption
        @Flag(help: "JSON instead of a table.") var json = false

        func run() async throws {
            try await hubRun {
                let stations = try await db.with { try await HubRegistry(database: $0).stations() }
                if json { print(HubLog.json(stations)); return }
                if stations.isEmpty { print("no stations (enrol one with `lethe-hub stations add`)"); return }
                for station in stations {
                    print("\(station.id)  \(station.name)\(station.revokedAt.map { "  REVOKED \(ISO8601DateFormatter().string(from: $0))" } ?? "")")
                    for key in station.keys { print("  \(key.kid)  \(key.status)  added \(ISO8601DateFormatter().string(from: key.addedAt))") }
                }
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give a station a new key; its old keys retire, and their reports stay valid.",
            discussion: """
                Examples:
                  lethe-hub stations rotate bench-07 --jwk bench07-2027.jwk
                """)
        @OptionGroup var db: DatabaseOption
        @Argument var id: String
        @Option(help: ArgumentHelp("The new public JWK.", valueName: "file")) var jwk: String
        @Option(help: ArgumentHelp("A new HMAC secret, if it changes too.", valueName: "file")) var secretFile: String?

        func run() async throws {
            try await hubRun {
                let (key, secret) = try Add.read(jwk: jwk, secretFile: secretFile)
                try await db.with { [id] in try await HubRegistry(database: $0).rotate(id: id, jwk: key, secret: secret) }
                print("\(id): key \(key.kid) active; earlier keys retired")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke one key (--kid) or the whole station: nothing it signs is accepted, and reports that reach the hub after this are flagged.",
            discussion: """
                Examples:
                  lethe-hub stations revoke bench-07 --kid VGhpcyBpcyBhIGtleSB0aHVtYnByaW50
                  lethe-hub stations revoke bench-07
                """)
        @OptionGroup var db: DatabaseOption
        @Argument var id: String
        // A kid is base64url and may begin with "-": the next word is taken whatever it looks like.
        @Option(parsing: .unconditional, help: "Revoke only this key (its kid, as `stations list` shows it).") var kid: String?

        func run() async throws {
            try await hubRun {
                let kids = try await db.with { [id, kid] in try await HubRegistry(database: $0).revoke(id: id, kid: kid) }
                print("\(id): revoked \(kids.isEmpty ? "the station (no active keys)" : kids.joined(separator: ", "))")
            }
        }
    }
}

struct Tokens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bearer tokens for the hub's API (stored hashed; shown once).",
        discussion: """
              lethe-hub tokens add alice --role qa       search, export, sample, scorecards
              lethe-hub tokens add ops --role admin      everything
              lethe-hub tokens remove alice

            Examples:
              lethe-hub tokens add alice --role qa
              lethe-hub tokens remove alice
            """,
        subcommands: [Add.self, Remove.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a token; it is printed once.",
            discussion: """
                Examples:
                  lethe-hub tokens add alice --role qa
                  lethe-hub tokens add bench-07 --role station
                """)
        @OptionGroup var db: DatabaseOption
        @Argument var name: String
        @Option(help: "admin, qa or station.") var role: HubRole

        func run() async throws {
            try await hubRun {
                print(try await db.with { [name, role] in try await HubRegistry(database: $0).addToken(name: name, role: role) })
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a token.",
            discussion: """
                Examples:
                  lethe-hub tokens remove alice
                """)
        @OptionGroup var db: DatabaseOption
        @Argument var name: String

        func run() async throws {
            try await hubRun {
                guard try await db.with({ [name] in try await HubRegistry(database: $0).removeToken(name: name) }) else {
                    throw HubExit.fail("no token named \(name)")
                }
                print("removed \(name)")
            }
        }
    }
}

struct Outbox: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The forward queue to the shop's catalog.",
        discussion: """
              lethe-hub outbox retry            every dead letter back in the queue
              lethe-hub outbox retry RECORD_ID  one

            Examples:
              lethe-hub outbox retry 01KAQ2M7Y8Z3B4C5D6E7F8G9H0
            """,
        subcommands: [Retry.self])

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Put dead letters back in the queue.",
            discussion: """
                Examples:
                  lethe-hub outbox retry 01KAQ2M7Y8Z3B4C5D6E7F8G9H0
                """)
        @OptionGroup var db: DatabaseOption
        @Argument var id: String?

        func run() async throws {
            try await hubRun {
                let count = try await db.with { [id] in try await HubForwarder.retry(database: $0, id: id) }
                print("\(count) record\(count == 1 ? "" : "s") back in the queue")
            }
        }
    }
}

struct Samples: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Independent verification samples (R2v3 Appendix B: at least 5% per lot).",
        discussion: """
              lethe-hub samples draw LOT-2026-12-01                 5%, a fresh seed (printed, and stored)
              lethe-hub samples draw LOT-2026-12-01 --seed S        the same draw again, for an auditor
              lethe-hub samples record --serial S --passed --by "Ann (QA)" --result "lethe verify --expect zero: no differences"

            Examples:
              lethe-hub samples draw LOT-2026-12-01 --percent 5
              lethe-hub samples record --serial S4EVNX0R123 --passed --by "QA: J. Doe"
            """,
        subcommands: [Draw.self, Record.self])

    struct Draw: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Draw a lot's sample; the stations hold those items.",
            discussion: """
                Examples:
                  lethe-hub samples draw LOT-2026-12-01 --percent 5 --seed audit-2026-12 --by "QA: J. Doe"
                """)
        @OptionGroup var db: DatabaseOption
        @Argument var lot: String
        @Option(help: "Percent of the lot (5–100).") var percent = 5.0
        @Option(help: "The seed (default: a fresh random one).") var seed: String?
        @Option(help: "Who drew it.") var by = ProcessInfo.processInfo.environment["USER"] ?? "qa"

        func run() async throws {
            try await hubRun {
                let sample = try await db.with { [lot, percent, seed, by] in
                    do {
                        return try await HubSampling(database: $0).drawSample(lot: lot, percent: percent, seed: seed, by: by)
                    } catch let problem as HubProblem {
                        throw HubExit.fail("\(problem.field): \(problem.message)")
                    }
                }
                print(HubLog.json(sample))
            }
        }
    }

    struct Record: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record the second result of a held item.",
            discussion: """
                Examples:
                  lethe-hub samples record --serial S4EVNX0R123 --passed --by "QA: J. Doe"
                  lethe-hub samples record --imei 356938035643809 --failed --result "photos readable" --by "QA: J. Doe"
                """)
        @OptionGroup var db: DatabaseOption
        @Option var serial: String?
        @Option var imei: String?
        @Flag(help: "The re-read found what the certificate says.") var passed = false
        @Flag(help: "It did not.") var failed = false
        @Option(help: "What was done and seen.") var result: String
        @Option(help: "Who re-read it.") var by: String

        func validate() throws {
            guard passed != failed else { throw ValidationError("give exactly one of --passed or --failed") }
        }

        func run() async throws {
            try await hubRun {
                let answer = HubSampling.Result(serial: serial, imei: imei, passed: passed, result: result, checkedBy: by)
                let (sample, record) = try await db.with {
                    do {
                        return try await HubSampling(database: $0).record(answer, station: nil)
                    } catch let problem as HubProblem {
                        throw HubExit.fail("\(problem.field): \(problem.message)")
                    }
                }
                print("sample \(sample): record \(record) \(answer.passed ? "passed" : "failed")")
            }
        }
    }
}
