import ArgumentParser
import Foundation
import LetheAgent
import LetheCore
import LetheLinux
import LethePhones
import LetheWipe
import LetheReports

/// Where the adb server is.
struct ADBOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The adb server's port (else ANDROID_ADB_SERVER_PORT, else 5037). Lethe starts the server (Debian package adb) when none runs.", valueName: "port"))
    var adbPort: Int?

    func client(timeout: Duration = .seconds(15)) -> ADBClient {
        let port = adbPort ?? LocalADBServer.port()
        return ADBClient(
            server: "127.0.0.1:\(port)", timeout: timeout, connector: LocalADBServer.connector(port: port),
            starter: LocalADBServer.starter(port: port))
    }
}

/// Where usbmuxd is (iPhones).
struct UsbmuxOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Where usbmuxd listens for iPhones: UNIX:/path or host:port (else USBMUXD_SOCKET_ADDRESS, else /var/run/usbmuxd).", valueName: "address"))
    var usbmuxd: String?

    func host(timeout: Duration = .seconds(15)) throws(LetheError) -> IPhoneHost {
        let address = try LocalUsbmuxd.address(environment: usbmuxd.map { ["USBMUXD_SOCKET_ADDRESS": $0] } ?? ProcessInfo.processInfo.environment)
        return IPhoneHost(usbmux: UsbmuxClient(address: address.description, timeout: timeout, connector: LocalUsbmuxd.connector(address)))
    }

    /// The iPhone `id` names (`ios:UDID`, or a UDID usbmuxd lists), or nil for an Android serial.
    func iPhone(_ id: String) throws(LetheError) -> (IPhoneHost, UsbmuxDevice)? {
        let udid = id.hasPrefix("ios:") ? String(id.dropFirst(4)) : id
        guard id.hasPrefix("ios:") || udid.count >= 24 else { return nil }
        let host = try host()
        let listed: [UsbmuxDevice]
        do throws(LetheError) { listed = try host.usbmux.listDevices() } catch {
            if id.hasPrefix("ios:") { throw error }
            return nil
        }
        guard let device = listed.first(where: { $0.udid == udid }) else {
            if id.hasPrefix("ios:") { throw LetheError(.deviceNotFound, path: id, "usbmuxd does not list this iPhone: is it plugged in and unlocked?") }
            return nil
        }
        return (host, device)
    }
}

struct Phones: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Android phones (adb) and iPhones (usbmuxd): list, inspect (identity, battery, locks), erase with a certificate.",
        discussion: """
            Lethe talks to the adb server's host protocol on 127.0.0.1 (starting the server when none runs). A phone must have USB debugging on and this station approved ("Always allow").

              lethe phones                         every phone the adb server and usbmuxd see, and its state
              lethe phones inspect SERIAL          identity, battery health (with its source), FRP, Knox Guard, bootloader, encryption
              lethe phones erase SERIAL --yes --report-dir var/reports
                                                   factory reset, then the out-of-box check, then the certificate
              lethe phones inspect ios:UDID        an iPhone: pairs (tap Trust on it), then identity, battery, Find My, supervision
              lethe phones erase ios:UDID --yes    Erase All Content and Settings, the setup check, the certificate

            iPhones: Lethe is a client of Debian's usbmuxd (/var/run/usbmuxd, or USBMUXD_SOCKET_ADDRESS, or --usbmuxd). The iPhone must be unlocked and this station trusted (tap Trust). Lethe refuses to erase an iPhone whose Find My is on or that an organization manages (MDM); the certificate is issued only once the iPhone came back in setup, reading ActivationState Unactivated.

            The erase is a cryptographic erase (NIST SP 800-88 Purge) only on a phone with file-based encryption, so Lethe refuses others. It also refuses a phone whose FRP or Knox Guard would lock it after the reset. Flows: trade-in-mode (Android 16+), recovery-wipe-data (debuggable builds), operator-guided (the technician resets the phone; Lethe waits). A certificate is issued only when the phone restarts and comes back with device_provisioned 0, user_setup_complete 0 and no accounts.

            Examples:
              lethe phones list
              lethe phones inspect R58N123ABC
              lethe phones erase R58N123ABC --report-dir var/reports
            """,
        subcommands: [List.self, Inspect.self, Erase.self],
        defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The phones the adb server and usbmuxd see, with their state.",
            discussion: """
                Examples:
                  lethe phones list
                  lethe phones list --json --adb-port 5038
                """)
        @Flag(help: "JSON instead of text.") var json = false
        @OptionGroup var adb: ADBOptions
        @OptionGroup var usbmux: UsbmuxOptions

        func run() throws {
            var records: [DeviceRecord] = []
            var problems: [LetheError] = []
            do throws(LetheError) { records += try adb.client().devices().map(PhoneWatchService.record) } catch { problems.append(error) }
            do throws(LetheError) {
                let host = try usbmux.host()
                for device in try host.usbmux.listDevices() {
                    let state = (try? host.pairingState(device).get()) ?? .waitingForTrust
                    records.append(IPhoneWatchService.record(device, values: (try? host.publicValues(device)) ?? [:], pairing: state))
                }
            } catch {
                problems.append(error)
            }
            for problem in problems { Output.err("lethe: \(problem)") }
            if problems.count == 2, records.isEmpty { throw ExitCode(ExitStatus.refused) }
            if json { return Output.json(records) }
            if records.isEmpty { print("no phones (Android: USB debugging on, this station approved; iPhone: unlocked, this station trusted)") }
            for record in records {
                print("\(record.path)\t\(record.model ?? "-")\t\(record.protected ? record.protectionReason ?? "waiting" : "ready")")
            }
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Identity, battery, locks and encryption of one phone, each value with its source.",
            discussion: """
                Examples:
                  lethe phones inspect R58N123ABC
                  lethe phones inspect 00008030-001A2B3C4D5E6F7G --json --battery-threshold 80
                """)
        @Argument(help: "The phone's adb serial, or ios:UDID for an iPhone (from `lethe phones`).") var serial: String
        @Flag(help: "JSON instead of text.") var json = false
        @Option(help: ArgumentHelp("Battery health below this percentage fails.", valueName: "percent")) var batteryThreshold = 80
        @OptionGroup var adb: ADBOptions
        @OptionGroup var usbmux: UsbmuxOptions

        func run() throws {
            let phone: PhoneInspection
            do throws(LetheError) {
                if let (host, device) = try usbmux.iPhone(serial) {
                    phone = try IOSProbe.inspect(host, device: device)
                } else {
                    phone = try PhoneProbe.inspect(adb.client(), serial: serial)
                }
            } catch {
                throw Output.fail(error, json: json)
            }
            if json { return Output.json(phone) }
            Phones.describe(phone, threshold: batteryThreshold)
        }
    }

    static func describe(_ phone: PhoneInspection, threshold: Int) {
        let id = phone.identity
        if phone.platform == .ios { return describeIPhone(phone, threshold: threshold) }
        print("\(phone.serial): \(id.manufacturer ?? id.brand ?? "?") \(id.model ?? "?") (\(id.device ?? "?")), serial \(id.serial ?? "?")")
        print("  Android \(id.androidVersion ?? "?") (SDK \(id.sdk.map(String.init) ?? "?")), security patch \(id.securityPatch ?? "unknown")")
        describeHardware(phone, threshold: threshold)
        let frp = phone.locks.frp
        print("  FRP: \(frp.state)\(frp.bestEffort ? " (best effort)" : "") from \(frp.source)\(frp.detail.map { ": \($0)" } ?? "")")
        if let knox = phone.locks.knoxGuard { print("  Knox Guard: \(knox.state) (\(knox.source))") }
        print("  bootloader: \(phone.locks.bootloaderUnlocked.map { $0 ? "UNLOCKED" : "locked" } ?? "unknown"), verified boot \(id.verifiedBootState ?? "unknown")")
        print("  encryption: \(phone.locks.encryption ?? "none or unknown")\(phone.locks.supportsCryptographicErase ? " (a factory reset is a cryptographic erase)" : "")")
        print("  trade-in mode: \(phone.tradeInMode ? "yes" : "no"); debuggable build: \(phone.debuggable ? "yes" : "no")")
        for note in phone.notes { print("  note: \(note)") }
        if let refusal = FactoryReset.refusal(phone) { print("  cannot be erased now: \(refusal)") }
    }

    /// The IMEIs, storage and battery, as both kinds of phone give them.
    static func describeHardware(_ phone: PhoneInspection, threshold: Int) {
        let id = phone.identity
        if !id.imeis.isEmpty { print("  IMEI \(id.imeis.joined(separator: ", "))") }
        if let capacity = id.capacityBytes { print("  storage \(capacity / 1_000_000_000) GB") }
        guard let battery = phone.battery else { return }
        let health = battery.healthPercent.map { "\($0.value)% (\($0.source))" } ?? "unknown"
        let details = [battery.cycleCount.map { "\($0.value) cycles" } ?? "cycles unknown", battery.level.map { "level \($0)%" }, battery.condition].compactMap { $0 }
        print("  battery: health \(health), \(details.joined(separator: ", ")): \(battery.verdict(threshold: threshold).rawValue.uppercased()) against \(threshold)%")
    }

    static func describeIPhone(_ phone: PhoneInspection, threshold: Int) {
        let id = phone.identity
        print("\(phone.path): \(id.model ?? "?") (\(id.productType ?? "?"), model number \(id.modelNumber ?? "?")), serial \(id.serial ?? "?")")
        print("  iOS \(id.iosVersion ?? "?") (\(id.fingerprint ?? "?")), activation \(id.activationState ?? "unknown")")
        describeHardware(phone, threshold: threshold)
        for (name, signal) in [("Find My", phone.locks.findMy), ("supervision", phone.locks.supervision)] {
            guard let signal else { continue }
            print("  \(name): \(signal.state)\(signal.bestEffort ? " (best effort)" : "") from \(signal.source)\(signal.detail.map { ": \($0)" } ?? "")")
        }
        print("  profiles: \(phone.locks.profiles.isEmpty ? "none" : phone.locks.profiles.joined(separator: ", "))")
        for note in phone.notes { print("  note: \(note)") }
        if let refusal = FactoryReset.refusal(phone) { print("  cannot be erased now: \(refusal)") }
    }

    struct Erase: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Factory-reset a phone, check it came back out of the box, and certify the cryptographic erase.",
            discussion: """
                Exit status: 0 certified; 2 refused before anything was sent (no file-based encryption, FRP, Knox Guard, Find My or MDM, an iPhone not trusted yet, bad options); 4 not erased (the reset failed, or the phone came back set up); 5 interrupted (the phone never came back: unplugged mid-reset, or USB debugging off after the reset).

                An Android phone's free space is first overwritten (--overwrite-free-space, default sample): files of keystream pushed over adb until /data has 64 MiB left, synced, read back in part (or, with full, entirely) and deleted. That is recorded on the certificate in addition to the cryptographic erase, never instead of it: file writes do not reach the flash's spare blocks. A write or read-back failure stops before the reset. iPhones: not available (use off).

                Examples:
                  lethe phones erase R3CTEST0S24 --yes --report-dir var/reports
                  lethe phones erase R3CTEST0S24 --yes --overwrite-free-space off
                  lethe phones erase ios:00008101-000A1B2C3D4E001E --yes
                """)
        @Argument(help: "The phone's adb serial, or ios:UDID for an iPhone (from `lethe phones`).") var serial: String
        @Flag(help: "Yes, reset this phone (everything on it is lost).") var yes = false
        @Option(help: ArgumentHelp("trade-in-mode, recovery-wipe-data or operator-guided (default: the best the phone allows).", valueName: "flow")) var flow: String?
        @Option(help: ArgumentHelp("How long to wait for the phone to restart, and again to come back.", valueName: "seconds")) var waitSeconds = 600.0
        @Option(help: ArgumentHelp("Android: overwrite /data's free space before the reset: off, sample (read a sample back) or full (read all of it back).", valueName: "mode")) var overwriteFreeSpace: FreeSpaceOverwriteMode?
        @Option(help: ArgumentHelp("Write the signed certificate and refurb report here.", valueName: "dir")) var reportDir = "var/reports"
        @Option(help: "Language of the PDFs: en or zh-CN.") var lang: ReportLanguage = .en
        @Option(help: ArgumentHelp("Battery health below this percentage fails.", valueName: "percent")) var batteryThreshold = 80
        @Option(name: .customLong("operator"), help: ArgumentHelp("Who is erasing, for the certificate.", valueName: "name")) var operatorName: String?
        @OptionGroup var adb: ADBOptions
        @OptionGroup var usbmux: UsbmuxOptions
        @OptionGroup var state: StateOptions

        func run() throws {
            let client = adb.client()
            var iPhone: (host: IPhoneHost, device: UsbmuxDevice)?
            let phone: PhoneInspection
            let chosen: ResetFlow
            let reporting: PhoneReporting
            do throws(LetheError) {
                guard yes else { throw LetheError(.confirmationRequired, path: serial, "a factory reset loses everything on the phone: add --yes") }
                let requested = try flow.map { name throws(LetheError) -> ResetFlow in
                    guard let parsed = ResetFlow(rawValue: name) else {
                        throw LetheError(.invalidArgument, path: "--flow", "unknown flow \"\(name)\"; use \(ResetFlow.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    return parsed
                }
                iPhone = try usbmux.iPhone(serial)
                if iPhone != nil, let mode = overwriteFreeSpace, mode != .off {
                    throw LetheError(.invalidArgument, path: "--overwrite-free-space", FreeSpaceOverwriteMode.iPhoneRefusal)
                }
                if let iPhone { phone = try IOSProbe.inspect(iPhone.host, device: iPhone.device) } else { phone = try PhoneProbe.inspect(client, serial: serial) }
                if let refusal = FactoryReset.refusal(phone) { throw LetheError(.protectedDevice, path: serial, refusal) }
                chosen = try FactoryReset.choose(phone, requested: requested)
                reporting = try PhoneReporting(directory: reportDir, stateDirectory: state.directory, station: try state.station(), phone: phone, operatorName: operatorName)
                try reporting.recordStart(profile: nil, flow: chosen)
            } catch {
                _ = Output.fail(error, json: false)
                throw ExitCode(ExitStatus.refused)
            }
            Output.err("lethe: \(serial): \(phone.identity.model ?? "phone"), \(chosen.title)")
            let say: (String) -> Void = { Output.err("lethe: \(serial): \($0)") }
            var notStarted: ResetOutcome?
            let mode = overwriteFreeSpace ?? .sample
            if iPhone == nil, mode != .off {
                let fill = overwriteFreeSpaceOf(client, mode: mode)
                reporting.freeSpaceOverwrite = fill.record
                notStarted = fill.blockedReset(chosen)
            }
            let outcome = notStarted ?? iPhone.map { IOSErase.run($0.host, device: $0.device, phone: phone, waitSeconds: waitSeconds, say: say) }
                ?? FactoryReset.run(client, phone: phone, flow: chosen, waitSeconds: waitSeconds, say: say)
            if let fill = reporting.freeSpaceOverwrite { Output.err("lethe: \(serial): free space: \(fill.summary)") }
            let written: Reporting.Written
            do {
                written = try reporting.finish(outcome, threshold: batteryThreshold, language: lang, toolVersion: LetheVersion.string)
            } catch {
                Output.err("lethe: \(serial): the certificate could not be written: \(error)")
                throw ExitCode(ExitStatus.reportNotWritten)
            }
            for check in outcome.checks { Output.err("lethe: \(serial): \(check.name) = \(check.observed) (expected \(check.expected)): \(check.passed ? "ok" : "FAILED")") }
            if written.certified {
                print("certified: \(written.certificate.jsonPath) (refurb report \(written.refurb?.jsonPath ?? "-"))")
                return
            }
            print("NOT certified: \(outcome.error ?? "the out-of-box check failed"); record \(written.certificate.jsonPath)")
            throw ExitCode(outcome.interrupted ? ExitStatus.aborted : ExitStatus.notErased)
        }
    }
}

extension Phones.Erase {
    /// The free-space overwrite with a progress bar (or a line every 10 s when not a terminal).
    func overwriteFreeSpaceOf(_ client: ADBClient, mode: FreeSpaceOverwriteMode) -> FreeSpaceFill.Outcome {
        Output.err("lethe: \(serial): overwriting the free space of /data (\(mode.rawValue) read-back)")
        let renderer = ProgressRenderer(json: false)
        // SIGINT/SIGTERM stop the fill between chunks; it removes its files.
        let stop = WipeCancellation()
        let trap = SignalTrap { stop.cancel(reason: $0) }
        defer { withExtendedLifetime(trap) {} }
        let outcome = FreeSpaceFill.run(client, serial: serial, options: FreeSpaceFill.Options(mode: mode), progress: { p in
            renderer.show(WipeProgress(
                phase: p.phase == "write" ? .write : .verify, pass: 1, passCount: 1, phaseBytesDone: p.bytesDone, phaseBytesTotal: p.bytesTotal,
                bytesDone: p.bytesDone, bytesTotal: p.bytesTotal, bytesPerSecond: p.bytesPerSecond, etaSeconds: p.etaSeconds, badSectorCount: 0),
                stage: p.phase == "write" ? "overwriting free space" : "reading the fill back")
        }, shouldStop: { stop.isCancelled })
        renderer.finish()
        return outcome
    }
}
