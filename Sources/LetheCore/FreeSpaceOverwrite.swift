/// How much of a phone's free space is overwritten before its factory reset (a profile's
/// `erase.overwriteFreeSpace`).
public enum FreeSpaceOverwriteMode: String, Codable, Sendable, CaseIterable {
    /// No overwrite: the factory reset (a cryptographic erase) alone.
    case off
    /// Fill the free space, then read a sample of the fill back and compare.
    case sample
    /// Fill the free space, then read every byte of the fill back and compare (twice the time).
    case full

    /// Why an iPhone gets no free-space overwrite (profiles and the CLI refuse to ask for one).
    public static let iPhoneRefusal =
        "not available for iPhones: the host reaches no file system on an iPhone's data volume except the AFC media folder, and Lethe does not fill through it; use off (the erase is the cryptographic erase alone)"
}

/// The overwrite of a phone's file-system free space that preceded its factory reset, as the
/// certificate records it. It is what it says and no more: files written through the file
/// system reach its free blocks, never the flash translation layer's spare blocks, so the
/// sanitization is still the cryptographic erase; this is in addition to it. Integers only.
public struct ReportFreeSpaceOverwrite: Codable, Sendable, Equatable {
    /// `sample` or `full` (how much was read back).
    public var mode: String
    /// `passed` (written and read back as expected), `failed` (a write or the read-back
    /// failed), `skipped` (nothing to fill: the partition had no more free space than the
    /// reserve).
    public var result: String
    /// What was overwritten, in words.
    public var scope: String
    /// The file system (mount point) and the directory the fill files went to.
    public var mountPoint: String
    public var directory: String
    /// The partition's size and its free space before the fill, as the phone's `df` said.
    public var partitionBytes: UInt64
    public var freeBytesBefore: UInt64
    /// What the fill left free so that Android stays alive.
    public var reserveBytes: UInt64
    public var bytesWritten: UInt64
    public var files: Int
    /// The data: the AES-128-CTR keystream of this seed, addressed by the byte's offset in the
    /// fill (file after file), so anyone can regenerate it.
    public var pattern: String
    public var seed: String
    public var bytesVerified: UInt64
    /// Regions read back and compared, and how many differed.
    public var samples: Int
    public var mismatches: Int
    public var bytesPerSecond: UInt64
    public var startedAt: String
    public var finishedAt: String
    /// Whether the fill files were deleted afterwards (they must be, before the reset).
    public var filesRemoved: Bool
    /// What happened that a reader should know (free space that ran out early, a write error).
    public var notes: [String]

    /// The scope, as certificates state it.
    public static let scopeText =
        "the file system's free space on the user-data partition, written through files before the factory reset; flash spare blocks that no file write reaches are not covered, and the sanitization remains the cryptographic erase"

    /// A record.
    public init(
        mode: String, result: String, mountPoint: String, directory: String, partitionBytes: UInt64, freeBytesBefore: UInt64,
        reserveBytes: UInt64, bytesWritten: UInt64, files: Int, seed: String, bytesVerified: UInt64, samples: Int, mismatches: Int,
        bytesPerSecond: UInt64, startedAt: String, finishedAt: String, filesRemoved: Bool, notes: [String]
    ) {
        self.mode = mode
        self.result = result
        scope = Self.scopeText
        self.mountPoint = mountPoint
        self.directory = directory
        self.partitionBytes = partitionBytes
        self.freeBytesBefore = freeBytesBefore
        self.reserveBytes = reserveBytes
        self.bytesWritten = bytesWritten
        self.files = files
        pattern = "AES-128-CTR keystream (seed below), addressed by offset in the fill"
        self.seed = seed
        self.bytesVerified = bytesVerified
        self.samples = samples
        self.mismatches = mismatches
        self.bytesPerSecond = bytesPerSecond
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.filesRemoved = filesRemoved
        self.notes = notes
    }

    /// One line for the PDF and the logs.
    public var summary: String {
        switch result {
        case "skipped":
            return "not done: \(notes.first ?? "nothing to fill")"
        default:
            let read = mode == "full" ? "all of it read back" : "\(samples) sample regions (\(HumanFormat.bytes(Double(bytesVerified)))) read back"
            return "\(HumanFormat.bytes(Double(bytesWritten))) written in \(files == 1 ? "1 file" : "\(files) files") on \(mountPoint) (\(HumanFormat.bytes(Double(freeBytesBefore))) was free; \(HumanFormat.bytes(Double(reserveBytes))) left free for Android), \(read): \(mismatches == 0 ? "all as written" : "\(mismatches) differed"); \(result)"
        }
    }
}
