import Foundation
import Testing

/// Integration tests on real loop devices, through the real `lethe` binary.
@Suite(.serialized, .enabled(if: Host.canLoop, "needs root and loop devices (/dev/loop-control, losetup)"))
struct LoopDeviceTests {
    let mib = 1 << 20

    @Test func zeroWipeLeavesOnlyZeros() throws {
        let loop = try LoopDevice(sizeBytes: 64 * mib, fill: 0xC3)
        let result = try Host.lethe("wipe", loop.path, "--method", "zero", "--yes", "--json")
        #expect(result.status == 0, "\(result.stderr)")
        let json = try #require(result.lastJSON)
        #expect(json["type"] as? String == "result")
        #expect(json["status"] as? String == "erased")
        #expect(json["bytesWritten"] as? Int == 64 * mib)
        #expect((json["verification"] as? [String: Any])?["result"] as? String == "passed")
        #expect(result.stdout.contains("\"type\":\"progress\""))
        let data = try loop.contents()
        #expect(data.count == 64 * mib)
        #expect(data.allSatisfy { $0 == 0 })
    }

    @Test func randomWipeWithVerificationDestroysEarlierContent() throws {
        let loop = try LoopDevice(sizeBytes: 32 * mib)
        let secret = Array("CUSTOMER-SECRET-4111-1111-1111-1111".utf8)
        for offset in stride(from: 0, to: 32 * mib, by: mib) { try loop.poke(secret, at: UInt64(offset + 777)) }
        #expect(try loop.contents().range(of: Data(secret)) != nil)

        let result = try Host.lethe("wipe", loop.path, "--method", "random", "--verify", "all", "--yes", "--json")
        #expect(result.status == 0, "\(result.stderr)")
        let json = try #require(result.lastJSON)
        #expect(json["status"] as? String == "erased")
        let verification = try #require(json["verification"] as? [String: Any])
        #expect(verification["result"] as? String == "passed")
        #expect(verification["bytesVerified"] as? Int == 32 * mib)
        let data = try loop.contents()
        #expect(data.range(of: Data(secret)) == nil)
        #expect(data.range(of: Data(secret.prefix(8))) == nil)
        #expect(Set(data.prefix(65536)).count == 256)
    }

    @Test func sampleVerificationOnARealDevice() throws {
        let loop = try LoopDevice(sizeBytes: 64 * mib)
        let result = try Host.lethe("wipe", loop.path, "--method", "dod-3", "--verify", "sample", "--yes", "--json")
        #expect(result.status == 0, "\(result.stderr)")
        let verification = try #require(result.lastJSON?["verification"] as? [String: Any])
        #expect(verification["result"] as? String == "passed")
        #expect((verification["sampleSubsections"] as? Int ?? 0) >= 1000)
        #expect((verification["coverage"] as? Double ?? 0) >= 0.10)
        #expect((result.lastJSON?["passes"] as? [Any])?.count == 3)
    }

    @Test func verifyNamesTheOffsetOfASingleCorruptedByte() throws {
        let loop = try LoopDevice(sizeBytes: 32 * mib)
        #expect(try Host.lethe("wipe", loop.path, "--method", "zero", "--verify", "off", "--yes").status == 0)
        let clean = try Host.lethe("verify", loop.path, "--expect", "zero", "--json")
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(clean.lastJSON?["matches"] as? Bool == true)

        let offset: UInt64 = 13 * UInt64(mib) + 4321
        try loop.poke([0x5A], at: offset)
        let dirty = try Host.lethe("verify", loop.path, "--expect", "zero", "--json")
        #expect(dirty.status == 4)
        let json = try #require(dirty.lastJSON)
        #expect(json["matches"] as? Bool == false)
        #expect(json["mismatchedSectors"] as? Int == 1)
        let first = try #require((json["firstMismatches"] as? [[String: Any]])?.first)
        #expect(first["offset"] as? UInt64 == offset)
        #expect(first["found"] as? Int == 0x5A)
        let human = try Host.lethe("verify", loop.path, "--expect", "byte:0x00")
        #expect(human.status == 4)
        #expect(human.stdout.contains("offset \(offset)"))
    }

    @Test func aMountedDeviceIsRefusedAndLeftIntact() throws {
        let mkfs = try #require(Host.which("mkfs.ext4"), "apt-get install e2fsprogs")
        let loop = try LoopDevice(sizeBytes: 32 * mib)
        #expect(try Host.run(mkfs, ["-q", "-F", loop.path]).status == 0)
        let mountPoint = NSTemporaryDirectory() + "lethe-mnt-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        defer {
            _ = try? Host.run("umount", [mountPoint])
            try? FileManager.default.removeItem(atPath: mountPoint)
        }
        try #require(try Host.run("mount", [loop.path, mountPoint]).status == 0)

        let result = try Host.lethe("wipe", loop.path, "--method", "zero", "--yes", "--json")
        #expect(result.status == 2)
        #expect(result.stderr.contains("refusing to erase"))
        #expect(result.stderr.contains("mounted at \(mountPoint)"))
        #expect(result.stderr.contains(loop.path))
        #expect(result.lastJSON?["code"] as? String == "protectedDevice")
        _ = try Host.run("umount", [mountPoint])
        // The ext4 superblock is still there: nothing was written.
        let superblock = try loop.contents()[1024..<2048]
        #expect(superblock[superblock.startIndex + 56] == 0x53 && superblock[superblock.startIndex + 57] == 0xEF)
        #expect(try Host.run("fsck.ext4", ["-n", loop.path]).status == 0)
    }

    @Test func aDeviceWithAMountedPartitionIsRefused() throws {
        let sfdisk = try #require(Host.which("sfdisk"), "apt-get install fdisk")
        let mkfs = try #require(Host.which("mkfs.ext4"), "apt-get install e2fsprogs")
        let loop = try LoopDevice(sizeBytes: 32 * mib)
        _ = try Host.run("/bin/sh", ["-c", "echo 'start=2048, type=83' | \(sfdisk) -q \(loop.path)"])
        _ = try Host.run("losetup", ["-d", loop.path])
        let partitioned = try Host.run("losetup", ["-P", "--show", loop.path, loop.backing])
        #expect(partitioned.status == 0, "\(partitioned.stderr)")
        let partition = loop.path + "p1"
        // Some kernels skip the partition scan; partx adds the partitions through BLKPG.
        if !FileManager.default.fileExists(atPath: partition) { _ = try Host.run("partx", ["-a", loop.path]) }
        for _ in 0..<50 where !FileManager.default.fileExists(atPath: partition) { usleep(100_000) }
        try #require(try Host.run(mkfs, ["-q", "-F", partition]).status == 0)
        let mountPoint = NSTemporaryDirectory() + "lethe-mnt-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        defer {
            _ = try? Host.run("umount", [mountPoint])
            try? FileManager.default.removeItem(atPath: mountPoint)
        }
        try #require(try Host.run("mount", [partition, mountPoint]).status == 0)
        let result = try Host.lethe("wipe", loop.path, "--method", "zero", "--yes")
        #expect(result.status == 2)
        #expect(result.stderr.contains("\((partition as NSString).lastPathComponent) has a file system mounted at \(mountPoint)"))
    }

    @Test func theSystemDiskIsRefused() throws {
        // Only the guard's verdict is exercised: --dry-run never opens the device for writing.
        let root = try #require(Self.rootBlockDevice(), "/ is not on a block device here")
        let result = try Host.lethe("wipe", root, "--method", "zero", "--yes", "--dry-run")
        #expect(result.status == 2, "\(result.stdout)")
        #expect(result.stderr.contains("root file system (/)"))
    }

    @Test func badInputGetsOneClearLineAndNoCrash() throws {
        let loop = try LoopDevice(sizeBytes: 8 * mib)
        let unknown = try Host.lethe("wipe", loop.path, "--method", "erase-harder", "--yes")
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("\(loop.path): unknown method 'erase-harder'"))

        let missing = try Host.lethe("wipe", "/dev/does-not-exist-lethe", "--method", "zero", "--yes")
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("/dev/does-not-exist-lethe: no such device or file (ENOENT)"))

        let tiny = try TemporaryImage(bytes: 2048)
        let small = try Host.lethe("wipe", tiny.path, "--method", "zero", "--yes", "--allow-file")
        #expect(small.status == 2)
        #expect(small.stderr.contains("\(tiny.path): device is too small to erase"))

        let odd = try TemporaryImage(bytes: 1_000_001)
        let unaligned = try Host.lethe("wipe", odd.path, "--method", "zero", "--yes", "--allow-file")
        #expect(unaligned.status == 2)
        #expect(unaligned.stderr.contains("not a multiple of the 512-byte sector size"))

        let file = try Host.lethe("wipe", odd.path, "--method", "zero", "--yes")
        #expect(file.status == 2)
        #expect(file.stderr.contains("--allow-file"))

        let block = try Host.lethe("wipe", loop.path, "--method", "zero", "--yes", "--block-size", "5000")
        #expect(block.status == 2)
        #expect(block.stderr.contains("block size 5000"))

        let serial = try Host.lethe("wipe", loop.path, "--method", "zero", "--yes", "--serial", "WD-123")
        #expect(serial.status == 2)
        #expect(serial.stderr.contains("--serial WD-123"))

        let noConfirm = try Host.lethe("wipe", loop.path, "--method", "zero")
        #expect(noConfirm.status == 2)
        #expect(noConfirm.stderr.contains("without --yes"))

        let expect = try Host.lethe("verify", loop.path, "--expect", "byte:0xZZ")
        #expect(expect.status == 2)
        #expect(expect.stderr.contains("byte:0xZZ"))
    }

    @Test func aDiskImageCanBeErasedWithAllowFile() throws {
        let image = try TemporaryImage(bytes: 4 * mib, fill: 0x77)
        let result = try Host.lethe("wipe", image.path, "--method", "one", "--yes", "--allow-file")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: image.path)).allSatisfy { $0 == 0xFF })
    }

    @Test func sigintStopsAtABlockBoundaryAndReportsAborted() throws {
        let loop = try LoopDevice(sizeBytes: 256 * mib)
        let result = try Host.run(Host.lethe, ["wipe", loop.path, "--method", "gutmann", "--yes", "--json"], timeout: 120) { process in
            usleep(700_000)
            kill(process.processIdentifier, SIGINT)
        }
        #expect(result.status == 5, "\(result.stderr)")
        let json = try #require(result.lastJSON)
        #expect(json["status"] as? String == "aborted")
        #expect(json["error"] as? String == "aborted by SIGINT")
        let written = json["bytesWritten"] as? Int ?? 0
        #expect(written > 0 && written < 35 * 256 * mib)
        // Whole requests only: the default request is 1 MiB.
        #expect(written % mib == 0)
        #expect(result.stderr.contains("stopping at the next block boundary"))
    }

    /// The block device holding `/`, if `/` is on one.
    static func rootBlockDevice() -> String? {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 4, fields[4] == "/" else { continue }
            guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/sys/dev/block/\(fields[2])") else { return nil }
            let name = (link as NSString).lastPathComponent
            return FileManager.default.fileExists(atPath: "/dev/\(name)") ? "/dev/\(name)" : nil
        }
        return nil
    }
}
