import Foundation
import Testing

/// Real kernels, real drivers, real medium errors: the QEMU hardware lab (lab/lab.sh) with
/// faulty twins that fail I/O at sector 4096 (NVMe, SATA on AHCI, USB mass storage).
@Suite(.serialized, .enabled(if: Lab.available, Comment(rawValue: Lab.whyNot)))
struct LabTests {
    @Test func faultyTwinsAreErasedWithTheBadSectorListed() throws {
        let out = try Lab.run(scenario: "bad-sectors.sh", environment: ["LAB_BAD_LBA": "4096"])
        for name in ["nvme", "ata", "usb"] {
            let rc = try Lab.text(out, "wipe-\(name).rc")
            let stderr = (try? Lab.text(out, "wipe-\(name).err")) ?? ""
            #expect(rc == "3", "\(name): exit \(rc): \(stderr)")
            let result = try #require(try Lab.lastJSON(out, "wipe-\(name).json"), "\(name) wrote no result")
            #expect(result["status"] as? String == "erasedWithExceptions", "\(name)")
            let bad = result["badSectors"] as? [[String: Any]]
            #expect(bad?.count == 1, "\(name): \(String(describing: bad))")
            #expect(bad?.first?["first"] as? Int == 4096 && bad?.first?["count"] as? Int == 1, "\(name)")
            #expect(result["bytesWritten"] as? Int == 256 * 1024 * 1024 - 512, "\(name)")
            #expect((result["verification"] as? [String: Any])?["result"] as? String == "passed", "\(name)")

            // Read-only check: everything but the bad sector reads back as zeros.
            let verify = try #require(try Lab.lastJSON(out, "verify-\(name).json"))
            #expect(verify["mismatchedSectors"] as? Int == 0, "\(name)")
            let unreadable = verify["unreadableSectors"] as? [[String: Any]]
            #expect(unreadable?.first?["first"] as? Int == 4096, "\(name)")
        }
        // A disk deleted from under a running wipe: not erased, says the device vanished.
        let unplugErr = (try? Lab.text(out, "unplug.err")) ?? ""
        #expect(try Lab.text(out, "unplug.rc") == "4", "\(unplugErr)")
        let unplug = try #require(try Lab.lastJSON(out, "unplug.json"))
        #expect(unplug["status"] as? String == "notErased")
        #expect((unplug["error"] as? String)?.contains("vanished") == true, "\(unplug["error"] ?? "")")
    }
}

enum Lab {
    static var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
    static var script: String { repoRoot.appendingPathComponent("lab/lab.sh").path }

    static var whyNot: String {
        if getuid() != 0 { return "the hardware lab needs root" }
        if ProcessInfo.processInfo.environment["LETHE_SKIP_LAB"] == "1" { return "LETHE_SKIP_LAB=1" }
        if !FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") {
            return "the hardware lab needs QEMU (apt-get install qemu-system-x86)"
        }
        return ""
    }
    static var available: Bool { whyNot.isEmpty }

    static var lethe: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("lethe").path
    }

    /// Boots the lab once, runs a scenario script in it, and returns the folder of its results.
    static func run(scenario: String, environment: [String: String]) throws -> URL {
        let out = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("lethe-lab-\(UUID().uuidString)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        let scenarioPath = repoRoot.appendingPathComponent("lab/scenarios/\(scenario)").path
        process.arguments = [script, "--timeout", "500", "LETHE=\(lethe) sh \(scenarioPath)"]
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        env["LAB_ARTIFACTS"] = out.path
        process.environment = env
        try process.run()
        process.waitUntilExit()
        guard FileManager.default.fileExists(atPath: out.path) else {
            throw LabFailure("lab produced no artifacts (exit \(process.terminationStatus))")
        }
        return out
    }

    static func text(_ dir: URL, _ name: String) throws -> String {
        try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func lastJSON(_ dir: URL, _ name: String) throws -> [String: Any]? {
        for line in try text(dir, name).split(separator: "\n").reversed() {
            if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] { return object }
        }
        return nil
    }
}

struct LabFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
