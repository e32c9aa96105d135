import Foundation
import LetheCore
import Synchronization

/// A phone's user-data partition, for ``SimulatedADBD``: a size, the space other data uses,
/// and the files written through the `sync` service (`adb push`'s protocol) and read back
/// through it or the shell, as a real adbd and toybox do. It answers `df /data`, `mkdir -p`,
/// `rm -rf`, `ls`, `sync` and `dd if=… bs=… skip=… count=…`; a factory reset empties it.
/// Only the files' bytes are kept, so a 128 GB partition with 100 MB free costs 100 MB.
///
/// Faults: `df` that reports more or less free space than there is, a write error after some
/// bytes, writes that are acknowledged but never stored, and a hook on every stored chunk (to
/// unplug the phone mid-fill).
public final class SimulatedDataPartition: Sendable {
    /// What goes wrong.
    public struct Faults: Sendable {
        /// Added to the free space `df` reports (positive: the partition fills sooner than `df`
        /// says; negative: later).
        public var reportedFreeSkew: Int64 = 0
        /// After this many bytes have been stored in all, every write fails with EIO.
        public var failWritesAfter: UInt64?
        /// Writes are acknowledged, but the files hold zeros (a controller that drops data).
        public var dropWrites = false
        /// Once free space falls below `below`, other data shrinks by `release` (Android
        /// clearing app caches when storage runs low): the partition takes more than `df` said.
        public var releasesWhenLow: (below: UInt64, release: UInt64)?
        /// Called with the bytes stored so far after every chunk (on the connection's thread).
        public var onStored: (@Sendable (UInt64) -> Void)?

        /// No faults.
        public init() {}
    }

    /// The mount point `df` names.
    public let mountPoint: String
    private let sizeBytes: UInt64
    private struct State {
        var otherBytes: UInt64
        var files: [String: [UInt8]] = [:]
        var directories: Set<String> = []
        var stored: UInt64 = 0
        var faults: Faults
    }
    private let state: Mutex<State>

    /// A partition of `sizeBytes` with `freeBytes` free (the rest is other data).
    public init(sizeBytes: UInt64, freeBytes: UInt64, mountPoint: String = "/data", faults: Faults = Faults()) {
        precondition(freeBytes <= sizeBytes)
        self.sizeBytes = sizeBytes
        self.mountPoint = mountPoint
        state = Mutex(State(otherBytes: sizeBytes - freeBytes, faults: faults))
    }

    /// Changes the faults.
    public func setFaults(_ change: @Sendable (inout Faults) -> Void) { state.withLock { change(&$0.faults) } }

    /// The files and their sizes.
    public var files: [String: Int] { state.withLock { $0.files.mapValues(\.count) } }
    /// A file's bytes.
    public func contents(_ path: String) -> [UInt8]? { state.withLock { $0.files[path] } }
    /// The real free space.
    public var freeBytes: UInt64 { state.withLock { free($0) } }

    private func free(_ s: State) -> UInt64 {
        let used = s.otherBytes + s.files.values.reduce(UInt64(0)) { $0 + UInt64($1.count) }
        return sizeBytes > used ? sizeBytes - used : 0
    }

    /// A factory reset: the files are gone (their keys are).
    public func factoryReset() { state.withLock { s in s.files = [:]; s.directories = [] } }

    // MARK: - Shell

    /// The answer to a shell command about the partition, or nil for other commands.
    func shell(_ command: String) -> SimulatedADBD.Answer? {
        let words = command.split(separator: " ").map(String.init).filter { $0 != "2>/dev/null" }
        guard let name = words.first else { return nil }
        switch (name, words.count) {
        case ("df", 2) where words[1] == mountPoint:
            return state.withLock { s in
                let real = Int64(free(s))
                let reported = UInt64(max(0, real + s.faults.reportedFreeSkew)) / 1024
                let total = sizeBytes / 1024
                let used = total - min(total, UInt64(real) / 1024)
                return .init(stdout: "Filesystem       1K-blocks    Used Available Use% Mounted on\n/dev/block/dm-45 \(total) \(used) \(reported) \(used * 100 / max(1, total))% \(mountPoint)\n")
            }
        case ("mkdir", 3) where words[1] == "-p":
            state.withLock { _ = $0.directories.insert(words[2]) }
            return .init()
        case ("rm", 3) where words[1] == "-rf":
            state.withLock { s in
                s.directories.remove(words[2])
                s.files = s.files.filter { !$0.key.hasPrefix(words[2] + "/") && $0.key != words[2] }
            }
            return .init()
        case ("ls", 2):
            return state.withLock { s in
                let inside = s.files.keys.filter { $0.hasPrefix(words[1] + "/") }.map { String($0.dropFirst(words[1].count + 1)) }.sorted()
                guard s.directories.contains(words[1]) || !inside.isEmpty else {
                    return .init(stderr: "ls: \(words[1]): No such file or directory\n", exitCode: 1)
                }
                return .init(stdout: inside.map { $0 + "\n" }.joined())
            }
        case ("sync", 1):
            return .init()
        case ("dd", _):
            return dd(words.dropFirst())
        default:
            return nil
        }
    }

    /// `dd if=PATH bs=N skip=K count=M`: the bytes on stdout, binary.
    private func dd(_ arguments: ArraySlice<String>) -> SimulatedADBD.Answer {
        var options: [String: String] = [:]
        for argument in arguments {
            let pair = argument.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { return .init(stderr: "dd: unknown argument \(argument)\n", exitCode: 1) }
            options[pair[0]] = pair[1]
        }
        guard let path = options["if"], let bs = Int(options["bs"] ?? "512"), bs > 0 else { return .init(stderr: "dd: bad arguments\n", exitCode: 1) }
        let skip = Int(options["skip"] ?? "0") ?? 0, count = Int(options["count"] ?? "-1") ?? -1
        return state.withLock { s in
            guard let bytes = s.files[path] else { return .init(stderr: "dd: \(path): No such file or directory\n", exitCode: 1) }
            let start = min(bytes.count, skip * bs)
            let end = count < 0 ? bytes.count : min(bytes.count, start + count * bs)
            var answer = SimulatedADBD.Answer(stderr: "\((end - start) / bs)+0 records in\n")
            answer.binaryStdout = Array(bytes[start..<end])
            return answer
        }
    }

    // MARK: - Sync service

    /// One `sync:` stream: requests in, answers out.
    final class SyncSession {
        let partition: SimulatedDataPartition
        private var buffer: [UInt8] = []
        /// A SEND in progress: the path, the bytes so far, and why it already failed.
        private var sending: (path: String, bytes: [UInt8], failure: String?)?
        /// Set by QUIT.
        private(set) var finished = false

        init(_ partition: SimulatedDataPartition) { self.partition = partition }

        /// Feeds bytes from the host; returns what to send back.
        func feed(_ bytes: [UInt8]) -> [UInt8] {
            buffer += bytes
            var out: [UInt8] = []
            while buffer.count >= 8 {
                let id = String(decoding: buffer[0..<4], as: UTF8.self)
                let length = Int(Self.word(buffer, 4))
                if id == "DONE" {
                    buffer.removeFirst(8)
                    // After a failed SEND, adbd ends the sync service: the stream closes.
                    if sending?.failure != nil {
                        sending = nil
                        finished = true
                        return out
                    }
                    out += finishSend()
                    continue
                }
                guard buffer.count >= 8 + length else { break }
                let payload = Array(buffer[8..<(8 + length)])
                buffer.removeFirst(8 + length)
                switch id {
                case "SEND":
                    let text = String(decoding: payload, as: UTF8.self)
                    let path = text.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? text
                    sending = (path, [], nil)
                case "DATA":
                    // Taken out while it grows, so that the bytes are not copied on every chunk.
                    guard var send = sending.take() else { return Self.fail("DATA outside a SEND") }
                    if send.failure == nil {
                        send.failure = partition.store(payload, into: &send.bytes)
                        // A real adbd reports a failed write at once, then drains the host's DATA.
                        if let failure = send.failure { out += Self.fail(failure) }
                    }
                    sending = send
                case "RECV":
                    out += partition.recv(String(decoding: payload, as: UTF8.self))
                case "STAT":
                    out += partition.stat(String(decoding: payload, as: UTF8.self))
                case "QUIT":
                    finished = true
                    return out
                default:
                    return Self.fail("unknown sync request \(id)")
                }
            }
            return out
        }

        private func finishSend() -> [UInt8] {
            guard let send = sending else { return Self.fail("DONE outside a SEND") }
            sending = nil
            // The failure was reported when it happened; the partial file is unlinked.
            if send.failure != nil { return [] }
            partition.state.withLock { s in s.files[send.path] = s.faults.dropWrites ? [UInt8](repeating: 0, count: send.bytes.count) : send.bytes }
            return Array("OKAY".utf8) + [0, 0, 0, 0]
        }

        static func word(_ bytes: [UInt8], _ at: Int) -> UInt32 {
            UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }

        static func header(_ id: String, _ value: Int) -> [UInt8] {
            Array(id.utf8) + [UInt8(value & 0xff), UInt8(value >> 8 & 0xff), UInt8(value >> 16 & 0xff), UInt8(value >> 24 & 0xff)]
        }

        static func fail(_ message: String) -> [UInt8] { header("FAIL", message.utf8.count) + Array(message.utf8) }
    }

    /// Adds a chunk to a file being sent, or says why it cannot (no space, an I/O error).
    private func store(_ chunk: [UInt8], into file: inout [UInt8]) -> String? {
        let (failure, stored, hook) = state.withLock { s -> (String?, UInt64, (@Sendable (UInt64) -> Void)?) in
            if let limit = s.faults.failWritesAfter, s.stored + UInt64(chunk.count) > limit {
                return ("write failed: I/O error", s.stored, nil)
            }
            // The file in progress counts against the free space.
            guard UInt64(file.count + chunk.count) <= free(s) else { return ("write failed: No space left on device", s.stored, nil) }
            s.stored += UInt64(chunk.count)
            if let low = s.faults.releasesWhenLow, free(s) - UInt64(file.count + chunk.count) < low.below {
                s.otherBytes -= min(s.otherBytes, low.release)
                s.faults.releasesWhenLow = nil
            }
            return (nil, s.stored, s.faults.onStored)
        }
        if failure == nil { file += chunk }
        hook?(stored)
        return failure
    }

    /// `STAT mode size mtime` (all 0: no such file), as `adb push` asks before it sends.
    private func stat(_ path: String) -> [UInt8] {
        let (mode, size): (Int, Int) = state.withLock { s in
            if let file = s.files[path] { return (0o100644, file.count) }
            if s.directories.contains(path) || path == "/data/local/tmp" || path == mountPoint { return (0o40771, 4096) }
            return (0, 0)
        }
        return SyncSession.header("STAT", mode) + SyncSession.header("", size) + SyncSession.header("", 0)
    }

    /// A file's bytes as DATA chunks and DONE, or FAIL.
    private func recv(_ path: String) -> [UInt8] {
        guard let bytes = state.withLock({ $0.files[path] }) else { return SyncSession.fail("open failed: No such file or directory") }
        var out: [UInt8] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + 65536)
            out += SyncSession.header("DATA", end - offset) + bytes[offset..<end]
            offset = end
        }
        return out + SyncSession.header("DONE", 0)
    }
}
