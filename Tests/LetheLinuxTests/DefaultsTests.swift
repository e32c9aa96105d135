import Foundation
import Testing

/// The binary works from any folder: built-in profiles, and state where systemd or the folder
/// says (issue 18: `lethe daemon --demo` run outside the checkout stopped at "no such profiles
/// directory").
@Suite struct DefaultsTests {
    /// Runs `lethe` in `folder` with `environment` added (and INVOCATION_ID removed, so a test
    /// run under systemd tests the same thing).
    static func lethe(_ arguments: [String], in folder: String, environment: [String: String] = [:]) throws -> Host.Result {
        var env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        env["INVOCATION_ID"] = nil
        if environment["STATE_DIRECTORY"] == nil { env["STATE_DIRECTORY"] = nil }
        return try Host.run(Host.lethe, arguments, environment: env, directory: folder)
    }

    @Test func profilesAndStateWorkFromAnyFolder() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-anywhere-\(UUID().uuidString)").path
        let elsewhere = "\(root)/elsewhere", systemd = "\(root)/systemd-state"
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }

        // The built-in profiles, each saying where it came from; no profiles/ folder here.
        let list = try Self.lethe(["profiles", "list"], in: elsewhere)
        #expect(list.status == 0, "\(list.stderr)")
        for name in ["hdd", "nvme", "ssd-sata", "usb-storage", "demo-loop", "fallback", "android", "ios"] {
            #expect(list.stdout.contains("\(name) ") && list.stdout.contains("from built-in:\(name).yaml"), "\(name): \(list.stdout)")
        }
        // --profiles still means only that folder, and a missing one is named.
        let missing = try Self.lethe(["profiles", "list", "--profiles", "nowhere"], in: elsewhere)
        #expect(missing.status != 0 && missing.stderr.contains("nowhere"), "\(missing.stderr)")

        // State: ./var by default, $STATE_DIRECTORY under systemd.
        #expect(try Self.lethe(["keys", "init"], in: elsewhere).status == 0)
        #expect(FileManager.default.fileExists(atPath: "\(elsewhere)/var/keys"))
        let underSystemd = try Self.lethe(["keys", "init"], in: elsewhere, environment: ["STATE_DIRECTORY": systemd])
        #expect(underSystemd.status == 0, "\(underSystemd.stderr)")
        #expect(FileManager.default.fileExists(atPath: "\(systemd)/keys"))
    }
}
