import LetheCore
import Synchronization

/// An in-memory block device with fault injection, for unit tests of everything that does
/// block I/O. Thread-safe: the wipe engine drives it from several threads at once.
///
/// Faults it can inject:
/// - `badSectors`: reads and writes touching these LBAs fail with EIO (like a medium error);
/// - `shortWriteEvery`: every Nth write stores only half its sectors and returns a short count;
/// - `vanishAfterBytesWritten`: once this many bytes were written, every call fails with ENODEV
///   (an unplug);
/// - `droppedWrites`: writes to these LBAs report success but store nothing (a lying drive);
/// - `failFlushes`: that many `synchronize` calls fail with EIO;
/// - `badRanges`: like `badSectors`, for whole regions (a dm-error target over part of a disk);
/// - `refuseWrites`: every write fails with EIO, reads work (an SSD in read-only end-of-life
///   mode);
/// - `offlineAfterBytesWritten`: once this many bytes were written, every request fails with
///   EIO while the device stays listed (a SCSI disk set offline: no ENODEV, just errors).
public final class MemoryBlockDevice: BlockDevice {
    /// Fault settings; change them at any time with ``configure(_:)``.
    public struct Faults: Sendable {
        public var badSectors: Set<UInt64> = []
        public var shortWriteEvery: Int = 0
        public var vanishAfterBytesWritten: UInt64?
        public var droppedWrites: Set<UInt64> = []
        public var failFlushes: Int = 0
        public var badRanges: [Range<UInt64>] = []
        public var refuseWrites = false
        public var offlineAfterBytesWritten: UInt64?
        /// Called (outside the device lock) after each successful write with the write count.
        public var onWrite: (@Sendable (Int) -> Void)?

        /// No faults.
        public init() {}
    }

    private struct State {
        var bytes: [UInt8]
        var faults: Faults
        var writes = 0
        var bytesWritten: UInt64 = 0
        var flushes = 0
        var failedRequests = 0
        var vanished = false
        var offline = false
    }

    public let path: String
    public let sizeBytes: UInt64
    public let logicalSectorSize: Int
    public let physicalSectorSize: Int
    public let bufferAlignment: Int = 4096
    private let state: Mutex<State>

    /// Creates a device of `sizeBytes`, filled with `fill`.
    public init(path: String = "mem0", sizeBytes: Int, logicalSectorSize: Int = 512, fill: UInt8 = 0xA5, faults: Faults = Faults()) {
        self.path = path
        self.sizeBytes = UInt64(sizeBytes)
        self.logicalSectorSize = logicalSectorSize
        self.physicalSectorSize = logicalSectorSize
        state = Mutex(State(bytes: [UInt8](repeating: fill, count: sizeBytes), faults: faults))
    }

    /// Pulls the device out now: every later call fails with ENODEV.
    public func unplug() {
        state.withLock { $0.vanished = true }
    }

    /// Changes the injected faults.
    public func configure(_ change: (inout Faults) -> Void) {
        state.withLock { change(&$0.faults) }
    }

    /// A copy of the device contents.
    public var contents: [UInt8] { state.withLock { $0.bytes } }
    /// Write calls so far.
    public var writeCount: Int { state.withLock { $0.writes } }
    /// Successful flushes so far.
    public var flushCount: Int { state.withLock { $0.flushes } }
    /// Requests that failed with an injected error.
    public var failedRequestCount: Int { state.withLock { $0.failedRequests } }

    /// Overwrites bytes directly (to plant data or corruption).
    public func poke(_ bytes: [UInt8], at offset: Int) {
        state.withLock { $0.bytes.replaceSubrange(offset..<(offset + bytes.count), with: bytes) }
    }

    /// Sets every byte to `byte` (what a drive's block erase or format leaves).
    public func fillAll(_ byte: UInt8) {
        state.withLock { $0.bytes = [UInt8](repeating: byte, count: $0.bytes.count) }
    }

    /// Replaces every byte with noise (what reading a drive after a cryptographic erase gives).
    public func scrambleAll() {
        scramble(0..<Int(sizeBytes))
    }

    /// Replaces the bytes in `range` with noise (one locking range's new key).
    public func scramble(_ range: Range<Int>) {
        var generator = SystemRandomNumberGenerator()
        state.withLock { s in
            for index in range.clamped(to: s.bytes.indices) { s.bytes[index] = UInt8.random(in: 0...255, using: &generator) }
        }
    }

    private func sectors(_ offset: UInt64, _ count: Int) -> ClosedRange<UInt64>? {
        guard count > 0 else { return nil }
        let sector = UInt64(logicalSectorSize)
        return (offset / sector)...((offset + UInt64(count) - 1) / sector)
    }

    private func check(_ state: inout State, _ op: IOFailure.Operation, _ offset: UInt64, _ count: Int, address: UnsafeRawPointer?) throws(IOFailure) {
        // As O_DIRECT: the memory must be aligned to the logical sector, or EINVAL.
        if let address, UInt(bitPattern: address) % UInt(logicalSectorSize) != 0 {
            throw IOFailure(operation: op, path: path, errno: .invalid, offset: offset, length: count)
        }
        if state.vanished {
            state.failedRequests += 1
            throw IOFailure(operation: op, path: path, errno: .noSuchDevice, offset: offset, length: count)
        }
        guard offset % UInt64(logicalSectorSize) == 0, count % logicalSectorSize == 0 else {
            throw IOFailure(operation: op, path: path, errno: .invalid, offset: offset, length: count)
        }
        guard offset + UInt64(count) <= sizeBytes else {
            throw IOFailure(operation: op, path: path, errno: .noSpace, offset: offset, length: count)
        }
        let inBadRange = sectors(offset, count).map { range in
            state.faults.badSectors.contains(where: { range.contains($0) })
                || state.faults.badRanges.contains(where: { $0.overlaps(range.lowerBound..<(range.upperBound + 1)) })
        } ?? false
        if state.offline || inBadRange || (op == .write && state.faults.refuseWrites) {
            state.failedRequests += 1
            throw IOFailure(operation: op, path: path, errno: .io, offset: offset, length: count)
        }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(IOFailure) -> Int {
        let (count, writes, hook) = try state.withLock { (s: inout State) throws(IOFailure) -> (Int, Int, (@Sendable (Int) -> Void)?) in
            try check(&s, .write, offset, buffer.count, address: buffer.baseAddress)
            s.writes += 1
            var count = buffer.count
            if s.faults.shortWriteEvery > 0, s.writes % s.faults.shortWriteEvery == 0, count > logicalSectorSize {
                count = (count / logicalSectorSize / 2) * logicalSectorSize
            }
            let start = Int(offset)
            let sector = logicalSectorSize
            for i in stride(from: 0, to: count, by: sector) {
                if s.faults.droppedWrites.contains((offset + UInt64(i)) / UInt64(sector)) { continue }
                s.bytes.withUnsafeMutableBytes { dest in
                    (dest.baseAddress! + start + i).copyMemory(from: buffer.baseAddress! + i, byteCount: sector)
                }
            }
            s.bytesWritten += UInt64(count)
            if let limit = s.faults.vanishAfterBytesWritten, s.bytesWritten >= limit { s.vanished = true }
            if let limit = s.faults.offlineAfterBytesWritten, s.bytesWritten >= limit { s.offline = true }
            return (count, s.writes, s.faults.onWrite)
        }
        hook?(writes)
        return count
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(IOFailure) -> Int {
        try state.withLock { (s: inout State) throws(IOFailure) -> Int in
            try check(&s, .read, offset, buffer.count, address: UnsafeRawPointer(buffer.baseAddress))
            s.bytes.withUnsafeBytes { source in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[Int(offset)..<(Int(offset) + buffer.count)]))
            }
            return buffer.count
        }
    }

    public func synchronize() throws(IOFailure) {
        try state.withLock { (s: inout State) throws(IOFailure) in
            if s.vanished { throw IOFailure(operation: .flush, path: path, errno: .noSuchDevice, offset: 0, length: 0) }
            if s.offline { throw IOFailure(operation: .flush, path: path, errno: .io, offset: 0, length: 0) }
            if s.faults.failFlushes > 0 {
                s.faults.failFlushes -= 1
                throw IOFailure(operation: .flush, path: path, errno: .io, offset: 0, length: 0)
            }
            s.flushes += 1
        }
    }
}
