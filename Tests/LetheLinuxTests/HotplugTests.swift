import Foundation
import LetheLinux
import Testing

/// `lethe devices --watch --json` on real netlink events: a loop device created by the test
/// appears as `add` with its size within 1 s and as `remove` when detached. Once with the
/// kernel source (no udevd) and once with systemd-udevd, which the test starts and stops by
/// its own PID.
@Suite(.serialized) struct HotplugTests {
    static let udevd = "/lib/systemd/systemd-udevd"

    enum Mode: String, CaseIterable { case kernel, udev }

    @Test(arguments: Mode.allCases) func loopDeviceComesAndGoes(mode: Mode) throws {
        guard Host.canLoop else {
            print("skipped: needs root and loop devices")
            return
        }
        var ownUdevd: Process?
        defer {
            if let ownUdevd {
                ownUdevd.terminate()
                ownUdevd.waitUntilExit()
            }
        }
        let foreignUdevd = DeviceMonitor.udevdIsRunning()
        var arguments = ["devices", "--watch", "--json"]
        switch mode {
        case .kernel:
            // With a udevd we did not start, ask for the kernel source explicitly.
            if foreignUdevd { arguments += ["--source", "kernel"] }
        case .udev:
            if !foreignUdevd {
                guard FileManager.default.isExecutableFile(atPath: Self.udevd) else {
                    print("skipped: \(Self.udevd) missing (Debian package udev)")
                    return
                }
                let daemon = Process()
                daemon.executableURL = URL(fileURLWithPath: Self.udevd)
                daemon.standardOutput = FileHandle.nullDevice
                daemon.standardError = FileHandle.nullDevice
                try daemon.run()
                ownUdevd = daemon
                let deadline = Date().addingTimeInterval(5)
                while !FileManager.default.fileExists(atPath: "/run/udev/control"), Date() < deadline { usleep(20_000) }
                #expect(DeviceMonitor.udevdIsRunning())
            }
        }
        let watcher = try LineWatcher(Host.lethe, arguments)
        defer { watcher.stop() }
        #expect(watcher.waitForStderr("watching \(mode.rawValue) events", timeout: 10), "stderr: \(watcher.stderr)")

        let size = 48 << 20
        let started = Date()
        let loop = try LoopDevice(sizeBytes: size)
        let added = watcher.waitForJSON(timeout: 5) { event in
            event["event"] as? String == "add" && (event["device"] as? [String: Any])?["path"] as? String == loop.path
        }
        let add = try #require(added, "no add event for \(loop.path); stderr: \(watcher.stderr)")
        let device = try #require(add.1["device"] as? [String: Any])
        #expect(device["sizeBytes"] as? Int == size)
        #expect(device["transport"] as? String == "loop")
        #expect(device["protected"] as? Bool == false)
        let latency = add.0.timeIntervalSince(started)
        print("\(mode.rawValue): add of \(loop.path) seen after \(String(format: "%.3f", latency)) s")
        #expect(latency < 1.0)

        let path = loop.path
        let detached = Date()
        try loop.detach()
        let removed = watcher.waitForJSON(timeout: 5) { event in
            event["event"] as? String == "remove" && (event["device"] as? [String: Any])?["path"] as? String == path
        }
        let remove = try #require(removed, "no remove event for \(path)")
        #expect(remove.0.timeIntervalSince(detached) < 1.0)
    }
}
