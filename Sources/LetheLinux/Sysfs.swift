import Foundation
import LetheCore

/// A block device's major:minor number.
public struct DeviceNumber: Hashable, Sendable, CustomStringConvertible {
    public var major: UInt32
    public var minor: UInt32

    /// Creates a device number.
    public init(major: UInt32, minor: UInt32) {
        self.major = major
        self.minor = minor
    }

    /// Splits a `dev_t`.
    public init(_ rdev: UInt64) {
        major = UInt32(truncatingIfNeeded: ((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~0xfff))
        minor = UInt32(truncatingIfNeeded: (rdev & 0xff) | ((rdev >> 12) & ~0xff))
    }

    /// Parses `8:0`.
    public init?(text: String) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let major = UInt32(parts[0]), let minor = UInt32(parts[1]) else { return nil }
        self.init(major: major, minor: minor)
    }

    public var description: String { "\(major):\(minor)" }
}

/// Reads of /sys and /run/udev: small text files, missing ones are nil.
enum Sysfs {
    static let root = "/sys"

    static func read(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path),
            let text = String(data: data, encoding: .utf8) ?? String(data: data, encoding: .isoLatin1)
        else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : trimmed
    }

    static func list(_ path: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: path))?.sorted() ?? []
    }

    /// `/sys/class/block/NAME` for a device number (through /sys/dev/block/M:m).
    static func blockDirectory(for number: DeviceNumber) -> String? {
        let link = "\(root)/dev/block/\(number)"
        guard let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: link) else { return nil }
        let name = (resolved as NSString).lastPathComponent
        return "\(root)/class/block/\(name)"
    }

    /// The kernel name (`sda`, `nvme0n1`, `loop3`) of a device number.
    static func kernelName(for number: DeviceNumber) -> String? {
        blockDirectory(for: number).map { ($0 as NSString).lastPathComponent }
    }

    /// The device number of a kernel block name.
    static func number(ofBlock name: String) -> DeviceNumber? {
        read("\(root)/class/block/\(name)/dev").flatMap(DeviceNumber.init(text:))
    }

    /// udev's database entry (`E:KEY=VALUE` lines) for a block device.
    static func udevProperties(for number: DeviceNumber) -> [String: String] {
        guard let text = read("/run/udev/data/b\(number)") else { return [:] }
        var properties: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("E:") {
            let body = line.dropFirst(2)
            guard let equals = body.firstIndex(of: "=") else { continue }
            properties[String(body[..<equals])] = String(body[body.index(after: equals)...])
        }
        return properties
    }
}

/// What sysfs and udev say about a block device: enough to show the operator what is about to
/// be erased and to match `--serial`.
public struct BlockIdentity: Hashable, Sendable {
    /// Kernel name (`sda`).
    public var kernelName: String
    /// Vendor, when known.
    public var vendor: String?
    /// Model, when known.
    public var model: String?
    /// Serial number, when known.
    public var serial: String?
    /// For loop devices, the backing file.
    public var backingFile: String?
    /// World wide name, when the device has one.
    public var wwn: String?
    /// Behind a USB-SATA bridge: the bridge's serial (`serial` is then the drive's own, read
    /// with ATA IDENTIFY, or nil when the drive did not answer).
    public var bridgeSerial: String?

    /// Reads identity for a device number. Missing attributes stay nil.
    public static func read(_ number: DeviceNumber) -> BlockIdentity {
        let name = Sysfs.kernelName(for: number) ?? number.description
        var dir = "\(Sysfs.root)/class/block/\(name)"
        if FileManager.default.fileExists(atPath: "\(dir)/partition"), let parent = parentName(of: name) {
            dir = "\(Sysfs.root)/class/block/\(parent)"
        }
        let udev = Sysfs.udevProperties(for: number)
        let clean: (String?) -> String? = { value in
            guard let value else { return nil }
            let cleaned = String(value.unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7f })
                .trimmingCharacters(in: .whitespaces)
            return cleaned.isEmpty ? nil : cleaned
        }
        var serial = clean(udev["ID_SERIAL_SHORT"]) ?? clean(Sysfs.read("\(dir)/device/serial"))
            ?? clean(Sysfs.read("\(dir)/serial"))
        var bridgeSerial: String?
        // Behind a USB bridge the USB serial is the dock's: ask the drive itself.
        let disk = (dir as NSString).lastPathComponent
        let onUSB = udev["ID_BUS"] == "usb" || ((try? FileManager.default.destinationOfSymbolicLink(atPath: "\(Sysfs.root)/class/block/\(disk)")) ?? "").contains("/usb")
        if onUSB {
            if let own = DeviceDiscovery.bridgedSerial(of: "/dev/\(disk)") {
                if own != serial { bridgeSerial = serial }
                serial = own
            } else if let vendor = udev["ID_VENDOR_ID"], DeviceRecord.isBridgeVendor(vendor) {
                bridgeSerial = serial
                serial = nil
            }
        }
        return BlockIdentity(
            kernelName: name,
            vendor: clean(udev["ID_VENDOR"]) ?? clean(Sysfs.read("\(dir)/device/vendor")),
            model: clean(udev["ID_MODEL"]?.replacingOccurrences(of: "_", with: " ")) ?? clean(Sysfs.read("\(dir)/device/model")),
            serial: serial,
            backingFile: clean(Sysfs.read("\(dir)/loop/backing_file")),
            wwn: clean(udev["ID_WWN_WITH_EXTENSION"] ?? udev["ID_WWN"]) ?? clean(Sysfs.read("\(dir)/wwid")) ?? clean(Sysfs.read("\(dir)/device/wwid")),
            bridgeSerial: bridgeSerial)
    }

    /// The whole-disk name of a partition (`sda` for `sda1`), through sysfs.
    static func parentName(of name: String) -> String? {
        guard let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(Sysfs.root)/class/block/\(name)") else { return nil }
        let components = resolved.split(separator: "/")
        guard components.count >= 2 else { return nil }
        return String(components[components.count - 2])
    }
}
