/// Anything the wipe engine can erase: a Linux block device, a disk image, or an in-memory fake.
///
/// Implementations must be safe to call from several threads at once: the engine keeps
/// several requests in flight on disjoint ranges. All calls block; the engine calls them from
/// its own threads, never from Swift's cooperative pool.
public protocol BlockDevice: Sendable {
    /// The path shown in messages and reports.
    var path: String { get }
    /// Addressable size in bytes.
    var sizeBytes: UInt64 { get }
    /// Logical sector size in bytes: the unit of addressing and of error reporting.
    var logicalSectorSize: Int { get }
    /// Physical sector size in bytes (informational).
    var physicalSectorSize: Int { get }
    /// The alignment I/O buffers must have (4096 for O_DIRECT).
    var bufferAlignment: Int { get }

    /// Writes up to `buffer.count` bytes at `offset`, returning how many were written
    /// (a short count is legal). Throws ``IOFailure`` on error.
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(IOFailure) -> Int
    /// Reads up to `buffer.count` bytes at `offset` from the medium (never a cache), returning
    /// how many were read. Throws ``IOFailure`` on error.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(IOFailure) -> Int
    /// Makes every completed write durable (fdatasync). Throws ``IOFailure`` on error.
    func synchronize() throws(IOFailure)
}

/// A half-open range of logical sectors, `[first, first + count)`.
public struct SectorRange: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    /// The first LBA in the range.
    public var first: UInt64
    /// How many sectors.
    public var count: UInt64

    /// Creates a range.
    public init(first: UInt64, count: UInt64) {
        self.first = first
        self.count = count
    }

    /// The last LBA in the range (inclusive).
    public var last: UInt64 { first + count - 1 }
    /// One past the last LBA.
    public var end: UInt64 { first + count }

    public static func < (lhs: SectorRange, rhs: SectorRange) -> Bool {
        (lhs.first, lhs.count) < (rhs.first, rhs.count)
    }

    /// `LBA 4096` or `LBA 4096-4103`.
    public var description: String { count == 1 ? "LBA \(first)" : "LBA \(first)-\(last)" }

    /// Sorts and merges touching or overlapping ranges.
    public static func coalesce(_ ranges: [SectorRange]) -> [SectorRange] {
        var merged: [SectorRange] = []
        for range in ranges.sorted() {
            if let tail = merged.last, range.first <= tail.end {
                merged[merged.count - 1].count = max(tail.end, range.end) - tail.first
            } else {
                merged.append(range)
            }
        }
        return merged
    }

    /// Bytes of coalesced `ranges` that lie below byte offset `limit`.
    public static func bytes(in ranges: [SectorRange], below limit: UInt64, sectorSize: UInt64) -> UInt64 {
        ranges.reduce(UInt64(0)) { total, range in
            let start = range.first * sectorSize
            let end = min(range.end * sectorSize, limit)
            return end > start ? total + (end - start) : total
        }
    }
}
