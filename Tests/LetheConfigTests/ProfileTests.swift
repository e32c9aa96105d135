import Foundation
import LetheConfig
import LetheCore
import Testing

/// Profiles: the shipped ones load and never match a device ambiguously; bad files are
/// reported with file, line and field.
@Suite struct ProfileTests {
    static var shipped: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("profiles").path
    }

    /// Representative devices: what benches see.
    static let probes: [DeviceRecord] = [
        DeviceRecord(path: "/dev/sda", kind: .drive, transport: .sata, model: "WDC WD10EZEX-08WN4A0", sizeBytes: 1_000_204_886_016, rotational: true),
        DeviceRecord(path: "/dev/sdb", kind: .drive, transport: .sata, model: "Samsung SSD 870 QVO 4TB", sizeBytes: 4_000_787_030_016, rotational: false),
        DeviceRecord(path: "/dev/sdc", kind: .drive, transport: .scsi, model: "ST4000NM0023", sizeBytes: 4_000_787_030_016, rotational: true),
        DeviceRecord(path: "/dev/sdd", kind: .drive, transport: .scsi, model: "LAB SCSI DISK", sizeBytes: 1 << 30, rotational: false),
        DeviceRecord(path: "/dev/sde", kind: .drive, transport: .usb, model: "WD10EZEX-08WN4A0", sizeBytes: 1_000_204_886_016, rotational: true),
        DeviceRecord(path: "/dev/sdf", kind: .drive, transport: .usb, model: "Ultra", sizeBytes: 32_000_000_000, rotational: false, removable: true),
        DeviceRecord(path: "/dev/nvme0n1", kind: .drive, transport: .nvme, model: "INTEL SSDPEKNW010T8", sizeBytes: 1_024_209_543_168, rotational: false),
        DeviceRecord(path: "/dev/vdb", kind: .drive, transport: .virtio, sizeBytes: 1 << 30, rotational: true),
        DeviceRecord(path: "/dev/loop0", kind: .drive, transport: .loop, sizeBytes: 1 << 28, rotational: true),
        DeviceRecord(path: "/dev/mmcblk0", kind: .drive, transport: .mmc, sizeBytes: 1 << 34, rotational: false),
        DeviceRecord(path: "/dev/sdg", kind: .drive, transport: .sata, model: "unknown rotation"),
    ]

    @Test func shippedProfilesLoadAndNeverTie() throws {
        let profiles = try ProfileLoader.loadDirectory(Self.shipped)
        #expect(profiles.count >= 6)
        for device in Self.probes {
            switch ProfileChoice.choose(for: device, among: profiles) {
            case .chosen: break
            case .none: Issue.record("no profile for \(device.path) (\(device.transport))")
            case .ambiguous(let tied): Issue.record("\(device.path) matches \(tied.map(\.name)) at the same priority")
            }
        }
        func chosen(_ path: String) -> String? {
            guard case .chosen(let p) = ProfileChoice.choose(for: Self.probes.first { $0.path == path }!, among: profiles) else { return nil }
            return p.name
        }
        #expect(chosen("/dev/sda") == "hdd")
        #expect(chosen("/dev/sdb") == "ssd-sata")
        #expect(chosen("/dev/nvme0n1") == "nvme")
        #expect(chosen("/dev/sde") == "usb-storage")
        #expect(chosen("/dev/loop0") == "demo-loop")
        #expect(chosen("/dev/vdb") == "fallback")
        #expect(chosen("/dev/sdg") == "fallback")  // rotation unknown: not assumed
        // Spinning disks get a sampled surface scan; every drive profile opens hidden areas.
        let hdd = try #require(profiles.first { $0.name == "hdd" })
        #expect(hdd.surfaceScan == .sample && hdd.surfaceThresholds.unreadableSectorsFail == 8)
        let closed = profiles.filter { !$0.resetsPhones && $0.match.transports != [.loop] && !$0.openHiddenAreas }.map(\.name)
        #expect(closed.isEmpty, "\(closed)")
        // Android phones get the free-space overwrite with a sample read-back; iPhones cannot.
        #expect(profiles.first { $0.name == "android" }?.factoryReset?.overwriteFreeSpace == .sample)
        #expect(profiles.first { $0.name == "ios" }?.factoryReset?.overwriteFreeSpace == .off)
        // Nothing starts by itself out of the box: the technician (or --demo) starts jobs.
        #expect(profiles.filter { $0.start == .auto }.isEmpty)
    }

    @Test func aTieIsReported() throws {
        let a = try ProfileLoader.parse("name: a\npriority: 5\nmatch: {transport: sata}\nerase: {method: zero}\n", file: "a.yaml")
        let b = try ProfileLoader.parse("name: b\npriority: 5\nmatch: {rotational: true}\nerase: {method: one}\n", file: "b.yaml")
        #expect(ProfileChoice.choose(for: Self.probes[0], among: [a, b]) == .ambiguous([a, b]))
        #expect(ProfileChoice.choose(for: Self.probes[1], among: [a, b]) == .chosen(a))
    }

    @Test func fullProfileParses() throws {
        let text = """
            # a comment
            name: docked-wd
            description: WD disks in JMicron docks
            priority: 20
            match:
              kind: [drive]
              transport: usb
              model: "^WD"
              usbVendorId: [0x152d]
              minSizeBytes: 1000000000
            diagnostics:
              smart: false
              thresholds: {reallocatedWarn: 3, temperatureFail: 65}
            erase:
              method: dod-3
              verification: sample
            start: auto
            """
        let p = try ProfileLoader.parse(text, file: "x.yaml")
        #expect(p.name == "docked-wd")
        #expect(p.method.name == "dod-3")
        #expect(p.verification == .sample)
        #expect(p.start == .auto)
        #expect(p.thresholds.reallocatedWarn == 3 && p.thresholds.temperatureFail == 65)
        #expect(p.thresholds.pendingFail == HealthThresholds().pendingFail)
        var dock = Self.probes[4]
        #expect(!p.match.matches(dock))  // no USB vendor id known
        dock.usb = UsbIdentity(facts: UsbFacts(busNumber: 2, deviceAddress: 3, portPath: "2-3", vendorId: 0x152d, productId: 0x0578))
        #expect(p.match.matches(dock))
    }

    @Test(arguments: [
        ("name: x\nerase:\n  method: zeroo\n", "x.yaml:3:11: erase.method: unknown method \"zeroo\""),
        ("name: x\nerase: {method: zero}\nmatch:\n  transprot: sata\n", "x.yaml:4:3: match.transprot: unknown field"),
        ("name: x\nerase: {method: zero}\nmatch:\n  transport: [sata, firewire]\n", "x.yaml:4:14: match.transport: \"firewire\" is not one of"),
        ("name: x\nerase: {method: zero}\nmatch:\n  model: \"([\"\n", "x.yaml:4:10: match.model: not a regular expression"),
        ("name: x\nerase: {method: zero, verification: maybe}\n", "x.yaml:2:37: erase.verification: \"maybe\" is not one of"),
        ("name: x\nerase: {method: zero}\nstart: later\n", "x.yaml:3:8: start: \"later\" is not one of auto, manual"),
        ("name: x\npriority: high\nerase: {method: zero}\n", "x.yaml:2:11: priority: expected a whole number"),
        ("name: x\nmatch: {rotational: 2}\nerase: {method: zero}\n", "x.yaml:2:21: match.rotational: expected true or false"),
        ("name: x\n", "erase: required"),
        ("name: x\nerase: {method: zero\n", "x.yaml:3:"),
        ("name: [x\n", "x.yaml:"),
        ("", "the file is empty"),
        ("name: x\nerase: {method: zero}\ndiagnostics:\n  thresholds: {reallocatedWran: 3}\n", "x.yaml:4:16: diagnostics.thresholds.reallocatedWran: unknown field"),
        ("name: x\nname: y\nerase: {method: zero}\n", "name: given twice"),
        ("name: x\nerase: {method: zero}\ndiagnostics:\n  surface: {scan: quick}\n", "x.yaml:4:19: diagnostics.surface.scan: \"quick\" is not off, sample or full"),
        ("name: x\nerase: {method: zero}\ndiagnostics:\n  surface: {slowReadsWarn: 2}\n", "x.yaml:4:12: diagnostics.surface.scan: required: off, sample or full"),
        ("name: x\nerase: {method: zero}\ndiagnostics:\n  surface:\n    scan: full\n    unreadableSectorsWarn: 9\n", "x.yaml:6:28: diagnostics.surface.unreadableSectorsWarn: 9 is above unreadableSectorsFail (1)"),
        ("name: x\nerase: {method: zero}\ndiagnostics:\n  surface: {scan: full, slowMilliseconds: 0}\n", "x.yaml:4:43: diagnostics.surface.slowMilliseconds: expected 1 or more, not 0"),
        ("name: x\nerase: {method: zero}\ndiagnostics:\n  surface: {scan: full, slowMs: 5}\n", "x.yaml:4:25: diagnostics.surface.slowMs: unknown field"),
        ("name: p\nmatch: {kind: phone}\nerase: {method: factory-reset}\ndiagnostics:\n  surface: {scan: sample}\n", "x.yaml:5:12: diagnostics.surface.scan: a phone has no block surface"),
        ("name: p\nmatch: {kind: phone}\nerase: {method: factory-reset, overwriteFreeSpace: most}\n", "x.yaml:3:52: erase.overwriteFreeSpace: \"most\" is not one of off, sample, full"),
        ("name: p\nmatch: {transport: ios}\nerase: {method: factory-reset, overwriteFreeSpace: full}\n", "x.yaml:3:52: erase.overwriteFreeSpace: not available for iPhones"),
        ("name: d\nerase: {method: zero, overwriteFreeSpace: full}\n", "x.yaml:2:43: erase.overwriteFreeSpace: only a factory-reset (phone) profile overwrites free space"),
    ])
    func badProfilesNameFileLineAndField(text: String, expected: String) {
        do {
            _ = try ProfileLoader.parse(text, file: "x.yaml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.description.contains(expected), "\(error.description)")
        }
    }

    @Test func surfaceScanSettingsParse() throws {
        let text = """
            name: used-hdd
            erase: {method: nist-clear}
            diagnostics:
              surface:
                scan: sample
                slowMilliseconds: 150
                slowReadsFail: 20
                unreadableSectorsWarn: 1
                unreadableSectorsFail: 16
            """
        let p = try ProfileLoader.parse(text, file: "x.yaml")
        var expected = SurfaceThresholds()
        expected.slowMilliseconds = 150
        expected.slowReadsFail = 20
        expected.unreadableSectorsFail = 16
        #expect(p.surfaceScan == .sample && p.surfaceThresholds == expected)
        let off = try ProfileLoader.parse("name: x\nerase: {method: zero}\ndiagnostics:\n  surface: {scan: off}\n", file: "x.yaml")
        #expect(off.surfaceScan == nil)
        #expect(try ProfileLoader.parse("name: x\nerase: {method: zero}\n", file: "x.yaml").surfaceScan == nil, "no scan unless asked")
    }

    @Test func duplicateNamesAcrossFilesAreRefused() throws {
        let dir = NSTemporaryDirectory() + "lethe-profiles-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "name: same\nerase: {method: zero}\n".write(toFile: "\(dir)/a.yaml", atomically: true, encoding: .utf8)
        try "name: same\nerase: {method: one}\n".write(toFile: "\(dir)/b.yaml", atomically: true, encoding: .utf8)
        #expect {
            try ProfileLoader.loadDirectory(dir)
        } throws: { error in
            "\(error)".contains("b.yaml") && "\(error)".contains("also used by") && "\(error)".contains("a.yaml")
        }
    }
}
