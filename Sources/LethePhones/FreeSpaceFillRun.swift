import Foundation
import LetheCore
import LetheWipe

/// One fill, from the first `df` to the record.
struct Fill {
    typealias Outcome = FreeSpaceFill.Outcome
    static let mebibyte: UInt64 = 1 << 20

    let client: ADBClient
    let serial: String
    let options: FreeSpaceFill.Options
    let seed: [UInt8]
    let keystream: Keystream
    let progress: (FreeSpaceFill.Progress) -> Void
    let shouldStop: () -> Bool
    /// Each file: its path, where it starts in the fill, its size.
    var files: [(path: String, start: UInt64, size: UInt64)] = []
    var notes: [String] = []
    var written: UInt64 = 0
    let startedAt = Date()

    init(
        client: ADBClient, serial: String, options: FreeSpaceFill.Options, seed: [UInt8], progress: @escaping (FreeSpaceFill.Progress) -> Void,
        shouldStop: @escaping () -> Bool
    ) {
        self.client = client
        self.serial = serial
        self.options = options
        self.seed = seed
        keystream = Keystream(seed: seed)
        self.progress = progress
        self.shouldStop = shouldStop
    }

    var directory: String { options.directory }

    mutating func run() -> Outcome {
        let before: (total: UInt64, free: UInt64)
        do throws(LetheError) {
            // An earlier fill's files go first, so that df counts their space as free.
            try shellOK("rm -rf \(directory)")
            before = try df()
            try shellOK("mkdir -p \(directory)")
        } catch {
            // Nothing was written.
            return Outcome(record: nil, error: "the free-space overwrite could not start: \(error.message)", vanished: error.code == .deviceVanished)
        }
        guard before.free >= options.reserveBytes + Self.mebibyte else {
            notes.append("only \(HumanFormat.bytes(Double(before.free))) of \(options.mountPoint) was free, not more than the \(HumanFormat.bytes(Double(options.reserveBytes))) left for Android: nothing to fill")
            let removed = removeFiles()
            return Outcome(record: record(result: "skipped", before: before, writeSeconds: 0, verified: (0, 0, 0), removed: removed))
        }
        let writeStarted = Date()
        if let failure = write(free: before.free) { return failed(failure, before: before, writeSeconds: Date().timeIntervalSince(writeStarted)) }
        let writeSeconds = Date().timeIntervalSince(writeStarted)
        let verified: (samples: Int, bytes: UInt64, mismatches: Int)
        do throws(LetheError) {
            // The bytes must be on the flash, not in the phone's page cache, when read back.
            try shellOK("sync", timeout: .seconds(600))
            verified = options.mode == .full ? try verifyAll() : try verifySample()
        } catch {
            return failed(error, before: before, writeSeconds: writeSeconds)
        }
        let removed = removeFiles()
        let result = verified.mismatches == 0 && removed ? "passed" : "failed"
        var outcome = Outcome(record: record(result: result, before: before, writeSeconds: writeSeconds, verified: verified, removed: removed))
        if verified.mismatches > 0 {
            outcome.error = "the fill read back differently in \(verified.mismatches) of \(verified.samples) regions: the phone's storage did not keep what it acknowledged; not reset, not certified"
        } else if !removed {
            outcome.error = "the fill files in \(directory) could not be removed; not reset (they would be erased, but the phone would be reset full)"
        }
        return outcome
    }

    // MARK: - Writing

    /// Writes files until `df` leaves only the reserve; nil, or why it stopped. The files go
    /// one after another on one sync stream without waiting for each answer; within two files
    /// of the end, each waits for the answers and a fresh `df` (the partition may fill sooner
    /// or later than it said).
    mutating func write(free startFree: UInt64) -> LetheError? {
        let session: ADBSyncSession
        do throws(LetheError) { session = try ADBSyncSession(client, serial: serial) } catch { return error }
        defer { session.close() }
        var room = startFree > options.reserveBytes ? startFree - options.reserveBytes : 0
        var unanswered: [(path: String, start: UInt64, size: UInt64)] = []
        var sentBytes: UInt64 = 0
        let started = Date()
        var lastReport = Date.distantPast
        func accept(_ stored: [String]) {
            for path in stored {
                guard let file = unanswered.first, file.path == path else { continue }
                unanswered.removeFirst()
                files.append(file)
                written += file.size
            }
        }
        while true {
            do throws(LetheError) {
                if room < 2 * options.fileBytes {
                    accept(try session.settle())
                    let free = try df().free
                    room = free > options.reserveBytes ? free - options.reserveBytes : 0
                }
                let size = min(options.fileBytes, room) / Self.mebibyte * Self.mebibyte
                guard size > 0 else {
                    accept(try session.settle())
                    return nil
                }
                let path = "\(directory)/\(FreeSpaceFill.fileName(files.count + unanswered.count + 1))"
                let start = sentBytes
                let total = sentBytes + room
                unanswered.append((path, start, size))
                let (keystream, progress, shouldStop) = (keystream, progress, shouldStop)
                try session.send(
                    path: path, size: size,
                    produce: { buffer, offset in keystream.fill(buffer, offset: start + offset) },
                    sent: { sent in
                        let now = Date()
                        if now.timeIntervalSince(lastReport) >= 1 {
                            lastReport = now
                            progress(Self.progress("write", done: start + sent, total: total, since: started))
                        }
                        return !shouldStop()
                    })
                accept(session.storedSoFar)
                sentBytes += size
                room -= size
            } catch where error.code == .ioFailure && error.message.contains("No space left") {
                accept(session.storedSoFar)
                // The partition filled sooner than df said (another writer, or df's own rounding).
                let refused = files.count + 1
                notes.append("\(options.mountPoint) ran out of space before the reserve by df's figure, at file \(refused); the phone refused and deleted that file, and the fill stopped there")
                return nil
            } catch {
                accept(session.storedSoFar)
                return error
            }
        }
    }

    // MARK: - Reading back

    /// Regions spread over the whole fill (one in each of `samples` stripes, at a random
    /// aligned place, and always the fill's last region), read with `dd` and compared.
    func verifySample() throws(LetheError) -> (samples: Int, bytes: UInt64, mismatches: Int) {
        let region = UInt64(options.sampleBytes)
        var starts: Set<UInt64> = []
        let regions = written / region
        let wanted = UInt64(max(1, options.samples))
        if regions <= wanted {
            for i in 0..<regions { starts.insert(i * region) }
        } else {
            let stripe = regions / wanted
            for i in 0..<(wanted - 1) { starts.insert((i * stripe + UInt64.random(in: 0..<stripe)) * region) }
            starts.insert((regions - 1) * region)
        }
        let started = Date()
        var mismatches = 0
        var expected = [UInt8](repeating: 0, count: options.sampleBytes)
        for (index, start) in starts.sorted().enumerated() {
            guard let file = files.first(where: { $0.start <= start && start < $0.start + $0.size }) else { continue }
            let block = (start - file.start) / region
            let got = try client.shellBytes(serial: serial, "dd if=\(file.path) bs=\(options.sampleBytes) skip=\(block) count=1 2>/dev/null", timeout: .seconds(60))
            guard got.exitCode == 0 else {
                throw LetheError(.ioFailure, path: "\(serial): \(file.path)", "reading it back with dd failed (exit \(got.exitCode)): \(got.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            expected.withUnsafeMutableBytes { keystream.fill($0, offset: start) }
            if got.stdout != expected { mismatches += 1 }
            if index % 16 == 15 {
                progress(Self.progress("verify", done: UInt64(index + 1) * region, total: UInt64(starts.count) * region, since: started))
            }
        }
        return (starts.count, UInt64(starts.count) * region, mismatches)
    }

    /// Every file pulled and compared, 64 KiB at a time; a mismatch counts each differing
    /// 64 KiB region.
    func verifyAll() throws(LetheError) -> (samples: Int, bytes: UInt64, mismatches: Int) {
        let region = options.sampleBytes
        let started = Date()
        var lastReport = Date.distantPast
        var mismatches = 0, regions = 0
        var read: UInt64 = 0
        var expected = [UInt8](repeating: 0, count: region)
        for file in files {
            var pending: [UInt8] = []
            var fileOffset: UInt64 = 0
            func compare(_ bytes: ArraySlice<UInt8>) {
                expected.withUnsafeMutableBytes { keystream.fill(UnsafeMutableRawBufferPointer(rebasing: $0[0..<bytes.count]), offset: file.start + fileOffset) }
                if !bytes.elementsEqual(expected[0..<bytes.count]) { mismatches += 1 }
                regions += 1
                fileOffset += UInt64(bytes.count)
            }
            try client.pull(serial: serial, path: file.path, timeout: .seconds(60)) { chunk, _ in
                pending += chunk
                while pending.count >= region {
                    compare(pending[0..<region])
                    pending.removeFirst(region)
                }
                read += UInt64(chunk.count)
                if Date().timeIntervalSince(lastReport) >= 1 {
                    lastReport = Date()
                    progress(Self.progress("verify", done: read, total: written, since: started))
                }
                return !shouldStop()
            }
            if !pending.isEmpty { compare(pending[...]) }
            // A file that came back short: the rest of it counts as differing.
            if fileOffset < file.size { mismatches += Int((file.size - fileOffset + UInt64(region) - 1) / UInt64(region)) }
        }
        return (regions, read, mismatches)
    }

    // MARK: - Helpers

    /// Removes the fill files; true when the folder is gone.
    func removeFiles() -> Bool {
        guard (try? shellOK("rm -rf \(directory)", timeout: .seconds(300))) != nil else { return false }
        return (try? client.shell(serial: serial, "ls \(directory)", timeout: .seconds(20)))?.exitCode != 0
    }

    /// Why the fill failed, with what it did before (its files are removed if the phone is
    /// still there).
    mutating func failed(_ error: LetheError, before: (total: UInt64, free: UInt64), writeSeconds: Double) -> Outcome {
        // A broken transfer (a closed connection, or even a refusal) is the phone going away
        // only if it no longer answers a shell.
        let vanished = error.code == .deviceVanished || (error.code != .cancelled && (try? client.shell(serial: serial, "echo", timeout: .seconds(5))) == nil)
        let removed = vanished ? false : removeFiles()
        let what = error.code == .cancelled ? "stopped" : vanished ? "the phone went away" : "failed"
        notes.append("\(what) after \(HumanFormat.bytes(Double(written))) in \(files.count) files: \(error.message)")
        let record = record(result: "failed", before: before, writeSeconds: writeSeconds, verified: (0, 0, 0), removed: removed)
        let leftovers = vanished ? "; its fill files are removed when it is docked again" : removed ? "" : "; the fill files in \(directory) could not be removed"
        return Outcome(record: record, error: "free-space overwrite \(what)\(error.path.map { " (\($0))" } ?? ""): \(error.message)\(leftovers)", vanished: vanished)
    }

    func record(
        result: String, before: (total: UInt64, free: UInt64), writeSeconds: Double, verified: (samples: Int, bytes: UInt64, mismatches: Int), removed: Bool
    ) -> ReportFreeSpaceOverwrite {
        ReportFreeSpaceOverwrite(
            mode: options.mode.rawValue, result: result, mountPoint: options.mountPoint, directory: directory, partitionBytes: before.total,
            freeBytesBefore: before.free, reserveBytes: options.reserveBytes, bytesWritten: written, files: files.count,
            seed: seed.map { String(format: "%02x", $0) }.joined(), bytesVerified: verified.bytes, samples: verified.samples,
            mismatches: verified.mismatches, bytesPerSecond: writeSeconds > 0 ? UInt64(Double(written) / writeSeconds) : 0,
            startedAt: Self.iso(startedAt), finishedAt: Self.iso(Date()), filesRemoved: removed, notes: notes)
    }

    func df() throws(LetheError) -> (total: UInt64, free: UInt64) {
        let result = try client.shell(serial: serial, "df \(options.mountPoint)", timeout: .seconds(20))
        guard result.exitCode == 0, let data = FunctionChecks.dataPartition(result.stdout) else {
            throw LetheError(
                .unexpectedOutput, path: "\(serial): df \(options.mountPoint)",
                "exit \(result.exitCode.map(String.init) ?? "?"), \(result.stderr.isEmpty ? "output \"\(result.stdout.prefix(120))\" is not toybox df's" : result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return data
    }

    func shellOK(_ command: String, timeout: Duration = .seconds(60)) throws(LetheError) {
        try Self.shellOK(client, serial: serial, command, timeout: timeout)
    }

    /// Runs `command`; a nonzero exit is thrown with what the phone said.
    static func shellOK(_ client: ADBClient, serial: String, _ command: String, timeout: Duration) throws(LetheError) {
        let result = try client.shell(serial: serial, command, timeout: timeout)
        guard result.exitCode == 0 else {
            let why = (result.stderr.isEmpty ? result.stdout : result.stderr).trimmingCharacters(in: .whitespacesAndNewlines)
            throw LetheError(.ioFailure, path: "\(serial): \(command)", "exited \(result.exitCode.map(String.init) ?? "?"): \(why)")
        }
    }

    static func progress(_ phase: String, done: UInt64, total: UInt64, since: Date) -> FreeSpaceFill.Progress {
        let seconds = max(0.001, Date().timeIntervalSince(since))
        let rate = Double(done) / seconds
        return FreeSpaceFill.Progress(
            phase: phase, bytesDone: done, bytesTotal: max(done, total), bytesPerSecond: rate,
            etaSeconds: rate > 0 ? Double(max(done, total) - done) / rate : nil)
    }

    static func iso(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: date)
    }
}
