import CUdev
import Foundation
import LetheCore

/// Finds block devices and phones: coldplug through libudev (sysfs plus udev's database) and
/// libusb, with the safety guard's verdict and the bay label on each.
public enum DeviceDiscovery {
    /// The sysfs attributes read for each disk.
    static let blockAttributes = [
        "size", "queue/logical_block_size", "queue/physical_block_size", "queue/rotational", "removable",
        "device/model", "device/vendor", "device/serial", "device/firmware_rev", "device/rev", "wwid",
        "device/wwid", "device/name", "loop/backing_file",
    ]

    /// Kernel names that are never a docked drive: RAM disks, device-mapper and md arrays
    /// (holders of real disks, which are listed themselves), optical drives, floppies.
    static let ignoredPrefixes = ["ram", "zram", "dm-", "md", "sr", "fd"]

    /// Every drive and every phone on USB, sorted by path.
    public static func all(bays: BayMap = BayMap()) throws(LetheError) -> [DeviceRecord] {
        let udev = try UdevContext()
        var records = udev.blockDisks().compactMap { record(for: $0, bays: bays) }
        records += UsbBus.devices().filter { $0.deviceClass != .massStorage && $0.deviceClass != .other }.map { facts in
            var phone = DeviceRecord(phone: facts)
            phone.bay = bays.label(for: phone.portPath)
            return phone
        }
        return records.sorted { $0.path < $1.path }
    }

    /// One drive by kernel name (`sdb`), or nil when it is gone or ignored. Without the TCG
    /// probe: its callers (a job's start and identity checks, the firmware planner, `lethe
    /// diagnose`) ask the drive themselves when they need its Level 0 Discovery.
    public static func drive(named name: String, bays: BayMap = BayMap()) -> DeviceRecord? {
        guard let udev = try? UdevContext(), let device = udev.device(subsystem: "block", sysname: name) else { return nil }
        return record(for: device, bays: bays, probeSelfEncryption: false)
    }

    /// The record for a libudev block device; nil for partitions, ignored kinds, and empty
    /// slots (unbound loop devices, card readers without a card).
    /// `probeSelfEncryption` reads TCG Level 0 Discovery of a drive the guard clears: at dock
    /// time (coldplug, hotplug and change events) and for `lethe devices`.
    static func record(for device: UdevDevice, bays: BayMap, probeSelfEncryption: Bool = true) -> DeviceRecord? {
        let name = device.sysname
        guard !ignoredPrefixes.contains(where: name.hasPrefix) else { return nil }
        let facts = facts(of: device)
        var record = DeviceRecord(facts: facts)
        if record.sizeBytes == 0 { return nil }
        if record.transport == .usb { record = record.resolvingBridge(driveSerial: bridgedSerial(of: record.path)) }
        record.bay = bays.label(for: record.portPath)
        let uevent = device.properties
        let number = DeviceNumber(text: facts.attributes["dev"] ?? "")
            ?? uevent["MAJOR"].flatMap { major in uevent["MINOR"].map { "\(major):\($0)" } }.flatMap(DeviceNumber.init(text:))
        if let number {
            let reasons = SafetyGuard.reasons(for: number)
            record.protected = !reasons.isEmpty
            record.protectionReason = reasons.isEmpty ? nil : reasons.map(\.description).joined(separator: "; ")
            if probeSelfEncryption, !record.protected { selfEncryption(of: &record) }
        } else {
            record.protected = true
            record.protectionReason = "device number unknown, so the guard cannot clear it"
            record.notes.append("\(name): no dev attribute or MAJOR/MINOR property")
        }
        return record
    }

    /// TCG Level 0 Discovery, read-only (IF-RECV): a locked self-encrypting drive is named at
    /// dock time, before an overwrite fails on it. Drives that do not speak TCG, or a bridge
    /// that drops the command, leave the fields nil.
    static func selfEncryption(of record: inout DeviceRecord) {
        guard let interface = SecurityInterface.of(record.transport), let transport = try? LinuxCommandTransport(path: record.path) else { return }
        guard let discovery = TCGDiscovery.probe(interface, using: transport).discovery, discovery.primarySSC != nil else { return }
        record.selfEncryption = discovery.summary
        record.encryptionLocked = discovery.locked || (discovery.mbrEnabled && !discovery.mbrDone)
    }

    /// The serial of the ATA drive behind a USB-SATA bridge: ATA IDENTIFY DEVICE through SAT
    /// (read-only; a bridge without pass-through answers with an error, quickly). Nil when the
    /// drive does not answer or is not ATA (a USB stick, an NVMe enclosure).
    public static func bridgedSerial(of devicePath: String) -> String? {
        guard let transport = try? LinuxCommandTransport(path: devicePath) else { return nil }
        return AtaIdentify.driveSerial(through: transport)
    }

    /// Raw facts for one block device.
    static func facts(of device: UdevDevice) -> BlockFacts {
        var attributes: [String: String] = [:]
        for key in blockAttributes + ["dev"] {
            if let value = device.attribute(key) { attributes[key] = value.trimmedLine }
        }
        var usb: UsbFacts?
        if let parent = device.parent(subsystem: "usb", devtype: "usb_device") {
            usb = UsbBus.facts(fromSysfs: parent)
        }
        var properties = device.properties
        // Kernel uevent variables are not udev's database; keep only what udev added.
        for key in ["ACTION", "SEQNUM", "SUBSYSTEM", "DEVPATH"] { properties[key] = nil }
        if !properties.keys.contains(where: { $0.hasPrefix("ID_") }) {
            properties = [:]
        }
        let name = device.sysname
        return BlockFacts(
            kernelName: name, devicePath: device.devnode ?? "/dev/\(name)", sysPath: device.syspath,
            properties: properties, attributes: attributes, usb: usb)
    }
}

extension String {
    /// Without the trailing newline sysfs puts on every value.
    var trimmedLine: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
