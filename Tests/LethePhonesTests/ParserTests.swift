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
