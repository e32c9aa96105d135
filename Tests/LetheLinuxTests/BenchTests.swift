import Foundation
import LetheAgent
import LetheCore
import LetheLinux
import LetheStore
import Synchronization
import Testing

/// The bench in-process, on real loop devices, without a netlink monitor: what the daemon does
/// when hotplug events are lost (issue 15, item 4).
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root for loop devices"))
struct BenchTests {
    static let mib = 1 << 20

    /// Log lines the bench wrote.
    final class Log: Sendable {
        let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
    }

    func bench(_ state: String, autoStart: Set<String> = []) throws -> (Bench, Log) {
        #expect(try Host.lethe("keys", "init", "--state-dir", state).status == 0)
        var match = ProfileMatch()
        match.transports = [.loop]
        let profile = Profile(
            name: "loop-manual", description: "test", priority: 1, match: match, smart: false, thresholds: HealthThresholds(),
            method: WipeMethod.named("zero")!, verification: .last, start: .manual, source: "test")
        var settings = BenchSettings(
            stateDirectory: state, reportDirectory: "\(state)/reports", station: StationConfig(), profiles: [profile], language: .en,
            toolVersion: "test")
        settings.autoStartPaths = autoStart
        let log = Log()
        let bench = Bench(settings: settings, store: try Store(stateDirectory: state), log: { line in log.lines.withLock { $0.append(line) } })
        return (bench, log)
    }

    func finished(_ bench: Bench, _ id: String) -> JobView? {
        for _ in 0..<200 {
            if let job = bench.job(id), job.state != .running { return job }
            usleep(50_000)
        }
        return nil
    }

    /// Docked, then another medium bound to the same loop node while no event reached the
    /// bench (a lost netlink event): starting the job must not erase it.
    @Test func aDifferentDriveAtTheDockedNodeIsNotErased() throws {
        let state = NSTemporaryDirectory() + "lethe-bench-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        let (bench, lines) = try bench(state)
        let loop = try LoopDevice(sizeBytes: 8 * Self.mib, fill: 0x11)
        let name = (loop.path as NSString).lastPathComponent
        let record = try #require(DeviceDiscovery.drive(named: name))
        #expect(record.deviceNumber != nil && record.backingFile == loop.backing, "\(record)")
        bench.deviceAppeared(record)
        let job = try #require(bench.jobs.first { $0.device == loop.path })
        #expect(job.state == .waiting)

        guard let swapped = try loop.swapMedium(bytes: 8 * Self.mib, fill: 0x77) else { return }
        defer { swapped.finish() }

        // The start is a guarded transition: refused at once, with the reason, never launched.
        #expect(throws: Bench.StartError.self) { try bench.start(job.id) }
        let ended = try #require(finished(bench, job.id))
        #expect(ended.state == .refused, "\(ended)")
        #expect(ended.error?.contains("not the drive docked for this job") == true && ended.error?.contains("backing file") == true, "\(ended.error ?? "")")
        #expect(try swapped.contents().allSatisfy { $0 == 0x77 }, "the drive that took its place was not written")
        _ = lines
    }

    /// The same docked drive starts and is erased: the check does not get in the way.
    @Test func theDockedDriveStartsAndIsErased() throws {
        let state = NSTemporaryDirectory() + "lethe-bench-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        let (bench, lines) = try bench(state)
        let loop = try LoopDevice(sizeBytes: 8 * Self.mib, fill: 0x11)
        let record = try #require(DeviceDiscovery.drive(named: (loop.path as NSString).lastPathComponent))
        bench.deviceAppeared(record)
        let job = try #require(bench.jobs.first { $0.device == loop.path })
        _ = try bench.start(job.id)
        let ended = try #require(finished(bench, job.id))
        #expect(ended.state == .erased && ended.certified == true, "\(ended) \(lines.all)")
    }

    /// A size change reported while the job waits: the job is set aside and the device docked
    /// again as a new job.
    @Test func aChangedDeviceIsDockedAgain() throws {
        let state = NSTemporaryDirectory() + "lethe-bench-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        let (bench, _) = try bench(state)
        let loop = try LoopDevice(sizeBytes: 8 * Self.mib)
        var record = try #require(DeviceDiscovery.drive(named: (loop.path as NSString).lastPathComponent))
        bench.deviceAppeared(record)
        let first = try #require(bench.jobs.first { $0.device == loop.path })
        record.sizeBytes = 16 * UInt64(Self.mib)
        bench.deviceChanged(record)
        #expect(bench.job(first.id)?.state == .interrupted)
        #expect(bench.jobs.filter { $0.device == loop.path && $0.state == .waiting }.count == 1)
    }

    /// A locked self-encrypting drive (Level 0 Discovery says so at dock time): named, with
    /// the next step, held even when it would start by itself, and a start is refused before
    /// anything is written.
    @Test func aLockedDriveIsNamedAtDockTimeAndNeverOverwritten() throws {
        let state = NSTemporaryDirectory() + "lethe-bench-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        let loop = try LoopDevice(sizeBytes: 8 * Self.mib, fill: 0x11)
        let (bench, lines) = try bench(state, autoStart: [loop.path])
        var record = try #require(DeviceDiscovery.drive(named: (loop.path as NSString).lastPathComponent))
        #expect(record.selfEncryption == nil && record.encryptionLocked == nil, "a loop device speaks no TCG")
        record.selfEncryption = "TCG Opal 2, LOCKED, MBR shadow active"
        record.encryptionLocked = true
        bench.deviceAppeared(record)
        let job = try #require(bench.jobs.first { $0.device == loop.path })
        #expect(job.state == .waiting && job.message?.contains("LOCKED by its owner (TCG Opal 2, LOCKED, MBR shadow active)") == true, "\(job)")
        #expect(job.message?.contains("--method tcg-psid-revert") == true)
        #expect(lines.all.contains { $0.contains("(held: locked)") }, "\(lines.all)")
        #expect {
            try bench.start(job.id)
        } throws: { error in
            let refusal = error as? Bench.StartError
            return refusal?.status == 409 && refusal?.message.contains("every read and write fails, so an overwrite cannot work") == true
        }
        #expect(bench.job(job.id)?.state == .waiting)
        #expect(try loop.contents().allSatisfy { $0 == 0x11 }, "nothing was written")

        // The dashboard's way out: a PSID revert in place of the profile's overwrite. The PSID
        // reaches the job and nothing else (this loop drive has no TCG, so the job says so).
        let psid = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
        #expect(throws: Bench.StartError.self) { try bench.start(job.id, method: "tcg-psid-revert", credential: Array("short".utf8)) }
        #expect(throws: Bench.StartError.self) { try bench.start(job.id, method: "tcg-crypto-erase", credential: nil) }
        let started = try bench.start(job.id, method: "tcg-psid-revert", credential: Array(psid.utf8))
        #expect(started.method == "tcg-psid-revert")
        let ended = try #require(finished(bench, job.id))
        #expect(ended.state == .refused && ended.error?.contains("no firmware erase commands") == true, "\(ended)")
        #expect(!lines.all.joined().contains(psid) && !(ended.error ?? "").contains(psid))
        #expect(try loop.contents().allSatisfy { $0 == 0x11 }, "nothing was written")
    }
}
