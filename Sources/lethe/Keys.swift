import ArgumentParser
import Foundation
import LetheCore
import LetheReports

/// Where the station keeps its state (key, config, bay map).
struct StateOptions: ParsableArguments {
    @Option(
        name: .customLong("state-dir"),
        help: ArgumentHelp("The station's state directory: keys/, station.json, the store, reports/ (default: $STATE_DIRECTORY, or /var/lib/lethe under systemd, else ./var).", valueName: "dir"))
    var explicitDirectory: String?

    /// The state directory: `--state-dir`, else ``defaultDirectory``.
    var directory: String {
        get { explicitDirectory ?? Self.defaultDirectory }
        set { explicitDirectory = newValue }
    }

    /// `$STATE_DIRECTORY` (systemd's `StateDirectory=`; the first when it lists several), else
    /// `/var/lib/lethe` when systemd itself started this process (`$INVOCATION_ID` and systemd
    /// as the parent: a shell or CI job that merely inherited the variable is not that), else
    /// `./var`.
    static var defaultDirectory: String {
        let environment = ProcessInfo.processInfo.environment
        if let listed = environment["STATE_DIRECTORY"], let first = listed.split(separator: ":").first { return String(first) }
        if environment["INVOCATION_ID"] != nil, getppid() == 1 { return "/var/lib/lethe" }
        return "var"
    }

    /// `station.json`, or the defaults when there is none. A file that does not parse is an
    /// error naming it and the field.
    func station() throws(LetheError) -> StationConfig {
        let path = "\(directory)/station.json"
        guard FileManager.default.fileExists(atPath: path) else { return StationConfig() }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LetheError(.permissionDenied, path: path, "cannot read the station config")
        }
        do {
            return try JSONDecoder().decode(StationConfig.self, from: data)
        } catch {
            throw LetheError(.invalidArgument, path: path, "station config is not valid: \(BayOptions.describe(error))")
        }
    }

    /// The public keys `lethe report verify` trusts: this station's, and keys/trusted/*.jwk.
    func trustedKeys(extra files: [String]) throws(LetheError) -> [PublicJWK] {
        var keys: [PublicJWK] = []
        let own = StationKey.publicPath(stateDirectory: directory)
        let trustedDir = StationKey.trustedDirectory(stateDirectory: directory)
        let listed = ((try? FileManager.default.contentsOfDirectory(atPath: trustedDir)) ?? []).filter { $0.hasSuffix(".jwk") || $0.hasSuffix(".json") }
        for path in (FileManager.default.fileExists(atPath: own) ? [own] : []) + listed.sorted().map({ "\(trustedDir)/\($0)" }) + files {
            keys.append(try Self.readJWK(path))
        }
        return keys
    }

    static func readJWK(_ path: String) throws(LetheError) -> PublicJWK {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LetheError(.deviceNotFound, path: path, "cannot read the public key")
        }
        guard var jwk = try? JSONDecoder().decode(PublicJWK.self, from: data), jwk.key != nil else {
            throw LetheError(.invalidArgument, path: path, "not an Ed25519 public JWK (kty OKP, crv Ed25519, x)")
        }
        jwk.kid = PublicJWK.thumbprint(x: jwk.x)
        return jwk
    }
}

struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The station's Ed25519 signing key.",
        discussion: """
            `lethe keys init` creates the key once (keys/station.jwk, mode 0600, under the state directory); it refuses to replace an existing one. Reports carry only the key's RFC 7638 thumbprint (the JWS kid); the public key is published with `lethe keys export`.

            Examples:
              lethe keys init --state-dir /var/lib/lethe
              lethe keys export > bench07.pub.jwk
              lethe keys trust bench08.pub.jwk
            """,
        subcommands: [Init.self, Show.self, Export.self, Trust.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create the station key (once).",
            discussion: """
                Examples:
                  lethe keys init
                  lethe keys init --state-dir /var/lib/lethe
                """)
        @OptionGroup var state: StateOptions

        func run() throws {
            do throws(LetheError) {
                let key = try StationKey.create(stateDirectory: state.directory)
                print("created station key \(key.keyId)")
                print("private: \(StationKey.privatePath(stateDirectory: state.directory)) (0600; back it up, never share it)")
                print("public:  \(StationKey.publicPath(stateDirectory: state.directory))")
            } catch {
                throw Output.fail(error, json: false)
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the key id and where the key is.",
            discussion: """
                Examples:
                  lethe keys show
                """)
        @OptionGroup var state: StateOptions

        func run() throws {
            do throws(LetheError) {
                let key = try StationKey.load(stateDirectory: state.directory)
                print("key id (RFC 7638 thumbprint): \(key.keyId)")
                print("algorithm: Ed25519")
                print("private: \(StationKey.privatePath(stateDirectory: state.directory))")
                print("public:  \(StationKey.publicPath(stateDirectory: state.directory))")
            } catch {
                throw Output.fail(error, json: false)
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the station's public key as a JWK.",
            discussion: """
                Examples:
                  lethe keys export > bench07.pub.jwk
                """)
        @OptionGroup var state: StateOptions

        func run() throws {
            do throws(LetheError) {
                let key = try StationKey.load(stateDirectory: state.directory)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                FileHandle.standardOutput.write((try? encoder.encode(key.publicJWK)) ?? Data())
                print()
            } catch {
                throw Output.fail(error, json: false)
            }
        }
    }

    struct Trust: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Trust another station's public JWK for `lethe report verify`.",
            discussion: """
                Examples:
                  lethe keys trust bench08.pub.jwk
                """)
        @Argument(help: "The JWK file (from `lethe keys export` on that station).") var file: String
        @OptionGroup var state: StateOptions

        func run() throws {
            do throws(LetheError) {
                let jwk = try StateOptions.readJWK(file)
                let dir = StationKey.trustedDirectory(stateDirectory: state.directory)
                try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                guard let data = try? encoder.encode(jwk), FileManager.default.createFile(atPath: "\(dir)/\(jwk.kid).jwk", contents: data) else {
                    throw LetheError(.ioFailure, path: dir, "cannot write the trusted key")
                }
                print("trusted \(jwk.kid)")
            } catch {
                throw Output.fail(error, json: false)
            }
        }
    }
}
