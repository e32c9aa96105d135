import Foundation
import LetheCore

/// Why a device must not be written to, in plain words.
public struct ProtectionReason: Hashable, Sendable, CustomStringConvertible {
    /// Stable kind, for programs.
    public enum Kind: String, Sendable {
        case rootFileSystem, bootFileSystem, swap, mounted, holder, systemDiskPartition, busy
    }

    /// The kind of protection.
    public var kind: Kind
    /// The sentence shown to the operator.
    public var description: String
}

/// The safety guard: the one place that decides whether a block device may be written. Every
/// command that writes asks it first.
///
/// It refuses a device when the device itself, one of its partitions, or anything stacked on
/// them (dm, md, LVM, LUKS; found through sysfs `holders/`) holds `/`, `/boot`, swap or any
/// mounted file system, or is held by a device-mapper or RAID device. A partition of a disk
/// that holds `/`, `/boot` or swap is refused too.
public enum SafetyGuard {
    /// What the mount table and swap list say, read once per check.
    struct SystemState {
        /// Mounted device numbers with their mount points.
        var mounts: [DeviceNumber: [String]] = [:]
        /// Device numbers in use as swap.
        var swaps: Set<DeviceNumber> = []

        static func read() -> SystemState {
            var state = SystemState()
            if let text = Sysfs.read("/proc/self/mountinfo") {
                for line in text.split(separator: "\n") {
                    let fields = line.split(separator: " ", omittingEmptySubsequences: false)
                    guard fields.count >= 10, let number = DeviceNumber(text: String(fields[2])) else { continue }
                    let mountPoint = unescape(String(fields[4]))
                    var numbers = [number]
                    // btrfs and friends report an anonymous 0:N; the source field names the device.
                    if let separator = fields.firstIndex(of: "-"), separator + 2 < fields.count {
                        let source = unescape(String(fields[separator + 2]))
                        if source.hasPrefix("/dev/"), let resolved = deviceNumber(ofNode: source) { numbers.append(resolved) }
                    }
                    for number in Set(numbers) { state.mounts[number, default: []].append(mountPoint) }
                }
            }
            if let text = Sysfs.read("/proc/swaps") {
                for line in text.split(separator: "\n").dropFirst() {
                    guard let name = line.split(separator: " ").first else { continue }
                    let path = unescape(String(name))
                    var info = stat()
                    guard stat(path, &info) == 0 else { continue }
                    // A swap file pins the file system (and disk) it lives on.
                    state.swaps.insert((info.st_mode & S_IFMT) == S_IFBLK ? DeviceNumber(UInt64(info.st_rdev)) : DeviceNumber(UInt64(info.st_dev)))
                }
            }
            return state
        }

        /// /proc escapes space, tab, newline and backslash as octal.
        static func unescape(_ text: String) -> String {
            guard text.contains("\\") else { return text }
            var bytes: [UInt8] = []
            let source = Array(text.utf8)
            var i = 0
            while i < source.count {
                if source[i] == UInt8(ascii: "\\"), i + 3 < source.count,
                    let value = UInt8(String(decoding: source[(i + 1)...(i + 3)], as: UTF8.self), radix: 8)
                {
                    bytes.append(value)
                    i += 4
                } else {
                    bytes.append(source[i])
                    i += 1
                }
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// The device number of a block device node, or nil.
    static func deviceNumber(ofNode path: String) -> DeviceNumber? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFBLK else { return nil }
        return DeviceNumber(UInt64(info.st_rdev))
    }

    /// Every reason the block device `number` must not be written; empty means it may be.
    public static func reasons(for number: DeviceNumber) -> [ProtectionReason] {
        reasons(for: number, state: .read())
    }

    static func reasons(for number: DeviceNumber, state: SystemState) -> [ProtectionReason] {
        guard let name = Sysfs.kernelName(for: number) else { return [] }
        var reasons = usage(ofFamily: name, state: state, prefix: "")
        // A partition of the system disk: refuse, even when the partition itself is idle.
        if Sysfs.read("\(Sysfs.root)/class/block/\(name)/partition") != nil, let parent = BlockIdentity.parentName(of: name) {
            let system = usage(ofFamily: parent, state: state, prefix: "").filter {
                [.rootFileSystem, .bootFileSystem, .swap].contains($0.kind)
            }
            if let first = system.first {
                reasons.append(ProtectionReason(
                    kind: .systemDiskPartition,
                    description: "is a partition of the system disk \(parent), which \(first.description.replacingOccurrences(of: "\(parent) ", with: ""))"))
            }
        }
        var seen = Set<String>()
        return reasons.filter { seen.insert($0.description).inserted }
    }

    /// The device, its partitions and everything stacked on them, each checked against the
    /// mount table and swap list.
    private static func usage(ofFamily name: String, state: SystemState, prefix: String) -> [ProtectionReason] {
        var reasons: [ProtectionReason] = []
        var visited = Set<String>()
        func visit(_ member: String, via path: [String]) {
            guard visited.insert(member).inserted, let number = Sysfs.number(ofBlock: member) else { return }
            let who = path.isEmpty ? member : "\(path.first!) (through \((path.dropFirst() + [member]).joined(separator: " → ")))"
            for point in state.mounts[number] ?? [] {
                switch point {
                case "/":
                    reasons.append(ProtectionReason(kind: .rootFileSystem, description: "\(who) holds the root file system (/)"))
                case "/boot", "/boot/efi", "/efi":
                    reasons.append(ProtectionReason(kind: .bootFileSystem, description: "\(who) holds \(point)"))
                default:
                    reasons.append(ProtectionReason(kind: .mounted, description: "\(who) has a file system mounted at \(point)"))
                }
            }
            if state.swaps.contains(number) {
                reasons.append(ProtectionReason(kind: .swap, description: "\(who) is in use as swap"))
            }
            let dir = "\(Sysfs.root)/class/block/\(member)"
            for holder in Sysfs.list("\(dir)/holders") {
                reasons.append(ProtectionReason(
                    kind: .holder, description: "\(who) is held by \(holder) (device-mapper, RAID or LVM); stop \(holder) first"))
                visit(holder, via: (path.isEmpty ? [member] : path))
            }
            // Partitions are subdirectories that have a `partition` file.
            for child in Sysfs.list(dir) where child.hasPrefix(member) || child.hasPrefix(member.replacingOccurrences(of: "/", with: "!")) {
                if FileManager.default.fileExists(atPath: "\(dir)/\(child)/partition") {
                    visit(child, via: [])
                }
            }
        }
        visit(name, via: [])
        return reasons
    }
}
