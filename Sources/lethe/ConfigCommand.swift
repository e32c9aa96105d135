import ArgumentParser
import Foundation
import LetheConfig
import LetheCore

struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a station config file (YAML; see deploy/lethe.yaml).",
        discussion: """
            Examples:
              lethe config check /etc/lethe/lethe.yaml
            """,
        subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a station config; errors name the file, line and field.", discussion: """
            Exit status: 0 valid, 2 not valid.

            Examples:
              lethe config check /etc/lethe/lethe.yaml
              lethe config check lethe.yaml && systemctl restart lethe
            """)
        @Argument(help: "The config file.") var file: String

        func run() throws {
            do throws(ConfigError) {
                let config = try DaemonConfig.load(file: file)
                print("\(file): valid; station \(config.station.id) (\(config.station.name)), \(config.operators.count) operator(s), \(config.bays.bays.count) bay(s)")
            } catch {
                Output.err("lethe: \(error)")
                throw ExitCode(ExitStatus.refused)
            }
        }
    }
}
