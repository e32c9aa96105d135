import Foundation
import LetheCore
import LetheLinux
import Testing

/// The kernel rescan after a hidden area is opened, against a sysfs tree of the test's own
/// (QEMU's AHCI disk cannot make a Host Protected Area, so the lab cannot show a real one).
@Suite struct RescanTests {
    func tree(sectors: UInt64, rescan: Bool = true) throws -> String {
        let root = NSTemporaryDirectory() + "lethe-sysfs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: "\(root)/block/sdz/device", withIntermediateDirectories: true)
        try "\(sectors)\n".write(toFile: "\(root)/block/sdz/size", atomically: true, encoding: .utf8)
        if rescan { FileManager.default.createFile(atPath: "\(root)/block/sdz/device/rescan", contents: nil) }
        return root
    }

    @Test func theRescanIsAskedForAndTheNewSizeAwaited() throws {
        let root = try tree(sectors: 1000)
        defer { try? FileManager.default.removeItem(atPath: root) }
        // The "kernel" catches up a little later.
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) {
            try? "1200\n".write(toFile: "\(root)/block/sdz/size", atomically: true, encoding: .utf8)
        }
        let seen = try CommandNode.rescanCapacity(kernelName: "sdz", expectedBytes: 1200 * 512, timeoutSeconds: 5, sysfs: root)
        #expect(seen == 1200 * 512)
        #expect(try String(contentsOfFile: "\(root)/block/sdz/device/rescan", encoding: .utf8) == "1")
    }

    @Test func aSizeThatNeverChangesStopsTheErase() throws {
        let root = try tree(sectors: 1000)
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect {
            try CommandNode.rescanCapacity(kernelName: "sdz", expectedBytes: 1200 * 512, timeoutSeconds: 0.3, sysfs: root)
        } throws: { error in
            let e = error as? LetheError
            return e?.code == .timedOut && e?.path == "/dev/sdz" && e?.message.contains("still sees 512000 bytes after a rescan, not 614400") == true
        }
        let bare = try tree(sectors: 1000, rescan: false)
        defer { try? FileManager.default.removeItem(atPath: bare) }
        #expect {
            try CommandNode.rescanCapacity(kernelName: "sdz", expectedBytes: 1200 * 512, timeoutSeconds: 0.3, sysfs: bare)
        } throws: { error in
            (error as? LetheError)?.code == .ioFailure && (error as? LetheError)?.path == "\(bare)/block/sdz/device/rescan"
        }
    }
}
