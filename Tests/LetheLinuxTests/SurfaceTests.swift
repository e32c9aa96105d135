import Foundation
import Testing

/// `lethe diagnose --surface` on real block devices: a loop device reads clean; a device-mapper
/// device with an `error` target in the middle returns real EIO from the kernel, and the scan
/// names exactly those sectors.
@Suite struct SurfaceTests {
    @Test func realKernelReadErrorsAreNamedSectorBySector() throws {
        guard Host.canLoop else {
            print("skipped: needs root and loop devices")
            return
        }
        let loop = try LoopDevice(sizeBytes: 16 << 20, fill: 0x3C)
        let clean = try Host.run(Host.lethe, ["diagnose", loop.path, "--surface", "full", "--json"])
        let cleanScan = (try? JSONSerialization.jsonObject(with: Data(clean.stdout.utf8)) as? [String: Any])?["surface"] as? [String: Any]
        #expect(cleanScan?["verdict"] as? String == "pass" && cleanScan?["bytesRead"] as? Int == 16 << 20, "\(clean.stdout) \(clean.stderr)")
        #expect((cleanScan?["unreadable"] as? [Any])?.isEmpty == true)

        // Sectors 4096-4103 of the mapped device fail with EIO; the rest maps onto the loop.
        // (Kernels without device-mapper, like this project's CI VM, skip this part; the lab's
        // faulty disks are the other real source of medium errors.)
        guard Host.which("dmsetup") != nil, try Host.run("dmsetup", ["version"]).status == 0 else {
            print("skipped the device-mapper part: this kernel has no device-mapper driver")
            return
        }
        let name = "lethe-test-surface-\(getpid())"
        let sectors = (16 << 20) / 512
        let table = "0 4096 linear \(loop.path) 0\n4096 8 error\n4104 \(sectors - 4104) linear \(loop.path) 4104\n"
        let tableFile = NSTemporaryDirectory() + "\(name).table"
        try table.write(toFile: tableFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: tableFile) }
        let created = try Host.run("dmsetup", ["create", name, tableFile])
        #expect(created.status == 0, "\(created.stderr)")
        defer { _ = try? Host.run("dmsetup", ["remove", "--retry", name]) }
        _ = try? Host.run("udevadm", ["settle", "--timeout=5"])
        let scan = try Host.run(Host.lethe, ["diagnose", "/dev/mapper/\(name)", "--surface", "full", "--json"])
        let report = try JSONSerialization.jsonObject(with: Data(scan.stdout.utf8)) as? [String: Any]
        let surface = try #require(report?["surface"] as? [String: Any], "\(scan.stdout) \(scan.stderr)")
        let unreadable = surface["unreadable"] as? [[String: Any]] ?? []
        #expect(unreadable.count == 1 && unreadable.first?["first"] as? Int == 4096 && unreadable.first?["count"] as? Int == 8, "\(unreadable)")
        #expect(surface["verdict"] as? String == "fail" && report?["verdict"] as? String == "fail")
        #expect(scan.status == 4, "exit 4 for a failing verdict")
        #expect((surface["findings"] as? [String])?.first == "8 unreadable sectors: LBA 4096-4103")
    }
}
