import CUsb
import Foundation
import LetheCore

/// USB devices through libusb: ids and interface classes from the descriptors, strings from the
/// string descriptors (or the kernel's cached copies in sysfs when the node cannot be opened).
public enum UsbBus {
    /// Every USB device on the machine. When libusb cannot start (no usbfs, say), falls back
    /// to sysfs through libudev and says so in each device's problems.
    public static func devices() -> [UsbFacts] {
        var context: OpaquePointer?
        let status = libusb_init(&context)
        guard status == 0, let context else {
            let hint = geteuid() != 0 ? "; not running as root, and USB device nodes are usually root-only" : ""
            let why = "libusb could not start (\(errorName(status))\(hint)); descriptors read from sysfs"
            return sysfsDevices().map { facts in
                var facts = facts
                facts.problems.append(why)
                return facts
            }
        }
        defer { libusb_exit(context) }
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let count = libusb_get_device_list(context, &list)
        guard count >= 0, let list else { return sysfsDevices() }
        defer { libusb_free_device_list(list, 1) }
        let udev = try? UdevContext()
        return (0..<count).compactMap { index in
            list[index].map { facts(of: $0, udev: udev) }
        }.sorted { $0.portPath < $1.portPath }
    }

    /// Facts for one libusb device.
    static func facts(of device: OpaquePointer, udev: UdevContext?) -> UsbFacts {
        var descriptor = libusb_device_descriptor()
        _ = libusb_get_device_descriptor(device, &descriptor)
        let bus = libusb_get_bus_number(device)
        let address = libusb_get_device_address(device)
        var ports = [UInt8](repeating: 0, count: 8)
        let depth = libusb_get_port_numbers(device, &ports, Int32(ports.count))
        // The kernel's name for the device: `1-2.3`, or `usb1` for a root hub.
        let portPath = depth > 0 ? "\(bus)-" + ports.prefix(Int(depth)).map(String.init).joined(separator: ".") : "usb\(bus)"
        var facts = UsbFacts(
            busNumber: bus, deviceAddress: address, portPath: portPath, vendorId: descriptor.idVendor,
            productId: descriptor.idProduct)

        var config: UnsafeMutablePointer<libusb_config_descriptor>?
        if libusb_get_active_config_descriptor(device, &config) == 0 || libusb_get_config_descriptor(device, 0, &config) == 0,
            let config
        {
            defer { libusb_free_config_descriptor(config) }
            for i in 0..<Int(config.pointee.bNumInterfaces) {
                let interface = config.pointee.interface[i]
                guard interface.num_altsetting > 0, let setting = interface.altsetting else { continue }
                facts.interfaces.append(
                    UsbInterface(setting.pointee.bInterfaceClass, setting.pointee.bInterfaceSubClass, setting.pointee.bInterfaceProtocol))
            }
        } else {
            facts.problems.append("\(portPath): configuration descriptor unreadable")
        }

        // Strings need the device node. Root hubs and devices without strings are skipped.
        let wanted = [descriptor.iManufacturer, descriptor.iProduct, descriptor.iSerialNumber]
        var strings: [String?] = [nil, nil, nil]
        if wanted.contains(where: { $0 != 0 }) {
            var handle: OpaquePointer?
            let opened = libusb_open(device, &handle)
            if opened == 0, let handle {
                defer { libusb_close(handle) }
                for (slot, index) in wanted.enumerated() where index != 0 {
                    var buffer = [UInt8](repeating: 0, count: 256)
                    let length = libusb_get_string_descriptor_ascii(handle, index, &buffer, Int32(buffer.count))
                    if length > 0 { strings[slot] = String(decoding: buffer.prefix(Int(length)), as: UTF8.self) }
                }
            } else {
                let node = String(format: "/dev/bus/usb/%03d/%03d", bus, address)
                let hint = opened == LIBUSB_ERROR_ACCESS.rawValue ? " (permission denied: run as root, or add a udev rule for this device)" : ""
                facts.problems.append("\(portPath): cannot open \(node): \(errorName(opened))\(hint); strings read from sysfs")
            }
        }
        let sysfs = udev?.device(subsystem: "usb", sysname: portPath)
        if strings.allSatisfy({ $0 == nil }), let sysfs {
            strings = [sysfs.attribute("manufacturer"), sysfs.attribute("product"), sysfs.attribute("serial")].map { $0?.trimmedLine }
        }
        facts.idPath = sysfs?.properties["ID_PATH"]
        facts.manufacturer = strings[0]
        facts.product = strings[1]
        facts.serial = strings[2]
        return facts
    }

    /// USB devices from sysfs alone (libudev): for when libusb cannot run.
    static func sysfsDevices() -> [UsbFacts] {
        guard let udev = try? UdevContext() else { return [] }
        return udev.usbDevices().map(facts(fromSysfs:)).sorted { $0.portPath < $1.portPath }
    }

    /// Facts for a `usb_device` from its sysfs attributes (kernel-cached descriptors).
    static func facts(fromSysfs device: UdevDevice) -> UsbFacts {
        let hex: (String) -> UInt16 = { UInt16(device.attribute($0)?.trimmedLine ?? "", radix: 16) ?? 0 }
        var facts = UsbFacts(
            busNumber: UInt8(device.attribute("busnum")?.trimmedLine ?? "") ?? 0,
            deviceAddress: UInt8(device.attribute("devnum")?.trimmedLine ?? "") ?? 0,
            portPath: device.sysname, vendorId: hex("idVendor"), productId: hex("idProduct"),
            manufacturer: device.attribute("manufacturer")?.trimmedLine, product: device.attribute("product")?.trimmedLine,
            serial: device.attribute("serial")?.trimmedLine, idPath: device.properties["ID_PATH"])
        // Interfaces are the device's children named `1-2:1.0`.
        let base = device.syspath
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: base))?.sorted() ?? [] where entry.hasPrefix(device.sysname + ":") {
            let read: (String) -> UInt8? = { UInt8(Sysfs.read("\(base)/\(entry)/\($0)") ?? "", radix: 16) }
            if let c = read("bInterfaceClass"), let s = read("bInterfaceSubClass"), let p = read("bInterfaceProtocol") {
                facts.interfaces.append(UsbInterface(c, s, p))
            }
        }
        return facts
    }

    static func errorName(_ code: Int32) -> String {
        libusb_error_name(code).map { String(cString: $0) } ?? "libusb error \(code)"
    }
}
