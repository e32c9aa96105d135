import Crypto
import CryptoExtras
import Foundation
import LetheCore

/// The random-pass generator: an AES-128-CTR keystream (BoringSSL through swift-crypto, which
/// uses AES-NI/VAES where the CPU has them).
///
/// The stream is addressed by device byte offset: block `n` of the stream is AES(key,
/// noncePrefix ‖ BE64(offset / 16)). Any range can therefore be produced in any order, by any
/// thread, and regenerated later to verify what was written.
public struct Keystream: Sendable {
    private let key: SymmetricKey
    private let noncePrefix: [UInt8]
    /// Bytes generated per call into BoringSSL. Small enough that the output buffer comes from
    /// the malloc heap (not a fresh mmap with page faults) and stays in cache.
    static let sliceBytes = 64 << 10
    private static let zeros = [UInt8](repeating: 0, count: sliceBytes)

    /// Builds the stream from a 32-byte seed: bytes 0..<16 are the key, 16..<24 the nonce prefix.
    public init(seed: [UInt8]) {
        precondition(seed.count >= 24, "keystream seed must be at least 24 bytes")
        key = SymmetricKey(data: seed[0..<16])
        noncePrefix = Array(seed[16..<24])
    }

    /// Fills `buffer` with the stream bytes for device offsets `offset ..< offset + buffer.count`.
    /// `offset` must be a multiple of 16 (device offsets always are: they are sector aligned).
    public func fill(_ buffer: UnsafeMutableRawBufferPointer, offset: UInt64) {
        precondition(offset % 16 == 0, "keystream offsets are 16-byte aligned")
        var done = 0
        while done < buffer.count {
            let length = min(Self.sliceBytes, buffer.count - done)
            let counter = (offset + UInt64(done)) / 16
            var nonceBytes = noncePrefix
            withUnsafeBytes(of: counter.bigEndian) { nonceBytes.append(contentsOf: $0) }
            // Length is a whole number of AES blocks except possibly at the very end.
            let nonce = try! AES._CTR.Nonce(nonceBytes: nonceBytes)
            let stream = try! AES._CTR.encrypt(Self.zeros[0..<length], using: key, nonce: nonce)
            stream.withUnsafeBytes { source in
                UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + length)]).copyMemory(from: source)
            }
            done += length
        }
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
