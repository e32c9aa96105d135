/// A value and the probe it came from (`getprop ro.product.model`, `dumpsys battery:
/// mSavedBatteryAsoc`, `tradeinmode getstatus`), so a report can say where each figure was read.
public struct Sourced<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var value: Value
    public var source: String

    /// A sourced value.
    public init(_ value: Value, source: String) {
        self.value = value
        self.source = source
    }
}

/// Who an Android phone is: from `getprop`, and from `tradeinmode getstatus` (Android 16+)
/// where the phone offers it.
public struct PhoneIdentity: Codable, Sendable, Equatable {
    public var brand: String?
    public var manufacturer: String?
    public var model: String?
    /// The device code name (`oriole`, `e1q`).
    public var device: String?
    public var serial: String?
    public var androidVersion: String?
    public var sdk: Int?
    /// `2025-05-05`.
    public var securityPatch: String?
    public var fingerprint: String?
    /// `green` (locked, stock), `yellow` (locked, custom key), `orange` (unlocked), `red`.
    public var verifiedBootState: String?
    /// True when the bootloader is locked (`ro.boot.flash.locked` or `vbmeta.device_state`).
    public var bootloaderLocked: Bool?
    /// The IMEIs, where the phone gives them (trade-in mode JSON); empty otherwise.
    public var imeis: [String] = []
    public var capacityBytes: UInt64?
    /// `file` (file-based encryption), `block` (full-disk), or nil when unencrypted or unknown.
    public var encryption: String?
    /// iPhones: the UDID, the product type (`iPhone13,2`), the model number with its region
    /// (`MGJ83B/A`), the iOS version and build, and the activation state.
    public var udid: String?
    public var productType: String?
    public var modelNumber: String?
    public var iosVersion: String?
    public var activationState: String?

    /// An empty identity.
    public init() {}
}

/// Battery readings of a phone, each tagged with its source, with the health verdict.
public struct PhoneBattery: Codable, Sendable, Equatable {
    /// State of health: full-charge capacity as a percentage of the design capacity.
    public var healthPercent: Sourced<Int>?
    public var cycleCount: Sourced<Int>?
    /// Charge level, 0…100.
    public var level: Int?
    /// `charging`, `discharging`, `not charging`, `full`, `unknown`.
    public var status: String?
    /// Android's health code as words: `good`, `overheat`, `dead`, `over voltage`,
    /// `unspecified failure`, `cold`, `unknown`.
    public var condition: String?
    public var temperatureCelsius: Double?
    public var voltageMillivolts: Int?
    public var technology: String?
    /// True when `dumpsys battery` said UPDATES STOPPED: the values may be simulated.
    public var frozen = false
    /// What could not be read, in words.
    public var notes: [String] = []

    /// No readings yet.
    public init() {}

    /// The buyer's gate: health at or above `threshold` percent passes; no health reading is
    /// `unknown`, never a pass. A dead or overheating battery fails whatever its capacity.
    public func verdict(threshold: Int = 80) -> HealthVerdict {
        if let condition, ["dead", "overheat", "over voltage", "unspecified failure"].contains(condition) { return .fail }
        guard let health = healthPercent?.value else { return .unknown }
        return health >= threshold ? .pass : .fail
    }
}

/// One lock signal, and how sure it is.
public struct LockSignal: Codable, Sendable, Equatable {
    /// `locked`, `unlocked` or `unknown`.
    public var state: String
    public var source: String
    /// True when it is inferred (not stated by the phone), and named as such.
    public var bestEffort: Bool
    public var detail: String?

    /// A signal.
    public init(state: String, source: String, bestEffort: Bool = false, detail: String? = nil) {
        self.state = state
        self.source = source
        self.bestEffort = bestEffort
        self.detail = detail
    }
}

/// What makes a phone unsellable or un-erasable: FRP, Knox Guard, an unlocked bootloader, no
/// file-based encryption.
public struct PhoneLocks: Codable, Sendable, Equatable {
    /// Factory Reset Protection.
    public var frp: LockSignal
    /// Samsung Knox Guard (nil on other makes).
    public var knoxGuard: LockSignal?
    public var bootloaderUnlocked: Bool?
    /// `file`, `block` or nil.
    public var encryption: String?
    /// iPhones: Find My (Activation Lock, held by Apple's servers: it survives an erase).
    public var findMy: LockSignal?
    /// iPhones: supervision by an organization (MDM), with its name.
    public var supervision: LockSignal?
    /// iPhones: configuration profiles installed, by name (an MDM enrollment among them
    /// forbids the erase).
    public var profiles: [String] = []

    /// Locks.
    public init(frp: LockSignal, knoxGuard: LockSignal? = nil, bootloaderUnlocked: Bool? = nil, encryption: String? = nil) {
        self.frp = frp
        self.knoxGuard = knoxGuard
        self.bootloaderUnlocked = bootloaderUnlocked
        self.encryption = encryption
    }

    /// Why the phone cannot be sold as it is (empty when nothing blocks it).
    public var blockers: [String] {
        var found: [String] = []
        if frp.state == "locked" { found.append("Factory Reset Protection is on (\(frp.bestEffort ? "best effort: " : "")\(frp.source))") }
        if knoxGuard?.state == "locked" { found.append("Knox Guard is active (\(knoxGuard!.source))") }
        if findMy?.state == "locked" { found.append("Find My (Activation Lock) is on (\(findMy!.source))") }
        if supervision?.state == "locked" { found.append("the iPhone is supervised\(supervision!.detail.map { " by \($0)" } ?? "") and managed by an MDM (\(supervision!.source))") }
        return found
    }

    /// Whether a factory reset is a cryptographic erase: only with file-based encryption.
    public var supportsCryptographicErase: Bool { encryption == "file" }
}
