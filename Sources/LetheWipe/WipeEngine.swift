import Foundation
import LetheCore

/// How to run an erase.
public struct WipeOptions: Sendable {
    /// The method (pass plan).
    public var method: WipeMethod
    /// The read-back policy.
    public var verification: VerificationMode
    /// Bytes per request (default 4 MiB, as fio's `bs=4M`).
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

    /// Options with the method's default verification and fio-equivalent I/O shape.
    public init(
        method: WipeMethod, verification: VerificationMode? = nil, blockSize: Int = 4 << 20, queueDepth: Int = 16,
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

    /// Prepares an erase. Throws ``LetheError`` when the device or options cannot work.
    public init(device: any BlockDevice, options: WipeOptions, cancellation: WipeCancellation = WipeCancellation()) throws(LetheError) {
        try Self.validate(device: device, blockSize: options.blockSize, queueDepth: options.queueDepth)
        try Self.validate(device: device, blockSize: options.blockSize, queueDepth: options.readQueueDepth)
        for case .bytes(let bytes) in options.method.passes where bytes.isEmpty || bytes.count > PatternFiller.maximumPatternLength {
            throw LetheError(.invalidArgument, path: device.path,
                "method \(options.method.name) has a pattern of \(bytes.count) bytes (1 to \(PatternFiller.maximumPatternLength) allowed)")
        }
        self.device = device
        self.options = options
        self.cancellation = cancellation
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

    /// Runs the erase. `progress` is called on this thread every `progressInterval` seconds.
    public func run(progress: (WipeProgress) -> Void = { _ in }) -> WipeOutcome {
        let started = Date()
        let patterns = options.method.resolvePasses { count in
            var generator = SystemRandomNumberGenerator()
            return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        }
        let size = device.sizeBytes
        let fullChunks = Self.chunks(of: [Chunk(offset: 0, length: Int(clamping: size))], size: size, blockSize: options.blockSize)
        let samplePlan: SamplePlan? = options.verification == .sample
            ? SamplePlan(
                totalSectors: size / UInt64(device.logicalSectorSize),
                seed: options.sampleSeed ?? UInt64.random(in: .min ... .max))
            : nil
        let sampleChunks = samplePlan.map { plan in
            Self.chunks(of: plan.ranges.map { byteChunk($0) }, size: size, blockSize: options.blockSize)
        }

        // Work plan for progress: writes, plus the reads verification will do.
        let verifyBytes: UInt64 = switch options.verification {
        case .off: 0
        case .last: size
        case .all: size * UInt64(patterns.count)
        case .sample: (samplePlan?.sampledSectors ?? 0) * UInt64(device.logicalSectorSize)
        }
        var tracker = ProgressTracker(
            total: size * UInt64(patterns.count) + verifyBytes, passCount: patterns.count, interval: options.progressInterval)

        var badSectors: [SectorRange] = []
        var passes: [PassRecord] = []
        var verification = VerificationRecord(
            mode: options.verification, result: options.verification == .off ? .skipped : .notRun,
            sampleSeed: samplePlan?.seed, sampleSubsections: samplePlan?.subsections)
        var fatal: String?
        var writeSeconds = 0.0

        passLoop: for (index, pattern) in patterns.enumerated() {
            let number = index + 1
            if cancellation.isCancelled { break }
            let filler = PatternFiller(pattern)
            let passStart = Date()
            tracker.begin(.write, pass: number, bytes: size)
            let written = runPhase(chunks: fullChunks, knownBad: badSectors, tracker: &tracker, progress: progress) {
                runner, chunk, buffers throws(IOFailure) in
                for piece in runner.usablePieces(of: chunk) {
                    let start = Int(piece.offset - chunk.offset)
                    let buffer = buffers.io.slice(start, piece.length)
                    filler.fill(buffer, offset: piece.offset)
                    let bad = try runner.transferNarrowing(piece) { (part: Chunk) throws(IOFailure) in
                        let slice = buffers.io.slice(start + Int(part.offset - piece.offset), part.length)
                        try runner.device.writeFully(UnsafeRawBufferPointer(slice), at: part.offset)
                    }
                    let badBytes = bad.reduce(UInt64(0)) { $0 + $1.count } * UInt64(runner.sectorSize)
                    runner.record(bad: bad, transferred: UInt64(piece.length) - badBytes)
                }
            }
            badSectors = SectorRange.coalesce(badSectors + written.badSectors)
            var completed = written.fatal == nil && !cancellation.isCancelled
            if let failure = written.fatal {
                fatal = describe(failure, during: "pass \(number) (write)")
            }
            // Flush even after an abort, so what was written is on the medium.
            tracker.begin(.flush, pass: number, bytes: 0)
            progress(tracker.snapshot(phaseDone: 0, badSectors: badSectors))
            if let failure = flush() {
                completed = false
                fatal = fatal ?? describe(failure, during: "pass \(number) (flush)")
            }
            let seconds = Date().timeIntervalSince(passStart)
            writeSeconds += seconds
            passes.append(PassRecord(
                index: number, pattern: pattern.summary, bytesWritten: written.bytesTransferred,
                completed: completed, seconds: seconds))
            guard completed else { break passLoop }

            let isLast = number == patterns.count
            let chunksToVerify: [Chunk]? = switch options.verification {
            case .off: nil
            case .all: fullChunks
            case .last: isLast ? fullChunks : nil
            case .sample: isLast ? sampleChunks : nil
            }
            guard let chunksToVerify else { continue }
            let check = verify(pattern: pattern, chunks: chunksToVerify, knownBad: badSectors, pass: number, tracker: &tracker, progress: progress)
            badSectors = SectorRange.coalesce(badSectors + check.badSectors)
            verification.bytesVerified += check.record.bytesVerified
            verification.seconds += check.record.seconds
            verification.mismatchedSectors += check.record.mismatchedSectors
            verification.firstMismatches = Array((verification.firstMismatches + check.record.firstMismatches).prefix(PhaseFindings.mismatchesKept))
            verification.coverage = samplePlan.map { isLast ? $0.coverage : 1 } ?? 1
            if let failure = check.fatal {
                fatal = fatal ?? describe(failure, during: "verification of pass \(number)")
                verification.result = .notRun
                break passLoop
            }
            if cancellation.isCancelled {
                verification.result = .notRun
                break passLoop
            }
            passes[index].verification = check.record.result
            // One failed pass fails the verification, whatever later passes find.
            if verification.result != .failed { verification.result = check.record.result }
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
        if aborted { error = "aborted by \(cancellation.reason == 15 ? "SIGTERM" : cancellation.reason == 2 ? "SIGINT" : "request")" }
        let bytesWritten = passes.reduce(UInt64(0)) { $0 + $1.bytesWritten }
        return WipeOutcome(
            device: device.path, method: options.method.name, category: options.method.category, status: status,
            sizeBytes: size, logicalSectorSize: device.logicalSectorSize, bytesWritten: bytesWritten,
            passes: passes, verification: verification, badSectors: badSectors,
            throughputBytesPerSecond: writeSeconds > 0 ? Double(bytesWritten) / writeSeconds : 0,
            seconds: Date().timeIntervalSince(started), error: error)
    }

    /// Reads the whole device and compares it with `pattern` (for `lethe verify`). Nothing is
    /// written.
    public func check(expecting pattern: ResolvedPattern, progress: (WipeProgress) -> Void = { _ in }) -> (record: VerificationRecord, badSectors: [SectorRange], error: String?) {
        let chunks = Self.chunks(of: [Chunk(offset: 0, length: Int(clamping: device.sizeBytes))], size: device.sizeBytes, blockSize: options.blockSize)
        var tracker = ProgressTracker(total: device.sizeBytes, passCount: 1, interval: options.progressInterval)
        let result = verify(pattern: pattern, chunks: chunks, knownBad: [], pass: 1, tracker: &tracker, progress: progress)
        var record = result.record
        record.coverage = 1
        let error = result.fatal.map { describe($0, during: "verification") }
        if error != nil || cancellation.isCancelled { record.result = .notRun }
        return (record, result.badSectors, error)
    }

    // MARK: - Phases

    private func runPhase(
        chunks: [Chunk], knownBad: [SectorRange], reading: Bool = false, tracker: inout ProgressTracker,
        progress: (WipeProgress) -> Void,
        work: @escaping @Sendable (PhaseRunner, Chunk, WorkerBuffers) throws(IOFailure) -> Void
    ) -> PhaseFindings {
        let runner = PhaseRunner(
            device: device, chunks: chunks, threads: reading ? options.readQueueDepth : options.queueDepth,
            bufferBytes: options.blockSize,
            retries: options.retries, knownBad: knownBad, cancellation: cancellation)
        let findings = runner.run(interval: options.progressInterval, tick: {
            progress(tracker.snapshot(phaseDone: runner.bytesDone.load(ordering: .relaxed), badSectors: knownBad))
        }, work: work)
        tracker.finishPhase()
        return findings
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
        let found = runPhase(chunks: chunks, knownBad: knownBad, reading: true, tracker: &tracker, progress: progress) {
            runner, chunk, buffers throws(IOFailure) in
            for piece in runner.usablePieces(of: chunk) {
                let start = Int(piece.offset - chunk.offset)
                var readable: [Chunk] = []
                let bad = try runner.transferNarrowing(piece) { (part: Chunk) throws(IOFailure) in
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
        }
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

    private func flush() -> IOFailure? {
        do {
            try device.synchronize()
            return nil
        } catch {
            // A flush can report an error once for a write that already failed; ask again.
            do { try device.synchronize() } catch { return error }
            return nil
        }
    }

    private func describe(_ failure: IOFailure, during stage: String) -> String {
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

    init(total: UInt64, passCount: Int, interval: Double) {
        self.total = total
        self.passCount = passCount
        self.interval = interval
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
