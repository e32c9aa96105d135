import ArgumentParser
import Foundation
import Hummingbird
import LetheConfig
import LetheCore
import LetheReports
import LetheStore
import LetheSync
import Logging
import ServiceLifecycle

/// Where the catalog is: `--config` (catalog.url, catalog.secretFile) or the options.
struct CatalogOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Station config (YAML) with catalog.url and catalog.secretFile.", valueName: "file"))
    var config: String?
    @Option(help: ArgumentHelp("Catalog endpoint (replaces catalog.url).", valueName: "url"))
    var url: String?
    @Option(help: ArgumentHelp("File with the shared HMAC secret (replaces catalog.secretFile).", valueName: "file"))
    var secretFile: String?
    @Option(help: ArgumentHelp("Tries before a record becomes a dead letter.", valueName: "n"))
    var maxAttempts = 10

    func settings(station: String) throws(LetheError) -> DeliverySettings {
        var file: DaemonConfig?
        if let config {
            do throws(ConfigError) { file = try DaemonConfig.load(file: config) } catch {
                throw LetheError(.invalidArgument, path: error.location, error.detail)
            }
        }
        guard let settings = try Self.resolve(
            url: url, secretFile: secretFile, file: file, station: file?.station.id ?? station, maxAttempts: maxAttempts, secretOption: "--secret-file")
        else {
            throw LetheError(.invalidArgument, path: "--url", "no catalog endpoint: give --url, or --config with catalog.url")
        }
        return settings
    }

    /// The delivery settings from command-line values or the station config (the command line
    /// wins); nil when neither names a catalog URL. A URL without a secret file is an error
    /// naming `secretOption`.
    static func resolve(
        url: String?, secretFile: String?, file: DaemonConfig?, station: String, maxAttempts: Int, secretOption: String
    ) throws(LetheError) -> DeliverySettings? {
        guard let url = url ?? file?.catalogURL else { return nil }
        guard let secretFile = secretFile ?? file?.catalogSecretFile else {
            throw LetheError(.invalidArgument, path: secretOption, "a catalog URL needs a shared secret file (\(secretOption), or catalog.secretFile in the config)")
        }
        var settings = DeliverySettings(url: url, secret: try CatalogSignature.loadSecret(path: secretFile), station: station)
        settings.maxAttempts = max(1, maxAttempts)
        return settings
    }
}

extension CatalogOptions {
    /// Two-way mode's lookup from command-line values or the station config (the command line
    /// wins); nil when neither names a lookup URL. It shares the catalog's secret file.
    static func lookup(
        url: String?, secretFile: String?, timeout: Double?, file: DaemonConfig?, station: String, urlOption: String, secretOption: String
    ) throws(LetheError) -> CatalogLookup? {
        guard let url = url ?? file?.catalogLookupURL else { return nil }
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw LetheError(.invalidArgument, path: urlOption, "\"\(url)\" is not an http(s) URL")
        }
        guard let secretFile = secretFile ?? file?.catalogSecretFile else {
            throw LetheError(.invalidArgument, path: secretOption, "a catalog lookup URL needs the shared secret file (\(secretOption), or catalog.secretFile in the config)")
        }
        let seconds = timeout ?? file?.catalogLookupTimeout ?? 3
        guard seconds > 0, seconds <= 60 else { throw LetheError(.invalidArgument, path: urlOption, "the lookup timeout must be more than 0 and at most 60 seconds") }
        return CatalogLookup(url: url, secret: try CatalogSignature.loadSecret(path: secretFile), station: station, timeout: seconds)
    }
}

/// `host:port` from a --listen value, or an error naming the option.
func listenAddress(_ listen: String) throws(LetheError) -> (host: String, port: Int) {
    try LetheError.listenAddress(listen)
}

struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The catalog outbox: what is waiting, delivered or dead; deliver now; retry dead letters.",
        discussion: """
            Every refurb report issued for a finished erase puts one record in the outbox (var/lethe.sqlite), in the same transaction. The daemon delivers them by itself when a catalog is configured; these commands are for a station without a daemon running, and for dead letters.

              lethe sync status              counts, and the records not delivered yet
              lethe sync --once --url URL --secret-file FILE   deliver what is due now, then exit
              lethe sync retry ID            put a dead letter back in the queue (or --dead for all)
              lethe sync ask --serial S      what the catalog says to do with a device (two-way mode)
              lethe sync sample-result --serial S --passed --by NAME --result TEXT   the hub's verification sample, re-read

            Examples:
              lethe sync status
              lethe sync retry --dead
            """,
        subcommands: [Status.self, Retry.self, Ask.self, SampleResult.self])

    @Flag(help: "Deliver every record that is due now, then exit (retries wait for the daemon or the next run).")
    var once = false
    @OptionGroup var catalog: CatalogOptions
    @OptionGroup var state: StateOptions

    func run() async throws {
        guard once else { throw CleanExit.helpRequest(self) }
        let outbox: Outbox
        let settings: DeliverySettings
        do throws(LetheError) {
            outbox = Outbox(store: try Store(stateDirectory: state.directory))
            settings = try catalog.settings(station: try state.station().id)
        } catch {
            throw Output.fail(error, json: false)
        }
        let delivery = CatalogDelivery(outbox: outbox, settings: settings, log: { Output.err("lethe: \($0)") })
        var tried = 0
        while true {
            let count = await delivery.sweep()
            if count == 0 { break }
            tried += count
        }
        await delivery.shutdown()
        let summary = try? outbox.summary()
        print("tried \(tried); delivered \(summary?.delivered ?? 0), pending \(summary?.pending ?? 0), dead \(summary?.dead ?? 0)")
        if (summary?.dead ?? 0) > 0 { throw ExitCode(1) }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Counts by state, and each record not delivered yet with its tries and last error.",
            discussion: """
                Examples:
                  lethe sync status
                  lethe sync status --json --state-dir /var/lib/lethe
                """)
        @Flag(help: "JSON instead of text.") var json = false
        @OptionGroup var state: StateOptions

        func run() throws {
            do throws(LetheError) {
                let outbox = Outbox(store: try Store(stateDirectory: state.directory))
                let summary = try outbox.summary()
                let open = try outbox.rows(state: "dead") + outbox.rows(state: "pending")
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                    struct View: Encodable { var summary: Outbox.Summary; var records: [OutboxRow] }
                    print(String(decoding: (try? encoder.encode(View(summary: summary, records: open))) ?? Data(), as: UTF8.self))
                    return
                }
                print("pending \(summary.pending), delivered \(summary.delivered), dead \(summary.dead)")
                for row in open {
                    print("\(row.state)\t\(row.id)\t\(row.deviceKey) #\(row.sequence)\ttries \(row.attempts)\tnext \(row.nextAttemptAt)\t\(row.lastError ?? "")")
                }
            } catch {
                throw Output.fail(error, json: json)
            }
        }
    }

    struct Ask: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask the catalog what to do with a device (two-way mode): profile, SKU, expected serial.",
            discussion: """
                Give --config FILE (catalog.lookupUrl, catalog.secretFile) or --lookup-url and --secret-file. The daemon asks this when a device is docked, if catalog.lookupUrl (or --catalog-lookup-url) is set, and falls back to the station's own profile match when the catalog does not answer in time. This command asks the same question by hand, to check the set-up:

                  lethe sync ask --config /etc/lethe/lethe.yaml --serial S3Z9NB0K123456
                  lethe sync ask --lookup-url http://127.0.0.1:8780/v1/instructions --secret-file catalog.secret --bay "Bay 2"

                Exit status: 0 with instructions, 3 when the catalog has none for the device, 1 when it did not answer usably.

                Examples:
                  lethe sync ask --serial S4EVNX0R123 --model "Samsung SSD 870"
                  lethe sync ask --device /dev/sdb --json
                """)
        /// `--config` and `--secret-file` (shared with `lethe sync --once`) are parsed by the parent.
        @ParentCommand var sync: Sync
        @Option(help: ArgumentHelp("The lookup endpoint (replaces catalog.lookupUrl).", valueName: "url")) var lookupUrl: String?
        @Option(help: ArgumentHelp("Seconds to wait (else catalog.lookupTimeoutSeconds, else 3).", valueName: "seconds")) var timeoutSeconds: Double?
        @Option(help: "The device's serial.") var serial: String?
        @Option(help: "The phone's IMEI.") var imei: String?
        @Option(help: "The device's model (context for the catalog).") var model: String?
        @Option(help: "The bay label.") var bay: String?
        @Option(help: ArgumentHelp("The station's device node.", valueName: "path")) var device: String?
        @Flag(help: "JSON instead of text.") var json = false
        @OptionGroup var state: StateOptions

        func run() async throws {
            let query = CatalogQuery(serial: serial, imei: imei, model: model, bay: bay, device: device)
            let lookup: CatalogLookup
            do throws(LetheError) {
                guard !query.keys.isEmpty else { throw LetheError(.invalidArgument, path: "--serial", "give at least one of --serial, --imei, --bay, --device") }
                var file: DaemonConfig?
                if let config = sync.catalog.config {
                    do throws(ConfigError) { file = try DaemonConfig.load(file: config) } catch {
                        throw LetheError(.invalidArgument, path: error.location, error.detail)
                    }
                }
                let station: String
                if let file { station = file.station.id } else { station = try state.station().id }
                guard let found = try CatalogOptions.lookup(
                    url: lookupUrl, secretFile: sync.catalog.secretFile, timeout: timeoutSeconds, file: file, station: station,
                    urlOption: "--lookup-url", secretOption: "--secret-file")
                else {
                    throw LetheError(.invalidArgument, path: "--lookup-url", "no lookup endpoint: give --lookup-url, or --config with catalog.lookupUrl")
                }
                lookup = found
            } catch {
                throw Output.fail(error, json: json)
            }
            let answer = await lookup.ask(query)
            await lookup.shutdown()
            switch answer {
            case .instructions(let instructions):
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                    print(String(decoding: (try? encoder.encode(instructions)) ?? Data(), as: UTF8.self))
                } else {
                    print("matched by \(instructions.matchedBy ?? "?"): profile \(instructions.profile ?? "(station's choice)"), SKU \(instructions.sku ?? "-"), expected serial \(instructions.expectedSerial ?? "-")\(instructions.note.map { "; note: \($0)" } ?? "")")
                }
            case .unknown:
                Output.err("lethe: the catalog has no instructions for this device (the station's own profile match applies)")
                throw ExitCode(3)
            case .unavailable(let why):
                Output.err("lethe: \(why) (the station would use its own profile match)")
                throw ExitCode(1)
            }
        }
    }

    struct SampleResult: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sample-result",
            abstract: "Tell the hub the second result of an item it drew for independent verification.",
            discussion: """
                The hub draws at least 5% of each lot and tells the station, at dock time, to hold those items. Re-read the item (a drive: `lethe verify DEVICE --expect zero`; a phone: its out-of-box check), then record what you saw; the hub keeps it, with who and when, on the item's record.

                  lethe sync sample-result --config /etc/lethe/lethe.yaml --serial WD-123 --passed --by "Ann" --result "lethe verify --expect zero: no differing sector"

                Examples:
                  lethe sync sample-result --serial S4EVNX0R123 --passed --by "QA: J. Doe"
                  lethe sync sample-result --imei 356938035643809 --failed --result "data found in /DCIM" --by "QA: J. Doe"
                """)
        @ParentCommand var sync: Sync
        @Option(help: "The item's serial.") var serial: String?
        @Option(help: "The phone's IMEI.") var imei: String?
        @Flag(help: "The re-read found what the certificate says.") var passed = false
        @Flag(help: "It did not.") var failed = false
        @Option(help: "What was done and seen.") var result: String
        @Option(help: "Who re-read it.") var by: String
        @Option(help: ArgumentHelp("The hub's results endpoint (else derived from the catalog URL: …/v1/samples/results).", valueName: "url")) var hubUrl: String?
        @OptionGroup var state: StateOptions

        func validate() throws {
            guard passed != failed else { throw ValidationError("give exactly one of --passed or --failed") }
            guard serial != nil || imei != nil else { throw ValidationError("give --serial or --imei") }
        }

        func run() async throws {
            do throws(LetheError) {
                let settings = try sync.catalog.settings(station: try state.station().id)
                let url = hubUrl ?? SampleResultReport.endpoint(catalogURL: settings.url)
                let report = SampleResultReport(serial: serial, imei: imei, passed: passed, result: result, checkedBy: by)
                let (status, message) = try await report.send(to: url, secret: settings.secret, station: settings.station)
                guard (200..<300).contains(status) else { throw LetheError(.invalidArgument, path: url, "HTTP \(status): \(message)") }
                print("recorded: \(serial ?? imei ?? "") \(passed ? "passed" : "failed")")
            } catch {
                throw Output.fail(error, json: false)
            }
        }
    }

    struct Retry: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Put a dead letter (or, with --dead, all of them) back in the queue, due now.",
            discussion: """
                Examples:
                  lethe sync retry 01KAQ2M7Y8Z3B4C5D6E7F8G9H0
                  lethe sync retry --dead
                """)
        @Argument(help: "The record id (from `lethe sync status`).") var id: String?
        @Flag(help: "Every dead letter.") var dead = false
        @OptionGroup var state: StateOptions

        func validate() throws {
            guard (id == nil) != !dead else { throw ValidationError("give a record id, or --dead") }
        }

        func run() throws {
            do throws(LetheError) {
                let count = try Outbox(store: try Store(stateDirectory: state.directory)).retry(id: dead ? nil : id)
                guard count > 0 || dead else { throw LetheError(.invalidArgument, path: id, "no undelivered record with this id") }
                print("requeued \(count)")
            } catch {
                throw Output.fail(error, json: false)
            }
        }
    }
}

struct Catalog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The reference catalog receiver (the other end of catalog sync).",
        discussion: """
            Examples:
              lethe catalog serve --listen 127.0.0.1:9900 --secret-file catalog.secret --trust var/keys/station.pub.jwk
            """,
        subcommands: [Serve.self])

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Receive catalog records: check the HMAC and the signatures, deduplicate by Idempotency-Key, store in SQLite.",
            discussion: """
                POST /v1/records (the contract: catalog-api.yaml), GET /v1/records lists what arrived, GET /v1/records/{id} returns one. GET /v1/instructions answers stations in two-way mode (load them with --instructions FILE, or PUT /v1/instructions). Reports must be signed by a trusted station key: --trust FILE.jwk (repeatable) and/or --state-dir (that station's own key and its trusted keys).

                Examples:
                  lethe catalog serve --listen 127.0.0.1:9900 --db catalog.sqlite --secret-file catalog.secret --trust var/keys/station.pub.jwk
                  lethe catalog serve --secret-file catalog.secret --fail-first 3 --fail-status 503   (a flaky catalog, for tests)
                """)
        @Option(help: ArgumentHelp("Address to listen on.", valueName: "host:port")) var listen = "127.0.0.1:8780"
        @Option(help: ArgumentHelp("SQLite database of received records.", valueName: "file")) var db = "var/catalog/records.sqlite"
        @Option(help: ArgumentHelp("File with the shared HMAC secret.", valueName: "file")) var secretFile: String
        @Option(help: ArgumentHelp("A station public key to trust (JWK).", valueName: "file")) var trust: [String] = []
        @Option(name: .customLong("state-dir"), help: ArgumentHelp("Trust this station's key and its trusted keys.", valueName: "dir")) var stateDirectory: String?
        @Option(help: ArgumentHelp("Instructions for two-way mode: a JSON array of {\"match\": {\"serial\"|\"imei\"|\"bay\"|\"device\": …}, \"profile\": …, \"sku\": …, \"expectedSerial\": …, \"note\": …}.", valueName: "file")) var instructions: String?
        @Option(help: ArgumentHelp("Fault injection: the first N posts fail.", valueName: "n", visibility: .hidden)) var failFirst = 0
        @Option(help: ArgumentHelp("Fault injection: their status.", valueName: "code", visibility: .hidden)) var failStatus = 503
        @Option(help: ArgumentHelp("Fault injection: Retry-After seconds on them.", valueName: "s", visibility: .hidden)) var retryAfter: Int?
        @Option(help: ArgumentHelp("Fault injection: the next N posts are stored, then their connection reset.", valueName: "n", visibility: .hidden)) var resetFirst = 0
        @Option(help: ArgumentHelp("Fault injection: the next N posts are slow.", valueName: "n", visibility: .hidden)) var delayFirst = 0
        @Option(help: ArgumentHelp("Fault injection: by this many seconds.", valueName: "s", visibility: .hidden)) var delaySeconds = 0.0
        @Option(help: ArgumentHelp("Fault injection: the next N posts get 200 with an HTML page.", valueName: "n", visibility: .hidden)) var garbageFirst = 0
        @Option(help: ArgumentHelp("Fault injection: every instructions lookup waits this long.", valueName: "s", visibility: .hidden)) var lookupDelaySeconds = 0.0

        func run() async throws {
            LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
            let address: (host: String, port: Int)
            do throws(LetheError) { address = try listenAddress(listen) } catch { throw Output.fail(error, json: false) }
            let receiver: CatalogReceiver
            do throws(LetheError) {
                var keys = try trust.map { path throws(LetheError) in try StateOptions.readJWK(path) }
                if let stateDirectory {
                    var options = StateOptions()
                    options.directory = stateDirectory
                    keys += try options.trustedKeys(extra: [])
                }
                guard !keys.isEmpty else { throw LetheError(.invalidArgument, path: "--trust", "no station key to check reports against: give --trust FILE.jwk or --state-dir") }
                var faults = ReceiverFaults()
                faults.failFirst = failFirst
                faults.failStatus = failStatus
                faults.retryAfter = retryAfter
                faults.resetFirst = resetFirst
                faults.delayFirst = delayFirst
                faults.delaySeconds = delaySeconds
                faults.garbageFirst = garbageFirst
                faults.lookupDelaySeconds = lookupDelaySeconds
                receiver = try CatalogReceiver(database: db, secret: try CatalogSignature.loadSecret(path: secretFile), trusted: keys, faults: faults)
                if let instructions {
                    let count = try receiver.loadInstructions(file: instructions)
                    Output.err("lethe catalog: \(count) instruction(s) from \(instructions)")
                }
            } catch {
                throw Output.fail(error, json: false)
            }
            var logger = Logger(label: "lethe-catalog")
            logger.logLevel = .warning
            let app = Application(
                router: receiver.router(), server: receiver.server(), configuration: .init(address: .hostname(address.host, port: address.port), serverName: "lethe-catalog"),
                onServerRunning: { [listen] _ in Output.err("lethe catalog: receiving on http://\(listen)/v1/records") }, logger: logger)
            try await app.runService()
        }
    }
}
