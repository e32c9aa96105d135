import Foundation
import LetheCore
import LetheLinux
import Testing

/// Where drive commands go, against a sysfs tree of the test's own: never through a partition,
/// and an NVMe command that reaches every namespace knows them all (issue 15, items 2 and 3).
@Suite struct CommandNodeTests {
    /// A tree with disk sdz and its partitions sdz1, sdz2; controller nvme0 with namespaces 1
    /// and 2; controller nvme1 with namespace 1.
    func tree() throws -> String {
        let root = NSTemporaryDirectory() + "lethe-sysfs-\(UUID().uuidString)"
        let fm = FileManager.default
        func dir(_ path: String) throws { try fm.createDirectory(atPath: "\(root)/\(path)", withIntermediateDirectories: true) }
        func file(_ path: String, _ text: String) throws { try text.write(toFile: "\(root)/\(path)", atomically: true, encoding: .utf8) }
        func link(_ path: String, to target: String) throws { try fm.createSymbolicLink(atPath: "\(root)/\(path)", withDestinationPath: target) }
        try dir("devices/pci0000:00/ata1/host0/block/sdz/sdz1")
        try dir("devices/pci0000:00/ata1/host0/block/sdz/sdz2")
        try file("devices/pci0000:00/ata1/host0/block/sdz/sdz1/partition", "1\n")
        try file("devices/pci0000:00/ata1/host0/block/sdz/sdz2/partition", "2\n")
        try dir("block")
        try dir("class/block")
        try link("block/sdz", to: "../devices/pci0000:00/ata1/host0/block/sdz")
        for part in ["sdz1", "sdz2"] { try link("class/block/\(part)", to: "../../devices/pci0000:00/ata1/host0/block/sdz/\(part)") }
        for (controller, namespaces) in [("nvme0", [1, 2]), ("nvme1", [1])] {
            try dir("devices/pci0000:00/0000:00:0\(controller.last!).0/nvme/\(controller)")
            for id in namespaces {
                let name = "\(controller)n\(id)"
                let path = "devices/pci0000:00/0000:00:0\(controller.last!).0/nvme/\(controller)/\(name)"
                try dir(path)
                try file("\(path)/nsid", "\(id)\n")
                try file("\(path)/size", "2048\n")
                try link("\(path)/device", to: "../../\(controller)")
                try link("block/\(name)", to: "../\(path)")
            }
        }
        return root
    }

    @Test func aPartitionNeverTakesDriveCommands() throws {
        let root = try tree()
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(try CommandNode.resolve(kernelName: "sdz", sysfs: root).path == "/dev/sdz")
        #expect {
            try CommandNode.resolve(kernelName: "sdz1", sysfs: root)
        } throws: { error in
            let e = error as? LetheError
            return e?.code == .unsupported && e?.path == "/dev/sdz1"
                && e?.message.contains("is a partition of sdz") == true && e?.message.contains("/dev/sdz") == true
        }
        // A name sysfs does not know is no disk either.
        #expect(throws: LetheError.self) { try CommandNode.resolve(kernelName: "sdq", sysfs: root) }
    }

    @Test func everyNamespaceOfTheControllerIsFound() throws {
        let root = try tree()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let node = try CommandNode.resolve(kernelName: "nvme0n2", sysfs: root)
        #expect(node.path == "/dev/nvme0" && node.namespace == 2)
        let found = CommandNode.namespaces(sharing: node, sysfs: root)
        #expect(found.map(\.kernelName) == ["nvme0n1", "nvme0n2"])
        #expect(found.map(\.namespace) == [1, 2])
        let other = CommandNode.namespaces(sharing: try CommandNode.resolve(kernelName: "nvme1n1", sysfs: root), sysfs: root)
        #expect(other.map(\.kernelName) == ["nvme1n1"])
    }

    @Test func theActiveNamespaceListIsReadStrictly() {
        func list(_ ids: [UInt32]) -> [UInt8] {
            var bytes = ids.flatMap { id in (0..<4).map { UInt8(truncatingIfNeeded: id >> (8 * $0)) } }
            bytes += [UInt8](repeating: 0, count: 4096 - bytes.count)
            return bytes
        }
        #expect(NvmeCommand.namespaceIds(inActiveList: list([1, 2, 7])) == [1, 2, 7])
        #expect(NvmeCommand.namespaceIds(inActiveList: list([])) == [])
        #expect(NvmeCommand.namespaceIds(inActiveList: list([2, 1])) == nil, "not ascending: not a namespace list")
        #expect(NvmeCommand.namespaceIds(inActiveList: [1, 0, 0]) == nil)
        #expect(FirmwareErase.nvmeSanitizeBlock.reachesEveryNamespace(formatAttributes: 0))
        #expect(!FirmwareErase.nvmeFormatUserData.reachesEveryNamespace(formatAttributes: 0x4))
        #expect(FirmwareErase.nvmeFormatUserData.reachesEveryNamespace(formatAttributes: 0x1))
        #expect(FirmwareErase.nvmeFormatCrypto.reachesEveryNamespace(formatAttributes: 0x2))
    }
}
