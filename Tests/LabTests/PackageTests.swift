import Foundation
import Testing

/// The Debian package as a new user meets it. scripts/test.sh builds it first
/// (`scripts/package.sh --configuration debug --out .build-package/test-dist`); these tests
/// install it (1) with apt into a fresh Debian 12 root made by debootstrap, which must pull in
/// every library the package needs, and (2) into the lab guest booted with systemd as PID 1,
/// where lethe.service runs under a real systemd (that test is in LabTests, below).
@Suite(.serialized, .enabled(if: DebianPackage.available, Comment(rawValue: DebianPackage.whyNot)))
struct PackageTests {
    @Test func installsIntoAFreshDebianRootAndCertifiesTheDemoDrive() throws {
        let out = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("lethe-install-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let script = Lab.repoRoot.appendingPathComponent("scripts/debootstrap-install.sh").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script, try DebianPackage.path(), out.path]
        var env = ProcessInfo.processInfo.environment
        env["LETHE_TEST_PORT"] = "\(18_000 + Int(getpid() % 1000))"
        process.environment = env
        try process.run()
        process.waitUntilExit()
        func step(_ name: String) -> (rc: String, out: String, err: String) { DebianPackage.step(out, name) }
        #expect(process.terminationStatus == 0, "debootstrap-install.sh exited \(process.terminationStatus)")
        let install = step("install")
        try #require(install.rc == "0", "apt install: \(install.out.suffix(1500)) \(install.err.suffix(1500))")
        // apt fetched what Depends names: the libraries dpkg-shlibdeps found, and smartctl.
        let depends = (try? Lab.text(out, "depends")) ?? ""
        for library in ["libudev1", "libusb-1.0-0", "libcairo2", "libpango-1.0-0", "libqrencode4", "libsqlite3-0", "smartmontools"] {
            #expect(depends.contains(library), "Depends lacks \(library): \(depends)")
        }
        #expect(step("version").out == DebianPackage.version, "\(step("version"))")
        let man = step("man")
        #expect(man.rc == "0" && man.out.contains("lethe-wipe") && man.out.contains("--method"), "\(man)")
        let profiles = step("profiles").out
        #expect(profiles.contains("from built-in:hdd.yaml") && profiles.contains("from /etc/lethe/profiles/hdd-site.yaml"), "\(profiles)")
        #expect(step("config").rc == "0", "\(step("config"))")
        #expect((try? Lab.text(out, "keys"))?.contains("station.jwk") == true, "postinst made no station key")

        let daemonErr = step("daemon").err
        #expect(try Lab.text(out, "certified") == "1", "the demo drive was not certified: \(daemonErr.suffix(2000))")
        #expect(step("daemon").rc == "0", "the daemon's exit after SIGTERM: \(daemonErr.suffix(1000))")
        #expect(daemonErr.contains("demo: drive") && daemonErr.contains("detached"))
        #expect((try? Lab.text(out, "reports"))?.contains(".pdf") == true)

        let purge = step("purge")
        #expect(purge.rc == "0", "\(purge)")
        try Self.expectPurged(try Lab.text(out, "after-purge"))
    }

    /// Purge removes what the install added and keeps the state directory (the station key).
    static func expectPurged(_ listing: String) throws {
        for path in ["/usr/bin/lethe", "/usr/bin/lethe-hub", "/lib/systemd/system/lethe.service", "/etc/lethe", "/usr/share/lethe", "/usr/share/man/man1/lethe-wipe.1.gz"] {
            #expect(listing.contains("absent \(path)\n") || listing.hasSuffix("absent \(path)"), "\(path) after purge: \(listing)")
        }
        #expect(listing.contains("present /var/lib/lethe/keys/station.jwk"), "purge removed the state directory: \(listing)")
    }
}

extension LabTests {
    /// The package in the lab guest booted with systemd as PID 1: lethe.service under a real
    /// systemd. In LabTests, so that it never boots a guest while another lab test runs one.
    @Test(.enabled(if: DebianPackage.available, Comment(rawValue: DebianPackage.whyNot)))
    func theDebianPackageRunsAsAServiceUnderARealSystemd() throws {
        let out = try Lab.run(scenario: "package.sh", environment: ["LAB_INIT": "systemd", "LAB_DEB": try DebianPackage.path()])
        func step(_ name: String) -> (rc: String, out: String, err: String) { DebianPackage.step(out, name) }
        #expect(try Lab.text(out, "pid1") == "systemd")
        try #require(step("install").rc == "0", "\(step("install"))")
        #expect(step("version").out == DebianPackage.version)
        #expect(step("man").out.contains("lethe-wipe"), "\(step("man"))")
        #expect(step("profiles").out.contains("from /etc/lethe/profiles/hdd-site.yaml"), "\(step("profiles"))")
        #expect(step("enabled-before").out == "disabled", "the package must not start a wipe daemon by itself")

        // enable --now returns once the daemon said READY=1 (Type=notify); then it certifies.
        #expect(step("enable").rc == "0", "\(step("enable"))")
        let started = try Lab.text(out, "show-started")
        #expect(started.contains("ActiveState=active") && started.contains("Type=notify") && started.contains("WatchdogUSec=30s"), "\(started)")
        let journal = (try? Lab.text(out, "journal.txt")) ?? ""
        #expect((try? Lab.text(out, "jobs.json"))?.contains("\"certified\":true") == true, "\(journal.suffix(3000))")
        #expect(try Lab.text(out, "dashboard.code") == "200")
        #expect(!journal.contains("adb start-server failed"), "adb cannot start under the unit's hardening: \(journal.suffix(2000))")
        // systemctl stop is clean: the daemon's exit status 0, the demo drive detached.
        #expect(step("stop").rc == "0")
        let stopped = try Lab.text(out, "show-stopped")
        #expect(stopped.contains("Result=success") && stopped.contains("ExecMainStatus=0"), "\(stopped)")
        #expect(journal.contains("demo: drive") && journal.contains("detached"), "\(journal.suffix(2000))")
        #expect(!((try? Lab.text(out, "loops-after-stop")) ?? "").contains("lethe-demo"))
        // Structured fields: journalctl -u lethe JOB_ID=... gives that job's lines.
        let job = try Lab.text(out, "job-id")
        #expect(job.count == 26, "no Lethe JOB_ID in the journal")
        let jobLines = (try? Lab.text(out, "journal-job.txt")) ?? ""
        #expect(jobLines.contains("job \(job): erasing") && jobLines.contains("job \(job): erased, certificate"), "\(jobLines)")
        #expect(!jobLines.contains("udev"), "JOB_ID selected lines of no job: \(jobLines)")
        // ...and journalctl -u lethe SERIAL=... finds the NVMe drive's lines, with its bay.
        #expect(!((try? Lab.text(out, "nvme-port")) ?? "").isEmpty, "the NVMe drive has no port path")
        let serialEntries = ((try? Lab.text(out, "journal-serial.json")) ?? "").split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
        #expect(serialEntries.contains { $0["BAY"] as? String == "Bay 7" && $0["DEVICE"] as? String == "/dev/nvme0n1" }, "\(serialEntries.map { $0["MESSAGE"] ?? "" })")

        // A bad config stops the unit before the daemon runs, and the journal says where.
        #expect(step("badstart").rc != "0")
        let line = try Lab.text(out, "bad-line").prefix { $0 != ":" }
        let bad = (try? Lab.text(out, "journal-bad.txt")) ?? ""
        #expect(bad.contains("/etc/lethe/lethe.yaml:\(line):9: listen: \"127.0.0.1:http\" is not host:port"), "\(bad.suffix(2000))")

        // The unit exactly as shipped, no drop-in: a running station, then a clean stop.
        #expect(step("plainstart").rc == "0", "\(step("plainstart"))")
        #expect(try Lab.text(out, "show-plain").contains("ActiveState=active"), "\((try? Lab.text(out, "journal-bad.txt"))?.suffix(1500) ?? "")")
        #expect(((try? Lab.text(out, "plain-healthz")) ?? "").contains("ok"))
        #expect(step("plainstop").rc == "0")
        #expect(try Lab.text(out, "show-plain-stopped").contains("Result=success"))

        #expect(step("purge").rc == "0", "\(step("purge"))")
        try PackageTests.expectPurged(try Lab.text(out, "after-purge"))
        #expect(try Lab.text(out, "after-purge").contains("absent /etc/systemd/system/multi-user.target.wants/lethe.service"))
    }
}

enum DebianPackage {
    static let folder = Lab.repoRoot.appendingPathComponent(".build-package/test-dist").path
    /// The version `lethe --version` prints (the package's upstream version).
    static var version: String { (try? String(contentsOfFile: Lab.repoRoot.appendingPathComponent("Sources/lethe/Lethe.swift").path, encoding: .utf8))
        .flatMap { $0.firstMatch(of: /static let string = "([^"]+)"/).map { String($0.1) } } ?? "?" }

    /// One recorded step of an install script: its exit status, output and errors.
    static func step(_ out: URL, _ name: String) -> (rc: String, out: String, err: String) {
        ((try? Lab.text(out, "\(name).rc")) ?? "?", (try? Lab.text(out, "\(name).out")) ?? "", (try? Lab.text(out, "\(name).err")) ?? "")
    }

    static func path() throws -> String {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        guard let name = names.filter({ $0.hasPrefix("lethe_") && $0.hasSuffix(".deb") }).sorted().last else {
            throw LabFailure("no package in \(folder)")
        }
        return "\(folder)/\(name)"
    }

    static var whyNot: String {
        if getuid() != 0 { return "installing the package needs root" }
        if (try? path()) == nil {
            return "no package in .build-package/test-dist: bash scripts/package.sh --configuration debug --out .build-package/test-dist (scripts/test.sh does this)"
        }
        return ""
    }
    static var available: Bool { whyNot.isEmpty }
}
