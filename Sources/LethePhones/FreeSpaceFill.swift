import Foundation
import LetheCore
import LetheWipe

/// Overwrites an Android phone's free space from the host before its factory reset: files of
/// keystream (AES-128-CTR of a recorded seed, so Lethe can regenerate every byte) pushed
/// through the `sync` service into the shell user's writable folder until the data partition
/// has only the reserve left, `sync`, a read-back (a sample, or everything), then the files
/// are deleted. Each file's size comes from a fresh `df`, so a partition that fills sooner or
/// later than it said is followed, not trusted. Blocking; its own thread.
public enum FreeSpaceFill {
    /// Where fills go: the shell user's writable folder (uid 2000 owns /data/local/tmp).
    public static let directory = "/data/local/tmp/lethe-fill"

    /// Where and how much.
    public struct Options: Sendable {
        public var mode: FreeSpaceOverwriteMode
        /// The mount point whose free space is filled.
        public var mountPoint = "/data"
        /// The shell user's writable folder.
        public var directory = FreeSpaceFill.directory
        /// Left free so that Android keeps working while the fill is there (its own reserved
        /// blocks for system services come on top; `df` does not count them as available).
        public var reserveBytes: UInt64 = 64 << 20
        /// The largest fill file (each is also bounded by the space left).
        public var fileBytes: UInt64 = 256 << 20
        /// Sample mode: regions read back, and their size.
        public var samples = 256
        public var sampleBytes = 64 * 1024

        /// Options for `mode`.
        public init(mode: FreeSpaceOverwriteMode) { self.mode = mode }
    }

    /// Where a fill is, for the progress line.
    public struct Progress: Sendable, Equatable {
        /// `write` or `verify`.
        public var phase: String
        public var bytesDone: UInt64
        /// For `write`, the free space above the reserve as last measured.
        public var bytesTotal: UInt64
        public var bytesPerSecond: Double
        public var etaSeconds: Double?

        /// A line such as `overwriting free space: 1.2 GiB of 9.8 GiB, 38.1 MiB/s, 3:45 left`.
        public var line: String {
            let verb = phase == "write" ? "overwriting free space" : "reading the fill back"
            return "\(verb): \(HumanFormat.bytes(Double(bytesDone))) of \(HumanFormat.bytes(Double(bytesTotal))), \(HumanFormat.bytes(bytesPerSecond))/s, \(HumanFormat.duration(etaSeconds ?? .nan)) left"
        }
    }

    /// What came of it: the record for the certificate (nil when the fill could not start),
    /// why it failed, and whether the phone went away (its fill files may still be there).
    public struct Outcome: Sendable {
        public var record: ReportFreeSpaceOverwrite?
        public var error: String?
        public var vanished = false
        /// True when the fill was done, read back as written, and removed (or there was
        /// nothing to fill): the reset may go on.
        public var succeeded: Bool { error == nil && record.map { $0.result != "failed" && $0.filesRemoved } ?? false }

        /// The outcome of a reset never started because this fill did not succeed (aborted
        /// when the fill was stopped on purpose); nil when the reset may go on.
        public func blockedReset(_ flow: ResetFlow, aborted: Bool = false) -> ResetOutcome? {
            guard !succeeded else { return nil }
            return .notStarted(flow, error: "\(error ?? "the free-space overwrite failed"); the phone was not reset", interrupted: vanished, aborted: aborted)
        }
    }

    /// Removes a fill's files left by an earlier job (an unplug mid-fill). Returns how many
    /// there were (0: none), or throws when the phone cannot be asked.
    public static func removeLeftovers(_ client: ADBClient, serial: String, directory: String = directory) throws(LetheError) -> Int {
        let listed = try client.shell(serial: serial, "ls \(directory)", timeout: .seconds(20))
        guard listed.exitCode == 0 else { return 0 }
        try Fill.shellOK(client, serial: serial, "rm -rf \(directory)", timeout: .seconds(120))
        return listed.stdout.split(separator: "\n").count
    }

    /// Fills, reads back and removes. `progress` is called about once a second; `shouldStop`
    /// is asked between chunks.
    public static func run(
        _ client: ADBClient, serial: String, options: Options, seed: [UInt8] = Self.newSeed(),
        progress: @escaping (Progress) -> Void = { _ in }, shouldStop: @escaping () -> Bool = { false }
    ) -> Outcome {
        var fill = Fill(client: client, serial: serial, options: options, seed: seed, progress: progress, shouldStop: shouldStop)
        return fill.run()
    }

    /// 32 random bytes: the AES-128 key, the nonce prefix, and 8 spare.
    public static func newSeed() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// `fill-00001.bin`.
    static func fileName(_ index: Int) -> String {
        let digits = String(index)
        return "fill-" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits + ".bin"
    }
}
