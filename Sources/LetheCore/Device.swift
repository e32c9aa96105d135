/// What a docked device is: a drive (a block device) or a phone.
public enum DeviceKind: String, Codable, Sendable {
    case drive, phone
}

/// How a device is attached. Phones use `adb` (Android) or `ios` (Apple) even before their
/// own protocol is up: the USB descriptors already say which one they speak.
public enum Transport: String, Codable, Sendable, CaseIterable {
    case sata, nvme, usb, scsi, virtio, loop, mmc, adb, ios, unknown

    /// Classifies a block device from its kernel name, its sysfs device path
    /// (`/sys/devices/pci0000:00/.../block/sda`) and udev's `ID_BUS` when udev is running.
    /// The sysfs path decides first, because it is always there; `ID_BUS` only settles what
    /// the path cannot (ATA behind a SCSI host).
    public static func classify(kernelName: String, sysPath: String, idBus: String?) -> Transport {
        if kernelName.hasPrefix("loop") { return .loop }
        if kernelName.hasPrefix("nvme") { return .nvme }
        if kernelName.hasPrefix("mmcblk") { return .mmc }
        let components = sysPath.split(separator: "/")
        if components.contains(where: { $0.hasPrefix("usb") }) || idBus == "usb" { return .usb }
        if components.contains(where: { $0.hasPrefix("ata") && $0.dropFirst(3).allSatisfy(\.isNumber) && $0.count > 3 })
            || idBus == "ata"
        {
            return .sata
        }
        if kernelName.hasPrefix("vd") { return .virtio }
        if kernelName.hasPrefix("sd") || idBus == "scsi" { return .scsi }
        if components.contains(where: { $0.hasPrefix("virtio") }) { return .virtio }
        return .unknown
    }
}

/// Raw facts about one block device, as sysfs and udev give them: strings, possibly missing
/// or garbage. `DeviceRecord.init(facts:)` turns them into a record and explains each oddity.
public struct BlockFacts: Sendable, Equatable {
    /// Kernel name (`sda`).
    public var kernelName: String
    /// Device node (`/dev/sda`).
    public var devicePath: String
    /// The sysfs device path (`/sys/devices/.../block/sda`).
    public var sysPath: String
    /// udev properties (empty when udev has no database entry).
    public var properties: [String: String]
    /// sysfs attributes by relative path: `size`, `queue/logical_block_size`,
    /// `queue/physical_block_size`, `queue/rotational`, `removable`, `device/model`,
    /// `device/vendor`, `device/serial`, `device/firmware_rev`, `device/rev`, `wwid`,
    /// `device/wwid`. Missing files are absent.
    public var attributes: [String: String]
    /// The USB device above it, for drives in USB docks.
    public var usb: UsbFacts?

    /// Creates facts.
    public init(
        kernelName: String, devicePath: String, sysPath: String, properties: [String: String] = [:],
        attributes: [String: String] = [:], usb: UsbFacts? = nil
    ) {
        self.kernelName = kernelName
        self.devicePath = devicePath
        self.sysPath = sysPath
        self.properties = properties
        self.attributes = attributes
        self.usb = usb
    }
}

/// One device as `lethe devices` shows it (the DESIGN.md contract, camelCase JSON).
public struct DeviceRecord: Codable, Sendable, Equatable {
    /// Device node for drives, `usb:BUS-PORT` for phones seen on USB.
    public var path: String
    public var kind: DeviceKind
    public var transport: Transport
    public var model: String?
    public var vendor: String?
    public var serial: String?
    /// World wide name (`0x5002538e40a22954`, `eui.…`, `naa.…`) when the device has one.
    public var wwn: String?
    public var firmware: String?
    /// Capacity; nil when sysfs did not say (see `notes`).
    public var sizeBytes: UInt64?
    public var logicalSectorSize: Int?
    public var physicalSectorSize: Int?
    public var rotational: Bool?
    public var removable: Bool?
    /// udev's ID_PATH (`pci-0000:00:14.0-usb-0:2:1.0-scsi-0:0:0:0`), or the sysfs port path
    /// when udev has no database.
    public var portPath: String?
    /// The bay label from the station's bay map, or nil.
    public var bay: String?
    /// Whether the safety guard refuses to erase it.
    public var `protected`: Bool
    /// Why, in plain words (nil when not protected).
    public var protectionReason: String?
    /// The USB device it sits on (phones, docks).
    public var usb: UsbIdentity?
    /// What could not be read, and why: missing or garbage attributes, probe failures.
    public var notes: [String]
    /// `major:minor`, for the identity checks at job start (a path names a device only for a
    /// moment).
    public var deviceNumber: String?
    /// A loop device's backing file.
    public var backingFile: String?
    /// Where `serial` comes from: `device` (the drive, or a USB stick, itself), `drive` (the
    /// drive's own, read with ATA IDENTIFY through a USB-SATA bridge). Nil when unknown.
    public var serialSource: String?
    /// The serial of the USB-SATA bridge (dock) in front of the drive, when it is not the
    /// drive's own: never used as the drive's identity.
    public var bridgeSerial: String?
    /// A self-encrypting drive's TCG Level 0 Discovery in words ("TCG Opal 2, LOCKED, MBR
    /// shadow active"); nil for a drive that does not speak TCG or was not asked.
    public var selfEncryption: String?
    /// The drive is locked by its owner (a locked range, or an MBR shadow not yet done): reads
    /// and writes fail until it is unlocked or reverted.
    public var encryptionLocked: Bool?

    /// What the technician must do with a locked self-encrypting drive, or nil.
    public var lockedNextStep: String? {
        guard encryptionLocked == true else { return nil }
        return "LOCKED by its owner (\(selfEncryption ?? "TCG self-encrypting drive")): every read and write fails, so an overwrite cannot work. "
            + "Revert it with the PSID printed on its label: `lethe wipe \(path) --method tcg-psid-revert` (a cryptographic erase, certified as Purge)"
    }

    /// What identifies this device beyond its path.
    public var identity: DriveIdentity {
        DriveIdentity(deviceNumber: deviceNumber, serial: serial, wwn: wwn, sizeBytes: sizeBytes, backingFile: backingFile)
    }

    /// Creates a record.
    public init(
        path: String, kind: DeviceKind, transport: Transport, model: String? = nil, vendor: String? = nil,
        serial: String? = nil, wwn: String? = nil, firmware: String? = nil, sizeBytes: UInt64? = nil,
        logicalSectorSize: Int? = nil, physicalSectorSize: Int? = nil, rotational: Bool? = nil,
        removable: Bool? = nil, portPath: String? = nil, bay: String? = nil, protected: Bool = false,
        protectionReason: String? = nil, usb: UsbIdentity? = nil, notes: [String] = []
    ) {
        self.path = path
        self.kind = kind
        self.transport = transport
        self.model = model
        self.vendor = vendor
        self.serial = serial
        self.wwn = wwn
        self.firmware = firmware
        self.sizeBytes = sizeBytes
        self.logicalSectorSize = logicalSectorSize
        self.physicalSectorSize = physicalSectorSize
        self.rotational = rotational
        self.removable = removable
        self.portPath = portPath
        self.bay = bay
        self.protected = `protected`
        self.protectionReason = protectionReason
        self.usb = usb
        self.notes = notes
    }

    /// Builds a drive record from raw facts. Never fails: what cannot be parsed stays nil and
    /// gets a note naming the attribute and the value seen.
    public init(facts: BlockFacts) {
        var notes: [String] = []
        let props = facts.properties
        let attrs = facts.attributes
        let name = facts.kernelName

        func number(_ key: String) -> UInt64? {
            guard let raw = attrs[key] else {
                notes.append("\(name): sysfs attribute \(key) is missing")
                return nil
            }
            guard let value = UInt64(raw.trimmed) else {
                notes.append("\(name): sysfs attribute \(key) is not a number: \(raw.debugQuoted)")
                return nil
            }
            return value
        }
        func flag(_ key: String) -> Bool? {
            guard let raw = attrs[key] else { return nil }
            switch raw.trimmed {
            case "0": return false
            case "1": return true
            default:
                notes.append("\(name): sysfs attribute \(key) is not 0 or 1: \(raw.debugQuoted)")
                return nil
            }
        }
        func sector(_ key: String) -> Int? {
            guard let value = number(key) else { return nil }
            guard value >= 512, value <= 65536, value & (value - 1) == 0 else {
                notes.append("\(name): sysfs attribute \(key) is not a sector size: \(value)")
                return nil
            }
            return Int(value)
        }

        let transport = Transport.classify(kernelName: name, sysPath: facts.sysPath, idBus: props["ID_BUS"])
        // sysfs `size` counts 512-byte units whatever the logical sector size.
        let size512 = number("size")
        let (sizeBytes, overflow) = (size512 ?? 0).multipliedReportingOverflow(by: 512)
        if overflow { notes.append("\(name): sysfs size \(size512 ?? 0) overflows 64 bits") }

        let model = Self.decodeUdev(props["ID_MODEL_ENC"]) ?? props["ID_MODEL"].map { String($0.map { $0 == "_" ? " " : $0 }) }
            ?? attrs["device/model"] ?? attrs["device/name"]
        let vendor = Self.decodeUdev(props["ID_VENDOR_ENC"]) ?? props["ID_VENDOR"] ?? attrs["device/vendor"]
        // SCSI disks: the unit serial (VPD page 80h); udev's ID_SERIAL_SHORT is often the WWN.
        let serial = transport == .scsi
            ? props["ID_SCSI_SERIAL"] ?? props["ID_SERIAL_SHORT"] ?? attrs["device/serial"]
            : props["ID_SERIAL_SHORT"] ?? props["ID_SCSI_SERIAL"] ?? attrs["device/serial"] ?? attrs["serial"]
        let wwn = props["ID_WWN_WITH_EXTENSION"] ?? props["ID_WWN"] ?? attrs["wwid"] ?? attrs["device/wwid"]
        let firmware = props["ID_REVISION"] ?? attrs["device/firmware_rev"] ?? attrs["device/rev"]

        // udev's ID_PATH; without udev, USB devices get `usb-BUS-PORTS` (the same for a phone
        // and a dock in that socket) and others their sysfs path.
        var portPath = props["ID_PATH"] ?? facts.usb.map { $0.idPath ?? "usb-\($0.portPath)" }
        if portPath == nil, transport != .loop {
            portPath = Self.sysfsPortPath(facts.sysPath)
        }
        if !props.keys.contains(where: { $0.hasPrefix("ID_") }), transport != .loop {
            notes.append("\(name): no udev database entry (is systemd-udevd running?); identity from sysfs only")
        }
        if let usb = facts.usb, let usbSerial = usb.serial.cleaned, serial.cleaned == usbSerial {
            notes.append("\(name): serial \(usbSerial) is the USB device's; behind a SATA dock that is the dock's, not the drive's (Lethe asks the drive itself with ATA IDENTIFY through the bridge when it can)")
        }
        if serial.cleaned == nil, transport != .loop {
            notes.append("\(name): serial number unknown")
        }

        self.init(
            path: facts.devicePath, kind: .drive, transport: transport, model: model.cleaned,
            vendor: vendor.cleaned, serial: serial.cleaned, wwn: wwn.cleaned, firmware: firmware.cleaned,
            sizeBytes: size512 == nil || overflow ? nil : sizeBytes,
            logicalSectorSize: sector("queue/logical_block_size"),
            physicalSectorSize: sector("queue/physical_block_size"),
            rotational: flag("queue/rotational"), removable: flag("removable"), portPath: portPath,
            usb: facts.usb.map(UsbIdentity.init(facts:)), notes: notes)
        deviceNumber = attrs["dev"].cleaned
        backingFile = attrs["loop/backing_file"].cleaned
        serialSource = self.serial == nil ? nil : "device"
    }

    /// USB vendors whose chips are SATA or NVMe bridges (docks, enclosures), not storage of
    /// their own: ASMedia, JMicron, VIA Labs, Initio, Realtek (RTL9210), Genesys Logic,
    /// Norelsys, Innostor, Prolific, LucidPort. Behind them the USB serial is the dock's.
    public static let bridgeVendors: Set<String> = ["174c", "152d", "2109", "13fd", "0bda", "05e3", "2537", "1f75", "067b", "1759"]

    /// Whether a USB vendor id (`152d`, `0x152D`) is one of ``bridgeVendors``.
    public static func isBridgeVendor(_ id: String) -> Bool {
        let bare = id.lowercased().hasPrefix("0x") ? String(id.lowercased().dropFirst(2)) : id.lowercased()
        return bridgeVendors.contains(bare)
    }

    /// The record with the drive's own serial, read through a USB bridge (ATA IDENTIFY over
    /// SAT): `serial` becomes the drive's, the USB one moves to `bridgeSerial`. Without it
    /// (`driveSerial` nil), a known bridge chip's serial is not kept as the drive's identity.
    public func resolvingBridge(driveSerial: String?) -> DeviceRecord {
        guard transport == .usb, let usb else { return self }
        var copy = self
        let usbSerial = usb.serial.cleaned
        if let own = driveSerial.cleaned {
            copy.serial = own
            copy.serialSource = "drive"
            if let usbSerial, usbSerial != own { copy.bridgeSerial = usbSerial }
            copy.notes = notes.filter { !$0.contains("is the USB device's") }
            copy.notes.append("\(kernelNameForNotes): serial \(own) read from the drive with ATA IDENTIFY through the USB bridge\(usbSerial.map { "; the bridge's is \($0)" } ?? "")")
        } else if Self.isBridgeVendor(usb.vendorId), let usbSerial, serial == usbSerial {
            copy.serial = nil
            copy.serialSource = nil
            copy.bridgeSerial = usbSerial
            copy.notes.append("\(kernelNameForNotes): \(usbSerial) is the serial of the USB bridge (\(usb.manufacturer ?? usb.vendorId)), and the drive behind it did not answer ATA IDENTIFY: its own serial is unknown")
        }
        return copy
    }

    private var kernelNameForNotes: String { path.split(separator: "/").last.map(String.init) ?? path }

    private enum CodingKeys: String, CodingKey {
        case path, kind, transport, model, vendor, serial, wwn, firmware, sizeBytes, logicalSectorSize
        case physicalSectorSize, rotational, removable, portPath, bay, `protected`, protectionReason, usb, notes
        case deviceNumber, backingFile, serialSource, bridgeSerial, selfEncryption, encryptionLocked
    }

    /// Encodes every field, unknown ones as `null`, so scripts can rely on the keys.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path)
        try c.encode(kind, forKey: .kind)
        try c.encode(transport, forKey: .transport)
        try c.encode(model, forKey: .model)
        try c.encode(vendor, forKey: .vendor)
        try c.encode(serial, forKey: .serial)
        try c.encode(wwn, forKey: .wwn)
        try c.encode(firmware, forKey: .firmware)
        try c.encode(sizeBytes, forKey: .sizeBytes)
        try c.encode(logicalSectorSize, forKey: .logicalSectorSize)
        try c.encode(physicalSectorSize, forKey: .physicalSectorSize)
        try c.encode(rotational, forKey: .rotational)
        try c.encode(removable, forKey: .removable)
        try c.encode(portPath, forKey: .portPath)
        try c.encode(bay, forKey: .bay)
        try c.encode(`protected`, forKey: .protected)
        try c.encode(protectionReason, forKey: .protectionReason)
        try c.encode(usb, forKey: .usb)
        try c.encode(notes, forKey: .notes)
        try c.encode(deviceNumber, forKey: .deviceNumber)
        try c.encode(backingFile, forKey: .backingFile)
        try c.encode(serialSource, forKey: .serialSource)
        try c.encode(bridgeSerial, forKey: .bridgeSerial)
        try c.encode(selfEncryption, forKey: .selfEncryption)
        try c.encode(encryptionLocked, forKey: .encryptionLocked)
    }

    /// A phone seen on USB before its own protocol is up: listed at once, with what the
    /// technician must do next, and never given a job at this path (its job comes at `adb:` or
    /// `ios:` once the phone speaks).
    public init(phone usb: UsbFacts) {
        let identity = UsbIdentity(facts: usb)
        let apple = identity.deviceClass == .apple
        let next = apple
            ? "on USB, waiting for usbmuxd: unlock the iPhone and tap Trust when it asks"
            : "on USB, waiting for adb: turn on USB debugging and allow this station when the phone asks"
        self.init(
            path: "usb:\(usb.portPath)", kind: .phone, transport: apple ? .ios : .adb,
            model: identity.product, vendor: identity.manufacturer, serial: identity.serial,
            portPath: usb.idPath ?? "usb-\(usb.portPath)", protected: true, protectionReason: next, usb: identity, notes: identity.notes)
    }

    /// The sysfs device path from the controller down to the port (`pci0000:00/0000:00:1f.2/ata1`,
    /// `pci0000:00/0000:00:14.0/usb1/1-2`), for stations without udev.
    static func sysfsPortPath(_ sysPath: String) -> String? {
        let parts = sysPath.split(separator: "/").map(String.init)
        guard let start = parts.firstIndex(of: "devices") else { return nil }
        var kept: [String] = []
        for part in parts[(start + 1)...] {
            let usbInterface = part.first?.isNumber == true && part.contains("-") && part.contains(":")
            if part == "block" || part.hasPrefix("host") || part.hasPrefix("nvme") || usbInterface { break }
            kept.append(part)
        }
        return kept.isEmpty || kept == ["virtual"] ? nil : "sysfs-" + kept.joined(separator: "/")
    }

    /// Decodes udev's `\x20`-escaped `*_ENC` values.
    static func decodeUdev(_ value: String?) -> String? {
        guard let value else { return nil }
        var bytes: [UInt8] = []
        var utf8 = Array(value.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "\\"), utf8.first == UInt8(ascii: "x"), utf8.count >= 3,
                let code = UInt8(String(decoding: utf8.dropFirst().prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(code)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The bay map: udev port paths to the labels written on the bench ("Bay 3").
public struct BayMap: Codable, Sendable, Equatable {
    /// Port path → label.
    public var bays: [String: String]

    /// Creates a map.
    public init(bays: [String: String] = [:]) { self.bays = bays }

    /// The label for a port path. A USB port path also matches its interfaces and the disks
    /// behind it (`…-usb-0:2:1.0-scsi-0:0:0:0` matches a bay learnt as `…-usb-0:2`).
    public func label(for portPath: String?) -> String? {
        guard let portPath else { return nil }
        if let exact = bays[portPath] { return exact }
        let candidates = bays.filter { key, _ in
            [":", "-", "."].contains { portPath.hasPrefix(key + $0) }
        }
        return candidates.max { $0.key.count < $1.key.count }?.value
    }
}

extension String {
    var trimmed: String {
        let isSpace: (Character) -> Bool = { $0.isWhitespace || $0 == "\0" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
    var debugQuoted: String {
        let shown = prefix(40).unicodeScalars.map { $0.value >= 0x20 && $0.value < 0x7f ? String($0) : "\\u{\(String($0.value, radix: 16))}" }.joined()
        return "\"\(shown)\""
    }
}

extension Optional where Wrapped == String {
    /// Printable ASCII only, trimmed; nil when nothing is left.
    var cleaned: String? {
        guard let self else { return nil }
        let kept = String(self.unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7f }).trimmed
        return kept.isEmpty ? nil : kept
    }
}
