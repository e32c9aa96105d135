import Foundation
import Testing

/// Coverage-guided fuzzing of every parser of untrusted input (issue 15): scripts/fuzz.sh
/// builds the libFuzzer harness (Sources/LetheFuzz) and runs each parser for a bounded time
/// from its corpus in Fuzz/corpus. A crash, a trap, a hang or runaway memory fails the test,
/// with the input kept for replay.
@Suite struct FuzzTests {
    static var repo: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["LETHE_SKIP_FUZZ"] != "1", "LETHE_SKIP_FUZZ=1"))
    func everyParserSurvivesTheFuzzer() throws {
        let seconds = ProcessInfo.processInfo.environment["LETHE_FUZZ_SECONDS"] ?? "10"
        let run = try Host.run("/bin/bash", [Self.repo.appendingPathComponent("scripts/fuzz.sh").path, "--seconds", seconds], timeout: 1500)
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        let lines = run.stdout.split(separator: "\n").filter { $0.hasPrefix("fuzz: ") }
        #expect(lines.count == 13, "every target ran: \(run.stdout)")
        print(run.stdout)
    }
}
