import ArgumentParser
import Foundation
import LetheConfig
import LetheCore

/// Where the profiles are: a directory named with `--profiles` (or the station file's
/// `profiles:`), else the built-in profiles with `/etc/lethe/profiles` over them.
struct ProfileOptions: ParsableArguments {
    @Option(
        name: .customLong("profiles"),
        help: ArgumentHelp("Use only the profiles in DIR (default: the built-in profiles, each replaced or added to by /etc/lethe/profiles).", valueName: "dir"))
    var directory: String?

    func load() throws(LetheError) -> [Profile] {
        do {
            if let directory { return try ProfileLoader.loadDirectory(directory) }
            return try ProfileLoader.loadDefaults()
        } catch {
            throw LetheError(.invalidArgument, path: error.location, error.detail)
        }
    }

    func named(_ name: String) throws(LetheError) -> Profile {
        let profiles = try load()
        guard let profile = profiles.first(where: { $0.name == name }) else {
            throw LetheError(.invalidArgument, path: directory ?? "built-in profiles", "no profile named \"\(name)\"; profiles: \(profiles.map(\.name).joined(separator: ", "))")
        }
        return profile
    }
}

struct Profiles: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, show and check erase profiles.",
        discussion: """
            A profile matches devices (transport, rotation, model…) and says what runs on them: SMART, method, verification, \
            thresholds, and whether the job starts by itself. The binary carries the shipped profiles; a file of the same name \
            in /etc/lethe/profiles replaces one, a new name adds one, and --profiles DIR uses only DIR. Schema: profiles/README.md.

            Examples:
              lethe profiles list                         every profile, and where it came from
              lethe profiles show hdd
              lethe profiles check /etc/lethe/profiles/lab.yaml
            """,
        subcommands: [List.self, Show.self, Check.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per profile, with the file it came from (built-in:NAME.yaml for the built-in ones).",
            discussion: """
                Examples:
                  lethe profiles list
                  lethe profiles list --profiles ./profiles
                """)
        @OptionGroup var profiles: ProfileOptions

        func run() throws {
            do throws(LetheError) {
                for p in try profiles.load().sorted(by: { ($0.priority, $0.name) > ($1.priority, $1.name) }) {
                    print("\(p.name.padding(toLength: 12, withPad: " ", startingAt: 0)) priority \(String(p.priority).padding(toLength: 3, withPad: " ", startingAt: 0)) \(p.resetsPhones ? "factory-reset" : p.method.name) verify=\(p.resetsPhones ? "state" : p.verification.rawValue) start=\(p.start.rawValue)  [\(p.match.summary)]  from \(p.source)")
                }
            } catch {
                throw Output.fail(error, json: false)
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One profile in full.",
            discussion: """
                Examples:
                  lethe profiles show nvme
                """)
        @Argument(help: "Profile name.") var name: String
        @OptionGroup var profiles: ProfileOptions

        func run() throws {
            do throws(LetheError) {
                Profiles.describe(try profiles.named(name))
            } catch {
                throw Output.fail(error, json: false)
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a profile file; errors name the file, line and field.",
            discussion: """
            Exit status: 0 valid, 2 not valid.

            Examples:
              lethe profiles check /etc/lethe/profiles/hdd-site.yaml
            """)
        @Argument(help: "The profile file.") var file: String

        func run() throws {
            do throws(ConfigError) {
                let profile = try ProfileLoader.load(file: file)
                print("\(file): valid profile \"\(profile.name)\"")
                Profiles.describe(profile)
            } catch {
                Output.err("lethe: \(error)")
                throw ExitCode(ExitStatus.refused)
            }
        }
    }

    static func describe(_ p: Profile) {
        print("name:         \(p.name)")
        print("description:  \(p.description)")
        print("file:         \(p.source)")
        print("priority:     \(p.priority)")
        print("matches:      \(p.match.summary)")
        print("diagnostics:  SMART \(p.smart ? "yes" : "no"); thresholds: reallocated \(p.thresholds.reallocatedWarn)/\(p.thresholds.reallocatedFail), pending \(p.thresholds.pendingWarn)/\(p.thresholds.pendingFail), uncorrectable \(p.thresholds.uncorrectableWarn)/\(p.thresholds.uncorrectableFail), endurance \(p.thresholds.percentageUsedWarn)/\(p.thresholds.percentageUsedFail) %, temperature \(p.thresholds.temperatureWarn)/\(p.thresholds.temperatureFail) °C (warn/fail)")
        if let reset = p.factoryReset {
            print("erase:        factory reset, flow \(reset.flow ?? "auto (the best the phone allows)"); certified as a cryptographic erase after the out-of-box check")
            print("battery:      health below \(p.batteryMinHealthPercent)% fails")
        } else {
            print("erase:        \(p.method.name) (\(p.method.title)), verification \(p.verification.rawValue)")
        }
        print("start:        \(p.start == .auto ? "automatically when docked" : "when the technician starts it")")
    }
}
