import CKeystream
import Foundation
import LetheCore

/// The random-pass generator: an AES-128-CTR keystream (OpenSSL's libcrypto, which uses
/// AES-NI/VAES where the CPU has them), generated straight into the buffer it is asked to fill.
///
/// The stream is addressed by device byte offset: block `n` of the stream is AES(key,
/// noncePrefix ‖ BE64(offset / 16)), the counter incremented across all 128 bits. Any range
/// can therefore be produced in any order, by any thread, and regenerated later to verify what
/// was written.
public struct Keystream: Sendable {
    private let key: [UInt8]
    private let noncePrefix: [UInt8]

    /// Builds the stream from a 32-byte seed: bytes 0..<16 are the key, 16..<24 the nonce prefix.
    public init(seed: [UInt8]) {
        precondition(seed.count >= 24, "keystream seed must be at least 24 bytes")
        key = Array(seed[0..<16])
        noncePrefix = Array(seed[16..<24])
    }

    /// Fills `buffer` with the stream bytes for device offsets `offset ..< offset + buffer.count`.
    /// `offset` must be a multiple of 16 (device offsets always are: they are sector aligned).
    public func fill(_ buffer: UnsafeMutableRawBufferPointer, offset: UInt64) {
        precondition(offset % 16 == 0, "keystream offsets are 16-byte aligned")
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        var counter = noncePrefix
        withUnsafeBytes(of: (offset / 16).bigEndian) { counter.append(contentsOf: $0) }
        let status = lethe_aes128_ctr_keystream(key, counter, base.assumingMemoryBound(to: UInt8.self), buffer.count)
        // libcrypto fails only when it cannot allocate its context: nothing sensible can follow.
        precondition(status == 0, "libcrypto could not make the AES-128-CTR keystream (out of memory)")
    }
}

/// Fills buffers with a resolved pass pattern at a given device offset.
public struct PatternFiller: Sendable {
    /// The pattern being written.
    public let pattern: ResolvedPattern
    private let keystream: Keystream?

    /// Prepares a filler for one pass.
    public init(_ pattern: ResolvedPattern) {
        self.pattern = pattern
        if case .random(let seed) = pattern { keystream = Keystream(seed: seed) } else { keystream = nil }
    }

    /// Bytes compared per step in ``differences(in:offset:scratch:sectorSize:)``.
    static let compareSlice = 64 << 10
    /// Longest repeating pattern the engine accepts.
    public static let maximumPatternLength = 16
    /// Scratch space ``differences(in:offset:scratch:sectorSize:)`` needs.
    static let scratchBytes = compareSlice * maximumPatternLength

    /// Compares `got` (device bytes at `offset`) with the pattern, a cache-sized segment at a
    /// time: byte patterns against one small template, random passes against the keystream
    /// regenerated segment by segment. Returns differing sectors and the first differing bytes.
    func differences(
        in got: UnsafeMutableRawBufferPointer, offset: UInt64, scratch: UnsafeMutableRawBufferPointer, sectorSize: Int
    ) -> (sectors: UInt64, first: [Mismatch]) {
        var segment = Self.compareSlice
        if case .bytes(let bytes) = pattern {
            // A multiple of the pattern length keeps the phase from one segment to the next.
            segment = Self.compareSlice * bytes.count
            fill(UnsafeMutableRawBufferPointer(rebasing: scratch[0..<min(segment, got.count)]), offset: offset)
        }
        var sectors = UInt64(0)
        var first: [Mismatch] = []
        var start = 0
        while start < got.count {
            let length = min(segment, got.count - start)
            let want = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<length])
            if case .random = pattern { fill(want, offset: offset + UInt64(start)) }
            let have = UnsafeMutableRawBufferPointer(rebasing: got[start..<(start + length)])
            if memcmp(have.baseAddress!, want.baseAddress!, length) != 0 {
                let (count, mismatches) = WipeEngine.compare(have, want, offset: offset + UInt64(start), sectorSize: sectorSize)
                sectors += count
                first += mismatches.prefix(max(0, PhaseFindings.mismatchesKept - first.count))
            }
            start += length
        }
        return (sectors, first)
    }

    /// Writes the bytes that belong at device offsets `offset ..< offset + buffer.count`.
    public func fill(_ buffer: UnsafeMutableRawBufferPointer, offset: UInt64) {
        guard buffer.count > 0, let base = buffer.baseAddress else { return }
        switch pattern {
        case .random:
            keystream!.fill(buffer, offset: offset)
        case .bytes(let bytes) where bytes.count == 1:
            memset(base, Int32(bytes[0]), buffer.count)
        case .bytes(let bytes):
            let phase = Int(offset % UInt64(bytes.count))
            let seedLength = min(bytes.count, buffer.count)
            for i in 0..<seedLength { buffer[i] = bytes[(phase + i) % bytes.count] }
            // Double the filled prefix until the buffer is full. A copy of length that is a
            // multiple of the pattern length keeps the phase.
            var filled = seedLength
            while filled < buffer.count {
                let unit = filled - filled % bytes.count
                let length = min(unit, buffer.count - filled)
                memcpy(base + filled, base, length)
                filled += length
            }
        }
    }
}
