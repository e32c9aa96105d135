import CUdev
import Foundation
import LetheCore

/// A libudev context. libudev is not thread-safe: each context and the devices it hands out
/// stay on the thread that made them.
final class UdevContext {
    let handle: OpaquePointer

    init() throws(LetheError) {
        guard let handle = udev_new() else {
            throw LetheError(.ioFailure, path: "libudev", errno: ErrorNumber(errno), "udev_new failed")
        }
        self.handle = handle
    }

    deinit { udev_unref(handle) }

    /// Every whole-disk block device, through libudev's enumerator (which reads sysfs, plus
    /// udev's database when systemd-udevd runs).
    func blockDisks() -> [UdevDevice] {
        guard let enumerator = udev_enumerate_new(handle) else { return [] }
        defer { udev_enumerate_unref(enumerator) }
        udev_enumerate_add_match_subsystem(enumerator, "block")
        udev_enumerate_add_match_property(enumerator, "DEVTYPE", "disk")
        udev_enumerate_scan_devices(enumerator)
        return Self.devices(in: udev_enumerate_get_list_entry(enumerator), udev: handle)
    }

    /// Every USB device (not interfaces).
    func usbDevices() -> [UdevDevice] {
        guard let enumerator = udev_enumerate_new(handle) else { return [] }
        defer { udev_enumerate_unref(enumerator) }
        udev_enumerate_add_match_subsystem(enumerator, "usb")
        udev_enumerate_add_match_property(enumerator, "DEVTYPE", "usb_device")
        udev_enumerate_scan_devices(enumerator)
        return Self.devices(in: udev_enumerate_get_list_entry(enumerator), udev: handle)
    }

    /// A device by subsystem and kernel name (`block`, `sda`; `usb`, `1-2`).
    func device(subsystem: String, sysname: String) -> UdevDevice? {
        udev_device_new_from_subsystem_sysname(handle, subsystem, sysname).map(UdevDevice.init(owning:))
    }

    private static func devices(in list: OpaquePointer?, udev: OpaquePointer) -> [UdevDevice] {
        var result: [UdevDevice] = []
        var entry = list
        while let current = entry {
            if let path = udev_list_entry_get_name(current), let device = udev_device_new_from_syspath(udev, path) {
                result.append(UdevDevice(owning: device))
            }
            entry = udev_list_entry_get_next(current)
        }
        return result
    }
}

/// One libudev device.
final class UdevDevice {
    let handle: OpaquePointer
    private let owned: Bool

    init(owning handle: OpaquePointer) {
        self.handle = handle
        owned = true
    }

    init(borrowing handle: OpaquePointer) {
        self.handle = handle
        owned = false
    }

    deinit { if owned { udev_device_unref(handle) } }

    var sysname: String { udev_device_get_sysname(handle).map { String(cString: $0) } ?? "?" }
    var syspath: String { udev_device_get_syspath(handle).map { String(cString: $0) } ?? "" }
    var devnode: String? { udev_device_get_devnode(handle).map { String(cString: $0) } }
    var action: String? { udev_device_get_action(handle).map { String(cString: $0) } }
    var subsystem: String? { udev_device_get_subsystem(handle).map { String(cString: $0) } }
    var devtype: String? { udev_device_get_devtype(handle).map { String(cString: $0) } }

    /// All properties (uevent variables, plus udev's database when it has an entry).
    var properties: [String: String] {
        var result: [String: String] = [:]
        var entry = udev_device_get_properties_list_entry(handle)
        while let current = entry {
            if let name = udev_list_entry_get_name(current) {
                result[String(cString: name)] = udev_list_entry_get_value(current).map { String(cString: $0) } ?? ""
            }
            entry = udev_list_entry_get_next(current)
        }
        return result
    }

    /// A sysfs attribute, by path relative to the device (`queue/rotational`), or nil.
    func attribute(_ name: String) -> String? {
        guard let value = udev_device_get_sysattr_value(handle, name) else { return nil }
        return String(decoding: Data(bytes: value, count: strlen(value)), as: UTF8.self)
    }

    /// The nearest ancestor in a subsystem (owned by this device: keep this one alive).
    func parent(subsystem: String, devtype: String?) -> UdevDevice? {
        udev_device_get_parent_with_subsystem_devtype(handle, subsystem, devtype).map(UdevDevice.init(borrowing:))
    }
}
