import Foundation
import LetheCore
@testable import LetheLinux
import Testing

/// The guard fails closed and follows what a device writes to (issue 15, item 6).
@Suite(.serialized) struct GuardTests {
    static let mib = 1 << 20

    /// Measured in the lab before this fix: `lethe wipe` of a loop device over a disk whose
    /// ext4 file system was mounted printed "backed by /dev/sdc", erased it, and exited 0.
    @Test(.enabled(if: getuid() == 0, "needs root for loop devices"))
    func aLoopDeviceOverADiskWithAMountedFileSystemIsRefused() throws {
        let mkfs = try #require(Host.which("mkfs.ext4"), "apt-get install e2fsprogs")
        let disk = try LoopDevice(sizeBytes: 32 * Self.mib)
        #expect(try Host.run(mkfs, ["-q", "-F", disk.path]).status == 0)
        let mountPoint = NSTemporaryDirectory() + "lethe-mnt-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let over = try Host.run("losetup", ["-f", "--show", disk.path])
        try #require(over.status == 0, "\(over.stderr)")
        let loop = over.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        defer {
            _ = try? Host.run("umount", [mountPoint])
            _ = try? Host.run("losetup", ["-d", loop])
            try? FileManager.default.removeItem(atPath: mountPoint)
        }
        // Read-only, without journal replay: the kernel itself writes nothing to it.
        try #require(try Host.run("mount", ["-o", "ro,noload", disk.path, mountPoint]).status == 0)
        let before = try disk.contents()

        let result = try Host.lethe("wipe", loop, "--method", "zero", "--yes", "--json")
        #expect(result.status == 2, "\(result.stderr)")
        let name = (disk.path as NSString).lastPathComponent
        #expect(result.stderr.contains("is backed by \(name): \(name) has a file system mounted at \(mountPoint)"), "\(result.stderr)")
        #expect(result.lastJSON?["code"] as? String == "protectedDevice")
        // `lethe devices` lists it as protected, with the same reason.
        let listed = try Host.lethe("devices", "--json")
        let devices = (try? JSONSerialization.jsonObject(with: Data(listed.stdout.utf8))) as? [[String: Any]] ?? []
        let entry = devices.first { $0["path"] as? String == loop }
        #expect(entry?["protected"] as? Bool == true && (entry?["protectionReason"] as? String)?.contains("is backed by \(name)") == true, "\(String(describing: entry))")
        _ = try Host.run("umount", [mountPoint])
        #expect(try disk.contents() == before, "not one byte of the mounted disk changed")
    }

    @Test func aDeviceNumberSysfsDoesNotKnowIsRefused() {
        let reasons = SafetyGuard.reasons(for: DeviceNumber(major: 4095, minor: 1_048_575))
        #expect(reasons.count == 1 && reasons[0].kind == .unknown, "\(reasons)")
        #expect(reasons.first?.description.contains("cannot find 4095:1048575 in sysfs") == true)
    }

    @Test func anUnreadableMountTableRefusesEverything() throws {
        let state = SafetyGuard.SystemState.read(mountinfo: "/nonexistent/mountinfo", swapsFile: "/proc/swaps")
        #expect(state.unreadable == ["the mount table (/nonexistent/mountinfo)"])
        // Any device: even one that exists and is idle.
        let null = try #require(SafetyGuard.deviceNumber(ofNode: "/dev/loop-control") ?? SafetyGuard.deviceNumber(ofNode: "/dev/ram0") ?? Optional(DeviceNumber(major: 7, minor: 0)))
        let reasons = SafetyGuard.reasons(for: null, state: state)
        #expect(reasons.first?.kind == .unknown && reasons.first?.description.contains("cannot read the mount table") == true, "\(reasons)")
    }

    @Test func eMMCBootAreasAreRefused() {
        // Names only: the pattern that tells boot and RPMB areas from the user area.
        for name in ["mmcblk0boot0", "mmcblk1boot1", "mmcblk0rpmb"] {
            #expect(name.range(of: #"^mmcblk[0-9]+(?=(boot[0-9]+|rpmb)$)"#, options: .regularExpression) != nil, "\(name)")
        }
        #expect("mmcblk0p1".range(of: #"^mmcblk[0-9]+(?=(boot[0-9]+|rpmb)$)"#, options: .regularExpression) == nil)
    }

    /// Issue 15, item 7, on a real kernel: a second O_EXCL open of a block device by the
    /// process that holds the first fails with EBUSY. That is what the re-open after opening
    /// hidden areas did; it now re-opens without O_EXCL under the first one's claim.
    @Test(.enabled(if: getuid() == 0, "needs root for loop devices"))
    func aSecondExclusiveOpenIsBusyAndTheReopenUnderTheClaimWorks() throws {
        let loop = try LoopDevice(sizeBytes: 8 * Self.mib)
        let target = try LinuxBlockDevice.inspect(loop.path, allowFile: false)
        let first = try LinuxBlockDevice(target: target, access: .readWrite)
        #expect {
            try LinuxBlockDevice(target: target, access: .readWrite)
        } throws: { error in
            (error as? LetheError)?.errno == .busy
        }
        let again = try LinuxBlockDevice(reopening: first, target: target)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0x42)
        #expect(try again.write(UnsafeRawBufferPointer(buffer), at: 0) == 4096)
        try again.synchronize()
        #expect(try loop.contents().prefix(4096).allSatisfy { $0 == 0x42 })
    }

    /// Issue 15, item 4: a path names a device only for a moment. Another backing file bound to
    /// the same loop node between the check and the open is caught after the open.
    @Test(.enabled(if: getuid() == 0, "needs root for loop devices"))
    func anotherDeviceAtTheSameNodeIsCaughtAfterTheOpen() throws {
        let first = try LoopDevice(sizeBytes: 8 * Self.mib)
        let target = try LinuxBlockDevice.inspect(first.path, allowFile: false)
        // The same node, another medium of the same size: only its backing file tells.
        guard let swapped = try first.swapMedium(bytes: 8 * Self.mib, fill: 0x77) else { return }
        defer { swapped.finish() }
        #expect {
            try LinuxBlockDevice(target: target, access: .readWrite)
        } throws: { error in
            let e = error as? LetheError
            return e?.code == .identityChanged && e?.message.contains("backing file changed") == true
        }
        #expect(try swapped.contents().allSatisfy { $0 == 0x77 }, "nothing was written to the device that took its place")
    }
}
