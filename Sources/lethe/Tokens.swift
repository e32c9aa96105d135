import ArgumentParser
import Foundation
import LetheAgent
import LetheCore

extension APIRole: ExpressibleByArgument {}

struct Tokens: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "API tokens for the daemon (roles: technician starts and aborts jobs, qa reads).",
        subcommands: [Add.self, List.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token; it is printed once (only its SHA-256 is kept).")
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

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Names and roles of the tokens.")
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
