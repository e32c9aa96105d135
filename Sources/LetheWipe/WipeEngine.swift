import Foundation
import LetheCore

/// How to run an erase.
public struct WipeOptions: Sendable {
    /// The method (pass plan).
    public var method: WipeMethod
    /// The read-back policy.
    public var verification: VerificationMode
    /// Bytes per request (default 1 MiB). With 16 in flight that is 16 MiB of buffers, which
    /// stay in the CPU's cache: on a device as fast as memory, 4 MiB requests (64 MiB in
    /// flight) made every random-pass block and every read-back block a trip to DRAM, and
    /// measured 0.75-0.83x fio against 1.03-1.21x with 1 MiB; disk-bound devices measured the
    /// same either way (docs/speed.md).
    public var blockSize: Int
    /// Write requests in flight (default 16: one thread per request, so a few more than an
    /// async engine needs to keep the device as busy as fio's `iodepth=8`).
    public var queueDepth: Int
    /// Read requests in flight while verifying (default: the write depth). Each reader also
    /// checks what it read, and the extra depth covers that time.
    public var readQueueDepth: Int
    /// Extra tries for a failed request before narrowing it down to sectors.
    public var retries: Int
    /// Seconds between progress callbacks.
    public var progressInterval: Double
    /// Seed for the sampling plan; random when nil.
    public var sampleSeed: UInt64?
    /// Seconds between checkpoints (a flush, then the checkpoint callback) while writing.
    public var checkpointInterval: Double = 5

    /// Options with the method's default verification and fio-equivalent I/O shape.
    public init(
        method: WipeMethod, verification: VerificationMode? = nil, blockSize: Int = 1 << 20, queueDepth: Int = 16,
        readQueueDepth: Int? = nil, retries: Int = 1, progressInterval: Double = 0.5, sampleSeed: UInt64? = nil
    ) {
        self.readQueueDepth = readQueueDepth ?? queueDepth
        self.method = method
        self.verification = verification ?? method.defaultVerification
        self.blockSize = blockSize
        self.queueDepth = queueDepth
        self.retries = retries
        self.progressInterval = progressInterval
        self.sampleSeed = sampleSeed
    }
}

/// The erase engine: runs a method's pass plan against any ``BlockDevice``, verifies, narrows
/// bad sectors down, and says exactly what happened in a ``WipeOutcome``.
///
/// `run` blocks the calling thread and does its I/O on its own worker threads. Call it from a
/// thread of your own (the CLI's main thread, or a dedicated thread in the daemon).
public final class WipeEngine: Sendable {
    /// The device being erased.
    public let device: any BlockDevice
    /// How.
    public let options: WipeOptions
    /// Stop switch for SIGINT/SIGTERM or an API abort.
    public let cancellation: WipeCancellation
    /// Where an interrupted erase of this device picks up (nil: from the start).
    public let resumePoint: WipeCheckpoint?

    /// Prepares an erase. Throws ``LetheError`` when the device or options cannot work, or when
    /// `resumingFrom` was made for another method or device size.
    public init(
        device: any BlockDevice, options: WipeOptions, cancellation: WipeCancellation = WipeCancellation(),
        resumingFrom resumePoint: WipeCheckpoint? = nil
    ) throws(LetheError) {
        guard !options.method.passes.isEmpty else {
            throw LetheError(.invalidArgument, path: device.path, "method \(options.method.name) is the drive's own erase command, not an overwrite; it runs through FirmwarePurge")
        }
        try Self.validate(device: device, blockSize: options.blockSize, queueDepth: options.queueDepth)
        try Self.validate(device: device, blockSize: options.blockSize, queueDepth: options.readQueueDepth)
        for case .bytes(let bytes) in options.method.passes where bytes.isEmpty || bytes.count > PatternFiller.maximumPatternLength {
            throw LetheError(.invalidArgument, path: device.path,
                "method \(options.method.name) has a pattern of \(bytes.count) bytes (1 to \(PatternFiller.maximumPatternLength) allowed)")
        }
        if let point = resumePoint {
            guard point.method == options.method.name, point.patterns.count == options.method.passes.count else {
                throw LetheError(.invalidArgument, path: device.path,
                    "the checkpoint is for method \(point.method) (\(point.patterns.count) passes), not \(options.method.name); a resume must use the same method")
            }
            guard point.verification.mode == options.verification else {
                throw LetheError(.invalidArgument, path: device.path,
                    "the checkpoint was made with verification \(point.verification.mode.rawValue), not \(options.verification.rawValue); a resume must verify as the erase began")
            }
            guard point.sizeBytes == device.sizeBytes else {
                throw LetheError(.invalidArgument, path: device.path,
                    "the checkpoint is for a device of \(point.sizeBytes) bytes; this one has \(device.sizeBytes): not the same device")
            }
            guard (1...point.patterns.count).contains(point.pass), point.offset <= point.sizeBytes,
                point.offset % UInt64(options.blockSize) == 0 || point.offset == point.sizeBytes
            else {
                throw LetheError(.invalidArgument, path: device.path, "the checkpoint (pass \(point.pass), offset \(point.offset)) does not fit this plan")
            }
        }
        self.device = device
        self.options = options
        self.cancellation = cancellation
        self.resumePoint = resumePoint
    }

    /// Refuses sizes and shapes the engine cannot handle, with the device and cause named.
    public static func validate(device: any BlockDevice, blockSize: Int, queueDepth: Int) throws(LetheError) {
        let sector = device.logicalSectorSize
        guard sector >= 512, sector.nonzeroBitCount == 1 else {
            throw LetheError(.unalignedSize, path: device.path, "logical sector size \(sector) is not a power of two of at least 512")
        }
        guard device.sizeBytes >= UInt64(max(sector, 4096)) else {
            throw LetheError(.deviceTooSmall, path: device.path, "device is too small to erase: \(device.sizeBytes) bytes (at least 4096 needed)")
        }
        guard device.sizeBytes % UInt64(sector) == 0 else {
            throw LetheError(.unalignedSize, path: device.path, "size \(device.sizeBytes) bytes is not a multiple of the \(sector)-byte sector size")
        }
        guard blockSize >= sector, blockSize % sector == 0, blockSize % 4096 == 0, blockSize <= 256 << 20 else {
            throw LetheError(.unalignedSize, path: device.path, "block size \(blockSize) must be a multiple of 4096 and of the \(sector)-byte sector size, at most 256 MiB")
        }
        guard (1...64).contains(queueDepth) else {
            throw LetheError(.invalidArgument, path: device.path, "queue depth \(queueDepth) must be between 1 and 64")
        }
    }

    /// Runs the erase (or the rest of it, from ``resumePoint``). `progress` is called on this
    /// thread every `progressInterval` seconds; `checkpoint` is called on this thread before the
    /// first write, every `checkpointInterval` seconds while writing (after a flush, so what it
    /// says is written is on the medium), and at each pass and verification boundary.
    public func run(progress: (WipeProgress) -> Void = { _ in }, checkpoint: (WipeCheckpoint) -> Void = { _ in }) -> WipeOutcome {
        let started = Date()
        let patterns = resumePoint?.patterns ?? options.method.resolvePasses { count in
            var generator = SystemRandomNumberGenerator()
            return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        }
        let size = device.sizeBytes
        let sectorBytes = UInt64(device.logicalSectorSize)
        let fullChunks = Self.chunks(of: [Chunk(offset: 0, length: Int(clamping: size))], size: size, blockSize: options.blockSize)
        let sampleSeed = resumePoint?.verification.sampleSeed ?? options.sampleSeed ?? UInt64.random(in: .min ... .max)
        let samplePlan: SamplePlan? = options.verification == .sample
            ? SamplePlan(totalSectors: size / sectorBytes, seed: sampleSeed)
            : nil
        let sampleChunks = samplePlan.map { plan in
            Self.chunks(of: plan.ranges.map { byteChunk($0) }, size: size, blockSize: options.blockSize)
        }
        func verifiedChunks(afterPass number: Int) -> [Chunk]? {
            switch options.verification {
            case .off: nil
            case .all: fullChunks
            case .last: number == patterns.count ? fullChunks : nil
            case .sample: number == patterns.count ? sampleChunks : nil
            }
        }
        func verifyBytes(afterPass number: Int) -> UInt64 {
            verifiedChunks(afterPass: number)?.reduce(UInt64(0)) { $0 + UInt64($1.length) } ?? 0
        }

        // Where to start: pass 1 at offset 0, or the checkpoint.
        let startPass = resumePoint?.pass ?? 1
        let startPhase = resumePoint?.phase ?? .write
        let startOffset = resumePoint?.offset ?? 0

        // Work plan for progress: writes, plus the reads verification will do; what the
        // interrupted run already did counts as done.
        let plan = (1...patterns.count).reduce(UInt64(0)) { $0 + size + verifyBytes(afterPass: $1) }
        let skipped = (1..<startPass).reduce(UInt64(0)) { $0 + size + verifyBytes(afterPass: $1) }
            + (startPhase == .verify ? size : startOffset)
        var tracker = ProgressTracker(total: plan, passCount: patterns.count, interval: options.progressInterval, alreadyDone: skipped)

        var badSectors = resumePoint?.badSectors ?? []
        var passes = resumePoint?.passes ?? []
        var verification = resumePoint?.verification ?? VerificationRecord(
            mode: options.verification, result: options.verification == .off ? .skipped : .notRun,
            sampleSeed: samplePlan?.seed, sampleSubsections: samplePlan?.subsections)
        var fatal: String?
        var vanished = false
        var writeSeconds = resumePoint?.writeSeconds ?? 0

        func save(pass: Int, phase: WipeCheckpoint.Phase, offset: UInt64, extraBad: [SectorRange] = []) {
            checkpoint(WipeCheckpoint(
                method: options.method.name, sizeBytes: size, patterns: patterns, pass: pass, phase: phase, offset: offset,
                passes: passes, verification: verification, badSectors: SectorRange.coalesce(badSectors + extraBad),
                writeSeconds: writeSeconds))
        }
        // The seeds are recorded before anything is written.
        save(pass: startPass, phase: startPhase, offset: startOffset)

        passLoop: for (index, pattern) in patterns.enumerated() {
            let number = index + 1
            if number < startPass { continue }
            if cancellation.isCancelled { break }
            let filler = PatternFiller(pattern)
            if !(number == startPass && startPhase == .verify) {
                let from = number == startPass ? startOffset : 0
                let chunks = from == 0 ? fullChunks : fullChunks.filter { $0.offset >= from }
                let passStart = Date()
                tracker.begin(.write, pass: number, bytes: size - from)
                let written = runPhase(
                    chunks: chunks, knownBad: badSectors, tracker: &tracker, progress: progress,
                    shared: SharedPattern(filler, blockSize: options.blockSize, alignment: device.bufferAlignment),
                    checkpoint: { durable, bad in save(pass: number, phase: .write, offset: durable, extraBad: bad) },
                    probe: { runner, offset, buffers throws(IOFailure) in
                        // The pass's own bytes for that sector: a probe writes nothing the pass would not.
                        let sector = buffers.expected.slice(0, runner.sectorSize)
                        filler.fill(sector, offset: offset)
                        try runner.device.writeFully(UnsafeRawBufferPointer(sector), at: offset)
                    }
                ) { runner, chunk, buffers throws(IOFailure) in
                    for piece in runner.usablePieces(of: chunk) {
                        let source = buffers.source(for: filler, offset: piece.offset, length: piece.length)
                        try runner.stopIfFailed()
                        let bad = try runner.transferNarrowing(piece, buffers: buffers) { (part: Chunk) throws(IOFailure) in
                            let from = Int(part.offset - piece.offset)
                            try runner.device.writeFully(UnsafeRawBufferPointer(rebasing: source[from..<(from + part.length)]), at: part.offset)
                        }
                        let badBytes = bad.reduce(UInt64(0)) { $0 + $1.count } * UInt64(runner.sectorSize)
                        runner.record(bad: bad, transferred: UInt64(piece.length) - badBytes)
                    }
                }
                badSectors = SectorRange.coalesce(badSectors + written.findings.badSectors)
                var completed = written.findings.fatal == nil && !cancellation.isCancelled
                if let failure = written.findings.fatal {
                    fatal = describe(failure, during: "pass \(number) (\(failure.operation == .flush ? "flush at a checkpoint" : "write"))")
                    vanished = failure.errno.meansDeviceGone
                }
                // Flush even after an abort, so what was written is on the medium.
                tracker.begin(.flush, pass: number, bytes: 0)
                progress(tracker.snapshot(phaseDone: 0, badSectors: badSectors))
                let flushFailure = flush()
                if let failure = flushFailure {
                    completed = false
                    fatal = fatal ?? describe(failure, during: "pass \(number) (flush)")
                }
                let seconds = Date().timeIntervalSince(passStart)
                writeSeconds += seconds
                // Bytes the interrupted run wrote below `from` count for this pass too.
                let earlier = from - min(from, SectorRange.bytes(in: badSectors, below: from, sectorSize: sectorBytes))
                var record = PassRecord(
                    index: number, pattern: pattern.summary, bytesWritten: earlier + written.findings.bytesTransferred,
                    completed: completed, seconds: seconds)
                if from > 0 { record.resumedAt = from }
                if !completed {
                    // Keep the place: everything below the low-water mark is written and flushed.
                    if flushFailure == nil { save(pass: number, phase: .write, offset: written.lowWater) }
                    passes.append(record)
                    break passLoop
                }
                passes.append(record)
                save(pass: verifiedChunks(afterPass: number) == nil ? number + 1 : number, phase: verifiedChunks(afterPass: number) == nil ? .write : .verify, offset: 0)
            }

            guard let chunksToVerify = verifiedChunks(afterPass: number) else { continue }
            let check = verify(pattern: pattern, chunks: chunksToVerify, knownBad: badSectors, pass: number, tracker: &tracker, progress: progress)
            badSectors = SectorRange.coalesce(badSectors + check.badSectors)
            verification.bytesVerified += check.record.bytesVerified
            verification.seconds += check.record.seconds
            verification.mismatchedSectors += check.record.mismatchedSectors
            verification.firstMismatches = Array((verification.firstMismatches + check.record.firstMismatches).prefix(PhaseFindings.mismatchesKept))
            // What was read back, not what was planned: unreadable sectors are not covered.
            verification.coverage = size > 0 ? Double(check.record.bytesVerified) / Double(size) : 0
            if let failure = check.fatal {
                fatal = fatal ?? describe(failure, during: "verification of pass \(number)")
                vanished = failure.errno.meansDeviceGone
                verification.result = .notRun
                break passLoop
            }
            if cancellation.isCancelled {
                verification.result = .notRun
                break passLoop
            }
            passes[passes.count - 1].verification = check.record.result
            // One failed pass fails the verification, whatever later passes find.
            if verification.result != .failed { verification.result = check.record.result }
            if number < patterns.count { save(pass: number + 1, phase: .write, offset: 0) }
        }

        let aborted = cancellation.isCancelled
        let allCompleted = passes.count == patterns.count && passes.allSatisfy(\.completed)
        if aborted, options.verification != .off, verification.result != .failed { verification.result = .notRun }
        let status = WipeOutcome.status(
            aborted: aborted, fatalError: fatal != nil, allPassesCompleted: allCompleted,
            verification: verification.result, badSectors: badSectors)
        var error = fatal
        if status == .notErased, error == nil, verification.result == .failed {
            error = "verification found \(verification.mismatchedSectors) sector(s) that do not hold the written pattern"
        }
        if aborted {
            error = switch cancellation.reason {
            case 15: "aborted by SIGTERM"
            case 2: "aborted by SIGINT"
            case 19: "the device was unplugged"
            default: "aborted by request"
            }
        }
        let bytesWritten = passes.reduce(UInt64(0)) { $0 + $1.bytesWritten }
        var outcome = WipeOutcome(
            device: device.path, method: options.method.name, category: options.method.category, status: status,
            sizeBytes: size, logicalSectorSize: device.logicalSectorSize, bytesWritten: bytesWritten,
            passes: passes, verification: verification, badSectors: badSectors,
            throughputBytesPerSecond: writeSeconds > 0 ? Double(bytesWritten) / writeSeconds : 0,
            seconds: Date().timeIntervalSince(started), error: error)
        outcome.deviceVanished = vanished || cancellation.reason == 19
        return outcome
    }

    /// Reads the whole device and compares it with `pattern` (for `lethe verify`). Nothing is
    /// written.
    public func check(expecting pattern: ResolvedPattern, progress: (WipeProgress) -> Void = { _ in }) -> (record: VerificationRecord, badSectors: [SectorRange], error: String?) {
        let chunks = Self.chunks(of: [Chunk(offset: 0, length: Int(clamping: device.sizeBytes))], size: device.sizeBytes, blockSize: options.blockSize)
        var tracker = ProgressTracker(total: device.sizeBytes, passCount: 1, interval: options.progressInterval)
        let result = verify(pattern: pattern, chunks: chunks, knownBad: [], pass: 1, tracker: &tracker, progress: progress)
        var record = result.record
        record.coverage = device.sizeBytes > 0 ? Double(record.bytesVerified) / Double(device.sizeBytes) : 0
        let error = result.fatal.map { describe($0, during: "verification") }
        if error != nil || cancellation.isCancelled { record.result = .notRun }
        return (record, result.badSectors, error)
    }

    // MARK: - Phases

    /// Runs one phase. While writing, every `checkpointInterval` seconds the low-water mark
    /// is taken, the device flushed, and the mark (with the bad sectors found so far) handed
    /// over: a resume from it rewrites nothing that is not already on the medium.
    private func runPhase(
        chunks: [Chunk], knownBad: [SectorRange], reading: Bool = false, tracker: inout ProgressTracker,
        progress: (WipeProgress) -> Void, shared: SharedPattern? = nil,
        checkpoint: (UInt64, [SectorRange]) -> Void = { _, _ in },
        probe: (@Sendable (PhaseRunner, UInt64, WorkerBuffers) throws(IOFailure) -> Void)? = nil,
        work: @escaping @Sendable (PhaseRunner, Chunk, WorkerBuffers) throws(IOFailure) -> Void
    ) -> (findings: PhaseFindings, lowWater: UInt64) {
        let runner = PhaseRunner(
            device: device, chunks: chunks, threads: reading ? options.readQueueDepth : options.queueDepth,
            bufferBytes: options.blockSize,
            retries: options.retries, knownBad: knownBad, cancellation: cancellation, shared: shared, probe: probe)
        var lastCheckpoint = Date()
        let findings = runner.run(interval: min(options.progressInterval, max(0.05, options.checkpointInterval)), tick: {
            progress(tracker.snapshot(phaseDone: runner.bytesDone.load(ordering: .relaxed), badSectors: knownBad))
            guard !reading, options.checkpointInterval > 0, Date().timeIntervalSince(lastCheckpoint) >= options.checkpointInterval else { return }
            lastCheckpoint = Date()
            // Take the mark first: every chunk below it finished before the flush started.
            let mark = runner.lowWaterOffset()
            let bad = runner.badSectorsSoFar
            do throws(IOFailure) {
                try device.synchronize()
                checkpoint(mark, bad)
            } catch {
                // fsync reports a lost write once: this answer is the only one. The pass is
                // incomplete, and no checkpoint claims what may not be on the medium.
                var failure = error
                if !error.errno.meansDeviceGone, !answersReads() {
                    failure.unresponsive = "a flush failed with \(error.errno), and a read of the first sector failed too"
                }
                runner.fail(failure)
            }
        }, work: work)
        tracker.finishPhase()
        return (findings, runner.lowWaterOffset())
    }

    private struct CheckResult {
        var record: VerificationRecord
        var badSectors: [SectorRange]
        var fatal: IOFailure?
    }

    private func verify(
        pattern: ResolvedPattern, chunks: [Chunk], knownBad: [SectorRange], pass: Int, tracker: inout ProgressTracker,
        progress: (WipeProgress) -> Void
    ) -> CheckResult {
        let started = Date()
        let filler = PatternFiller(pattern)
        let total = chunks.reduce(UInt64(0)) { $0 + UInt64($1.length) }
        tracker.begin(.verify, pass: pass, bytes: total)
        let found = runPhase(
            chunks: chunks, knownBad: knownBad, reading: true, tracker: &tracker, progress: progress,
            probe: { runner, offset, buffers throws(IOFailure) in
                try runner.device.readFully(into: buffers.expected.slice(0, runner.sectorSize), at: offset)
            }
        ) { runner, chunk, buffers throws(IOFailure) in
            for piece in runner.usablePieces(of: chunk) {
                let start = Int(piece.offset - chunk.offset)
                var readable: [Chunk] = []
                let bad = try runner.transferNarrowing(piece, buffers: buffers) { (part: Chunk) throws(IOFailure) in
                    let slice = buffers.io.slice(start + Int(part.offset - piece.offset), part.length)
                    try runner.device.readFully(into: slice, at: part.offset)
                    readable.append(part)
                }
                var readBytes = UInt64(0)
                for part in readable {
                    let got = buffers.io.slice(start + Int(part.offset - piece.offset), part.length)
                    let (sectors, mismatches) = filler.differences(
                        in: got, offset: part.offset, scratch: buffers.expected.bytes, sectorSize: runner.sectorSize)
                    runner.record(mismatches: mismatches, sectors: sectors)
                    readBytes += UInt64(part.length)
                }
                runner.record(bad: bad, transferred: readBytes)
            }
        }.findings
        let result: VerificationResult = found.mismatchedSectors > 0 ? .failed : .passed
        let record = VerificationRecord(
            mode: options.verification, result: result, bytesVerified: found.bytesTransferred, coverage: 0,
            mismatchedSectors: found.mismatchedSectors, firstMismatches: found.firstMismatches,
            seconds: Date().timeIntervalSince(started))
        return CheckResult(record: record, badSectors: SectorRange.coalesce(found.badSectors), fatal: found.fatal)
    }

    /// Compares what was read with what should be there; counts differing sectors and keeps
    /// the first differing bytes.
    static func compare(
        _ got: UnsafeMutableRawBufferPointer, _ want: UnsafeMutableRawBufferPointer, offset: UInt64, sectorSize: Int
    ) -> (UInt64, [Mismatch]) {
        guard memcmp(got.baseAddress!, want.baseAddress!, got.count) != 0 else { return (0, []) }
        var sectors = UInt64(0)
        var mismatches: [Mismatch] = []
        var position = 0
        while position < got.count {
            let length = min(sectorSize, got.count - position)
            if memcmp(got.baseAddress! + position, want.baseAddress! + position, length) != 0 {
                sectors += 1
                for i in position..<(position + length) where got[i] != want[i] && mismatches.count < PhaseFindings.mismatchesKept {
                    mismatches.append(Mismatch(offset: offset + UInt64(i), expected: want[i], found: got[i]))
                }
            }
            position += length
        }
        return (sectors, mismatches)
    }

    /// Whether the device still answers a read of its first sector (after a failed flush: is
    /// the device gone dead, or did one write fail?).
    private func answersReads() -> Bool {
        let buffer = AlignedBuffer(count: device.logicalSectorSize, alignment: device.bufferAlignment)
        return (try? device.readFully(into: buffer.bytes, at: 0)) != nil
    }

    /// Flushes the device. A failure is final: the kernel reports a lost write to one fsync
    /// only, so a second one that answers 0 proves nothing.
    private func flush() -> IOFailure? {
        do {
            try device.synchronize()
            return nil
        } catch {
            return error
        }
    }

    private func describe(_ failure: IOFailure, during stage: String) -> String {
        if let why = failure.unresponsive {
            return "the device stopped answering during \(stage): \(why); it was not narrowed sector by sector"
        }
        if failure.errno.meansDeviceGone {
            return "device vanished during \(stage) at offset \(failure.offset) (\(failure.errno))"
        }
        return "\(failure.operation) failed during \(stage) at offset \(failure.offset) (\(failure.errno))"
    }

    private func byteChunk(_ range: SectorRange) -> Chunk {
        let sector = UInt64(device.logicalSectorSize)
        return Chunk(offset: range.first * sector, length: Int(range.count * sector))
    }

    /// Cuts byte ranges into requests of at most `blockSize`, aligned to `blockSize` on the device.
    static func chunks(of ranges: [Chunk], size: UInt64, blockSize: Int) -> [Chunk] {
        var result: [Chunk] = []
        let block = UInt64(blockSize)
        for range in ranges {
            var offset = range.offset
            let end = min(size, range.offset + UInt64(range.length))
            while offset < end {
                let boundary = (offset / block + 1) * block
                let next = min(end, boundary)
                result.append(Chunk(offset: offset, length: Int(next - offset)))
                offset = next
            }
        }
        return result
    }
}

/// Turns byte counters into progress snapshots with throughput and ETA.
struct ProgressTracker {
    let total: UInt64
    let passCount: Int
    let interval: Double
    private var finished: UInt64 = 0
    private var phase: WipeProgress.Phase = .write
    private var pass = 1
    private var phaseTotal: UInt64 = 0
    private var phaseStart = Date()

    init(total: UInt64, passCount: Int, interval: Double, alreadyDone: UInt64 = 0) {
        self.total = total
        self.passCount = passCount
        self.interval = interval
        finished = alreadyDone
    }

    mutating func begin(_ phase: WipeProgress.Phase, pass: Int, bytes: UInt64) {
        self.phase = phase
        self.pass = pass
        phaseTotal = bytes
        phaseStart = Date()
    }

    mutating func finishPhase() { finished += phaseTotal }

    func snapshot(phaseDone: UInt64, badSectors: [SectorRange]) -> WipeProgress {
        let elapsed = Date().timeIntervalSince(phaseStart)
        let rate = elapsed > 0 ? Double(phaseDone) / elapsed : 0
        let done = finished + phaseDone
        let eta: Double? = rate > 0 ? Double(total - min(total, done)) / rate : nil
        return WipeProgress(
            phase: phase, pass: pass, passCount: passCount, phaseBytesDone: phaseDone, phaseBytesTotal: phaseTotal,
            bytesDone: done, bytesTotal: total, bytesPerSecond: rate, etaSeconds: eta,
            badSectorCount: badSectors.reduce(0) { $0 + $1.count })
    }
}
