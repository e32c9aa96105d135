import Foundation
import LetheCore
import LetheLinux
import LethePhones
import LetheTesting
import Testing

/// A private adb server (its own HOME and port) and simulated phones it connects to over TCP.
final class ADBHarness: @unchecked Sendable {
    let home: String
    let port: Int
    let environment: [String: String]

    init() throws {
        home = NSTemporaryDirectory() + "lethe-adb-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        // Ports that neither a real adb (5037) nor its emulator scan (5554-5585) use.
        port = 15000 + Int(getpid() % 4000) + Int.random(in: 0..<500)
        var env = ProcessInfo.processInfo.environment
        env["HOME"] = home
        env["ANDROID_ADB_SERVER_PORT"] = String(port)
        env["ADB_VENDOR_KEYS"] = nil
        environment = env
    }

    /// Lethe's client of this server; it starts the server itself when needed.
    func client(timeout: Duration = .seconds(10)) -> ADBClient {
        ADBClient(
            server: "127.0.0.1:\(port)", timeout: timeout, connector: LocalADBServer.connector(port: port),
            starter: LocalADBServer.starter(port: port, environment: environment))
    }

    /// `adb -P PORT ARGS`, with the private HOME.
    @discardableResult
    func adb(_ arguments: String...) throws -> Host.Result {
        let result = try Subprocess.run(Host.which("adb") ?? "/usr/bin/adb", ["-P", String(port)] + arguments, environment: environment, timeout: 30)
        return Host.Result(status: result.status, stdout: result.output, stderr: result.output)
    }

    /// Connects the server to a simulated phone, and waits until it is listed.
    func connect(_ phone: SimulatedADBD, state: String = "device") throws -> String {
        let serial = "127.0.0.1:\(phone.port)"
        let result = try adb("connect", serial)
        #expect(result.stdout.contains("connected to"), "adb connect: \(result.stdout)")
        let listed = DaemonTests.poll(15) { () -> Bool? in
            ((try? client().devices()) ?? []).contains { $0.serial == serial && $0.state == state } ? true : nil
        }
        #expect(listed == true, "\(serial) never listed as \(state): \((try? adb("devices", "-l").stdout) ?? "")")
        return serial
    }

    /// Stops the private server (also on deinit; a test calls it in a defer, since a
    /// re-plugging thread may keep the harness alive after the test).
    func shutdown() {
        _ = try? adb("kill-server")
        try? FileManager.default.removeItem(atPath: home)
    }

    deinit { shutdown() }
}

/// A phone's scripted answers, from the recorded outputs in ../shared/fixtures/android.
enum PhoneScripts {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared/fixtures/android").path

    static func fixture(_ name: String) throws -> String { try String(contentsOfFile: "\(fixtures)/\(name)", encoding: .utf8) }

    /// A Pixel 6 (Android 15, file-based encryption) with a Google account, set up and in use.
    static func pixel6() throws -> SimulatedADBD.Script {
        let inUse: [String: SimulatedADBD.Answer] = [
            "getprop": .init(stdout: try fixture("getprop-pixel6-android15.txt")),
            "dumpsys battery": .init(stdout: try fixture("dumpsys-battery-aosp-2016-pixel-c.txt")),
            "dumpsys account": .init(stdout: "User UserInfo{0:Owner:c13} (current):\n  Accounts: 1\n    Account {name=owner@gmail.com, type=com.google}\n"),
            "settings get global device_provisioned": .init(stdout: "1\n"),
            "settings get secure user_setup_complete": .init(stdout: "1\n"),
            // Host function checks (toybox df, the sensor list, the modem, Wi-Fi).
            "df /data": .init(stdout: "Filesystem       1K-blocks    Used Available Use% Mounted on\n/dev/block/dm-45 115609696 9211728 106266896   8% /data\n"),
            "dumpsys sensorservice": .init(stdout: "Sensor Device:\nTotal 3 h/w sensors, 3 running 0 disabled clients:\nSensor List:\n0x00000001) LSM6DSR Accelerometer | STMicro | ver: 1\n0x00000002) LSM6DSR Gyroscope | STMicro | ver: 1\n0x00000003) TMD3702 Proximity | AMS | ver: 1\n"),
            "getprop gsm.version.baseband": .init(stdout: "g5123b-102852-230511-B-10112789\n"),
            "cmd wifi status": .init(stdout: "Wifi is enabled\nWifi scanning is always available\n"),
        ]
        return SimulatedADBD.Script(
            banner: ["ro.product.name": "oriole", "ro.product.model": "Pixel 6", "ro.product.device": "oriole"],
            states: ["in-use": inUse], initialState: "in-use")
    }
}

extension PhoneScripts {
    /// A debuggable Pixel 6 set up and in use, its accounts already removed; `recovery
    /// --wipe_data` reboots it (after `downSeconds`) into its out-of-box state. Its data
    /// partition has the recorded size (115609696 KiB) and `freeBytes` free.
    static func pixel6ReadyForReset(downSeconds: Double = 1.5, comesBack: Bool = true, freeBytes: UInt64 = 96 << 20) throws -> SimulatedADBD.Script {
        var script = try pixel6()
        script.dataPartition = SimulatedDataPartition(sizeBytes: 115_609_696 * 1024, freeBytes: freeBytes)
        let props = try fixture("getprop-pixel6-android15.txt") + "[ro.debuggable]: [1]\n"
        var inUse = script.states["in-use"]!
        inUse["getprop"] = .init(stdout: props)
        inUse["dumpsys account"] = .init(stdout: "User UserInfo{0:Owner:c13} (current):\n  Accounts: 0\n")
        inUse["recovery --wipe_data"] = .init(stdout: "", reboot: (downSeconds, comesBack ? "oobe" : nil))
        script.states["in-use"] = inUse
        script.states["oobe"] = [
            "getprop": .init(stdout: props),
            "settings get global device_provisioned": .init(stdout: "0\n"),
            "settings get secure user_setup_complete": .init(stdout: "0\n"),
            "dumpsys account": .init(stdout: "User UserInfo{0:Owner:c13} (current):\n  Accounts: 0\n"),
        ]
        return script
    }
}

extension PhoneScripts {
    /// A Pixel 7 on Android 16 in trade-in mode (not debuggable): `tradeinmode getstatus`
    /// answers from the recorded fixture; `tradeinmode evaluate` then `reboot` wipes it.
    static func pixel7TradeIn() throws -> SimulatedADBD.Script {
        let props = """
            [ro.product.brand]: [google]
            [ro.product.manufacturer]: [Google]
            [ro.product.model]: [Pixel 7]
            [ro.product.device]: [panther]
            [ro.serialno]: [TESTP7SERIAL02]
            [ro.build.version.release]: [16]
            [ro.build.version.sdk]: [36]
            [ro.build.version.security_patch]: [2026-10-05]
            [ro.boot.flash.locked]: [1]
            [ro.boot.verifiedbootstate]: [green]
            [ro.crypto.state]: [encrypted]
            [ro.crypto.type]: [file]
            [ro.debuggable]: [0]

            """
        let common: [String: SimulatedADBD.Answer] = [
            "getprop": .init(stdout: props),
            "tradeinmode getstatus": .init(stdout: try fixture("tradeinmode-getstatus-pixel7.json")),
            "dumpsys battery": .init(stdout: try fixture("dumpsys-battery-aosp-2024-capacity-level.txt").replacingOccurrences(of: "health: 3", with: "health: 2")),
            "dumpsys account": .init(stdout: "User UserInfo{0:Owner:c13} (current):\n  Accounts: 0\n"),
        ]
        var evaluating = common
        evaluating["tradeinmode evaluate"] = .init(stdout: "Entering evaluation mode. The device will be wiped when it restarts.\n")
        evaluating["reboot"] = .init(reboot: (1.0, "oobe"))
        var oobe = common
        oobe["settings get global device_provisioned"] = .init(stdout: "0\n")
        oobe["settings get secure user_setup_complete"] = .init(stdout: "0\n")
        return SimulatedADBD.Script(
            banner: ["ro.product.name": "panther", "ro.product.model": "Pixel 7", "ro.product.device": "panther"],
            states: ["trade-in": evaluating, "oobe": oobe], initialState: "trade-in")
    }
}

/// A simulated phone that a private adb server (started by Lethe's client) has connected to.
struct ConnectedPhone {
    let phone: SimulatedADBD
    let harness: ADBHarness
    let client: ADBClient
    let serial: String

    init(script: SimulatedADBD.Script) throws {
        phone = try SimulatedADBD(script: script)
        harness = try ADBHarness()
        client = harness.client()
        do {
            _ = try client.version()
            serial = try harness.connect(phone)
        } catch {
            harness.shutdown()
            phone.stop()
            throw error
        }
    }

    /// Stops the server, then the phone.
    func stop() {
        harness.shutdown()
        phone.stop()
    }
}

/// Re-plugs a TCP phone for the adb server (`adb connect` every half second), as the USB
/// stack does for a phone that restarts, until stopped.
final class Replugger: @unchecked Sendable {
    private let lock = NSLock()
    private var running = true
    private let finished = DispatchSemaphore(value: 0)

    init(_ harness: ADBHarness, serial: String) {
        let loop = Thread { [self] in
            while lock.withLock({ running }) {
                _ = try? harness.adb("connect", serial)
                usleep(500_000)
            }
            finished.signal()
        }
        loop.start()
    }

    /// Stops, and waits for the last `adb connect` (which would start a server again).
    func stop() {
        let was = lock.withLock { () -> Bool in
            defer { running = false }
            return running
        }
        if was { finished.wait() }
    }
}

/// The real Debian adb server against simulated phones that speak the ADB transport protocol:
/// Lethe starts the server, the server connects to the phone, and Lethe, through the server,
/// lists it, reads its identity and battery, and runs commands with their exit codes.
@Suite(.serialized) struct PhoneTests {
    static var hasADB: Bool { Host.which("adb") != nil }

    @Test func theRealAdbServerListsTheSimulatedPhoneAndLetheReadsIt() throws {
        guard Self.hasADB else {
            print("skipped: adb is not installed (apt-get install adb)")
            return
        }
        let phone = try SimulatedADBD(script: try PhoneScripts.pixel6())
        defer { phone.stop() }
        let harness = try ADBHarness()
        defer { harness.shutdown() }
        let client = harness.client()
        // Nothing listens yet: Lethe starts the server itself.
        #expect(try client.version() >= 39)
        let serial = try harness.connect(phone)
        let listed = try #require(try client.devices().first { $0.serial == serial })
        #expect(listed.state == "device" && listed.model == "Pixel_6" && listed.device == "oriole", "\(listed)")
        #expect(try client.features(serial: serial).contains("shell_v2"))

        let props = try AndroidProperties.parse(try client.shell(serial: serial, "getprop").stdout)
        #expect(props.identity.model == "Pixel 6" && props.identity.serial == "TESTP6SERIAL01" && props.identity.encryption == "file")
        let battery = try DumpsysBattery.parse(try client.shell(serial: serial, "dumpsys battery").stdout)
        #expect(battery.level == 19 && battery.status == "charging")
        // Shell v2: stderr apart, and the exit status.
        let missing = try client.shell(serial: serial, "tradeinmode getstatus")
        #expect(missing.exitCode == 127 && missing.stderr.contains("tradeinmode: inaccessible or not found") && missing.stdout.isEmpty, "\(missing)")
        #expect(phone.commands.contains("getprop") && phone.commands.contains("dumpsys battery"))
    }

    @Test func aPhoneThatRefusesTheHostKeyNeedsApproval() throws {
        guard Self.hasADB else {
            print("skipped: adb is not installed (apt-get install adb)")
            return
        }
        var script = try PhoneScripts.pixel6()
        script.refuseAuthorization = true
        let phone = try SimulatedADBD(script: script)
        defer { phone.stop() }
        let harness = try ADBHarness()
        defer { harness.shutdown() }
        let client = harness.client()
        _ = try client.version()
        _ = try harness.adb("connect", "127.0.0.1:\(phone.port)")
        let serial = "127.0.0.1:\(phone.port)"
        let seen = DaemonTests.poll(15) { (try? client.devices())?.first { $0.serial == serial && $0.state == "unauthorized" } }
        let device = try #require(seen, "\((try? harness.adb("devices", "-l").stdout) ?? "")")
        #expect(device.stateDescription.contains("needs USB-debugging approval"))
        do {
            _ = try client.shell(serial: serial, "getprop")
            Issue.record("a shell on an unauthorized phone")
        } catch {
            #expect(error.code == .unauthorized && error.path == serial, "\(error)")
        }
        #expect(!phone.commands.contains("getprop"))
    }

    @Test func aVanishedPhoneAndAMissingServerAreClearErrors() throws {
        guard Self.hasADB else {
            print("skipped: adb is not installed (apt-get install adb)")
            return
        }
        let phone = try SimulatedADBD(script: try PhoneScripts.pixel6())
        let harness = try ADBHarness()
        defer { harness.shutdown() }
        let client = harness.client(timeout: .seconds(5))
        _ = try client.version()
        let serial = try harness.connect(phone)
        phone.vanish()
        phone.stop()
        let gone = DaemonTests.poll(15) { () -> LetheError? in
            do throws(LetheError) {
                _ = try client.shell(serial: serial, "getprop")
                return nil
            } catch {
                return error
            }
        }
        let error = try #require(gone)
        #expect(error.code == .deviceVanished && error.path == serial, "\(error)")

        // No server and no way to start one: the error says what to install.
        let nowhere = ADBClient(server: "127.0.0.1:9", connector: LocalADBServer.connector(port: 9),
                                starter: LocalADBServer.starter(port: 9, environment: ["PATH": "/nonexistent"]))
        do {
            _ = try nowhere.devices()
            Issue.record("listed devices with no server")
        } catch {
            #expect(error.code == .unavailable && error.message.contains("apt-get install adb"), "\(error)")
        }
    }

    @Test func theResetFlowRebootsThePhoneIntoItsOutOfBoxStateAndOnlyThenCertifies() throws {
        guard Self.hasADB else {
            print("skipped: adb is not installed (apt-get install adb)")
            return
        }
        let connected = try ConnectedPhone(script: try PhoneScripts.pixel6ReadyForReset())
        defer { connected.stop() }
        let (phone, harness, client, serial) = (connected.phone, connected.harness, connected.client, connected.serial)
        let inspection = try PhoneProbe.inspect(client, serial: serial)
        #expect(inspection.identity.model == "Pixel 6" && inspection.debuggable && inspection.locks.frp.state == "unlocked")
        #expect(inspection.identity.capacityBytes == 128_000_000_000 && inspection.notes.contains { $0.contains("nominal size") }, "\(inspection)")
        #expect(inspection.battery?.level == 19)
        #expect(FactoryReset.refusal(inspection) == nil)
        let flow = try FactoryReset.choose(inspection, requested: nil)
        #expect(flow == .recovery)
        let replug = Replugger(harness, serial: serial)
        defer { replug.stop(); harness.shutdown() }
        var said: [String] = []
        let outcome = FactoryReset.run(client, phone: inspection, flow: flow, waitSeconds: 30) { said.append($0) }
        #expect(outcome.status == .erased && outcome.certified, "\(outcome) \(said)")
        #expect(outcome.checks.map(\.name) == ["device_provisioned", "user_setup_complete", "accounts"] && outcome.checks.allSatisfy(\.passed))
        #expect(phone.state == "oobe")
        #expect(phone.commands.contains("recovery --wipe_data"))
        #expect(said.contains { $0.contains("waiting for the phone to restart") })
    }

    @Test func aPhoneThatVanishesMidResetIsInterruptedNotCertified() throws {
        guard Self.hasADB else {
            print("skipped: adb is not installed (apt-get install adb)")
            return
        }
        let connected = try ConnectedPhone(script: try PhoneScripts.pixel6ReadyForReset(comesBack: false))
        defer { connected.stop() }
        let (harness, client, serial) = (connected.harness, connected.client, connected.serial)
        let inspection = try PhoneProbe.inspect(client, serial: serial)
        let replug = Replugger(harness, serial: serial)
        defer { replug.stop(); harness.shutdown() }
        let outcome = FactoryReset.run(client, phone: inspection, flow: .recovery, waitSeconds: 4)
        #expect(outcome.interrupted && outcome.status == .notErased && !outcome.certified, "\(outcome)")
        #expect(outcome.error?.contains("did not come back") == true && outcome.checks.isEmpty)
    }

    @Test func aPhoneWithAGoogleAccountOrWithoutFileBasedEncryptionIsRefused() throws {
        guard Self.hasADB else {
            print("skipped: adb is not installed (apt-get install adb)")
            return
        }
        var script = try PhoneScripts.pixel6()
        let blockEncrypted = try PhoneScripts.fixture("getprop-pixel6-android15.txt").replacingOccurrences(of: "[ro.crypto.type]: [file]", with: "[ro.crypto.type]: [block]")
        script.states["block"] = script.states["in-use"]!.merging(["getprop": .init(stdout: blockEncrypted)]) { $1 }
        let connected = try ConnectedPhone(script: script)
        defer { connected.stop() }
        let (phone, harness, client, serial) = (connected.phone, connected.harness, connected.client, connected.serial)
        let withAccount = try PhoneProbe.inspect(client, serial: serial)
        #expect(withAccount.locks.frp.state == "locked" && withAccount.locks.frp.bestEffort)
        #expect(FactoryReset.refusal(withAccount)?.contains("remove the account") == true)
        #expect(throws: LetheError.self) { try FactoryReset.choose(withAccount, requested: .tradeInMode) }
        #expect(try FactoryReset.choose(withAccount, requested: nil) == .guided)
        phone.reboot(after: 0, into: "block")
        let replug = Replugger(harness, serial: serial)
        defer { replug.stop(); harness.shutdown() }
        let blocked = try #require(DaemonTests.poll(15) { try? PhoneProbe.inspect(client, serial: serial) })
        #expect(FactoryReset.refusal(blocked)?.contains("file-based encryption") == true, "\(blocked.locks)")
    }

    /// `lethe phones erase` end to end: the real adb server, the simulated phone reset into its
    /// out-of-box state, the certificate verified by Python's cryptography against the schema,
    /// its PDF read by pdftotext; and a phone that never comes back gets a record, no
    /// certificate, and exit 5.
    @Test func lethePhonesEraseCertifiesOnlyWhatCameBackOutOfTheBox() throws {
        guard Self.hasADB, Host.which("pdftotext") != nil else {
            print("skipped: adb or pdftotext is not installed")
            return
        }
        let state = NSTemporaryDirectory() + "lethe-phone-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        #expect(try Host.lethe("keys", "init", "--state-dir", state).status == 0)
        let harness = try ADBHarness()
        defer { harness.shutdown() }
        _ = try harness.client().version()
        let phone = try SimulatedADBD(script: try PhoneScripts.pixel6ReadyForReset())
        defer { phone.stop() }
        let serial = try harness.connect(phone)
        let port = String(harness.port)

        let listed = try Host.run(Host.lethe, ["phones", "--adb-port", port])
        #expect(listed.stdout.contains(serial) && listed.stdout.contains("ready"), "\(listed.stdout) \(listed.stderr)")
        let devices = try Host.run(Host.lethe, ["devices", "--json", "--adb-port", port])
        let phones = (try? JSONSerialization.jsonObject(with: Data(devices.stdout.utf8)) as? [[String: Any]])?.filter { $0["kind"] as? String == "phone" } ?? []
        #expect(phones.contains { $0["path"] as? String == "adb:\(serial)" && $0["transport"] as? String == "adb" && $0["model"] as? String == "Pixel 6" }, "\(devices.stdout)")
        let inspected = try Host.run(Host.lethe, ["phones", "inspect", serial, "--adb-port", port])
        #expect(inspected.status == 0 && inspected.stdout.contains("Pixel 6") && inspected.stdout.contains("encryption: file"), "\(inspected.stdout) \(inspected.stderr)")
        let unconfirmed = try Host.run(Host.lethe, ["phones", "erase", serial, "--adb-port", port, "--state-dir", state])
        #expect(unconfirmed.status == 2 && unconfirmed.stderr.contains("--yes") && !phone.commands.contains("recovery --wipe_data"))

        let replug = Replugger(harness, serial: serial)
        let erased = try Host.run(Host.lethe, [
            "phones", "erase", serial, "--yes", "--adb-port", port, "--state-dir", state, "--report-dir", "\(state)/reports", "--wait-seconds", "30",
        ])
        replug.stop()
        #expect(erased.status == 0 && erased.stdout.hasPrefix("certified: "), "\(erased.stdout) \(erased.stderr)")
        let path = try #require(erased.stdout.split(separator: " ").dropFirst().first.map(String.init))
        let file = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        let report = try #require(file?["report"] as? [String: Any])
        #expect(report["certified"] as? Bool == true && report["status"] as? String == "erased")
        let sanitization = report["sanitization"] as? [String: Any]
        #expect(sanitization?["category"] as? String == "Purge" && (sanitization?["description"] as? String ?? "").contains("Cryptographic erase (factory reset, file-based encryption)"))
        let verification = report["verification"] as? [String: Any]
        #expect(verification?["mode"] as? String == "state" && (verification?["checks"] as? [[String: Any]])?.count == 3)
        #expect((report["device"] as? [String: Any])?["mediaType"] as? String == "mobile phone")
        #expect(try Host.lethe("report", "verify", path, "--state-dir", state).status == 0)
        if let python = try Host.pythonVerifyCertificate(path, state: state) {
            #expect(python.stdout.hasPrefix("VALID"), "\(python.stdout) \(python.stderr)")
        }
        let pdf = try Host.run("pdftotext", [path.replacingOccurrences(of: ".json", with: ".pdf"), "-"])
        #expect(pdf.stdout.contains("Cryptographic erase") && pdf.stdout.contains("Pixel 6"), "\(pdf.stdout.prefix(2000))")
        // The default free-space overwrite: 96 MiB free, 64 MiB left for Android, 32 MiB filled,
        // a sample read back, the files gone; on the certificate, the PDF and the terminal.
        let fill = try #require(sanitization?["freeSpaceOverwrite"] as? [String: Any], "\(String(describing: sanitization))")
        #expect(fill["result"] as? String == "passed" && fill["mode"] as? String == "sample" && fill["bytesWritten"] as? Int == 32 << 20, "\(fill)")
        #expect(fill["mismatches"] as? Int == 0 && (fill["samples"] as? Int ?? 0) > 0 && fill["filesRemoved"] as? Bool == true && fill["reserveBytes"] as? Int == 64 << 20)
        #expect(sanitization?["bytesWritten"] as? Int == 32 << 20 && (sanitization?["description"] as? String ?? "").contains("in addition: an overwrite of the file system's free space"))
        #expect(pdf.stdout.contains("Free-space overwrite") && pdf.stdout.contains("flash spare blocks"), "\(pdf.stdout.prefix(3000))")
        #expect(erased.stderr.contains("free space: 32.0 MiB written in 1 file on /data"), "\(erased.stderr)")
        #expect(phone.commands.contains { $0.hasPrefix("dd if=/data/local/tmp/lethe-fill/fill-00001.bin") } && phone.commands.contains("sync"))
        let chinese = try Host.lethe("report", "render", path, "--lang", "zh-CN", "--out", "\(state)/zh.pdf", "--state-dir", state)
        #expect(chinese.status == 0, "\(chinese.stderr)")
        #expect(try Host.run("pdftotext", ["\(state)/zh.pdf", "-"]).stdout.contains("剩余空间覆写"))

        // A phone that vanishes mid-reset: a signed record, not a certificate, exit 5.
        let gone = try SimulatedADBD(script: try PhoneScripts.pixel6ReadyForReset(comesBack: false))
        defer { gone.stop() }
        let goneSerial = try harness.connect(gone)
        let replugGone = Replugger(harness, serial: goneSerial)
        let interrupted = try Host.run(Host.lethe, [
            "phones", "erase", goneSerial, "--yes", "--adb-port", port, "--state-dir", state, "--report-dir", "\(state)/reports", "--wait-seconds", "4",
        ])
        replugGone.stop()
        #expect(interrupted.status == 5 && interrupted.stdout.hasPrefix("NOT certified") && interrupted.stdout.contains("did not come back"), "\(interrupted.stdout) \(interrupted.stderr)")
        let jobs = try Host.run("sqlite3", ["\(state)/lethe.sqlite", "SELECT status FROM job ORDER BY startedAt"]).stdout
        #expect(jobs.contains("erased") && jobs.contains("interrupted"), "\(jobs)")
        #expect(try Host.lethe("audit", "verify", "--state-dir", state).status == 0)
    }

    /// The daemon docks phones from the adb server's device list: a ready phone waits for the
    /// technician (the shipped android profile), its start resets it through the real adb
    /// server, the simulated phone comes back out of the box, the certificate is served and
    /// verifies, and the cosmetic grade issues the refurb report. A phone waiting for USB
    /// approval is listed with what to do, and gets no job.
    @Test func theDaemonDocksResetsAndCertifiesAPhone() throws {
        guard Self.hasADB, Host.canLoop else {
            print("skipped: needs adb and root (the daemon's device watcher)")
            return
        }
        let harness = try ADBHarness()
        defer { harness.shutdown() }
        _ = try harness.client().version()
        let phone = try SimulatedADBD(script: try PhoneScripts.pixel6ReadyForReset())
        defer { phone.stop() }
        let serial = try harness.connect(phone)
        var refusing = try PhoneScripts.pixel6()
        refusing.refuseAuthorization = true
        let unapproved = try SimulatedADBD(script: refusing)
        defer { unapproved.stop() }
        _ = try harness.adb("connect", "127.0.0.1:\(unapproved.port)")

        let bench = try PhoneDaemon(harness: harness)
        let (state, tech, base, daemon) = (bench.state, bench.tech, bench.base, bench.daemon)
        func job() -> [String: Any]? { bench.jobs(serial).first }
        let waiting = try #require(DaemonTests.poll(30) { job() }, "no job for the phone: \(daemon.stderr)")
        #expect(waiting["state"] as? String == "waiting" && waiting["profile"] as? String == "android" && waiting["method"] as? String == "crypto-erase-factory-reset", "\(waiting)")
        #expect(!phone.commands.contains("recovery --wipe_data"), "reset before anyone pressed start")
        // The unapproved phone: listed, protected, with the instruction; no job.
        let devices = DaemonTests.http("GET", "\(base)/api/v1/devices", token: tech)?.json as? [[String: Any]] ?? []
        let pending = devices.first { $0["path"] as? String == "adb:127.0.0.1:\(unapproved.port)" }
        #expect(pending?["protected"] as? Bool == true && (pending?["protectionReason"] as? String ?? "").contains("USB-debugging approval"), "\(devices)")

        let id = try #require(waiting["id"] as? String)
        let replug = Replugger(harness, serial: serial)
        defer { replug.stop(); harness.shutdown() }
        #expect(DaemonTests.http("POST", "\(base)/api/v1/jobs/\(id)/start", token: tech)?.status == 202)
        let done = try #require(DaemonTests.poll(60) { job().flatMap { $0["step"] as? String == "grade" ? $0 : nil } }, "\(daemon.stderr)")
        #expect(done["state"] as? String == "erased" && done["certified"] as? Bool == true, "\(done)")
        #expect((done["checks"] as? [String])?.count == 3 && done["batteryVerdict"] as? String == "unknown", "a Pixel C-style dump has no health: \(done)")
        #expect(phone.state == "oobe")
        let reportId = try #require(done["reportId"] as? String)
        let certificate = try #require(DaemonTests.http("GET", "\(base)/api/v1/reports/\(reportId)"))
        try certificate.body.write(to: URL(fileURLWithPath: "\(state)/phone.json"))
        #expect(try Host.lethe("report", "verify", "\(state)/phone.json", "--state-dir", state).status == 0)
        let bySerial = DaemonTests.http("GET", "\(base)/api/v1/reports?serial=TESTP6SERIAL01", token: tech)?.json as? [[String: Any]] ?? []
        #expect(bySerial.map { $0["id"] as? String } == [reportId], "\(bySerial)")
        let badIMEI = DaemonTests.http("GET", "\(base)/api/v1/reports?imei=12ab", token: tech)
        #expect(badIMEI?.status == 400 && String(decoding: badIMEI?.body ?? Data(), as: UTF8.self).contains("imei: expected 14 to 16 digits"))
        #expect((DaemonTests.http("GET", "\(base)/api/v1/reports?imei=490154203237518", token: tech)?.json as? [Any])?.isEmpty == true, "this Pixel 6 states no IMEI")
        #expect(String(decoding: certificate.body, as: UTF8.self).contains("Cryptographic erase (factory reset, file-based encryption)"))
        // The shipped android profile overwrote the free space first: 96 MiB free, 32 MiB filled.
        let served = (certificate.json as? [String: Any])?["report"] as? [String: Any]
        let fill = (served?["sanitization"] as? [String: Any])?["freeSpaceOverwrite"] as? [String: Any]
        #expect(fill?["result"] as? String == "passed" && fill?["bytesWritten"] as? Int == 32 << 20 && fill?["mismatches"] as? Int == 0, "\(String(describing: fill))")
        #expect(daemon.stderr.contains("free space: 32.0 MiB written in 1 file on /data"), "\(daemon.stderr)")
        // Host checks ran before the reset; the technician's are entered through the API.
        let hostChecks = done["functionChecks"] as? [String] ?? []
        #expect(hostChecks.contains { $0.hasPrefix("storage: pass") } && hostChecks.contains { $0.hasPrefix("sensors: pass (3 sensors") } && hostChecks.contains { $0.hasPrefix("wifi: pass") }, "\(hostChecks)")
        let badCheck = DaemonTests.http("POST", "\(base)/api/v1/jobs/\(id)/checks", token: tech, body: #"{"antenna":"pass"}"#)
        #expect(badCheck?.status == 400 && String(decoding: badCheck?.body ?? Data(), as: UTF8.self).contains("unknown check"))
        #expect(DaemonTests.http("POST", "\(base)/api/v1/jobs/\(id)/checks", token: tech, body: #"{"screen":"maybe"}"#)?.status == 400)
        #expect(DaemonTests.http("POST", "\(base)/api/v1/jobs/\(id)/checks", token: tech, body: #"{"screen":"pass","speaker":"fail"}"#)?.status == 200)
        #expect(DaemonTests.http("POST", "\(base)/api/v1/jobs/\(id)/grade", token: tech, body: #"{"grade":"B"}"#)?.status == 200)
        let graded = try #require(job())
        #expect(graded["step"] as? String == "done" && graded["refurbReportId"] != nil && graded["cosmeticGrade"] as? String == "B")
        let refurbId = try #require(graded["refurbReportId"] as? String)
        let refurb = (DaemonTests.http("GET", "\(base)/api/v1/reports/\(refurbId)")?.json as? [String: Any])?["report"] as? [String: Any]
        let findings = (refurb?["diagnostics"] as? [String: Any])?["findings"] as? [String] ?? []
        #expect(findings.contains { $0.hasPrefix("speaker: fail (confirmed by bench") } && refurb?["grade"] as? String == "D", "a failed speaker is not an A phone: \(String(describing: refurb))")
        #expect(DaemonTests.http("POST", "\(base)/api/v1/jobs/\(id)/checks", token: tech, body: #"{"screen":"pass"}"#)?.status == 409, "checks come before the grade")
        // The graded phone's catalog record is queued like a drive's (no catalog here: pending).
        let outbox = try Host.run(Host.lethe, ["sync", "status", "--state-dir", state]).stdout
        #expect(outbox.contains("pending 1, delivered 0, dead 0"), "\(outbox)")
        // The adb server stopped under the daemon: it says so, starts it again, and keeps serving.
        replug.stop()
        _ = try harness.adb("kill-server")
        #expect(daemon.waitForStderr("phones:", timeout: 20), "\(daemon.stderr)")
        let noStarter = ADBClient(server: "127.0.0.1:\(harness.port)", timeout: .seconds(2), connector: LocalADBServer.connector(port: harness.port))
        #expect(DaemonTests.poll(30) { (try? noStarter.devices()) != nil ? true : nil } == true, "the daemon did not start the server again: \(daemon.stderr)")
        #expect(DaemonTests.http("GET", "\(base)/healthz")?.status == 200)
        #expect(daemon.stderr.contains("waiting for the phone to restart"))
        daemon.stop()
        #expect(try Host.lethe("audit", "verify", "--state-dir", state).status == 0)
    }

    @Test func android16TradeInModeGivesIMEIsAndHealthAndResetsThroughEvaluation() throws {
        guard Self.hasADB else {
            print("skipped: adb is not installed (apt-get install adb)")
            return
        }
        let connected = try ConnectedPhone(script: try PhoneScripts.pixel7TradeIn())
        defer { connected.stop() }
        let (phone, harness, client, serial) = (connected.phone, connected.harness, connected.client, connected.serial)
        let inspection = try PhoneProbe.inspect(client, serial: serial)
        #expect(inspection.tradeInMode && !inspection.debuggable)
        #expect(inspection.identity.imeis == ["490154203237518", "356938035643809"] && inspection.identity.capacityBytes == 128_000_000_000)
        #expect(inspection.battery?.healthPercent == Sourced(100, source: "tradeinmode getstatus") && inspection.battery?.cycleCount?.value == 16)
        #expect(inspection.locks.frp == LockSignal(state: "unlocked", source: "tradeinmode getstatus: locks.factory_reset_protection"))
        #expect(!phone.commands.contains("dumpsys account"), "the phone's own FRP statement needs no guess")
        let flow = try FactoryReset.choose(inspection, requested: nil)
        #expect(flow == .tradeInMode)
        let replug = Replugger(harness, serial: serial)
        defer { replug.stop(); harness.shutdown() }
        let outcome = FactoryReset.run(client, phone: inspection, flow: flow, waitSeconds: 30)
        #expect(outcome.certified, "\(outcome)")
        #expect(phone.commands.contains("tradeinmode evaluate") && phone.commands.contains("reboot"))
        #expect(outcome.commands.first == "tradeinmode evaluate (exit 0)")
    }

    @Test func anAdbdWithoutShellV2StillGivesExitCodes() throws {
        guard Self.hasADB else {
            print("skipped: adb is not installed (apt-get install adb)")
            return
        }
        var script = try PhoneScripts.pixel6()
        script.features = ["cmd"]
        script.states["in-use"]!["false"] = .init(stderr: "", exitCode: 1)
        let connected = try ConnectedPhone(script: script)
        defer { connected.stop() }
        let (phone, client, serial) = (connected.phone, connected.client, connected.serial)
        let features = try client.features(serial: serial)
        #expect(!features.contains("shell_v2"))
        let props = try client.shell(serial: serial, "getprop")
        let model = try AndroidProperties.parse(props.stdout).identity.model
        #expect(props.exitCode == 0 && model == "Pixel 6", "\(props)")
        let failed = try client.shell(serial: serial, "false")
        #expect(failed.exitCode == 1)
        #expect(phone.commands.contains { $0.hasPrefix("getprop; echo LETHE-EXIT:") }, "\(phone.commands)")
    }
}
