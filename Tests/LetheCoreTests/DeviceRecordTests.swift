import LetheCore
import Testing

/// Device records from raw sysfs/udev facts: real attribute names and values, and garbage.
@Suite struct DeviceRecordTests {
    static let sataPath = "/sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda"

    static func sata(_ attributes: [String: String] = [:], properties: [String: String] = [:]) -> BlockFacts {
        var attrs = [
            "size": "1953525168", "queue/logical_block_size": "512", "queue/physical_block_size": "4096",
            "queue/rotational": "1", "removable": "0", "device/model": "WDC WD10EZEX-08W", "device/vendor": "ATA     ",
            "device/rev": "1A01",
        ]
        attrs.merge(attributes) { $1 }
        return BlockFacts(kernelName: "sda", devicePath: "/dev/sda", sysPath: sataPath, properties: properties, attributes: attrs)
    }

    @Test func transportFromSysfsPath() {
        #expect(Transport.classify(kernelName: "sda", sysPath: Self.sataPath, idBus: nil) == .sata)
        #expect(Transport.classify(kernelName: "sdb", sysPath: "/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host2/target2:0:0/2:0:0:0/block/sdb", idBus: nil) == .usb)
        #expect(Transport.classify(kernelName: "sdc", sysPath: "/sys/devices/pci0000:00/0000:00:06.0/virtio3/host1/target1:0:0/1:0:0:0/block/sdc", idBus: nil) == .scsi)
        #expect(Transport.classify(kernelName: "nvme0n1", sysPath: "/sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1", idBus: nil) == .nvme)
        #expect(Transport.classify(kernelName: "vda", sysPath: "/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda", idBus: nil) == .virtio)
        #expect(Transport.classify(kernelName: "loop3", sysPath: "/sys/devices/virtual/block/loop3", idBus: nil) == .loop)
        #expect(Transport.classify(kernelName: "mmcblk0", sysPath: "/sys/devices/platform/mmc0/mmc0:0001/block/mmcblk0", idBus: nil) == .mmc)
    }

    @Test func sataDiskWithUdev() {
        let facts = Self.sata(properties: [
            "ID_MODEL": "WDC_WD10EZEX-08WN4A0", "ID_MODEL_ENC": "WDC\\x20WD10EZEX-08WN4A0\\x20\\x20\\x20",
            "ID_SERIAL_SHORT": "WD-WCC6Y3KJ0RXX", "ID_WWN": "0x50014ee2b5d1e2f3", "ID_REVISION": "01.01A01",
            "ID_PATH": "pci-0000:00:1f.2-ata-1.0", "ID_BUS": "ata",
        ])
        let record = DeviceRecord(facts: facts)
        #expect(record.transport == .sata)
        #expect(record.model == "WDC WD10EZEX-08WN4A0")
        #expect(record.serial == "WD-WCC6Y3KJ0RXX")
        #expect(record.wwn == "0x50014ee2b5d1e2f3")
        #expect(record.firmware == "01.01A01")
        #expect(record.sizeBytes == 1_000_204_886_016)
        #expect(record.logicalSectorSize == 512)
        #expect(record.physicalSectorSize == 4096)
        #expect(record.rotational == true)
        #expect(record.removable == false)
        #expect(record.portPath == "pci-0000:00:1f.2-ata-1.0")
        #expect(record.notes.isEmpty)
    }

    @Test func withoutUdevTheSysfsPortPathAndANoteStandIn() {
        let record = DeviceRecord(facts: Self.sata())
        #expect(record.model == "WDC WD10EZEX-08W")
        #expect(record.portPath == "sysfs-pci0000:00/0000:00:1f.2/ata1")
        #expect(record.notes.contains { $0.contains("no udev database") })
        #expect(record.notes.contains { $0.contains("serial number unknown") })
    }

    @Test func garbageAttributesAreNamedNotFatal() {
        let record = DeviceRecord(facts: Self.sata([
            "size": "lots", "queue/logical_block_size": "513", "queue/rotational": "maybe", "removable": "\u{1}",
        ]))
        #expect(record.sizeBytes == nil)
        #expect(record.logicalSectorSize == nil)
        #expect(record.physicalSectorSize == 4096)
        #expect(record.rotational == nil)
        #expect(record.notes.contains { $0 == "sda: sysfs attribute size is not a number: \"lots\"" })
        #expect(record.notes.contains { $0.contains("queue/logical_block_size is not a sector size: 513") })
        #expect(record.notes.contains { $0.contains("queue/rotational is not 0 or 1") })
        #expect(record.notes.contains { $0.contains("removable is not 0 or 1: \"\\u{1}\"") })
        #expect(record.model == "WDC WD10EZEX-08W")
    }

    @Test func missingAttributesAreNamed() {
        let facts = BlockFacts(kernelName: "sdz", devicePath: "/dev/sdz", sysPath: "/sys/devices/pci0000:00/x/ata9/host8/block/sdz")
        let record = DeviceRecord(facts: facts)
        #expect(record.transport == .sata)
        #expect(record.sizeBytes == nil)
        #expect(record.notes.contains("sdz: sysfs attribute size is missing"))
    }

    @Test func usbDockCarriesTheBridgeAndPort() {
        let usb = UsbFacts(
            busNumber: 2, deviceAddress: 3, portPath: "2-1", vendorId: 0x152d, productId: 0x0578,
            manufacturer: "JMicron", product: "USB to ATA/ATAPI Bridge", serial: "0123456789ABCDEF",
            interfaces: [UsbInterface(0x08, 0x06, 0x50)])
        let facts = BlockFacts(
            kernelName: "sdb", devicePath: "/dev/sdb",
            sysPath: "/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host2/target2:0:0/2:0:0:0/block/sdb",
            properties: ["ID_BUS": "usb", "ID_SERIAL_SHORT": "0123456789ABCDEF"], attributes: ["size": "976773168"], usb: usb)
        let record = DeviceRecord(facts: facts)
        #expect(record.transport == .usb)
        #expect(record.portPath == "usb-2-1")
        #expect(record.usb?.deviceClass == .massStorage)
        #expect(record.usb?.vendorId == "0x152d")
        #expect(record.serial == "0123456789ABCDEF" && record.serialSource == "device", "before the drive is asked")

        // Issue 15, item 5: the drive's own serial (ATA IDENTIFY through the bridge) replaces
        // the dock's, which is kept as the bridge's.
        let asked = record.resolvingBridge(driveSerial: "S4CNNX0N123456")
        #expect(asked.serial == "S4CNNX0N123456" && asked.serialSource == "drive" && asked.bridgeSerial == "0123456789ABCDEF")
        #expect(asked.identity.serial == "S4CNNX0N123456")
        #expect(!asked.notes.contains { $0.contains("is the USB device's") })
        // A bridge chip whose drive does not answer: its serial is not the drive's identity.
        let silent = record.resolvingBridge(driveSerial: nil)
        #expect(silent.serial == nil && silent.bridgeSerial == "0123456789ABCDEF")
        #expect(silent.notes.last?.contains("its own serial is unknown") == true)
        // A USB stick (SanDisk) that does not speak ATA keeps its own USB serial.
        var stickFacts = facts
        stickFacts.usb = UsbFacts(
            busNumber: 2, deviceAddress: 4, portPath: "2-2", vendorId: 0x0781, productId: 0x5581,
            manufacturer: "SanDisk", product: "Ultra", serial: "4C530001230815117365", interfaces: [UsbInterface(0x08, 0x06, 0x50)])
        stickFacts.properties["ID_SERIAL_SHORT"] = "4C530001230815117365"
        let stick = DeviceRecord(facts: stickFacts).resolvingBridge(driveSerial: nil)
        #expect(stick.serial == "4C530001230815117365" && stick.bridgeSerial == nil)
    }

    @Test func identityDifferencesAreNamed() {
        let docked = DriveIdentity(deviceNumber: "8:32", serial: "LABUSB0001", sizeBytes: 1 << 30)
        #expect(docked.differences(from: docked) == nil)
        let swapped = DriveIdentity(deviceNumber: "8:32", serial: "18000", sizeBytes: 64 << 20)
        #expect(docked.differences(from: swapped) == "serial LABUSB0001 → 18000, size 1073741824 bytes → 67108864 bytes")
        let vanishedSerial = DriveIdentity(deviceNumber: "8:32", serial: nil, sizeBytes: 1 << 30)
        #expect(docked.differences(from: vanishedSerial) == "serial LABUSB0001 → none", "a serial that vanished is not the same drive")
    }

    @Test func usbClassification() {
        #expect(UsbDeviceClass.classify(vendorId: 0x18d1, interfaces: [UsbInterface(0x06, 0x01, 0x01), UsbInterface(0xff, 0x42, 0x01)]) == .android)
        #expect(UsbDeviceClass.classify(vendorId: 0x05ac, interfaces: [UsbInterface(0x06, 0x01, 0x01), UsbInterface(0xff, 0xfe, 0x02)]) == .apple)
        #expect(UsbDeviceClass.classify(vendorId: 0x0781, interfaces: [UsbInterface(0x08, 0x06, 0x50)]) == .massStorage)
        #expect(UsbDeviceClass.classify(vendorId: 0x046d, interfaces: [UsbInterface(0x03, 0x01, 0x02)]) == .other)
        // A phone in MTP mode without debugging: not Android-ready, not storage.
        #expect(UsbDeviceClass.classify(vendorId: 0x18d1, interfaces: [UsbInterface(0x06, 0x01, 0x01)]) == .other)
        let phone = DeviceRecord(phone: UsbFacts(
            busNumber: 1, deviceAddress: 7, portPath: "1-4", vendorId: 0x18d1, productId: 0x4ee7, manufacturer: "Google",
            product: "Pixel 7", serial: "2B241FDH2000AB", interfaces: [UsbInterface(0xff, 0x42, 0x01)]))
        #expect(phone.kind == .phone)
        #expect(phone.transport == .adb)
        #expect(phone.path == "usb:1-4")
        #expect(phone.serial == "2B241FDH2000AB")
    }

    @Test func bayMapMatchesSocketsAndWhatIsBehindThem() {
        let map = BayMap(bays: ["usb-2-1": "Bay 1", "pci-0000:00:1f.2-ata-1.0": "Bay 2", "pci-0000:00:14.0-usb-0:3": "Bay 3"])
        #expect(map.label(for: "usb-2-1") == "Bay 1")
        #expect(map.label(for: "usb-2-1.4") == "Bay 1")  // a hub in that socket
        #expect(map.label(for: "usb-2-10") == nil)
        #expect(map.label(for: "pci-0000:00:1f.2-ata-1.0") == "Bay 2")
        #expect(map.label(for: "pci-0000:00:14.0-usb-0:3:1.0-scsi-0:0:0:0") == "Bay 3")
        #expect(map.label(for: nil) == nil)
    }
}
