import ArgumentParser
import Foundation
import Hummingbird
import LetheAgent
import LetheConfig
import LetheCore
import LetheLinux
import LethePhones
import LetheReports
import LetheStore
import LetheSync
import Logging
import ServiceLifecycle

struct Daemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the bench: detect devices, erase them as their profile says, certify, serve the API and dashboard.",
        discussion: """
            Embedded defaults: state (store, key, station.json, bays.json) in $STATE_DIRECTORY, or /var/lib/lethe under systemd, else ./var; reports in its reports/; the built-in profiles (with /etc/lethe/profiles over them), HTTP on 127.0.0.1:8765 (dashboard at /, API under /api/v1, public verify page at /verify/{id}). SIGTERM or SIGINT stops it gracefully: running erases stop at a block boundary and are recorded as aborted, never certified.

            --demo creates a 256 MiB loop-backed demo drive (removed at exit) and, if the station has no key yet, its key; the demo-loop profile erases and certifies the drive by itself.

            Examples:
              lethe daemon --demo
              lethe daemon --config /etc/lethe/lethe.yaml
              lethe daemon --listen 0.0.0.0:8765 --lot LOT-2026-12 --supplier acme-leasing
              lethe daemon --no-phones --auto-start /dev/disk/by-id/ata-X
            """)

    @OptionGroup var state: StateOptions
    @OptionGroup var profiles: ProfileOptions

    @Option(help: ArgumentHelp("Address to serve HTTP on.", valueName: "host:port"))
    var listen = "127.0.0.1:8765"

    @Option(help: "Language of the certificates: en or zh-CN.")
    var lang: ReportLanguage = .en

    @Flag(help: "Create a loop-backed demo drive (removed at exit), and a station key if there is none.")
    var demo = false

    @Option(help: ArgumentHelp("Start the job on this device by itself when it is docked, whatever its profile says (repeatable; for benchmarks).", valueName: "device", visibility: .hidden))
    var autoStart: [String] = []

    @Option(help: ArgumentHelp("Seconds between erase checkpoints (each flushes the device, then records how far the pass got, so a job stopped by kill -9, a power cut or an unplug resumes from there).", valueName: "seconds"))
    var checkpointSeconds: Double = 5

    @Option(help: ArgumentHelp("Catalog endpoint records are delivered to (else catalog.url in the config; without either, records wait in the outbox).", valueName: "url"))
    var catalogURL: String?

    @Option(help: ArgumentHelp("File holding the catalog's shared HMAC secret (else catalog.secretFile in the config).", valueName: "file"))
    var catalogSecretFile: String?

    @Option(help: ArgumentHelp("Tries before a catalog record becomes a dead letter.", valueName: "n"))
    var catalogMaxAttempts = 10

    @Option(help: ArgumentHelp("Seconds before the first catalog retry (doubling, with jitter, up to 5 min).", valueName: "seconds", visibility: .hidden))
    var catalogRetrySeconds = 1.0

    @Option(help: ArgumentHelp("Seconds to wait for the catalog's answer before trying again later.", valueName: "seconds"))
    var catalogTimeoutSeconds = 10.0

    @Flag(help: "Do not watch for phones at all (Android through adb, iPhones through usbmuxd).")
    var noPhones = false

    @Flag(help: "Do not watch for Android phones (the adb server is otherwise started and followed).")
    var noAndroid = false

    @Flag(help: "Do not watch for iPhones (usbmuxd is otherwise followed).")
    var noIphones = false

    @Option(help: ArgumentHelp("Where usbmuxd listens: UNIX:/path or host:port (else USBMUXD_SOCKET_ADDRESS, else /var/run/usbmuxd).", valueName: "address"))
    var usbmuxd: String?

    @Option(help: ArgumentHelp("The adb server's port (else ANDROID_ADB_SERVER_PORT, else 5037).", valueName: "port"))
    var adbPort: Int?

    @Option(help: ArgumentHelp("How long a phone reset may take to restart the phone, and again to bring it back, before the job ends interrupted.", valueName: "seconds"))
    var phoneWaitSeconds = 600.0

    @Option(help: ArgumentHelp("Two-way mode: ask this catalog endpoint what to do with each docked drive (profile, SKU, expected serial); else catalog.lookupUrl in the config.", valueName: "url"))
    var catalogLookupUrl: String?

    @Option(help: ArgumentHelp("Seconds to wait for the catalog's instructions before using the station's own profile match (else catalog.lookupTimeoutSeconds, else 3).", valueName: "seconds"))
    var catalogLookupTimeoutSeconds: Double?

    @Option(help: ArgumentHelp("The intake lot being worked through, on every record unless the catalog names another (else intake.lot in the config).", valueName: "lot"))
    var lot: String?

    @Option(help: ArgumentHelp("That lot's supplier (else intake.supplier in the config).", valueName: "name"))
    var supplier: String?

    @Option(help: ArgumentHelp("Station config (YAML, see deploy/lethe.yaml). Its values replace the defaults; an option given on the command line wins.", valueName: "file"))
    var config: String?

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "lethe")
        logger.logLevel = .info
        // Under systemd with stderr on the journal, each line also carries DEVICE, JOB_ID, BAY
        // and SERIAL fields (journalctl -u lethe JOB_ID=...); elsewhere, plain lines on stderr.
        let journal = JournalWriter()
        let labels = DeviceLabels()
        let log: @Sendable (String) -> Void = { message in
            if let journal, journal.log(message, label: { path in labels[path].map { ($0.bay, $0.serial) } ?? (nil, nil) }) { return }
            Output.err("lethe: \(message)")
        }

        var file: DaemonConfig?
        if let config {
            do throws(ConfigError) {
                file = try DaemonConfig.load(file: config)
            } catch {
                // A bad config stops the daemon before anything runs, naming file, line and field.
                throw Output.fail(LetheError(.invalidArgument, path: error.location, error.detail), json: false)
            }
        }
        var state = state
        var profiles = profiles
        var listen = listen
        if let file {
            if state.explicitDirectory == nil, let dir = file.stateDirectory { state.directory = dir }
            if profiles.directory == nil, let dir = file.profilesDirectory { profiles.directory = dir }
            if listen == "127.0.0.1:8765", let address = file.listen { listen = address }
        }
        let address: (host: String, port: Int)
        do throws(LetheError) { address = try listenAddress(listen) } catch { throw Output.fail(error, json: false) }
        var settings: BenchSettings
        let store: Store
        let trusted: [PublicJWK]
        let bays: BayMap
        let tokens: TokenStore
        var demoToken: String?
        var demoDrive: DemoDrive?
        do throws(LetheError) {
            if demo, !FileManager.default.fileExists(atPath: StationKey.privatePath(stateDirectory: state.directory)) {
                let key = try StationKey.create(stateDirectory: state.directory)
                log("demo: created the station key \(key.keyId) in \(state.directory)/keys")
            }
            _ = try StationKey.load(stateDirectory: state.directory)  // refuse to start without one
            let station: StationConfig
            if let file { station = file.station } else { station = try state.station() }
            var intake = station
            if let lot { intake.intakeLot = lot }
            if let supplier { intake.intakeSupplier = supplier }
            settings = BenchSettings(
                stateDirectory: state.directory, reportDirectory: "\(state.directory)/reports", station: intake,
                profiles: try profiles.load(), language: lang, toolVersion: LetheVersion.string)
            store = try Store(stateDirectory: state.directory)
            let interrupted = try store.markOrphanedJobsInterrupted(isRunning: JobRow.processIsRunning)
            if !interrupted.isEmpty { log("marked \(interrupted.count) job(s) left running by a previous process as interrupted: \(interrupted.joined(separator: ", "))") }
            trusted = try state.trustedKeys(extra: [])
            if let fileBays = file?.bays, !fileBays.bays.isEmpty {
                bays = fileBays
            } else {
                bays = try BayMapFile.load("\(state.directory)/bays.json")
            }
            tokens = try TokenStore(stateDirectory: state.directory, log: log)
            if demo {
                // In memory only: it dies with the daemon and is never written to disk.
                demoToken = tokens.addInMemory(name: "demo", role: .technician)
            } else if tokens.current.tokens.isEmpty {
                log("no API tokens: the API answers 401 until you create one (`lethe tokens add NAME --role technician|qa`)")
            }
            if demo {
                demoDrive = try DemoDrive.create(log: log)
                settings.autoStartPaths = [demoDrive!.path]
            }
        } catch {
            throw Output.fail(error, json: false)
        }
        defer { demoDrive?.remove(log: log) }

        guard checkpointSeconds > 0 else {
            throw Output.fail(LetheError(.invalidArgument, path: "--checkpoint-seconds", "must be more than 0"), json: false)
        }
        settings.checkpointInterval = checkpointSeconds
        settings.autoStartPaths.formUnion(autoStart)
        var delivery: CatalogDelivery?
        do throws(LetheError) {
            if var sync = try CatalogOptions.resolve(
                url: catalogURL, secretFile: catalogSecretFile, file: file, station: settings.station.id, maxAttempts: catalogMaxAttempts,
                secretOption: "--catalog-secret-file")
            {
                sync.baseDelay = max(0.01, catalogRetrySeconds)
                sync.timeout = max(0.1, catalogTimeoutSeconds)
                delivery = CatalogDelivery(outbox: Outbox(store: store), settings: sync, log: log)
                log("catalog sync to \(sync.url) (\(sync.maxAttempts) tries before a dead letter)")
            } else {
                log("no catalog configured: records wait in the outbox (`lethe sync status`)")
            }
            settings.lookup = try CatalogOptions.lookup(
                url: catalogLookupUrl, secretFile: catalogSecretFile, timeout: catalogLookupTimeoutSeconds, file: file, station: settings.station.id,
                urlOption: "--catalog-lookup-url", secretOption: "--catalog-secret-file")
            if let lookup = settings.lookup {
                log("two-way mode: docked drives are looked up at \(lookup.url) (\(CatalogLookup.seconds(lookup.timeout)), then the station's own profile match)")
            }
        } catch {
            throw Output.fail(error, json: false)
        }
        if !noPhones, !noIphones {
            do throws(LetheError) {
                let address = try LocalUsbmuxd.address(environment: usbmuxd.map { ["USBMUXD_SOCKET_ADDRESS": $0] } ?? ProcessInfo.processInfo.environment)
                settings.iphones = IPhoneHost(usbmux: UsbmuxClient(address: address.description, timeout: .seconds(15), connector: LocalUsbmuxd.connector(address)))
                settings.phoneWaitSeconds = max(1, phoneWaitSeconds)
            } catch {
                throw Output.fail(error, json: false)
            }
        }
        if !noPhones, !noAndroid {
            let port = adbPort ?? LocalADBServer.port()
            settings.adb = ADBClient(
                server: "127.0.0.1:\(port)", timeout: .seconds(15), connector: LocalADBServer.connector(port: port),
                starter: LocalADBServer.starter(port: port))
            settings.phoneWaitSeconds = max(1, phoneWaitSeconds)
        }
        let bench = LetheAgent.Bench(settings: settings, store: store, labels: labels, log: log)
        let shown = listen
        let notifier = SystemdNotifier()
        let app = Application(
            router: HTTPServer.router(bench: bench, store: store, trusted: trusted, tokens: tokens),
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: "lethe"),
            onServerRunning: { [demoToken, shown] _ in
                log("serving http://\(shown)/ (dashboard), /api/v1, /verify/{id}")
                if let demoToken { log("demo: open http://\(shown)/#token=\(demoToken) (a technician token, made for this run)") }
                if let error = notifier.notify("READY=1\nSTATUS=serving http://\(shown)/") { log("systemd: \(error)") }
            },
            logger: logger)
        let group = ServiceGroup(
            services: [DeviceWatchService(bench: bench, bays: bays), EventHeartbeatService(hub: bench.events), SystemdWatchdogService(notifier: notifier, bench: bench), app]
                + (delivery.map { [CatalogDeliveryService(delivery: $0)] } ?? [])
                + (settings.adb.map { [PhoneWatchService(bench: bench, client: $0, bays: bays)] } ?? [])
                + (settings.iphones.map { [IPhoneWatchService(bench: bench, host: $0)] } ?? []),
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
        await settings.lookup?.shutdown()
        for job in bench.jobs where job.state == .running { _ = try? bench.abort(job.id) }
        if settings.adb != nil, let stopped = LocalADBServer.stopIfStartedHere(port: adbPort ?? LocalADBServer.port()) { log("phones: \(stopped)") }
        log("stopped")
    }
}

/// A loop-backed demo drive with a fake customer file on it.
final class DemoDrive {
    let path: String
    let backing: String

    init(path: String, backing: String) {
        self.path = path
        self.backing = backing
    }

    static func create(log: (String) -> Void) throws(LetheError) -> DemoDrive {
        let backing = NSTemporaryDirectory() + "lethe-demo-\(getpid()).img"
        guard FileManager.default.createFile(atPath: backing, contents: nil),
            let handle = FileHandle(forWritingAtPath: backing)
        else { throw LetheError(.ioFailure, path: backing, "cannot create the demo drive image") }
        handle.seek(toFileOffset: 1 << 20)
        handle.write(Data("customer data: IBAN DE89 3704 0044 0532 0130 00\n".utf8))
        handle.truncateFile(atOffset: 256 << 20)
        handle.closeFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/sbin/losetup")
        process.arguments = ["-f", "--show", backing]
        let out = Pipe()
        process.standardOutput = out
        do { try process.run() } catch { throw LetheError(.ioFailure, path: "losetup", "cannot run losetup: \(error)") }
        process.waitUntilExit()
        let path = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0, path.hasPrefix("/dev/loop") else {
            try? FileManager.default.removeItem(atPath: backing)
            throw LetheError(.ioFailure, path: backing, "losetup could not attach the demo drive (root is needed)")
        }
        log("demo: drive \(path) (256 MiB over \(backing)) attached")
        return DemoDrive(path: path, backing: backing)
    }

    func remove(log: (String) -> Void) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/sbin/losetup")
        process.arguments = ["-d", path]
        try? process.run()
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: backing)
        log("demo: drive \(path) detached")
    }
}
