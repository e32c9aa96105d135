import Foundation
import Testing

/// `lethe devices --json` under umockdev testbeds (Testbeds/README.md): hardware this machine
/// lacks, described with real sysfs attribute names and values.
@Suite struct UmockdevTests {
    static let run = "/usr/bin/umockdev-run"

    static var testbeds: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Testbeds")
    }

    /// Runs `lethe ARGS` inside a testbed and returns the parsed JSON.
    static func devices(_ testbed: String, _ arguments: [String] = ["devices", "--json"]) throws -> (Any, String)? {
        guard FileManager.default.isExecutableFile(atPath: run) else {
            print("skipped: umockdev-run missing (Debian package umockdev)")
            return nil
        }
        let path = testbed.hasPrefix("/") ? testbed : testbeds.appendingPathComponent(testbed).path
        let result = try Host.run(run, ["-d", path, "--", Host.lethe] + arguments, timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        return (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)), result.stderr)
    }

    static func only(_ json: Any) throws -> [String: Any] {
        let list = try #require(json as? [[String: Any]])
        try #require(list.count == 1, "expected one device, got \(list.count)")
        return list[0]
    }

    @Test func sataDiskBehindAUsbBridgeDock() throws {
        guard let (json, _) = try Self.devices("usb-sata-dock-jms578.umockdev") else { return }
        let disk = try Self.only(json)
        #expect(disk["path"] as? String == "/dev/sdb")
        #expect(disk["kind"] as? String == "drive")
        #expect(disk["transport"] as? String == "usb")
        #expect(disk["model"] as? String == "WD10EZEX-08WN4A0")
        #expect(disk["vendor"] as? String == "WDC")
        #expect(disk["sizeBytes"] as? Int == 1_000_204_886_016)
        #expect(disk["logicalSectorSize"] as? Int == 512)
        #expect(disk["physicalSectorSize"] as? Int == 4096)
        #expect(disk["rotational"] as? Bool == true)
        #expect(disk["portPath"] as? String == "pci-0000:00:14.0-usb-0:3:1.0-scsi-0:0:0:0")
        #expect(disk["protected"] as? Bool == false)
        let usb = try #require(disk["usb"] as? [String: Any])
        #expect(usb["vendorId"] as? String == "0x152d")
        #expect(usb["productId"] as? String == "0x0578")
        #expect(usb["deviceClass"] as? String == "massStorage")
        #expect(usb["product"] as? String == "USB to ATA/ATAPI Bridge")
        // The serial is the bridge's (a JMicron chip), and the drive behind it cannot answer
        // ATA IDENTIFY in a testbed: its own serial is unknown, and the dock's is not taken
        // for it (issue 15, item 5).
        #expect(disk["serial"] is NSNull)
        #expect(disk["bridgeSerial"] as? String == "0123456789ABCDEF")
        #expect((disk["notes"] as? [String])?.contains { $0.contains("is the serial of the USB bridge") && $0.contains("its own serial is unknown") } == true)
    }

    @Test func androidPhoneOnUsb() throws {
        guard let (json, _) = try Self.devices("android-pixel7-adb.umockdev") else { return }
        let phone = try Self.only(json)
        #expect(phone["kind"] as? String == "phone")
        #expect(phone["transport"] as? String == "adb")
        #expect(phone["path"] as? String == "usb:1-2")
        #expect(phone["portPath"] as? String == "pci-0000:00:14.0-usb-0:2")
        #expect(phone["model"] as? String == "Pixel 7")
        #expect(phone["vendor"] as? String == "Google")
        #expect(phone["serial"] as? String == "28031FDH2003BZ")
        let usb = try #require(phone["usb"] as? [String: Any])
        #expect(usb["deviceClass"] as? String == "android")
        #expect(usb["vendorId"] as? String == "0x18d1")
        #expect(usb["productId"] as? String == "0x4ee7")
    }

    @Test func iPhoneOnUsb() throws {
        guard let (json, _) = try Self.devices("iphone13.umockdev") else { return }
        let phone = try Self.only(json)
        #expect(phone["kind"] as? String == "phone")
        #expect(phone["transport"] as? String == "ios")
        #expect(phone["model"] as? String == "iPhone")
        #expect(phone["vendor"] as? String == "Apple Inc.")
        #expect(phone["serial"] as? String == "00008110000A1234123C801E")
        #expect((phone["usb"] as? [String: Any])?["deviceClass"] as? String == "apple")
        // Listed at once, before usbmuxd has it, with what the technician must do; no job here.
        #expect(phone["protected"] as? Bool == true && (phone["protectionReason"] as? String ?? "").contains("tap Trust"))
    }

    /// A real recording (umockdev-record in the hardware lab) of QEMU's USB disk.
    @Test func recordedQemuUsbDisk() throws {
        guard let (json, _) = try Self.devices("qemu-usb-disk.umockdev") else { return }
        let disk = try Self.only(json)
        #expect(disk["transport"] as? String == "usb")
        #expect(disk["serial"] as? String == "LABUSB0001")
        #expect(disk["sizeBytes"] as? Int == 1 << 30)
        #expect(disk["model"] as? String == "QEMU HARDDISK")
    }

    /// Garbage and missing sysfs attributes: the device is still listed, with what is known
    /// and a note naming each bad attribute.
    @Test func garbageSysfsStillListsTheDevice() throws {
        let original = try String(contentsOf: Self.testbeds.appendingPathComponent("usb-sata-dock-jms578.umockdev"), encoding: .utf8)
        let broken = original
            .replacingOccurrences(of: "A: size=1953525168\\n", with: "A: size=19535x25168\\n")
            .replacingOccurrences(of: "A: queue/rotational=1\\n\n", with: "\n")
            .replacingOccurrences(of: "A: queue/logical_block_size=512\\n", with: "A: queue/logical_block_size=\\n")
        #expect(broken != original)
        let file = NSTemporaryDirectory() + "lethe-broken-\(UUID().uuidString).umockdev"
        try broken.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        guard let (json, stderr) = try Self.devices(file) else { return }
        let disk = try Self.only(json)
        #expect(disk["path"] as? String == "/dev/sdb")
        #expect(disk["model"] as? String == "WD10EZEX-08WN4A0")
        #expect(disk["sizeBytes"] is NSNull)
        #expect(disk["rotational"] is NSNull)
        let notes = (disk["notes"] as? [String]) ?? []
        #expect(notes.contains("sdb: sysfs attribute size is not a number: \"19535x25168\""), "\(notes)")
        #expect(notes.contains { $0.contains("queue/logical_block_size") }, "\(notes)")
        _ = stderr
    }
}

extension UmockdevTests {
    /// `lethe bays set` writes the map; `lethe devices` then shows the dock's bay, and a phone
    /// in a hub behind that socket would share it.
    @Test func bayLabelFromTheStationMap() throws {
        let map = NSTemporaryDirectory() + "lethe-bays-\(UUID().uuidString)/bays.json"
        defer { try? FileManager.default.removeItem(atPath: (map as NSString).deletingLastPathComponent) }
        let set = try Host.run(Host.lethe, ["bays", "set", "pci-0000:00:14.0-usb-0:3", "Bay 2", "--bays", map], timeout: 30)
        #expect(set.status == 0, "\(set.stderr)")
        guard let (json, _) = try Self.devices("usb-sata-dock-jms578.umockdev", ["devices", "--json", "--bays", map]) else { return }
        #expect(try Self.only(json)["bay"] as? String == "Bay 2")
        let show = try Host.run(Host.lethe, ["bays", "show", "--bays", map], timeout: 30)
        #expect(show.stdout.contains("Bay 2\tpci-0000:00:14.0-usb-0:3"))

        // A broken map is named, with the problem.
        try "{\"bays\": [1, 2]}".write(toFile: map, atomically: true, encoding: .utf8)
        let broken = try Host.run(Host.lethe, ["devices", "--bays", map], timeout: 30)
        #expect(broken.status == 2)
        #expect(broken.stderr.contains(map) && broken.stderr.contains("bays"), "\(broken.stderr)")
    }
}

extension UmockdevTests {
    /// Without permission on the USB device nodes (run as nobody), the phone is still listed,
    /// from sysfs, with a note that says why.
    @Test func usbPermissionErrorStillListsThePhone() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.run), Host.isRoot, let setpriv = Host.which("setpriv") else {
            print("skipped: needs umockdev-run, root and setpriv")
            return
        }
        // The binary must be reachable by nobody.
        guard access(Host.lethe, X_OK) == 0 else { return }
        let testbed = Self.testbeds.appendingPathComponent("android-pixel7-adb.umockdev").path
        let script = "chmod -R a+rX \"$UMOCKDEV_DIR\"; chmod 600 \"$UMOCKDEV_DIR\"/dev/bus/usb/001/005; exec \(setpriv) --reuid=65534 --regid=65534 --clear-groups \"\(Host.lethe)\" devices --json"
        let result = try Host.run(Self.run, ["-d", testbed, "--", "/bin/sh", "-c", script], timeout: 60)
        guard result.status == 0, let list = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]] else {
            // nobody cannot reach the build folder on this machine (a private home directory).
            print("skipped: lethe not runnable as nobody here: \(result.stderr)")
            return
        }
        let phone = try #require(list.first, "\(result.stderr)")
        #expect(phone["model"] as? String == "Pixel 7")
        #expect(phone["transport"] as? String == "adb")
        let notes = (phone["notes"] as? [String]) ?? []
        #expect(notes.contains { $0.contains("not running as root") }, "\(notes)")
    }
}
