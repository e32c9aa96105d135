import Foundation
import LetheCore
import LetheLinux
import LethePhones
import LetheTesting
import Testing

/// A private adb server (its own HOME and port) and simulated phones it connects to over TCP.
final class ADBHarness {
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

    deinit {
        _ = try? adb("kill-server")
        try? FileManager.default.removeItem(atPath: home)
    }
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
        ]
        return SimulatedADBD.Script(
            banner: ["ro.product.name": "oriole", "ro.product.model": "Pixel 6", "ro.product.device": "oriole"],
            states: ["in-use": inUse], initialState: "in-use")
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
}
