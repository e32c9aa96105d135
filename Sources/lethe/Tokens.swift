import ArgumentParser
import Foundation
import LetheAgent
import LetheCore

extension APIRole: ExpressibleByArgument {}

struct Tokens: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "API tokens for the daemon (roles: technician starts and aborts jobs, qa reads).",
        discussion: """
            A running daemon reads the token file again within a second of a change: an added token works and a removed one stops working without a restart.

            Examples:
              lethe tokens add bench-3 --role technician
              lethe tokens list
              lethe tokens remove bench-3
            """,
        subcommands: [Add.self, List.self, Remove.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token; it is printed once (only its SHA-256 is kept).",
            discussion: """
                Examples:
                  lethe tokens add bench-3 --role technician
                  lethe tokens add auditor --role qa --state-dir /var/lib/lethe
                """)
        @Argument(help: "A name for whoever holds it (replaces a token of the same name).") var name: String
        @Option(help: "technician or qa.") var role: APIRole
        @OptionGroup var state: StateOptions

        func run() throws {
            do throws(LetheError) {
                var file = try TokenFile.load(stateDirectory: state.directory)
                let token = try file.add(name: name, role: role, stateDirectory: state.directory)
                print(token)
                Output.err("lethe: token \(name) (\(role.rawValue)) saved as a hash in \(TokenFile.path(stateDirectory: state.directory)); use it as Authorization: Bearer TOKEN, or open the dashboard as /#token=TOKEN")
            } catch {
                throw Output.fail(error, json: false)
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a token by name; a running daemon stops accepting it within a second.",
            discussion: """
                Examples:
                  lethe tokens remove bench-3
                """)
        @Argument(help: "The token's name (see `lethe tokens list`).") var name: String
        @OptionGroup var state: StateOptions

        func run() throws {
            do throws(LetheError) {
                var file = try TokenFile.load(stateDirectory: state.directory)
                try file.remove(name: name, stateDirectory: state.directory)
                Output.err("lethe: token \(name) removed from \(TokenFile.path(stateDirectory: state.directory))")
            } catch {
                throw Output.fail(error, json: false)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Names and roles of the tokens.",
            discussion: """
                Examples:
                  lethe tokens list
                  lethe tokens list --state-dir /var/lib/lethe
                """)
        @OptionGroup var state: StateOptions

        func run() throws {
            do throws(LetheError) {
                for entry in try TokenFile.load(stateDirectory: state.directory).tokens { print("\(entry.name)\t\(entry.role.rawValue)") }
            } catch {
                throw Output.fail(error, json: false)
            }
        }
    }
}
