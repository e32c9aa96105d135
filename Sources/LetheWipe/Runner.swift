import Foundation
import LetheCore
import Synchronization

/// Memory aligned for O_DIRECT, owned by one worker thread: its own anonymous mapping, zeroed
/// by the kernel and given back to it the moment it is freed, whatever malloc's thresholds.
/// (What the daemon measured keeping after 16 jobs was the allocator's arenas; the daemon
/// trims them when a job ends: ProcessMemory.)
final class AlignedBuffer {
    let bytes: UnsafeMutableRawBufferPointer
    private let mapped: Bool

    init(count: Int, alignment: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        if alignment <= page, let address = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), address != MAP_FAILED {
            bytes = UnsafeMutableRawBufferPointer(start: address, count: count)
            mapped = true
        } else {
            bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: max(alignment, 4096))
            bytes.initializeMemory(as: UInt8.self, repeating: 0)
            mapped = false
        }
    }

    deinit {
        if mapped { munmap(bytes.baseAddress, bytes.count) } else { bytes.deallocate() }
    }

    func slice(_ start: Int, _ length: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: bytes[start..<(start + length)])
    }
}

/// A byte range on the device, `[offset, offset + length)`.
struct Chunk: Sendable {
    var offset: UInt64
    var length: Int
}

/// Lets the operator stop a running job (SIGINT/SIGTERM, or an abort from the API).
public final class WipeCancellation: Sendable {
    private let state = Atomic<Int32>(0)

    /// A fresh, uncancelled token.
    public init() {}

    /// Asks the job to stop at the next block boundary. `reason` is recorded (signal number).
    public func cancel(reason: Int32 = 2) {
        _ = state.compareExchange(expected: 0, desired: reason, ordering: .relaxed)
    }

    /// Whether a stop was asked for.
    public var isCancelled: Bool { state.load(ordering: .relaxed) != 0 }
    /// The recorded reason (0 when not cancelled).
    public var reason: Int32 { state.load(ordering: .relaxed) }
}

/// What the workers of one phase found together.
struct PhaseFindings {
    var badSectors: [SectorRange] = []
    var fatal: IOFailure?
    var mismatchedSectors: UInt64 = 0
    var firstMismatches: [Mismatch] = []
    var bytesTransferred: UInt64 = 0

    static let mismatchesKept = 16

    mutating func add(mismatches: [Mismatch], sectors: UInt64) {
        mismatchedSectors += sectors
        firstMismatches = Array((firstMismatches + mismatches).sorted { $0.offset < $1.offset }.prefix(Self.mismatchesKept))
    }
}

/// Runs one phase (a write pass or a read-back) over a list of chunks with `threads` worker
/// threads, each owning aligned buffers, so `threads` requests are in flight at once. The
/// workers are plain threads: blocking I/O never runs on Swift's cooperative pool.
final class PhaseRunner: Sendable {
    let device: any BlockDevice
    let chunks: [Chunk]
    let threads: Int
    let bufferBytes: Int
    let retries: Int
    let knownBad: [SectorRange]
    let cancellation: WipeCancellation
    /// A write phase's constant pattern, shared by its workers.
    let shared: SharedPattern?

    /// Which chunk is handed out next, and which are being worked on: together they give the
    /// low-water mark below which every chunk is done (for checkpoints).
    private struct Dispatch {
        var next = 0
        var inFlight: Set<Int> = []
    }
    private let dispatch = Mutex(Dispatch())
    private let stop = Atomic<Bool>(false)
    let bytesDone = Atomic<UInt64>(0)
    private let findings = Mutex(PhaseFindings())
    /// 1 + the offset of the latest transfer that worked (0: none yet in this phase).
    private let lastGood = Atomic<UInt64>(0)
    /// One sector of the phase's own operation at a byte offset: the probe that tells a failing
    /// region from a device that no longer answers (nil: no probing).
    let probe: (@Sendable (PhaseRunner, UInt64, WorkerBuffers) throws(IOFailure) -> Void)?

    init(
        device: any BlockDevice, chunks: [Chunk], threads: Int, bufferBytes: Int, retries: Int,
        knownBad: [SectorRange], cancellation: WipeCancellation, shared: SharedPattern? = nil,
        probe: (@Sendable (PhaseRunner, UInt64, WorkerBuffers) throws(IOFailure) -> Void)? = nil
    ) {
        self.probe = probe
        self.shared = shared
        self.device = device
        self.chunks = chunks
        self.threads = max(1, min(threads, chunks.count))
        self.bufferBytes = bufferBytes
        self.retries = retries
        self.knownBad = knownBad
        self.cancellation = cancellation
    }

    var sectorSize: Int { device.logicalSectorSize }

    /// Runs `work` for every chunk on the worker threads; calls `tick` on the calling thread
    /// every `interval` seconds until all workers are done. Returns what the workers found.
    func run(
        interval: Double, tick: () -> Void,
        work: @escaping @Sendable (PhaseRunner, Chunk, WorkerBuffers) throws(IOFailure) -> Void
    ) -> PhaseFindings {
        let group = DispatchGroup()
        for _ in 0..<threads {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                let buffers = WorkerBuffers(count: bufferBytes, alignment: device.bufferAlignment, shared: shared)
                while !stop.load(ordering: .relaxed), !cancellation.isCancelled {
                    let index: Int? = dispatch.withLock { d in
                        guard d.next < chunks.count else { return nil }
                        defer { d.next += 1 }
                        d.inFlight.insert(d.next)
                        return d.next
                    }
                    guard let index else { break }
                    do throws(IOFailure) {
                        try work(self, chunks[index], buffers)
                    } catch {
                        findings.withLock { if $0.fatal == nil { $0.fatal = error } }
                        stop.store(true, ordering: .relaxed)
                        // A failed chunk stays "in flight": the low-water mark never passes it.
                        break
                    }
                    dispatch.withLock { _ = $0.inFlight.remove(index) }
                    bytesDone.add(UInt64(chunks[index].length), ordering: .relaxed)
                }
            }
            thread.name = "lethe-io"
            thread.stackSize = 1 << 20
            thread.start()
        }
        while group.wait(timeout: .now() + interval) == .timedOut { tick() }
        return findings.withLock { $0 }
    }

    /// The device offset below which every chunk of this phase has been done (the start of the
    /// lowest chunk still in flight or not yet handed out; the end of the last chunk when all
    /// are done). Chunks are handed out in offset order.
    func lowWaterOffset() -> UInt64 {
        dispatch.withLock { d in
            let index = d.inFlight.min() ?? d.next
            guard index < chunks.count else { return chunks.last.map { $0.offset + UInt64($0.length) } ?? 0 }
            return chunks[index].offset
        }
    }

    /// Stops the phase as failed (a flush that failed at a checkpoint): the workers finish
    /// their current request and take no more.
    func fail(_ failure: IOFailure) {
        findings.withLock { if $0.fatal == nil { $0.fatal = failure } }
        stop.store(true, ordering: .relaxed)
    }

    /// Throws when another worker already failed the phase: a chunk whose buffer was being
    /// filled (a random pass on a slow CPU takes a while) is then not written at all, so a dead
    /// device is given up on as soon as one worker knows. The phase's first failure stays the
    /// one reported.
    func stopIfFailed() throws(IOFailure) {
        if stop.load(ordering: .relaxed) { throw IOFailure(operation: .write, path: device.path, errno: .interrupted, offset: 0, length: 0) }
    }

    /// Bad sectors found so far in this phase.
    var badSectorsSoFar: [SectorRange] { findings.withLock { $0.badSectors } }

    func record(bad: [SectorRange], transferred: UInt64) {
        findings.withLock {
            $0.badSectors.append(contentsOf: bad)
            $0.bytesTransferred += transferred
        }
    }

    func record(mismatches: [Mismatch], sectors: UInt64) {
        guard sectors > 0 else { return }
        findings.withLock { $0.add(mismatches: mismatches, sectors: sectors) }
    }

    /// The parts of `chunk` not already known to be bad, as (device offset, length) pieces.
    func usablePieces(of chunk: Chunk) -> [Chunk] {
        guard !knownBad.isEmpty else { return [chunk] }
        let sector = UInt64(sectorSize)
        var pieces: [Chunk] = []
        var cursor = chunk.offset
        let end = chunk.offset + UInt64(chunk.length)
        for bad in knownBad {
            let badStart = bad.first * sector
            let badEnd = bad.end * sector
            if badEnd <= cursor || badStart >= end { continue }
            if badStart > cursor { pieces.append(Chunk(offset: cursor, length: Int(badStart - cursor))) }
            cursor = max(cursor, badEnd)
        }
        if cursor < end { pieces.append(Chunk(offset: cursor, length: Int(end - cursor))) }
        return pieces
    }

    // MARK: - Transfers with retry and narrowing

    /// Failed requests one chunk may spend narrowing its failure down. A few bad sectors are
    /// found exactly (a bisect costs about two requests per halving); a chunk that is bad
    /// throughout spends the budget and the rest of it is listed whole, not tried sector by
    /// sector (which, over a failing region, took minutes per gigabyte).
    static let narrowingBudget = 64

    /// Notes a transfer that worked: a place the device is known to answer, for probes.
    func noteSuccess(_ piece: Chunk) {
        lastGood.store(piece.offset + 1, ordering: .relaxed)
    }

    /// Performs `transfer` over `piece`, retrying medium errors. When they persist, first makes
    /// sure the device still answers at all (``confirmResponsive(after:excluding:buffers:)``),
    /// then bisects within ``narrowingBudget``. Returns the sectors that could not be
    /// transferred. Device-gone and other errors, and a device that no longer answers, are
    /// thrown (fatal).
    func transferNarrowing(
        _ piece: Chunk, buffers: WorkerBuffers, transfer: (Chunk) throws(IOFailure) -> Void
    ) throws(IOFailure) -> [SectorRange] {
        var lastError: IOFailure?
        for _ in 0...retries {
            do {
                try transfer(piece)
                noteSuccess(piece)
                return []
            } catch where error.errno.meansMediumError {
                lastError = error
            }
        }
        if let lastError { try confirmResponsive(after: lastError, excluding: piece, buffers: buffers) }
        var budget = Self.narrowingBudget
        return try narrow(piece, budget: &budget, transfer: transfer)
    }

    /// The failed `piece` as a sector range.
    private func range(of piece: Chunk) -> SectorRange {
        let sector = UInt64(sectorSize)
        return SectorRange(first: piece.offset / sector, count: UInt64(piece.length) / sector)
    }

    /// `piece` has failed: split it, try each half, and go on into the halves that fail while
    /// the budget lasts. A single sector gets its retries before it is called bad.
    private func narrow(_ piece: Chunk, budget: inout Int, transfer: (Chunk) throws(IOFailure) -> Void) throws(IOFailure) -> [SectorRange] {
        guard budget > 0 else { return [range(of: piece)] }
        guard piece.length > sectorSize else {
            for _ in 0..<retries where budget > 0 {
                do {
                    try transfer(piece)
                    noteSuccess(piece)
                    return []
                } catch where error.errno.meansMediumError {
                    budget -= 1
                }
            }
            return [range(of: piece)]
        }
        let half = (piece.length / sectorSize / 2) * sectorSize
        let halves = [Chunk(offset: piece.offset, length: half), Chunk(offset: piece.offset + UInt64(half), length: piece.length - half)]
        var bad: [SectorRange] = []
        for part in halves {
            // Once the budget is spent, each part still gets one try, so nothing that can be
            // written is listed; a part that fails is listed whole.
            do {
                try transfer(part)
                noteSuccess(part)
            } catch where error.errno.meansMediumError {
                budget -= 1
                bad += budget > 0 ? try narrow(part, budget: &budget, transfer: transfer) : [range(of: part)]
            }
        }
        return bad
    }

    /// After a request failed with a medium error even when retried: is it the medium there,
    /// or the whole device? Repeats the phase's own operation (the same pattern written, or a
    /// read) on one sector where the device answered before in this phase, or else on the
    /// first and last sectors. When every probe fails too, the device no longer answers
    /// (offline, dead, or refusing all writes): that is thrown as fatal, marked
    /// ``IOFailure/unresponsive``, instead of being narrowed sector by sector.
    func confirmResponsive(after failure: IOFailure, excluding piece: Chunk, buffers: WorkerBuffers) throws(IOFailure) {
        guard let probe else { return }
        let sector = UInt64(sectorSize)
        let last = device.sizeBytes - sector
        let known = lastGood.load(ordering: .relaxed)
        var candidates: [UInt64] = known > 0 ? [known - 1] : [0, last]
        let failed = piece.offset..<(piece.offset + UInt64(piece.length))
        candidates = candidates.filter { offset in
            !failed.contains(offset) && !knownBad.contains { $0.first * sector <= offset && offset < $0.end * sector }
        }
        if candidates.isEmpty { candidates = [0, last].filter { !failed.contains($0) } }
        guard !candidates.isEmpty else { return }
        var tried: [String] = []
        for offset in candidates {
            do {
                try probe(self, offset, buffers)
                return
            } catch where error.errno.meansMediumError || error.errno == .noSpace {
                tried.append("LBA \(offset / sector)")
            }
        }
        var dead = failure
        dead.unresponsive = "every request fails with \(failure.errno) from offset \(failure.offset) on, and \(tried.joined(separator: " and "))\(known > 0 ? ", which worked earlier in this pass," : "") failed too"
        throw dead
    }
}

/// A constant pattern laid out once, read by every worker of a write phase: a zero or byte
/// pass writes from one buffer, as fio does, so a job holds one block of pattern instead of
/// one per request in flight, and never refills it. O_DIRECT needs aligned memory, so a
/// pattern longer than a byte keeps one block per phase that a request starts at (at most
/// its length), each made when first needed.
final class SharedPattern: Sendable {
    /// The pattern's bytes.
    private let bytes: [UInt8]
    private let filler: PatternFiller
    private let blockSize: Int
    private let alignment: Int
    private let phases = Mutex<[Int: BufferAddress]>([:])

    /// An aligned block that lives as long as the pattern, written once and then only read.
    private struct BufferAddress: @unchecked Sendable {
        let buffer: AlignedBuffer
        var bytes: UnsafeMutableRawBufferPointer { buffer.bytes }
    }

    /// Nil for a random pass (every request has its own bytes).
    init?(_ filler: PatternFiller, blockSize: Int, alignment: Int) {
        guard case .bytes(let bytes) = filler.pattern else { return nil }
        self.bytes = bytes
        self.filler = filler
        self.blockSize = blockSize
        self.alignment = max(alignment, 4096)
    }

    /// The pattern's bytes for device offsets `offset ..< offset + length` (read-only, aligned).
    func slice(offset: UInt64, length: Int) -> UnsafeRawBufferPointer? {
        guard length <= blockSize else { return nil }
        let phase = Int(offset % UInt64(bytes.count))
        let buffer = phases.withLock { phases -> BufferAddress in
            if let buffer = phases[phase] { return buffer }
            let buffer = BufferAddress(buffer: AlignedBuffer(count: blockSize, alignment: alignment))
            filler.fill(buffer.bytes, offset: UInt64(phase))
            phases[phase] = buffer
            return buffer
        }
        return UnsafeRawBufferPointer(rebasing: buffer.bytes[0..<length])
    }
}

/// A worker's buffers: what is written or read, and scratch space for the expected content.
/// Each is allocated when first used: a worker writing a shared constant pattern holds none.
final class WorkerBuffers {
    private let count: Int
    private let alignment: Int
    let shared: SharedPattern?
    private var ioStorage: AlignedBuffer?
    private var expectedStorage: AlignedBuffer?

    init(count: Int, alignment: Int, shared: SharedPattern? = nil) {
        self.count = count
        self.alignment = alignment
        self.shared = shared
    }

    /// The worker's own block: read into while verifying, filled with a random pass's bytes.
    var io: AlignedBuffer {
        if let ioStorage { return ioStorage }
        let buffer = AlignedBuffer(count: count, alignment: alignment)
        ioStorage = buffer
        return buffer
    }

    /// Scratch for the expected content (comparisons, probes).
    var expected: AlignedBuffer {
        if let expectedStorage { return expectedStorage }
        let buffer = AlignedBuffer(count: PatternFiller.scratchBytes, alignment: alignment)
        expectedStorage = buffer
        return buffer
    }

    /// The bytes the pass writes at device `offset`, `length` long: a slice of the phase's
    /// shared constant pattern (made from the same filler), or the worker's own block filled
    /// with the pass's bytes.
    func source(for filler: PatternFiller, offset: UInt64, length: Int) -> UnsafeRawBufferPointer {
        if let slice = shared?.slice(offset: offset, length: length) { return slice }
        let buffer = io.slice(0, length)
        filler.fill(buffer, offset: offset)
        return UnsafeRawBufferPointer(buffer)
    }
}

extension BlockDevice {
    /// Writes all of `buffer` at `offset`, continuing after short writes and EINTR.
    func writeFully(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(IOFailure) {
        var done = 0
        while done < buffer.count {
            let part = UnsafeRawBufferPointer(rebasing: buffer[done...])
            let written: Int
            do {
                written = try write(part, at: offset + UInt64(done))
            } catch where error.errno == .interrupted {
                continue
            }
            guard written > 0 else {
                throw IOFailure(operation: .write, path: path, errno: .noSpace, offset: offset + UInt64(done), length: part.count)
            }
            done += written
        }
    }

    /// Reads all of `buffer` from `offset`, continuing after short reads and EINTR.
    func readFully(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(IOFailure) {
        var done = 0
        while done < buffer.count {
            let part = UnsafeMutableRawBufferPointer(rebasing: buffer[done...])
            let count: Int
            do {
                count = try read(into: part, at: offset + UInt64(done))
            } catch where error.errno == .interrupted {
                continue
            }
            guard count > 0 else {
                throw IOFailure(operation: .read, path: path, errno: .noSpace, offset: offset + UInt64(done), length: part.count)
            }
            done += count
        }
    }
}
