import Foundation
import LetheAgent
import LetheCore
import Testing

/// The daemon's tokens (issue 15, item 11): read again on change, the demo token only in
/// memory, and an unreadable file accepting no file token.
@Suite struct TokenTests {
    @Test func theFileIsReadAgainAndTheDemoTokenIsNeverWritten() throws {
        let state = NSTemporaryDirectory() + "lethe-tokens-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        var file = TokenFile()
        let bench = try file.add(name: "bench", role: .technician, stateDirectory: state)
        let store = try TokenStore(stateDirectory: state, log: { _ in })
        let demo = store.addInMemory(name: "demo", role: .technician)
        #expect(store.current.entry(for: bench)?.name == "bench" && store.current.entry(for: demo)?.name == "demo")
        let onDisk = try String(contentsOfFile: TokenFile.path(stateDirectory: state), encoding: .utf8)
        #expect(!onDisk.contains("demo"), "the demo token is not written to the token file")

        try file.remove(name: "bench", stateDirectory: state)
        usleep(1_100_000)
        #expect(store.current.entry(for: bench) == nil, "a removed token is refused within a second")
        #expect(store.current.entry(for: demo) != nil)

        // Damaged: no file token is accepted until it is fixed (the in-memory one still is).
        let qa = try file.add(name: "qa", role: .qa, stateDirectory: state)
        usleep(1_100_000)
        #expect(store.current.entry(for: qa) != nil)
        try "{ not json".write(toFile: TokenFile.path(stateDirectory: state), atomically: true, encoding: .utf8)
        usleep(1_100_000)
        #expect(store.current.entry(for: qa) == nil && store.current.entry(for: demo) != nil)
        #expect(throws: LetheError.self) { try file.remove(name: "nobody", stateDirectory: state) }
    }
}
