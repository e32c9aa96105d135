/// How an erase is checked by reading the device back.
public enum VerificationMode: String, Sendable, Codable, CaseIterable {
    /// No read-back.
    case off
    /// Read the whole device back after the last pass.
    case last
    /// Read the whole device back after every pass.
    case all
    /// NIST-style sampling after the last pass (see ``SamplePlan``).
    case sample
}

/// A NIST SP 800-88 style sampling plan: the device is cut into at least 1,000 equal
/// subsections, one pseudorandom run of sectors is read in each, and the first and last
/// sectors are always read; together at least 10% of the media.
///
/// The plan depends only on its inputs, so an auditor with the recorded seed can list exactly
/// which sectors were read.
public struct SamplePlan: Hashable, Sendable {
    /// The sector runs to read, sorted and non-overlapping.
    public var ranges: [SectorRange]
    /// Number of subsections the device was cut into (0 when the device was read whole).
    public var subsections: Int
    /// The seed the locations came from.
    public var seed: UInt64
    /// Sectors on the device.
    public var totalSectors: UInt64

    /// Sectors the plan reads.
    public var sampledSectors: UInt64 { ranges.reduce(0) { $0 + $1.count } }
    /// Share of the device the plan reads, 0...1.
    public var coverage: Double { totalSectors == 0 ? 0 : Double(sampledSectors) / Double(totalSectors) }

    /// Builds the plan.
    /// - Parameters:
    ///   - totalSectors: addressable logical sectors on the device.
    ///   - seed: chooses the pseudorandom locations.
    ///   - minimumSubsections: at least this many subsections (NIST: 1,000).
    ///   - minimumFraction: at least this share of the media in all (NIST: 10%).
    ///   - maximumSubsectionSectors: subsections are made smaller than this on big devices,
    ///     so samples spread over the whole surface.
    public init(
        totalSectors: UInt64, seed: UInt64, minimumSubsections: Int = 1000, minimumFraction: Double = 0.10,
        maximumSubsectionSectors: UInt64 = 1 << 21
    ) {
        self.totalSectors = totalSectors
        self.seed = seed
        let wanted = max(UInt64(minimumSubsections), (totalSectors + maximumSubsectionSectors - 1) / maximumSubsectionSectors)
        // Too small to cut into subsections of at least 4 sectors: read it all.
        guard totalSectors >= wanted * 4 else {
            self.subsections = 0
            self.ranges = totalSectors == 0 ? [] : [SectorRange(first: 0, count: totalSectors)]
            return
        }
        var rng = SplitMix64(seed: seed)
        var ranges: [SectorRange] = [SectorRange(first: 0, count: 1), SectorRange(first: totalSectors - 1, count: 1)]
        for index in 0..<wanted {
            let start = index * totalSectors / wanted
            let end = (index + 1) * totalSectors / wanted
            let length = end - start
            let sample = max(1, UInt64((Double(length) * minimumFraction).rounded(.up)))
            let slack = length - sample
            let offset = slack == 0 ? 0 : rng.next() % (slack + 1)
            ranges.append(SectorRange(first: start + offset, count: sample))
        }
        self.subsections = Int(wanted)
        self.ranges = SectorRange.coalesce(ranges)
    }
}

/// SplitMix64: a tiny, well-known, seedable generator for choosing sample locations (not for
/// anything secret).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Seeds the generator.
    public init(seed: UInt64) { state = seed }

    /// The next 64 pseudorandom bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
