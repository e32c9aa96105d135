/// When a profile's job starts.
public enum ProfileStart: String, Codable, Sendable, CaseIterable {
    /// As soon as the device is identified.
    case auto
    /// When the technician presses start.
    case manual
}

/// Which devices a profile is for. Every rule given must hold; absent rules match anything.
public struct ProfileMatch: Sendable, Equatable {
    public var kinds: [DeviceKind]?
    public var transports: [Transport]?
    public var rotational: Bool?
    public var removable: Bool?
    /// Regular expression over the model (whole-string match is not implied; anchor it).
    public var modelPattern: String?
    public var vendorPattern: String?
    /// USB vendor ids (`0x05ac`) of the device or its dock.
    public var usbVendorIds: [String]?
    public var minSizeBytes: UInt64?
    public var maxSizeBytes: UInt64?

    /// Matches everything.
    public init() {}

    /// Whether a device satisfies every rule.
    public func matches(_ device: DeviceRecord) -> Bool {
        if let kinds, !kinds.contains(device.kind) { return false }
        if let transports, !transports.contains(device.transport) { return false }
        if let rotational, device.rotational != rotational { return false }
        if let removable, device.removable != removable { return false }
        if let usbVendorIds {
            guard let id = device.usb?.vendorId, usbVendorIds.contains(where: { $0.lowercased() == id }) else { return false }
        }
        if let minSizeBytes, (device.sizeBytes ?? 0) < minSizeBytes { return false }
        if let maxSizeBytes, (device.sizeBytes ?? .max) > maxSizeBytes { return false }
        if let modelPattern, !Self.search(modelPattern, in: device.model) { return false }
        if let vendorPattern, !Self.search(vendorPattern, in: device.vendor) { return false }
        return true
    }

    static func search(_ pattern: String, in text: String?) -> Bool {
        guard let text, let regex = try? Regex(pattern) else { return false }
        return text.contains(regex)
    }

    /// One line for listings.
    public var summary: String {
        var parts: [String] = []
        if let kinds { parts.append("kind \(kinds.map(\.rawValue).joined(separator: "|"))") }
        if let transports { parts.append("transport \(transports.map(\.rawValue).joined(separator: "|"))") }
        if let rotational { parts.append(rotational ? "rotational" : "non-rotational") }
        if let removable { parts.append(removable ? "removable" : "fixed") }
        if let modelPattern { parts.append("model /\(modelPattern)/") }
        if let vendorPattern { parts.append("vendor /\(vendorPattern)/") }
        if let usbVendorIds { parts.append("usb vendor \(usbVendorIds.joined(separator: "|"))") }
        if let minSizeBytes { parts.append("≥ \(minSizeBytes) bytes") }
        if let maxSizeBytes { parts.append("≤ \(maxSizeBytes) bytes") }
        return parts.isEmpty ? "any device" : parts.joined(separator: ", ")
    }
}

/// What runs on a docked device: diagnostics, erase method and verification, grading
/// thresholds, and whether the job starts by itself. Loaded from `profiles/*.yaml`.
public struct Profile: Sendable, Equatable {
    public var name: String
    public var description: String
    /// Higher wins when several profiles match; equal priorities that both match are an error.
    public var priority: Int
    public var match: ProfileMatch
    /// Read SMART before erasing.
    public var smart: Bool
    public var thresholds: HealthThresholds
    public var method: WipeMethod
    public var verification: VerificationMode
    public var start: ProfileStart
    /// The file it came from.
    public var source: String
    /// For phones (`erase.method: factory-reset`): the reset flow (`trade-in-mode`,
    /// `recovery-wipe-data`, `operator-guided`, or nil for the best the phone allows). Such a
    /// profile never erases a drive; `method` is then unused.
    public var factoryReset: FactoryResetSettings?
    /// Battery health below this percentage fails (phones; default 80, the usual buyer gate).
    public var batteryMinHealthPercent = 80

    /// Drives: read the surface before erasing (`diagnostics.surface.scan`: `full` or `sample`;
    /// nil for none). The result goes in the refurb report and into its grade.
    public var surfaceScan: SurfaceScanMode?
    /// What the surface scan is judged by (`diagnostics.surface`).
    public var surfaceThresholds = SurfaceThresholds()

    /// ATA drives: open a Host Protected Area or Device Configuration Overlay before erasing,
    /// by firmware or by overwrite (`erase.openHiddenAreas`). Without it, a drive that hides
    /// sectors is refused.
    public var openHiddenAreas = false

    /// Whether this profile resets phones rather than overwriting drives.
    public var resetsPhones: Bool { factoryReset != nil }

    /// Creates a profile.
    public init(
        name: String, description: String, priority: Int, match: ProfileMatch, smart: Bool, thresholds: HealthThresholds,
        method: WipeMethod, verification: VerificationMode, start: ProfileStart, source: String
    ) {
        self.name = name
        self.description = description
        self.priority = priority
        self.match = match
        self.smart = smart
        self.thresholds = thresholds
        self.method = method
        self.verification = verification
        self.start = start
        self.source = source
    }
}

/// How a phone profile resets phones.
public struct FactoryResetSettings: Sendable, Equatable {
    /// The flow's name, or nil for the best the phone allows.
    public var flow: String?
    /// Android: overwrite the data partition's free space before the reset
    /// (`erase.overwriteFreeSpace`; default off).
    public var overwriteFreeSpace: FreeSpaceOverwriteMode

    /// Settings.
    public init(flow: String?, overwriteFreeSpace: FreeSpaceOverwriteMode = .off) {
        self.flow = flow
        self.overwriteFreeSpace = overwriteFreeSpace
    }

    /// The flows a profile may name.
    public static let flows = ["trade-in-mode", "recovery-wipe-data", "operator-guided", "mcinstall-erase-device", "mobilebackup2-erase-device"]
}

/// The result of choosing a profile for a device.
public enum ProfileChoice: Sendable, Equatable {
    case none
    case chosen(Profile)
    /// Two or more profiles of the same, highest priority match: a configuration error.
    case ambiguous([Profile])

    /// Picks the highest-priority matching profile.
    public static func choose(for device: DeviceRecord, among profiles: [Profile]) -> ProfileChoice {
        let matching = profiles.filter { $0.match.matches(device) }
        guard let top = matching.map(\.priority).max() else { return .none }
        let best = matching.filter { $0.priority == top }
        return best.count == 1 ? .chosen(best[0]) : .ambiguous(best.sorted { $0.name < $1.name })
    }
}
