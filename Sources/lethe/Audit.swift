import ArgumentParser
import Foundation
import LetheCore
import LetheStore

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The store's tamper-evident audit log.",
        discussion: """
        Every job, result and report is logged in var/lethe.sqlite; each entry's SHA-256 covers the one before it, so an edited, deleted or reordered row is found by `lethe audit verify`.

        Examples:
          lethe audit verify
          lethe audit log --limit 20
        """,
        subcommands: [VerifyChain.self, Log.self])

    struct VerifyChain: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify", abstract: "Check the audit chain.", discussion: """
            Exit status: 0 intact, 1 broken (the first bad entry is named), 2 no store.

            Examples:
              lethe audit verify --state-dir /var/lib/lethe
            """)
        @OptionGroup var state: StateOptions

        func run() throws {
            let store: Store
            let result: Result<Int, AuditChainBreak>
            do throws(LetheError) {
                store = try state.existingStore()
                result = try store.verifyAudit()
            } catch {
                throw Output.fail(error, json: false)
            }
            switch result {
            case .success(let count):
                print("\(store.path): audit chain intact (\(count) events)")
            case .failure(let broken):
                Output.err("lethe: \(store.path): AUDIT CHAIN BROKEN at \(broken)")
                throw ExitCode(1)
            }
        }
    }

    struct Log: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the latest audit events.",
            discussion: """
                Examples:
                  lethe audit log --limit 20
                """)
        @Option(help: "How many.") var limit = 50
        @OptionGroup var state: StateOptions

        func run() throws {
            do throws(LetheError) {
                for event in try state.existingStore().auditLog(limit: limit) {
                    print("\(event.id)\t\(event.at)\t\(event.kind)\t\(event.subject)\t\(event.detail)")
                }
            } catch {
                throw Output.fail(error, json: false)
            }
        }
    }
}

extension StateOptions {
    /// The store, which must exist already (read-only commands never create one).
    func existingStore() throws(LetheError) -> Store {
        let path = "\(directory)/lethe.sqlite"
        guard FileManager.default.fileExists(atPath: path) else {
            throw LetheError(.deviceNotFound, path: path, "no store yet (it is created by `lethe wipe --report-dir` and the daemon)")
        }
        return try Store(stateDirectory: directory)
    }
}
