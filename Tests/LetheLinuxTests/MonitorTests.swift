import LetheCore
import LetheLinux
import Testing

/// What hotplug events mean when a drive is replaced at the same node, and after lost events
/// (issue 15, item 4). Pure decisions, without a kernel.
@Suite struct MonitorTests {
    func drive(_ path: String, serial: String?, size: UInt64 = 1 << 30, number: String = "8:32") -> DeviceRecord {
        var record = DeviceRecord(path: path, kind: .drive, transport: .usb, serial: serial, sizeBytes: size)
        record.deviceNumber = number
        return record
    }

    @Test func anotherSerialAtTheSameNodeIsARemoveAndAnAdd() {
        var present = ["/dev/sdc": drive("/dev/sdc", serial: "LABUSB0001")]
        let events = DeviceMonitor.transition(at: "/dev/sdc", to: drive("/dev/sdc", serial: "18000"), present: &present, kernelAction: "change")
        #expect(events.map(\.event) == [.remove, .add])
        #expect(events.first?.device.serial == "LABUSB0001" && events.last?.device.serial == "18000")
        #expect(present["/dev/sdc"]?.serial == "18000")
    }

    @Test func aNewSizeOfTheSameDriveIsAChange() {
        var present = ["/dev/sdc": drive("/dev/sdc", serial: "A")]
        let events = DeviceMonitor.transition(at: "/dev/sdc", to: drive("/dev/sdc", serial: "A", size: 2 << 30), present: &present, kernelAction: "change")
        #expect(events.map(\.event) == [.change])
        #expect(DeviceMonitor.transition(at: "/dev/sdc", to: drive("/dev/sdc", serial: "A", size: 2 << 30), present: &present, kernelAction: "change").isEmpty)
    }

    @Test func aRescanAfterLostEventsFindsWhatLeftCameAndWasSwapped() {
        var present = [
            "/dev/sda": drive("/dev/sda", serial: "A"),
            "/dev/sdb": drive("/dev/sdb", serial: "B"),
            "/dev/sdd": drive("/dev/sdd", serial: "D"),
            "usb:1-4": DeviceRecord(path: "usb:1-4", kind: .phone, transport: .adb),
        ]
        let scanned = [drive("/dev/sda", serial: "A"), drive("/dev/sdc", serial: "C"), drive("/dev/sdd", serial: "E")]
        let events = DeviceMonitor.reconcile(present: &present, scanned: scanned)
        let summary = events.map { "\($0.event.rawValue) \($0.device.path) \($0.device.serial ?? "-")" }
        #expect(summary == ["remove /dev/sdb B", "add /dev/sdc C", "remove /dev/sdd D", "add /dev/sdd E"], "\(summary)")
        #expect(present["usb:1-4"] != nil, "phones are not the block scan's to remove")
        #expect(events.allSatisfy { $0.kernelAction == "rescan" })
    }
}
