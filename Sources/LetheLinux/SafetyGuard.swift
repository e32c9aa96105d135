import Foundation
import LetheCore

/// Why a device must not be written to, in plain words.
public struct ProtectionReason: Hashable, Sendable, CustomStringConvertible {
    /// Stable kind, for programs.
    public enum Kind: String, Sendable {
        case rootFileSystem, bootFileSystem, swap, mounted, holder, systemDiskPartition, busy
        /// The guard could not read what it needs (sysfs, the mount table, a loop device's
        /// backing file): it refuses rather than guess.
        case unknown
        /// The device writes through to another that is protected (a loop device over a disk
        /// with a mounted file system, a dm or md device on the system disk).
        case backedByProtected
        /// An eMMC's boot or RPMB area.
        case firmwareArea
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
/// that holds `/`, `/boot` or swap is refused too. It follows what the device writes to: a
/// loop device to the block device behind it, a dm or md device to its members (`slaves/`),
/// each checked the same way. An eMMC's boot and RPMB areas are refused.
///
/// It fails closed: when it cannot read the mount table, the swap list, the device's sysfs
/// directory or a loop device's backing file, it refuses and says what it could not read.
public enum SafetyGuard {
    /// What the mount table and swap list say, read once per check.
    struct SystemState {
        /// Mounted device numbers with their mount points.
        var mounts: [DeviceNumber: [String]] = [:]
        /// Device numbers in use as swap.
        var swaps: Set<DeviceNumber> = []
        /// What could not be read; when not empty, every device is refused.
        var unreadable: [String] = []

        static func read(mountinfo: String = "/proc/self/mountinfo", swapsFile: String = "/proc/swaps") -> SystemState {
            var state = SystemState()
            if let text = Sysfs.read(mountinfo) {
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
            } else {
                state.unreadable.append("the mount table (\(mountinfo))")
            }
            if FileManager.default.fileExists(atPath: swapsFile), let text = try? String(contentsOfFile: swapsFile, encoding: .utf8) {
                for line in text.split(separator: "\n").dropFirst() {
                    guard let name = line.split(separator: " ").first else { continue }
                    let path = unescape(String(name))
                    var info = stat()
                    guard stat(path, &info) == 0 else {
                        state.unreadable.append("swap \(path) listed in \(swapsFile)")
                        continue
                    }
                    // A swap file pins the file system (and disk) it lives on.
                    state.swaps.insert((info.st_mode & S_IFMT) == S_IFBLK ? DeviceNumber(UInt64(info.st_rdev)) : DeviceNumber(UInt64(info.st_dev)))
                }
            } else {
                state.unreadable.append("the swap list (\(swapsFile))")
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
        if !state.unreadable.isEmpty {
            return [ProtectionReason(kind: .unknown, description: "the guard cannot read \(state.unreadable.joined(separator: " or ")), so it cannot tell what is in use")]
        }
        guard let name = Sysfs.kernelName(for: number) else {
            return [ProtectionReason(kind: .unknown, description: "the guard cannot find \(number) in sysfs (/sys/dev/block/\(number)), so it cannot tell what uses it")]
        }
        var seen = Set<String>()
        return check(name, state: state, depth: 0).filter { seen.insert($0.description).inserted }
    }

    /// The reasons for kernel block device `name`, following what it writes to.
    private static func check(_ name: String, state: SystemState, depth: Int) -> [ProtectionReason] {
        guard depth < 8 else {
            return [ProtectionReason(kind: .unknown, description: "\(name) is stacked more than 8 devices deep; the guard stops there")]
        }
        let dir = "\(Sysfs.root)/class/block/\(name)"
        guard FileManager.default.fileExists(atPath: dir) else {
            return [ProtectionReason(kind: .unknown, description: "the guard cannot read \(dir), so it cannot tell what uses \(name)")]
        }
        var reasons = usage(ofFamily: name, state: state, prefix: "")
        // A partition of the system disk: refuse, even when the partition itself is idle.
        let isPartition = FileManager.default.fileExists(atPath: "\(dir)/partition")
        var parent = isPartition ? BlockIdentity.parentName(of: name) : nil
        // An eMMC's boot and RPMB areas are devices of their own beside the user area.
        if let range = name.range(of: #"^mmcblk[0-9]+(?=(boot[0-9]+|rpmb)$)"#, options: .regularExpression) {
            reasons.append(ProtectionReason(kind: .firmwareArea, description: "\(name) is an eMMC boot or RPMB area (firmware and boot loader, not user data); Lethe does not erase it"))
            parent = String(name[range])
        }
        if let parent {
            let system = usage(ofFamily: parent, state: state, prefix: "").filter {
                [.rootFileSystem, .bootFileSystem, .swap].contains($0.kind)
            }
            if let first = system.first {
                reasons.append(ProtectionReason(
                    kind: .systemDiskPartition,
                    description: "is a partition of the system disk \(parent), which \(first.description.replacingOccurrences(of: "\(parent) ", with: ""))"))
            }
        }
        // What it writes to: a loop device's backing block device, a dm/md device's members.
        for (below, how, onlySystem) in lower(name, reasons: &reasons) {
            // A dm or md device writes only its own range of its members: their other users
            // (a sibling LV, the device itself as their holder) are not at risk; the system
            // disk under them is.
            let found = check(below, state: state, depth: depth + 1).filter {
                !onlySystem || [.rootFileSystem, .bootFileSystem, .swap, .systemDiskPartition, .unknown, .firmwareArea].contains($0.kind)
            }
            for reason in found {
                // "sdb2 has a file system mounted at /mnt"; reasons without a subject get one.
                let said = reason.description.hasPrefix("is ") ? "\(below) \(reason.description)" : reason.description
                reasons.append(ProtectionReason(kind: .backedByProtected, description: "\(name) \(how) \(below): \(said)"))
            }
        }
        return reasons
    }

    /// The devices `name` writes through to: the block device behind a loop device, the
    /// members of a dm or md device. A loop device over a regular file writes that file (a
    /// disk image), which is allowed. What cannot be read becomes a reason.
    private static func lower(_ name: String, reasons: inout [ProtectionReason]) -> [(String, String, Bool)] {
        let dir = "\(Sysfs.root)/class/block/\(name)"
        var found: [(String, String, Bool)] = []
        if name.hasPrefix("loop"), FileManager.default.fileExists(atPath: "\(dir)/loop") {
            guard var backing = Sysfs.read("\(dir)/loop/backing_file") else {
                reasons.append(ProtectionReason(kind: .unknown, description: "the guard cannot read \(dir)/loop/backing_file, so it cannot tell what \(name) writes to"))
                return found
            }
            if backing.hasSuffix(" (deleted)") { backing = String(backing.dropLast(10)) }
            var info = stat()
            guard stat(backing, &info) == 0 else {
                reasons.append(ProtectionReason(kind: .unknown, description: "\(name)'s backing file \(backing) cannot be found, so the guard cannot tell what it writes to"))
                return found
            }
            if (info.st_mode & S_IFMT) == S_IFBLK {
                let number = DeviceNumber(UInt64(info.st_rdev))
                guard let below = Sysfs.kernelName(for: number) else {
                    reasons.append(ProtectionReason(kind: .unknown, description: "\(name) is backed by \(backing) (\(number)), which the guard cannot find in sysfs"))
                    return found
                }
                found.append((below, "is backed by", false))
            }
        }
        for member in Sysfs.list("\(dir)/slaves") { found.append((member, "lies on", true)) }
        return found
    }

    /// The device, its partitions and everything stacked on them, each checked against the
    /// mount table and swap list.
    private static func usage(ofFamily name: String, state: SystemState, prefix: String) -> [ProtectionReason] {
        var reasons: [ProtectionReason] = []
        var visited = Set<String>()
        func visit(_ member: String, via path: [String]) {
            guard visited.insert(member).inserted else { return }
            guard let number = Sysfs.number(ofBlock: member) else {
                reasons.append(ProtectionReason(kind: .unknown, description: "the guard cannot read the device number of \(member) (\(Sysfs.root)/class/block/\(member)/dev), so it cannot tell whether it is in use"))
                return
            }
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
