import Foundation
import LetheAgent
import LetheCore
import LetheLinux
import LethePhones
import LetheTesting
import Testing

/// A simulated iPhone behind a simulated usbmuxd, read by Lethe and by Debian's real
/// libimobiledevice tools through `USBMUXD_SOCKET_ADDRESS`: what they print must match what
/// Lethe reads.
@Suite(.serialized, .timeLimit(.minutes(3))) struct IPhoneTests {
    static let udid = "00008101-000A1B2C3D4E001E"

    static func script() -> SimulatedIPhone.Script {
        var script = SimulatedIPhone.Script(udid: udid, values: [
            "DeviceClass": "iPhone", "DeviceName": "Alex's iPhone", "ProductType": "iPhone13,2", "ProductVersion": "17.5.1",
            "BuildVersion": "21F90", "HardwareModel": "D53gAP", "ModelNumber": "MGJ83", "RegionInfo": "B/A", "SerialNumber": "F2LZK0TESTXX",
            "InternationalMobileEquipmentIdentity": "356728110000007", "InternationalMobileEquipmentIdentity2": "356728110000015",
            "ActivationState": "Activated", "CPUArchitecture": "arm64e", "WiFiAddress": "a4:83:e7:00:00:01",
        ])
        script.domains["com.apple.disk_usage"] = ["TotalDiskCapacity": 128_000_000_000, "TotalDataCapacity": 110_000_000_000]
        script.domains["com.apple.fmip"] = ["IsAssociated": false]
        script.battery = [
            "AppleRawMaxCapacity": 3_412, "DesignCapacity": 3_815, "NominalChargeCapacity": 3_450, "CycleCount": 412, "CurrentCapacity": 81,
            "Temperature": 2_950, "Voltage": 4_021,
        ]
        return script
    }

    static func tool(_ name: String, _ arguments: [String], usbmuxd: SimulatedUsbmuxd, home: String) throws -> Host.Result {
        try Host.run("/usr/bin/env", ["USBMUXD_SOCKET_ADDRESS=\(usbmuxd.address)", "HOME=\(home)", name] + arguments, timeout: 60)
    }

    static var toolsInstalled: Bool { Host.which("idevice_id") != nil && Host.which("ideviceinfo") != nil }

    /// Lethe's client of a simulated usbmuxd.
    static func host(_ usbmuxd: SimulatedUsbmuxd, timeout: Duration = .seconds(10)) -> IPhoneHost {
        IPhoneHost(usbmux: UsbmuxClient(address: usbmuxd.address, timeout: timeout, connector: LocalUsbmuxd.connector(.tcp(host: "127.0.0.1", port: usbmuxd.port))))
    }

    /// `Key: Value` lines as ideviceinfo prints them.
    static func lines(_ text: String) -> [String: String] {
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            values[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return values
    }

    /// The trust prompt is pending twice, then tapped: Lethe pairs, inspects, and stores the
    /// record with usbmuxd, where the real tools find it and read the same values.
    @Test(.enabled(if: toolsInstalled, "apt-get install libimobiledevice-utils"))
    func letheAndTheRealToolsAgreeOnEveryValue() throws {
        let usbmuxd = try SimulatedUsbmuxd()
        defer { usbmuxd.stop() }
        var script = Self.script()
        script.trust = ["PairingDialogResponsePending", "PairingDialogResponsePending"]
        let phone = try SimulatedIPhone(script: script)
        usbmuxd.plug(phone)
        let home = NSTemporaryDirectory() + "lethe-ios-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: home) }
        let host = Self.host(usbmuxd)

        let devices = try host.usbmux.listDevices()
        #expect(devices.map(\.udid) == [Self.udid])
        let listed = try Self.tool("idevice_id", ["-l"], usbmuxd: usbmuxd, home: home)
        #expect(listed.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == Self.udid, "\(listed.stderr)")
        let device = try #require(devices.first)
        #expect(try host.publicValues(device)["ProductType"] as? String == "iPhone13,2")

        // The prompt: pending, pending, then tapped.
        for _ in 0..<2 {
            #expect { try host.pair(device) } throws: { ($0 as? LetheError)?.code == .pairingPending }
            #expect(PairingState(LetheError(.pairingPending, "")) == .waitingForTrust)
        }
        try host.pair(device)
        #expect(usbmuxd.pairRecords[Self.udid] != nil, "the record is kept by usbmuxd")

        let phoneSeen = try IOSProbe.inspect(host, device: device)
        #expect(phoneSeen.platform == .ios && phoneSeen.path == "ios:\(Self.udid)")
        #expect(phoneSeen.identity.model == "iPhone 12" && phoneSeen.identity.modelNumber == "MGJ83B/A")
        #expect(phoneSeen.identity.imeis == ["356728110000007", "356728110000015"])
        #expect(phoneSeen.identity.capacityBytes == 128_000_000_000)
        #expect(phoneSeen.battery?.healthPercent == Sourced(89, source: "diagnostics_relay IORegistry AppleSmartBattery: AppleRawMaxCapacity / DesignCapacity"))
        #expect(phoneSeen.battery?.cycleCount?.value == 412)
        #expect(phoneSeen.locks.findMy?.state == "unknown" && phoneSeen.locks.findMy?.bestEffort == true, "IsAssociated false is not proof")
        #expect(phoneSeen.locks.supervision?.state == "unlocked" && phoneSeen.locks.blockers.isEmpty)

        // The real tools, with the record Lethe made, read the same values.
        let info = try Self.tool("ideviceinfo", [], usbmuxd: usbmuxd, home: home)
        #expect(info.status == 0, "\(info.stderr)")
        let real = Self.lines(info.stdout)
        #expect(real["SerialNumber"] == phoneSeen.identity.serial && real["SerialNumber"] == "F2LZK0TESTXX")
        #expect(real["ProductType"] == phoneSeen.identity.productType)
        #expect(real["ProductVersion"] == phoneSeen.identity.iosVersion)
        #expect(real["ActivationState"] == phoneSeen.identity.activationState)
        #expect(real["InternationalMobileEquipmentIdentity"] == phoneSeen.identity.imeis.first)
        #expect(real["UniqueDeviceID"] == phoneSeen.identity.udid)
        #expect(real["ModelNumber"].map { $0 + (real["RegionInfo"] ?? "") } == phoneSeen.identity.modelNumber)
        let disk = try Self.tool("ideviceinfo", ["-q", "com.apple.disk_usage", "-k", "TotalDiskCapacity"], usbmuxd: usbmuxd, home: home)
        #expect(UInt64(disk.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) == phoneSeen.identity.capacityBytes, "\(disk.stdout) \(disk.stderr)")
        let diagnostics = try Self.tool("idevicediagnostics", ["ioregentry", "AppleSmartBattery"], usbmuxd: usbmuxd, home: home)
        let plist = try #require(try PropertyListSerialization.propertyList(from: Data(diagnostics.stdout.utf8), format: nil) as? [String: Any], "\(diagnostics.stderr)")
        let registry = try #require(plist["IORegistry"] as? [String: Any])
        let raw = try #require(registry["AppleRawMaxCapacity"] as? Int), design = try #require(registry["DesignCapacity"] as? Int)
        #expect(raw * 100 / design == phoneSeen.battery?.healthPercent?.value)
        #expect(registry["CycleCount"] as? Int == phoneSeen.battery?.cycleCount?.value)
    }

    /// The other way round: Debian's `idevicepair pair` pairs (after the trust prompt), and
    /// Lethe works with the record libimobiledevice made, without pairing again.
    @Test(.enabled(if: toolsInstalled, "apt-get install libimobiledevice-utils"))
    func aRecordMadeByIdevicepairServesLethe() throws {
        let usbmuxd = try SimulatedUsbmuxd()
        defer { usbmuxd.stop() }
        var script = Self.script()
        script.trust = ["PairingDialogResponsePending"]
        let phone = try SimulatedIPhone(script: script)
        usbmuxd.plug(phone)
        let home = NSTemporaryDirectory() + "lethe-ios-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: home) }
        let pending = try Self.tool("idevicepair", ["pair"], usbmuxd: usbmuxd, home: home)
        #expect(pending.status != 0 && (pending.stdout + pending.stderr).contains("trust dialog"), "\(pending.stdout) \(pending.stderr)")
        let paired = try Self.tool("idevicepair", ["pair"], usbmuxd: usbmuxd, home: home)
        #expect(paired.status == 0 && paired.stdout.contains("SUCCESS"), "\(paired.stdout) \(paired.stderr)")
        #expect(usbmuxd.pairRecords[Self.udid] != nil && phone.pairedHosts.count == 1)
        let host = Self.host(usbmuxd)
        let device = try #require(try host.usbmux.listDevices().first)
        #expect(host.pairingState(device) == .success(.paired))
        let seen = try IOSProbe.inspect(host, device: device)
        #expect(seen.identity.serial == "F2LZK0TESTXX" && seen.battery?.cycleCount?.value == 412)
        #expect(phone.pairedHosts.count == 1, "Lethe used libimobiledevice's record; it did not pair again")
        let validated = try Self.tool("idevicepair", ["validate"], usbmuxd: usbmuxd, home: home)
        #expect(validated.status == 0, "\(validated.stdout) \(validated.stderr)")
    }

    /// The named pairing states: denied, passcode-locked, and a stale record the phone refuses
    /// (deleted and paired again).
    @Test func pairingStatesAreNamed() throws {
        let usbmuxd = try SimulatedUsbmuxd()
        defer { usbmuxd.stop() }
        var script = Self.script()
        script.trust = ["PasswordProtected", "UserDeniedPairing"]
        let phone = try SimulatedIPhone(script: script)
        usbmuxd.plug(phone)
        let host = Self.host(usbmuxd)
        let device = try #require(try host.usbmux.listDevices().first)
        #expect(host.pairingState(device) == .success(.waitingForTrust), "no record yet")
        #expect { try host.pair(device) } throws: { ($0 as? LetheError)?.code == .passcodeLocked }
        #expect { try host.pair(device) } throws: { error in
            let e = error as? LetheError
            return e?.code == .pairingDenied && PairingState(e!)?.instruction.contains("plug it in again") == true
        }
        try host.pair(device)
        #expect(host.pairingState(device) == .success(.paired))
        // The phone forgets this host (as after an erase elsewhere): the record is stale; a
        // session deletes it, pairs again, and goes on.
        phone.forgetHosts()
        #expect(host.pairingState(device) == .success(.staleRecord))
        let (session, _) = try host.session(device)
        session.close()
        #expect(phone.pairedHosts.count == 1)
    }

    /// Hostile answers: garbage, a truncated plist, a connection closed mid-message: each a
    /// named error, never a crash or a hang.
    @Test func garbledAnswersAreNamedErrors() throws {
        let usbmuxd = try SimulatedUsbmuxd()
        defer { usbmuxd.stop() }
        let phone = try SimulatedIPhone(script: Self.script())
        usbmuxd.plug(phone)
        let host = Self.host(usbmuxd, timeout: .seconds(3))
        let device = try #require(try host.usbmux.listDevices().first)
        try host.pair(device)
        for fault in [SimulatedIPhone.Fault.garbage, .truncated, .close] {
            phone.update { $0.faults = ["GetValue": fault] }
            #expect(throws: LetheError.self, "\(fault)") { try IOSProbe.inspect(host, device: device) }
        }
        phone.update { $0.faults = ["IORegistry": .garbage] }
        let partial = try IOSProbe.inspect(host, device: device)
        #expect(partial.battery == nil && partial.notes.contains { $0.hasPrefix("battery: ") }, "a bad battery answer is a note: \(partial.notes)")
    }

    /// Recorded outputs of real iPhones (../shared/fixtures/ios): identity lines and the GasGauge
    /// fragment, whose FullChargeCapacity (100 since iOS 12.2) is never taken for health.
    @Test func recordedOutputsOfRealIPhonesParse() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/fixtures/ios")
        guard FileManager.default.fileExists(atPath: dir.path) else {
            print("skipped: ../shared/fixtures/ios is not beside the repository")
            return
        }
        for (file, state) in [("ideviceinfo-activated.txt", "Activated"), ("ideviceinfo-unactivated.txt", "Unactivated")] {
            let values: [String: Any] = Self.lines(try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8))
            var notes: [String] = []
            let identity = IOSProbe.identity(values, udid: "FIXTURE", notes: &notes)
            #expect(identity.activationState == state, "\(file)")
            #expect(identity.brand == "Apple" && identity.encryption == "file")
        }
        let fragment = try String(contentsOf: dir.appendingPathComponent("diagnostics-gasgauge-fragment.plist"), encoding: .utf8)
        let wrapped = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><plist version=\"1.0\">\(fragment)</plist>"
        let gasGauge = try Plist.decode(Array(wrapped.utf8), what: "fixture")
        let battery = IOSProbe.battery(gasGauge, entry: "GasGauge")
        #expect(battery.healthPercent == nil, "FullChargeCapacity 100 is not a health reading")
        #expect(battery.cycleCount?.value == 425)
    }

    /// Malformed variants of the recorded outputs: every cut of the gas-gauge plist, values of
    /// the wrong type, and identities with fields missing, empty or unknown. Each is a named
    /// error or an absent value with a note, never a crash or a made-up value.
    @Test func malformedVariantsOfTheFixturesAreNamedOrAbsent() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/fixtures/ios")
        guard FileManager.default.fileExists(atPath: dir.path) else {
            print("skipped: ../shared/fixtures/ios is not beside the repository")
            return
        }
        let fragment = try String(contentsOf: dir.appendingPathComponent("diagnostics-gasgauge-fragment.plist"), encoding: .utf8)
        let whole = Array("<?xml version=\"1.0\" encoding=\"UTF-8\"?><plist version=\"1.0\">\(fragment)</plist>".utf8)
        let dictEnd = try #require(String(decoding: whole, as: UTF8.self).range(of: "</dict>")).lowerBound.utf16Offset(in: String(decoding: whole, as: UTF8.self))
        var refused = 0
        for cut in 0..<whole.count {
            do {
                let values = try Plist.decode(Array(whole.prefix(cut)), what: "gas gauge cut at \(cut)")
                // A cut that still parses is one past the dictionary's end: its values are whole.
                #expect(cut > dictEnd, "a plist cut at byte \(cut) of \(whole.count), inside its dictionary, parsed")
                #expect(IOSProbe.battery(values, entry: "GasGauge").cycleCount?.value == 425)
            } catch {
                #expect(error.message.contains("gas gauge cut at \(cut)") || error.path == "gas gauge cut at \(cut)")
                refused += 1
            }
        }
        #expect(refused >= dictEnd, "every cut inside the dictionary is refused")
        // Values of the wrong type are absent, not guessed.
        let retyped = String(decoding: whole, as: UTF8.self).replacingOccurrences(of: "<integer>425</integer>", with: "<string>425</string>")
            .replacingOccurrences(of: "<integer>1751</integer>", with: "<real>1751.5</real>")
        let battery = IOSProbe.battery(try Plist.decode(Array(retyped.utf8), what: "retyped"), entry: "GasGauge")
        #expect(battery.cycleCount == nil && battery.healthPercent == nil)
        // Identities with a field missing, empty or unknown.
        var values: [String: Any] = Self.lines(try String(contentsOf: dir.appendingPathComponent("ideviceinfo-activated.txt"), encoding: .utf8))
        values["ActivationState"] = nil
        values["SerialNumber"] = ""
        values["ProductType"] = "iPhone99,9"
        values["InternationalMobileEquipmentIdentity"] = 351_234_567_890_123
        var notes: [String] = []
        let identity = IOSProbe.identity(values, udid: "FIXTURE", notes: &notes)
        #expect(identity.activationState == nil && identity.serial == nil)
        #expect(identity.model == "iPhone99,9" && notes.contains { $0.contains("iPhone99,9 is not in the model table") })
        #expect(!identity.imeis.contains { $0.contains("351234567890123") })
    }
}

/// The command line with a simulated iPhone: listed by `lethe phones` and `lethe devices`,
/// "tap Trust" until the prompt is answered, inspected, and erased with a certificate.
@Suite(.serialized, .timeLimit(.minutes(3))) struct IPhoneCLITests {
    @Test func lethePhonesListsInspectsAndErasesAnIPhone() throws {
        let usbmuxd = try SimulatedUsbmuxd()
        defer { usbmuxd.stop() }
        var script = IPhoneTests.script()
        script.trust = ["PairingDialogResponsePending"]
        let phone = try SimulatedIPhone(script: script)
        usbmuxd.plug(phone)
        let state = NSTemporaryDirectory() + "lethe-ios-cli-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        #expect(try Host.lethe("keys", "init", "--state-dir", state).status == 0)
        let at = ["--usbmuxd", usbmuxd.address, "--adb-port", "1"]
        let listed = try Host.run(Host.lethe, ["phones", "list"] + at)
        #expect(listed.stdout.contains("ios:\(IPhoneTests.udid)\tiPhone 12\t"), "\(listed.stdout) \(listed.stderr)")
        let devices = try Host.run(Host.lethe, ["devices", "--json"] + at)
        let records = (try? JSONSerialization.jsonObject(with: Data(devices.stdout.utf8))) as? [[String: Any]] ?? []
        #expect(records.contains { $0["path"] as? String == "ios:\(IPhoneTests.udid)" && $0["transport"] as? String == "ios" }, "\(devices.stdout)")
        // The trust prompt is showing: named, with what to do.
        let pending = try Host.run(Host.lethe, ["phones", "inspect", "ios:\(IPhoneTests.udid)"] + at)
        #expect(pending.status != 0 && pending.stderr.contains("tap Trust"), "\(pending.stderr)")
        let inspected = try Host.run(Host.lethe, ["phones", "inspect", "ios:\(IPhoneTests.udid)"] + at)
        #expect(inspected.status == 0 && inspected.stdout.contains("iPhone 12 (iPhone13,2, model number MGJ83B/A), serial F2LZK0TESTXX"), "\(inspected.stdout) \(inspected.stderr)")
        #expect(inspected.stdout.contains("battery: health 89% (diagnostics_relay IORegistry AppleSmartBattery: AppleRawMaxCapacity / DesignCapacity), 412 cycles, level 81%: PASS"))
        #expect(inspected.stdout.contains("Find My: unknown (best effort)"))
        let erased = try Host.run(Host.lethe, ["phones", "erase", "ios:\(IPhoneTests.udid)", "--yes", "--wait-seconds", "20", "--report-dir", "\(state)/reports", "--state-dir", state] + at)
        #expect(erased.status == 0 && erased.stdout.hasPrefix("certified: "), "\(erased.stdout) \(erased.stderr)")
        #expect(erased.stderr.contains("ActivationState = Unactivated (expected Unactivated): ok"), "\(erased.stderr)")
    }
}

/// The iPhone erase: certified only after the phone dropped off, came back as a new usbmux
/// device and reads Unactivated; refused before anything is sent when Find My or an MDM holds
/// it; mobilebackup2 where MCInstall refuses; a phone that never comes back is interrupted.
@Suite(.serialized, .timeLimit(.minutes(3))) struct IPhoneEraseTests {
    struct Bench {
        let usbmuxd: SimulatedUsbmuxd
        let phone: SimulatedIPhone
        let host: IPhoneHost
        let device: UsbmuxDevice
        let state: String

        init(_ change: (inout SimulatedIPhone.Script) -> Void = { _ in }) throws {
            usbmuxd = try SimulatedUsbmuxd()
            var script = IPhoneTests.script()
            change(&script)
            phone = try SimulatedIPhone(script: script)
            usbmuxd.plug(phone)
            host = IPhoneTests.host(usbmuxd)
            device = try #require(try host.usbmux.listDevices().first)
            state = NSTemporaryDirectory() + "lethe-ios-erase-\(UUID().uuidString)"
            #expect(try Host.lethe("keys", "init", "--state-dir", state).status == 0)
        }

        func erase(wait: Double = 10) throws -> (ResetOutcome, Reporting.Written?) {
            let inspection = try IOSProbe.inspect(host, device: device)
            if FactoryReset.refusal(inspection) != nil {
                // The erase refuses by itself, before anything is sent: no job, no record.
                return (IOSErase.run(host, device: device, phone: inspection, waitSeconds: wait), nil)
            }
            let reporting = try PhoneReporting(directory: "\(state)/reports", stateDirectory: state, station: StationConfig(), phone: inspection, operatorName: "test")
            try reporting.recordStart(profile: nil, flow: .mcInstallErase)
            let outcome = IOSErase.run(host, device: device, phone: inspection, waitSeconds: wait)
            return (outcome, try reporting.finish(outcome, threshold: 80, language: .en, toolVersion: "test"))
        }

        func done() {
            usbmuxd.stop()
            try? FileManager.default.removeItem(atPath: state)
        }
    }

    @Test func anEraseThatComesBackInSetupIsCertified() throws {
        let bench = try Bench()
        defer { bench.done() }
        let (outcome, written) = try bench.erase()
        #expect(outcome.status == .erased && outcome.certified, "\(outcome)")
        #expect(outcome.checks.map(\.name) == ["detached from usbmuxd", "came back as a new usbmux device", "ActivationState"])
        #expect(outcome.commands == ["MCInstall EraseDevice (Acknowledged)"])
        #expect(bench.phone.requests.contains("EraseDevice") && bench.phone.erased)
        let certificate = try #require(written?.certificate)
        #expect(written?.certified == true)
        // Python's cryptography and the schema agree.
        if let checked = try Host.pythonVerifyCertificate(certificate.jsonPath, state: bench.state) { #expect(checked.status == 0, "\(checked.stdout) \(checked.stderr)") }
        let document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: certificate.jsonPath))) as? [String: Any])
        let report = try #require(document["report"] as? [String: Any])
        let device = report["device"] as? [String: Any]
        #expect(device?["transport"] as? String == "ios" && device?["path"] as? String == "ios:\(IPhoneTests.udid)")
        #expect(device?["model"] as? String == "iPhone 12 (iPhone13,2, MGJ83B/A)" && device?["serial"] as? String == "F2LZK0TESTXX")
        #expect((device?["imeis"] as? [String]) == ["356728110000007", "356728110000015"])
        let checks = (report["verification"] as? [String: Any])?["checks"] as? [[String: Any]] ?? []
        #expect(checks.contains { $0["name"] as? String == "ActivationState" && $0["observed"] as? String == "Unactivated" && $0["passed"] as? Bool == true })
        #expect(((report["sanitization"] as? [String: Any])?["description"] as? String)?.contains("Erase All Content and Settings") == true)
    }

    @Test func findMyOnOrAnMDMRefusesBeforeAnythingIsSent() throws {
        for change: (inout SimulatedIPhone.Script) -> Void in [
            { $0.domains["com.apple.fmip"] = ["IsAssociated": true] },
            { $0.cloudConfiguration = ["IsSupervised": true, "OrganizationName": "Example Corp"] },
        ] {
            let bench = try Bench(change)
            defer { bench.done() }
            let (outcome, written) = try bench.erase()
            #expect(written == nil && outcome.status == .notErased)
            #expect(outcome.error?.contains("Nothing was sent") == true, "\(outcome.error ?? "")")
            #expect(!bench.phone.requests.contains("EraseDevice"), "nothing was sent")
        }
    }

    @Test func whereMCInstallRefusesMobilebackup2Erases() throws {
        let bench = try Bench { $0.erase = .refuse("CommandFormatError") }
        defer { bench.done() }
        let (outcome, written) = try bench.erase()
        #expect(outcome.flow == .mobileBackupErase && outcome.certified, "\(outcome)")
        #expect(bench.phone.requests.contains("mobilebackup2 EraseDevice"))
        #expect(written?.certified == true)
    }

    @Test func aPhoneThatNeverComesBackOrComesBackSetUpIsNotCertified() throws {
        let gone = try Bench { $0.erase = .vanish }
        defer { gone.done() }
        let (vanished, record) = try gone.erase(wait: 2)
        #expect(vanished.interrupted && !vanished.certified && record?.certified == false, "\(vanished)")
        let liar = try Bench { $0.erase = .restartOnly(seconds: 0.3) }
        defer { liar.done() }
        let (unerased, _) = try liar.erase(wait: 5)
        #expect(unerased.status == .notErased && !unerased.certified, "\(unerased)")
        #expect(unerased.checks.last?.name == "ActivationState" && unerased.checks.last?.observed == "Activated")
    }
}

/// The daemon with a simulated iPhone: docked, "tap Trust" on its bay until the technician
/// taps, then a job; started, erased, certified after the setup check, graded, and its record
/// delivered to the catalog.
@Suite(.serialized, .timeLimit(.minutes(3))) struct IPhoneDaemonTests {
    @Test(.enabled(if: getuid() == 0, "needs root (the daemon's device watcher)"))
    func anIPhoneGoesFromTapTrustToACertifiedGradedSyncedRecord() throws {
        let state = NSTemporaryDirectory() + "lethe-iosd-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        #expect(try Host.lethe("keys", "init", "--state-dir", state).status == 0)
        let tech = try Host.lethe("tokens", "add", "bench", "--role", "technician", "--state-dir", state).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try "a shared secret of 32 bytes long".write(toFile: "\(state)/secret", atomically: true, encoding: .utf8)
        let key = try Host.lethe("keys", "export", "--state-dir", state)
        try key.stdout.write(toFile: "\(state)/station.jwk", atomically: true, encoding: .utf8)
        let catalogPort = Host.freePort()
        let receiver = try LineWatcher(Host.lethe, [
            "catalog", "serve", "--listen", "127.0.0.1:\(catalogPort)", "--db", "\(state)/catalog.sqlite", "--secret-file", "\(state)/secret",
            "--trust", "\(state)/station.jwk",
        ])
        defer { receiver.stop() }
        #expect(DaemonTests.poll(20) { DaemonTests.http("GET", "http://127.0.0.1:\(catalogPort)/healthz")?.status == 200 ? true : nil } == true, "\(receiver.stderr)")

        let usbmuxd = try SimulatedUsbmuxd()
        defer { usbmuxd.stop() }
        let phone = try SimulatedIPhone(script: IPhoneTests.script())
        phone.showTrustPrompt()
        usbmuxd.plug(phone)

        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let port = Host.freePort()
        let base = "http://127.0.0.1:\(port)"
        let daemon = try LineWatcher(Host.lethe, [
            "daemon", "--state-dir", state, "--profiles", repo.appendingPathComponent("profiles").path, "--listen", "127.0.0.1:\(port)",
            "--no-android", "--usbmuxd", usbmuxd.address, "--phone-wait-seconds", "30",
            "--catalog-url", "http://127.0.0.1:\(catalogPort)/v1/records", "--catalog-secret-file", "\(state)/secret",
        ])
        defer { daemon.stop() }
        let path = "ios:\(IPhoneTests.udid)"
        // The bay says what to do while the trust prompt shows.
        let pending = DaemonTests.poll(20) { () -> [String: Any]? in
            let devices = DaemonTests.http("GET", "\(base)/api/v1/devices", token: tech)?.json as? [[String: Any]] ?? []
            return devices.first { $0["path"] as? String == path && $0["protected"] as? Bool == true }
        }
        #expect((pending?["protectionReason"] as? String ?? "").contains("tap Trust"), "\(String(describing: pending)) \(daemon.stderr)")
        #expect(pending?["transport"] as? String == "ios" && pending?["model"] as? String == "iPhone 12")
        // And so does its card on the dashboard, rendered by headless Chromium.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium") {
            let page = try Host.run(
                "/usr/bin/chromium",
                ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=4000", "--dump-dom", "\(base)/#token=\(tech)&live=poll"],
                timeout: 60)
            #expect(page.stdout.contains("iPhone 12") && page.stdout.contains("Next: unlock the iPhone and tap Trust"), "\(page.stdout.suffix(2000))")
        } else {
            print("skipped the dashboard card: apt-get install chromium")
        }
        phone.tapTrust()
        // Tapped (the script's pending answers run out): paired, and a job waits for the technician.
        func job() -> [String: Any]? {
            (DaemonTests.http("GET", "\(base)/api/v1/jobs", token: tech)?.json as? [[String: Any]])?.first { $0["device"] as? String == path }
        }
        let waiting = try #require(DaemonTests.poll(30) { job() }, "no job for the iPhone: \(daemon.stderr)")
        #expect(waiting["state"] as? String == "waiting" && waiting["profile"] as? String == "ios", "\(waiting)")
        #expect(!phone.requests.contains("EraseDevice"), "erased before anyone pressed start")
        let id = try #require(waiting["id"] as? String)
        #expect(DaemonTests.http("POST", "\(base)/api/v1/jobs/\(id)/start", token: tech)?.status == 202)
        let done = try #require(DaemonTests.poll(60) { job().flatMap { $0["step"] as? String == "grade" ? $0 : nil } }, "\(daemon.stderr)")
        #expect(done["state"] as? String == "erased" && done["certified"] as? Bool == true, "\(done) \(daemon.stderr)")
        #expect((done["checks"] as? [String])?.contains("ActivationState = Unactivated (expected Unactivated)") == true, "\(done)")
        #expect((done["battery"] as? String)?.hasPrefix("89% (diagnostics_relay") == true && done["batteryVerdict"] as? String == "pass")
        #expect(phone.erased && usbmuxd.deviceID(of: phone) != nil)
        #expect(DaemonTests.http("POST", "\(base)/api/v1/jobs/\(id)/grade", token: tech, body: #"{"grade":"A"}"#)?.status == 200)
        // The record reaches the catalog, with the certificate it carries.
        let record = DaemonTests.poll(30) { () -> [String: Any]? in
            guard let entry = SyncTests.received(port: catalogPort).first, let recordId = entry["id"] as? String else { return nil }
            return DaemonTests.http("GET", "http://127.0.0.1:\(catalogPort)/v1/records/\(recordId)")?.json as? [String: Any]
        }
        let received = try #require(record, "no catalog record: \(daemon.stderr)")
        #expect((received["device"] as? [String: Any])?["serial"] as? String == "F2LZK0TESTXX", "\(received)")
        #expect((received["certificate"] as? [String: Any])?["certified"] as? Bool == true && received["grade"] as? String == "A")
        daemon.stop()
        #expect(try Host.lethe("audit", "verify", "--state-dir", state).status == 0)
    }
}
