import Foundation
import LetheCore
import LethePhones
import LetheTesting
import Testing

/// The free-space fill against Debian's `adb push` of the same number of bytes, to the same
/// simulated phone through the same adb server, in one run. `Benchmarks/phone-fill.sh` runs it
/// (LETHE_BENCH_FILL_MIB set); the suite never does: speed goals live in benchmark scripts.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["LETHE_BENCH_FILL_MIB"] != nil, "Benchmarks/phone-fill.sh only"))
struct FreeSpaceBenchmark {
    static func threadCPU() -> Double {
        var usage = rusage()
        getrusage(1 /* RUSAGE_THREAD */, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    static func childrenCPU() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// One fill: in this process (the debug build), or by `lethe phones erase` at `lethe` (the
    /// release build the script names), whose certificate carries the figures; then the phone
    /// is put back in use. Returns the record, the seconds and the CPU seconds of Lethe's side.
    func fill(_ connected: ConnectedPhone, lethe: String?) throws -> (ReportFreeSpaceOverwrite, Double, Double) {
        guard let lethe else {
            let cpu0 = Self.threadCPU()
            let start = Date()
            let outcome = FreeSpaceFill.run(connected.client, serial: connected.serial, options: FreeSpaceFill.Options(mode: .sample))
            return (try #require(outcome.record, "\(outcome)"), Date().timeIntervalSince(start), Self.threadCPU() - cpu0)
        }
        let state = NSTemporaryDirectory() + "lethe-bench-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        _ = try Host.run(lethe, ["keys", "init", "--state-dir", state])
        let replug = Replugger(connected.harness, serial: connected.serial)
        let cpu0 = Self.childrenCPU()
        let start = Date()
        let erased = try Host.run(lethe, [
            "phones", "erase", connected.serial, "--yes", "--adb-port", String(connected.harness.port), "--state-dir", state,
            "--report-dir", "\(state)/reports", "--wait-seconds", "30", "--overwrite-free-space", "sample",
        ])
        let seconds = Date().timeIntervalSince(start)
        let cpu = Self.childrenCPU() - cpu0
        replug.stop()
        let path = try #require(erased.stdout.split(separator: " ").dropFirst().first.map(String.init), "\(erased.stdout) \(erased.stderr)")
        let document = try JSONDecoder().decode(SignedCertificateFile.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        // Back in use for the next round (the reset left it out of the box).
        connected.phone.reboot(after: 0.3, into: "in-use")
        let back = Replugger(connected.harness, serial: connected.serial)
        defer { back.stop() }
        #expect(DaemonTests.poll(20) { ((try? connected.client.devices()) ?? []).contains { $0.serial == connected.serial && $0.state == "device" } && connected.phone.state == "in-use" ? true : nil } == true)
        return (try #require(document.report.sanitization.freeSpaceOverwrite), seconds, cpu)
    }

    struct SignedCertificateFile: Decodable {
        var report: WipeCertificate
    }

    @Test func fillAgainstAdbPush() throws {
        let environment = ProcessInfo.processInfo.environment
        let mib = UInt64(environment["LETHE_BENCH_FILL_MIB"] ?? "") ?? 1024
        let rounds = Int(environment["LETHE_BENCH_ROUNDS"] ?? "") ?? 3
        let bytes = mib << 20
        let script = try PhoneScripts.pixel6ReadyForReset(freeBytes: bytes + (64 << 20))
        let partition = try #require(script.dataPartition)
        let connected = try ConnectedPhone(script: script)
        defer { connected.stop() }
        let source = "/dev/shm/lethe-bench-fill-\(getpid()).bin"
        defer { try? FileManager.default.removeItem(atPath: source) }
        #expect(try Host.run("dd", ["if=/dev/urandom", "of=\(source)", "bs=1M", "count=\(mib)", "status=none"]).status == 0)
        for round in 1...rounds {
            let adbCPU0 = Self.childrenCPU()
            let adbStart = Date()
            let pushed = try connected.harness.adb("-s", connected.serial, "push", source, "/data/local/tmp/bench-ref.bin")
            let adbSeconds = Date().timeIntervalSince(adbStart)
            let adbCPU = Self.childrenCPU() - adbCPU0
            #expect(pushed.status == 0 && partition.files["/data/local/tmp/bench-ref.bin"] == Int(bytes), "\(pushed.stdout)")
            _ = try connected.client.shell(serial: connected.serial, "rm -rf /data/local/tmp/bench-ref.bin")

            let (record, seconds, cpu) = try fill(connected, lethe: environment["LETHE_BENCH_LETHE"])
            #expect(record.bytesWritten == bytes && record.result == "passed", "\(record)")
            let writeRate = Double(record.bytesPerSecond) / 1e6
            let adbRate = Double(bytes) / adbSeconds / 1e6
            let gib = Double(bytes) / Double(1 << 30)
            let side = environment["LETHE_BENCH_LETHE"] == nil ? "its thread, debug build" : "the lethe process, release build, whole erase"
            print(String(
                format: "BENCH round %d: lethe fill %.1f MB/s (write phase; %.2f s in all), CPU %.3f s/GiB (\(side)); adb push %.1f MB/s, CPU %.3f s/GiB (adb client); ratio %.2f",
                round, writeRate, seconds, cpu / gib, adbRate, adbCPU / gib, writeRate / adbRate))
        }
    }
}
