import Foundation
import LetheCore
@testable import LethePhones
import Testing

/// The recorded outputs of real phones in `../shared/fixtures/android` (beside the repository),
/// each parsed, plus malformed and truncated variants of each.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared/fixtures/android").path

    static func text(_ name: String) throws -> String {
        try String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8)
    }

    /// Every fixture of a kind, so a new one dropped in is parsed too.
    static func all(prefix: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix(prefix) }.sorted()
    }
}

@Suite struct GetpropTests {
    @Test func pixel6Android15() throws {
        let props = try AndroidProperties.parse(try Fixtures.text("getprop-pixel6-android15.txt"))
        let id = props.identity
        #expect(id.brand == "google" && id.manufacturer == "Google" && id.model == "Pixel 6" && id.device == "oriole")
        #expect(id.serial == "TESTP6SERIAL01" && id.androidVersion == "15" && id.sdk == 35 && id.securityPatch == "2025-05-05")
        #expect(id.fingerprint == "google/oriole/oriole:15/BP1A.250505.005/13277524:user/release-keys")
        #expect(id.verifiedBootState == "orange" && id.bootloaderLocked == false)
        #expect(id.encryption == "file")
        #expect(props.knoxGuard == nil)
        #expect(props.skippedLines.isEmpty)
    }

    @Test func galaxyS24Android14() throws {
        let props = try AndroidProperties.parse(try Fixtures.text("getprop-galaxy-s24-android14.txt"))
        let id = props.identity
        #expect(id.manufacturer == "samsung" && id.model == "SM-S9210" && id.serial == "R3CTEST0S24")
        #expect(id.bootloaderLocked == true && id.verifiedBootState == "green" && id.encryption == "file")
        #expect(id.securityPatch == nil, "not in this capture: unknown, not invented")
        let knox = try #require(props.knoxGuard)
        #expect(knox.state == "unknown" && knox.source.contains("Checking"))
    }

    @Test func everyGetpropFixtureParses() throws {
        let names = try Fixtures.all(prefix: "getprop-")
        #expect(names.count >= 2)
        for name in names {
            let props = try AndroidProperties.parse(try Fixtures.text(name))
            #expect(props.identity.model != nil && props.identity.serial != nil, "\(name)")
        }
    }

    @Test func truncatedLastLineIsSkippedAndCounted() throws {
        let text = try Fixtures.text("getprop-pixel6-android15.txt")
        let cut = String(text.dropLast(12))
        let props = try AndroidProperties.parse(cut)
        #expect(props.skippedLines.count == 1)
        #expect(props.identity.model == "Pixel 6")
    }

    @Test(arguments: ["", "error: device offline\n", "/system/bin/sh: getprop: not found\n", "\u{0}\u{1}binary"])
    func garbageIsAnErrorNamingTheCommand(text: String) {
        #expect(throws: LetheError.self) { try AndroidProperties.parse(text) }
        do {
            _ = try AndroidProperties.parse(text)
        } catch {
            #expect(error.code == .unexpectedOutput && error.path == "getprop")
        }
    }
}

@Suite struct DumpsysBatteryTests {
    @Test func samsungVendorBlockGivesHealthFromAsoc() throws {
        let battery = try DumpsysBattery.parse(try Fixtures.text("dumpsys-battery-samsung-vendor-block.txt"))
        #expect(battery.healthPercent == Sourced(96, source: "dumpsys battery: mSavedBatteryAsoc (Samsung)"))
        #expect(battery.level == 100 && battery.status == "full" && battery.condition == "good")
        #expect(battery.temperatureCelsius == 30.9 && battery.voltageMillivolts == 4312)
        #expect(battery.verdict() == .pass)
        #expect(battery.verdict(threshold: 97) == .fail)
    }

    @Test func recentAospCapacityLevelIsNotTheLevel() throws {
        let battery = try DumpsysBattery.parse(try Fixtures.text("dumpsys-battery-aosp-2024-capacity-level.txt"))
        #expect(battery.level == 80, "`Capacity level: 3` must not be read as the level")
        #expect(battery.status == "not charging" && battery.condition == "overheat")
        #expect(battery.healthPercent == nil)
        #expect(battery.verdict() == .fail, "an overheating battery fails whatever its capacity")
    }

    @Test func olderAospAndTheEmulator() throws {
        let pixelC = try DumpsysBattery.parse(try Fixtures.text("dumpsys-battery-aosp-2016-pixel-c.txt"))
        #expect(pixelC.level == 19 && pixelC.status == "charging" && pixelC.temperatureCelsius == 27.5)
        #expect(pixelC.healthPercent == nil && pixelC.verdict() == .unknown, "no reading is unknown, never a pass")
        #expect(pixelC.notes.contains { $0.contains("no state of health") })
        let emulator = try DumpsysBattery.parse(try Fixtures.text("dumpsys-battery-emulator.txt"))
        #expect(emulator.level == 89 && emulator.voltageMillivolts == nil && emulator.temperatureCelsius == nil, "zeros are no reading")
    }

    @Test func everyBatteryFixtureParses() throws {
        let names = try Fixtures.all(prefix: "dumpsys-battery-")
        #expect(names.count >= 4)
        for name in names { #expect(try DumpsysBattery.parse(try Fixtures.text(name)).level != nil, "\(name)") }
    }

    @Test func maximumAndDesignCapacityLines() throws {
        let text = try Fixtures.text("dumpsys-battery-aosp-2024-capacity-level.txt")
            + "  Maximum capacity: 3900000\n  Design capacity: 4614000\n  cycle count: 412\n"
        let battery = try DumpsysBattery.parse(text.replacingOccurrences(of: "health: 3", with: "health: 2"))
        #expect(battery.healthPercent == Sourced(84, source: "dumpsys battery: Maximum capacity / Design capacity"))
        #expect(battery.cycleCount?.value == 412)
        #expect(battery.verdict() == .pass && battery.verdict(threshold: 85) == .fail)
    }

    @Test func frozenUpdatesAreFlagged() throws {
        let text = try Fixtures.text("dumpsys-battery-emulator.txt").replacingOccurrences(
            of: "Current Battery Service state:", with: "Current Battery Service state:\n  (UPDATES STOPPED -- use 'reset' to restart)")
        // The marker is on its own line in some builds and on the header in others.
        let inHeader = try Fixtures.text("dumpsys-battery-emulator.txt").replacingOccurrences(
            of: "Current Battery Service state:", with: "Current Battery Service state (UPDATES STOPPED -- use 'reset' to restart):")
        #expect(try DumpsysBattery.parse(inHeader).frozen)
        _ = try DumpsysBattery.parse(text)
    }

    @Test func truncatedAndGarbageOutputAreErrors() throws {
        let text = try Fixtures.text("dumpsys-battery-aosp-2016-pixel-c.txt")
        let truncated = String(text.prefix(upTo: text.range(of: "  level:")!.lowerBound))
        #expect(throws: LetheError.self) { try DumpsysBattery.parse(truncated) }
        for garbage in ["", "Can't find service: battery\n", "<html>", "level: 50"] {
            do {
                _ = try DumpsysBattery.parse(garbage)
                Issue.record("parsed \(garbage)")
            } catch {
                #expect(error.code == .unexpectedOutput && error.path == "dumpsys battery")
            }
        }
        // A level that is not a number is no level.
        #expect(throws: LetheError.self) { try DumpsysBattery.parse(text.replacingOccurrences(of: "level: 19", with: "level: ??")) }
    }
}

@Suite struct TradeInModeTests {
    @Test func pixel7Status() throws {
        let status = try TradeInStatus.parse(try Fixtures.text("tradeinmode-getstatus-pixel7.json"))
        #expect(status.identity.model == "Pixel 7" && status.identity.serial == "TESTP7SERIAL02")
        #expect(status.identity.imeis == ["490154203237518", "356938035643809"])
        #expect(status.identity.capacityBytes == 128_000_000_000)
        #expect(status.healthPercent == 100 && status.cycleCount == 16)
        #expect(status.frp == LockSignal(state: "unlocked", source: "tradeinmode getstatus: locks.factory_reset_protection"))
        var battery = try DumpsysBattery.parse(try Fixtures.text("dumpsys-battery-aosp-2016-pixel-c.txt"))
        status.apply(to: &battery)
        #expect(battery.healthPercent?.source == "tradeinmode getstatus" && battery.cycleCount?.value == 16)
        #expect(battery.verdict() == .pass && battery.notes.isEmpty)
    }

    @Test func malformedAndTruncatedJSON() throws {
        let text = try Fixtures.text("tradeinmode-getstatus-pixel7.json")
        let cases: [(String, String)] = [
            (String(text.prefix(text.count / 2)), "not a JSON object"),
            ("tradeinmode: unknown command", "not a JSON object"),
            (text.replacingOccurrences(of: "\"health\": 100", with: "\"health\": \"good\""), "battery.health"),
            (text.replacingOccurrences(of: "\"capacity_bytes\": \"128000000000\"", with: "\"capacity_bytes\": \"lots\""), "storage.capacity_bytes"),
            (text.replacingOccurrences(of: "\"490154203237518\",", with: "7,"), "imeis"),
        ]
        for (input, field) in cases {
            do {
                _ = try TradeInStatus.parse(input)
                Issue.record("parsed a bad status (\(field))")
            } catch {
                #expect(error.code == .unexpectedOutput && error.message.contains(field), "\(error.message)")
            }
        }
    }
}

@Suite struct AccountDumpTests {
    static let withGoogle = """
        User UserInfo{0:Owner:c13} (current):
          Accounts: 2
            Account {name=tester@gmail.com, type=com.google}
            Account {name=tester, type=com.samsung.android.mobileservice}
        """

    @Test func aGoogleAccountMeansFRPWillHoldBestEffort() throws {
        let types = try AccountDump.types(Self.withGoogle)
        #expect(types == ["com.google", "com.samsung.android.mobileservice"])
        let frp = AccountDump.frp(types: types)
        #expect(frp.state == "locked" && frp.bestEffort)
        #expect(PhoneLocks(frp: frp).blockers.first?.contains("best effort") == true)
        let empty = try AccountDump.types("User UserInfo{0:Owner:c13} (current):\n  Accounts: 0\n")
        #expect(empty.isEmpty && AccountDump.frp(types: empty).state == "unlocked")
        #expect(throws: LetheError.self) { try AccountDump.types("cmd: Can't find service: account") }
    }
}

@Suite struct FunctionCheckParsingTests {
    @Test func storageFromToyboxDfAndGarbage() {
        let df = "Filesystem       1K-blocks    Used Available Use% Mounted on\n/dev/block/dm-45 115609696 9211728 106266896   8% /data\n"
        #expect(FunctionChecks.storage(df)?.detail == "data partition 110 GiB, 101 GiB free")
        #expect(FunctionChecks.storage("df: /data: Permission denied\n") == nil)
        #expect(FunctionChecks.storage(String(df.prefix(70))) == nil, "a truncated table is no reading")
        #expect(FunctionChecks.storage(nil) == nil)
    }

    @Test func nominalCapacityFromTheDataPartition() {
        let df = "Filesystem       1K-blocks    Used Available Use% Mounted on\n/dev/block/dm-45 115609696 9211728 106266896   8% /data\n"
        let data = FunctionChecks.dataPartition(df)?.total
        #expect(data == 118_384_328_704)
        #expect(FunctionChecks.nominalCapacity(dataPartition: data!) == 128_000_000_000)
        #expect(FunctionChecks.nominalCapacity(dataPartition: 3_000_000_000_000) == nil)
        #expect(FunctionChecks.dataPartition("df: /data: Permission denied") == nil)
    }

    @Test func sensorListCount() {
        let dump = "Sensor Device:\nSensor List:\n0x00000001) Accelerometer | STMicro\n  0x00000002) Gyroscope | STMicro\nFusion States:\n"
        #expect(FunctionChecks.sensorCount(dump) == 2)
        #expect(FunctionChecks.sensorCount("Can't find service: sensorservice") == 0)
    }
}

/// Hostile or garbled numbers from a phone are unparsable values with a clear error, never an
/// integer-overflow trap that takes the daemon down (issue 15, item 10).
@Suite struct OverflowTests {
    @Test func aBatteryLevelThatOverflowsIsAnError() {
        #expect(throws: LetheError.self) { try DumpsysBattery.parse("Current Battery Service state:\n  level: 9223372036854775807\n  scale: 100\n") }
        #expect(throws: LetheError.self) { try DumpsysBattery.parse("Current Battery Service state:\n  level: -9223372036854775808\n") }
    }

    @Test func capacityLinesThatOverflowGiveNoHealth() throws {
        let battery = try DumpsysBattery.parse(
            "Current Battery Service state:\n  level: 80\n  Maximum capacity: 9223372036854775807\n  Design capacity: 4614000\n")
        #expect(battery.level == 80 && battery.healthPercent == nil)
    }

    @Test func aDataPartitionThatOverflowsIsNoReading() {
        let df = "Filesystem 1K-blocks Used Available Use% Mounted on\n/dev/block/dm-45 18446744073709551615 1 18446744073709551615 1% /data\n"
        #expect(FunctionChecks.storage(df) == nil)
        #expect(FunctionChecks.storage("Filesystem 1K-blocks Used Available Use% Mounted on\n/dev/block/dm-45 100 0 200 0% /data\n") == nil, "more free than there is")
    }

    @Test func tradeInCapacityOutOfRangeIsAnError() {
        for capacity in ["1e30", "-5", "1.5"] {
            #expect(throws: LetheError.self, "\(capacity)") { try TradeInStatus.parse(#"{"storage": {"capacity_bytes": \#(capacity)}}"#) }
        }
    }

    @Test func aDCOAnswerBeyond48BitsIsNoSize() {
        var dco = [UInt8](repeating: 0xFF, count: 512)
        dco[0] = 1
        #expect(HiddenAreas.factoryLastLBA(dcoIdentify: dco) == nil)
    }
}

/// Hostile property lists (from a phone, a bridge or a daemon pretending to be usbmuxd): huge,
/// deeply nested, cyclic, wrong types. Each is a named error or an absent value, never a crash.
@Suite struct HostilePlistTests {
    @Test func aHugePlistIsRefusedBeforeParsing() {
        let huge = [UInt8](repeating: 0x41, count: Plist.maximumBytes + 1)
        #expect { try Plist.decode(huge, what: "test") } throws: { ($0 as? LetheError)?.message.contains("larger than") == true }
    }

    @Test func deepNestingIsRefusedBeforeParsing() {
        let depth = 100_000
        let xml = "<?xml version=\"1.0\"?><plist version=\"1.0\">" + String(repeating: "<array>", count: depth) + String(repeating: "</array>", count: depth) + "</plist>"
        #expect { try Plist.decode(Array(xml.utf8), what: "test") } throws: { ($0 as? LetheError)?.message.contains("nested 100000 deep") == true }
        // A binary plist whose array holds itself: a cycle, not a depth the parser is left to find.
        var binary = Array("bplist00".utf8)
        binary += [0xA1, 0x00]  // object 0: an array of one reference, to object 0
        let offsetTable = binary.count
        binary += [0x08]  // object 0 at offset 8
        binary += [0, 0, 0, 0, 0, 0, 1, 1]  // trailer: offset size 1, ref size 1
        binary += [0, 0, 0, 0, 0, 0, 0, 1]  // one object
        binary += [0, 0, 0, 0, 0, 0, 0, 0]  // top object 0
        binary += [0, 0, 0, 0, 0, 0, 0, UInt8(offsetTable)]
        #expect(throws: LetheError.self) { try Plist.decode(binary, what: "test") }
    }

    @Test func wellFormedBinaryPlistsStillDecode() throws {
        // Foundation's own writer, with every type a lockdown answer uses.
        let value: [String: Any] = [
            "ProductType": "iPhone14,5", "Name": "Ünïcødé iPhone ☎", "BatteryCurrentCapacity": 87, "Big": Int64.max,
            "Negative": -12, "PasswordProtected": true, "Ratio": 0.5, "When": Date(timeIntervalSince1970: 1_700_000_000),
            "Certificate": Data(repeating: 7, count: 300), "List": [1, "two", ["three": 3]], "Empty": [String: Any](),
        ]
        let binary = try PropertyListSerialization.data(fromPropertyList: value, format: .binary, options: 0)
        let decoded = try Plist.decode(Array(binary), what: "test")
        #expect(decoded.string("ProductType") == "iPhone14,5" && decoded.string("Name") == "Ünïcødé iPhone ☎")
        #expect(decoded.int("BatteryCurrentCapacity") == 87 && decoded.int("Negative") == -12 && decoded.bool("PasswordProtected") == true)
        #expect(decoded.data("Certificate")?.count == 300 && (decoded["List"] as? [Any])?.count == 3)
        // Python's plistlib, a second writer (offsets and references two bytes wide here).
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        python.arguments = ["-c", "import plistlib,sys; sys.stdout.buffer.write(plistlib.dumps({'k%d' % i: ['v', i, i * 1.5, b'x' * i] for i in range(400)}, fmt=plistlib.FMT_BINARY))"]
        let pipe = Pipe()
        python.standardOutput = pipe
        try python.run()
        let written = pipe.fileHandleForReading.readDataToEndOfFile()
        python.waitUntilExit()
        let fromPython = try Plist.decode(Array(written), what: "plistlib")
        #expect(fromPython.count == 400 && (fromPython["k399"] as? [Any])?.count == 4)
    }

    /// What the fuzzer found (a set object, which Foundation's parser bridged into a crash; a
    /// NUL in a key, on which libplist 2.2 asserts) and the other objects no plist holds: each
    /// refused by name before parsing.
    @Test func binaryObjectsNoPlistHoldsAreRefused() {
        func plist(_ objects: [[UInt8]], top: UInt8 = 0) -> [UInt8] {
            var bytes = Array("bplist00".utf8)
            var offsets: [UInt8] = []
            for object in objects {
                offsets.append(UInt8(bytes.count))
                bytes += object
            }
            let table = bytes.count
            bytes += offsets
            bytes += [0, 0, 0, 0, 0, 0, 1, 1] + [0, 0, 0, 0, 0, 0, 0, UInt8(objects.count)] + [0, 0, 0, 0, 0, 0, 0, top]
            bytes += [0, 0, 0, 0, 0, 0, 0, UInt8(table)]
            return bytes
        }
        let key: [UInt8] = [0x51, 0x6B]  // ASCII string "k"
        var cases: [(String, [UInt8])] = [
            ("a set", plist([[0xD1, 1, 2], key, [0xC1, 1]])),
            ("a UID", plist([[0xD1, 1, 2], key, [0x80, 1]])),
            ("a null", plist([[0xD1, 1, 2], key, [0x00]])),
            ("a dictionary keyed by a number", plist([[0xD1, 1, 1], [0x10, 5]])),
            ("a string running past the file", plist([[0xD1, 1, 2], key, [0x5E, 0x41]])),
            ("a reference outside the table", plist([[0xD1, 1, 9], key])),
            ("an offset table past the trailer", Array("bplist00".utf8) + [0x08] + [0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xF0]),
            ("a NUL in an ASCII key", plist([[0xD1, 1, 2], [0x53, 0x61, 0x00, 0x62], [0x09]])),
            ("a NUL in a UTF-16 key", plist([[0xD1, 1, 2], [0x62, 0x00, 0x61, 0x00, 0x00], [0x09]])),
            ("another version", Array("bplist15".utf8) + [UInt8](repeating: 0, count: 40)),
        ]
        cases.append(("a NUL byte in XML", Array("<?xml version=\"1.0\"?><plist version=\"1.0\"><dict><key>a\u{0}b</key><true/></dict></plist>".utf8)))
        for (name, bytes) in cases {
            #expect(throws: LetheError.self, "\(name)") { try Plist.decode(bytes, what: "lockdownd") }
        }
        #expect { try Plist.decode(plist([[0xD1, 1, 2], key, [0xC1, 1]]), what: "lockdownd") } throws: {
            ($0 as? LetheError)?.message.contains("a type a plist does not hold (marker 0xc1)") == true
        }
        // The same shapes with allowed objects decode: the check is not what fails them.
        #expect((try? Plist.decode(plist([[0xD1, 1, 2], key, [0x09]]), what: "test"))?.bool("k") == true)
    }

    @Test func garbageAndWrongTopLevelTypesAreNamed() {
        for bytes in [Array("not a plist".utf8), Array("bplist00".utf8) + [0xFF, 0xFF], []] {
            #expect(throws: LetheError.self) { try Plist.decode(bytes, what: "test") }
        }
        let array = Array("<?xml version=\"1.0\"?><plist version=\"1.0\"><array><string>x</string></array></plist>".utf8)
        #expect { try Plist.decode(array, what: "usbmuxd") } throws: { ($0 as? LetheError)?.message.contains("not a dictionary") == true }
    }

    @Test func valuesOfTheWrongTypeAreAbsent() throws {
        let xml = """
            <?xml version="1.0"?><plist version="1.0"><dict>
            <key>AppleRawMaxCapacity</key><string>lots</string><key>DesignCapacity</key><true/>
            <key>CycleCount</key><integer>-5</integer><key>CurrentCapacity</key><real>1e300</real>
            <key>Temperature</key><integer>18446744073709551615</integer></dict></plist>
            """
        let registry = try Plist.decode(Array(xml.utf8), what: "test")
        let battery = IOSProbe.battery(registry, entry: "AppleSmartBattery")
        #expect(battery.healthPercent == nil && battery.cycleCount == nil && battery.level == nil && battery.temperatureCelsius == nil)
        // A usbmuxd device entry with a string DeviceID is refused, named.
        let entry = try Plist.decode(Array("<?xml version=\"1.0\"?><plist version=\"1.0\"><dict><key>DeviceID</key><string>1</string></dict></plist>".utf8), what: "test")
        #expect(throws: LetheError.self) { try UsbmuxDevice(fuzzing: entry) }
        // A pair record missing its keys names the field.
        #expect { try PairRecord(plist: ["HostID": "X"], what: "record") } throws: { ($0 as? LetheError)?.message.contains("no SystemBUID") == true }
    }
}
