import Foundation
import Testing

/// `lethe diagnose` on a loop device: real smartctl says SMART is unavailable; a missing,
/// failing or garbage-printing smartctl gives a clear reason, never a crash.
@Suite struct DiagnoseTests {
    /// An executable script in a temporary folder.
    final class Script {
        let path = NSTemporaryDirectory() + "lethe-smartctl-\(UUID().uuidString).sh"
        init(_ body: String) throws {
            try ("#!/bin/sh\n" + body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    static func diagnose(_ loop: LoopDevice, smartctl: String? = nil) throws -> (Host.Result, [String: Any]) {
        var arguments = ["diagnose", loop.path, "--json"]
        if let smartctl { arguments += ["--smartctl", smartctl] }
        let result = try Host.run(Host.lethe, arguments, timeout: 60)
        let json = try #require(result.lastJSON, "no JSON: \(result.stdout) \(result.stderr)")
        return (result, json)
    }

    static func smartProblem(_ json: [String: Any]) -> String {
        let findings = ((json["health"] as? [String: Any])?["findings"] as? [[String: Any]]) ?? []
        return findings.compactMap { $0["message"] as? String }.joined(separator: " | ")
    }

    @Test func realSmartctlOnALoopDeviceSaysUnavailable() throws {
        guard Host.canLoop, Host.which("smartctl") != nil else {
            print("skipped: needs root, loop devices and smartctl (smartmontools)")
            return
        }
        let loop = try LoopDevice(sizeBytes: 8 << 20)
        let (result, json) = try Self.diagnose(loop)
        #expect(result.status == 1)
        #expect((json["health"] as? [String: Any])?["verdict"] as? String == "unknown")
        #expect((json["smart"] as? [String: Any])?["available"] as? Bool == false)
        #expect(Self.smartProblem(json).contains("SMART unavailable on \(loop.path)"), "\(Self.smartProblem(json))")
        #expect((json["device"] as? [String: Any])?["transport"] as? String == "loop")
        #expect(((json["capabilities"] as? [String: Any])?["problem"] as? String)?.contains("loop") == true)
    }

    @Test func missingFailingAndGarbageSmartctl() throws {
        guard Host.canLoop else {
            print("skipped: needs root and loop devices")
            return
        }
        let loop = try LoopDevice(sizeBytes: 8 << 20)
        let missing = "/nonexistent/smartctl"
        let failing = try Script("echo 'smartctl: some failure' >&2; exit 2")
        let garbage = try Script("echo 'Segmentation fault (core dumped)'; exit 0")
        let wrongJSON = try Script(#"echo '{"hello": "world"}'"#)
        for (tool, expected) in [
            (missing, "cannot start smartctl"), (failing.path, "smartctl printed nothing"),
            (garbage.path, "not JSON"), (wrongJSON.path, "no \"smartctl\" object"),
        ] {
            let (result, json) = try Self.diagnose(loop, smartctl: tool)
            #expect(result.status == 1, "\(tool): \(result.stderr)")
            #expect((json["health"] as? [String: Any])?["verdict"] as? String == "unknown")
            #expect(Self.smartProblem(json).contains(expected), "\(tool): \(Self.smartProblem(json))")
            // The device is still described.
            #expect((json["device"] as? [String: Any])?["path"] as? String == loop.path)
        }
    }

    @Test func noSuchDeviceIsRefused() throws {
        let result = try Host.run(Host.lethe, ["diagnose", "/dev/lethe-no-such-disk"], timeout: 30)
        #expect(result.status == 2)
        #expect(result.stderr.contains("/dev/lethe-no-such-disk"))
        #expect(result.stderr.contains("no such device"))
    }
}
