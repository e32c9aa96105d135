import Foundation
import LetheCore

/// `getprop` output: `[key]: [value]` lines. Lines that are not in that shape (a truncated last
/// line, a vendor's multi-line value) are skipped and counted; output with no property at all
/// is an error naming the first line.
public struct AndroidProperties: Sendable, Equatable {
    public var values: [String: String]
    /// Lines that were not `[key]: [value]` (1-based line numbers).
    public var skippedLines: [Int]

    public subscript(_ key: String) -> String? { values[key].flatMap { $0.isEmpty ? nil : $0 } }

    /// Parses `getprop` output.
    public static func parse(_ text: String) throws(LetheError) -> AndroidProperties {
        var values: [String: String] = [:]
        var skipped: [Int] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            guard line.hasPrefix("["), line.hasSuffix("]"), let middle = line.range(of: "]: ["), middle.lowerBound > line.startIndex else {
                skipped.append(number + 1)
                continue
            }
            let key = String(line[line.index(after: line.startIndex)..<middle.lowerBound])
            let value = String(line[middle.upperBound..<line.index(before: line.endIndex)])
            values[key] = value
        }
        guard !values.isEmpty else {
            let first = text.split(separator: "\n").first.map { String($0.prefix(80)) } ?? "(empty)"
            throw LetheError(.unexpectedOutput, path: "getprop", "not getprop output: line 1 is \"\(first)\"")
        }
        return AndroidProperties(values: values, skippedLines: skipped)
    }

    /// The phone's identity as far as its properties tell.
    public var identity: PhoneIdentity {
        var id = PhoneIdentity()
        id.brand = self["ro.product.brand"]
        id.manufacturer = self["ro.product.manufacturer"]
        id.model = self["ro.product.model"]
        id.device = self["ro.product.device"] ?? self["ro.product.name"]
        id.serial = self["ro.serialno"] ?? self["ro.boot.serialno"]
        id.androidVersion = self["ro.build.version.release"]
        id.sdk = self["ro.build.version.sdk"].flatMap { Int($0) }
        id.securityPatch = self["ro.build.version.security_patch"]
        id.fingerprint = self["ro.build.fingerprint"]
        id.verifiedBootState = self["ro.boot.verifiedbootstate"]
        id.bootloaderLocked = bootloaderLocked
        id.encryption = encryption
        return id
    }

    /// `ro.boot.flash.locked` (1 locked), else `ro.boot.vbmeta.device_state`, else the verified
    /// boot state (orange means unlocked).
    public var bootloaderLocked: Bool? {
        if let flag = self["ro.boot.flash.locked"] { return flag == "1" }
        if let state = self["ro.boot.vbmeta.device_state"] { return state == "locked" }
        if let boot = self["ro.boot.verifiedbootstate"] { return boot != "orange" }
        return nil
    }

    /// `file` or `block` when `ro.crypto.state` is `encrypted`.
    public var encryption: String? {
        guard self["ro.crypto.state"] == "encrypted" else { return nil }
        return self["ro.crypto.type"] ?? "block"
    }

    /// Samsung Knox Guard from `knox.kg.state` (nil when the property is absent).
    public var knoxGuard: LockSignal? {
        guard let state = self["knox.kg.state"] else { return nil }
        let source = "getprop knox.kg.state = \(state)"
        switch state.lowercased() {
        case "active", "locked", "blinked": return LockSignal(state: "locked", source: source)
        case "completed", "prenormal", "disabled": return LockSignal(state: "unlocked", source: source)
        default: return LockSignal(state: "unknown", source: source, detail: "Knox Guard is still checking in; look again once the phone is online")
        }
    }
}

/// `dumpsys battery`, across Android versions and vendors: the AOSP block, newer AOSP lines
/// (`Charging state`, `Capacity level`, `Maximum capacity`/`Design capacity`), Samsung's
/// vendor block (`mSavedBatteryAsoc`). Unknown lines are ignored; output without the AOSP
/// header and a level is an error.
public enum DumpsysBattery {
    static let statusNames = [1: "unknown", 2: "charging", 3: "discharging", 4: "not charging", 5: "full"]
    static let healthNames = [1: "unknown", 2: "good", 3: "overheat", 4: "dead", 5: "over voltage", 6: "unspecified failure", 7: "cold"]

    /// Parses the output.
    public static func parse(_ text: String) throws(LetheError) -> PhoneBattery {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true).map { String($0) }
        guard let header = lines.first(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }), header.hasPrefix("Current Battery Service state") else {
            let first = lines.first.map { String($0.prefix(80)) } ?? "(empty)"
            throw LetheError(.unexpectedOutput, path: "dumpsys battery", "not dumpsys battery output: line 1 is \"\(first)\"")
        }
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            // `level:` must be the whole key: `Capacity level:` is another field.
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if fields[key] == nil { fields[key] = value }
        }
        func int(_ key: String) -> Int? { fields[key].flatMap { Int($0) } }
        var battery = PhoneBattery()
        battery.frozen = header.contains("UPDATES STOPPED")
        if battery.frozen { battery.notes.append("battery updates are stopped (dumpsys battery set …): the values may be simulated") }
        guard let level = int("level") else {
            throw LetheError(.unexpectedOutput, path: "dumpsys battery", "no `level:` line: the output is truncated or not a battery dump")
        }
        let scale = int("scale") ?? 100
        // Hostile or garbled numbers are unparsable, never a trap: a phone must not crash the daemon.
        let (scaled, overflow) = level.multipliedReportingOverflow(by: 100)
        guard !overflow, level >= 0 else {
            throw LetheError(.unexpectedOutput, path: "dumpsys battery", "level \(level) is not a battery level")
        }
        battery.level = scale > 0 ? scaled / scale : level
        battery.status = int("status").flatMap { statusNames[$0] }
        battery.condition = int("health").flatMap { healthNames[$0] }
        if let tenths = int("temperature"), tenths != 0 { battery.temperatureCelsius = Double(tenths) / 10 }
        if let millivolts = int("voltage"), millivolts != 0 { battery.voltageMillivolts = millivolts }
        battery.technology = fields["technology"].flatMap { $0.isEmpty ? nil : $0 }
        // State of health: the capacity lines of newer builds, else Samsung's ASOC.
        if let maximum = int("Maximum capacity"), let design = int("Design capacity"), design > 0, maximum > 0,
            case let (scaled, false) = maximum.multipliedReportingOverflow(by: 100)
        {
            battery.healthPercent = Sourced(min(100, scaled / design), source: "dumpsys battery: Maximum capacity / Design capacity")
        } else if let asoc = int("mSavedBatteryAsoc"), (1...100).contains(asoc) {
            battery.healthPercent = Sourced(asoc, source: "dumpsys battery: mSavedBatteryAsoc (Samsung)")
        }
        if let cycles = int("cycle count") ?? int("Cycle count") ?? int("mSavedBatteryCycle") {
            battery.cycleCount = Sourced(cycles, source: "dumpsys battery")
        }
        if battery.healthPercent == nil {
            battery.notes.append("this build's dumpsys battery gives no state of health (no Maximum/Design capacity, no vendor field)")
        }
        return battery
    }
}

/// `tradeinmode getstatus` (Android 16 trade-in mode): identity, IMEIs, battery health and
/// cycles, storage, and the FRP state as the phone itself states it.
public struct TradeInStatus: Sendable, Equatable {
    public var identity: PhoneIdentity
    public var healthPercent: Int?
    public var cycleCount: Int?
    /// `locks.factory_reset_protection`.
    public var frpLocked: Bool?

    static let source = "tradeinmode getstatus"

    /// Parses the JSON; errors name the field.
    public static func parse(_ text: String) throws(LetheError) -> TradeInStatus {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            throw LetheError(.unexpectedOutput, path: source, "not a JSON object: \"\(text.prefix(80))\"")
        }
        let product = object["product"] as? [String: Any] ?? [:]
        let battery = object["battery"] as? [String: Any] ?? [:]
        let storage = object["storage"] as? [String: Any] ?? [:]
        var id = PhoneIdentity()
        id.brand = product["brand"] as? String
        id.manufacturer = product["manufacturer"] as? String
        id.model = product["model"] as? String
        id.device = product["device"] as? String
        id.serial = object["serial"] as? String
        if let imeis = object["imeis"] {
            guard let list = imeis as? [String] else { throw LetheError(.unexpectedOutput, path: source, "imeis: expected a list of strings") }
            id.imeis = list.filter { !$0.isEmpty }
        }
        // Sizes come as strings (they may not fit a JSON number in every reader).
        if let capacity = storage["capacity_bytes"] {
            guard let bytes = (capacity as? String).flatMap({ UInt64($0) }) ?? (capacity as? NSNumber).flatMap({ UInt64(exactly: $0.doubleValue) }) else {
                throw LetheError(.unexpectedOutput, path: source, "storage.capacity_bytes: expected a number, got \(capacity)")
            }
            id.capacityBytes = bytes
        }
        var status = TradeInStatus(identity: id)
        if let health = battery["health"] {
            guard let value = health as? Int, (0...100).contains(value) else {
                throw LetheError(.unexpectedOutput, path: source, "battery.health: expected 0…100, got \(health)")
            }
            status.healthPercent = value
        }
        status.cycleCount = battery["cycle_count"] as? Int
        status.frpLocked = (object["locks"] as? [String: Any])?["factory_reset_protection"] as? Bool
        return status
    }

    init(identity: PhoneIdentity) { self.identity = identity }

    /// Puts the trade-in figures over the battery's (they are the phone's own).
    public func apply(to battery: inout PhoneBattery) {
        if let healthPercent { battery.healthPercent = Sourced(healthPercent, source: Self.source) }
        if let cycleCount { battery.cycleCount = Sourced(cycleCount, source: Self.source) }
        if healthPercent != nil, let index = battery.notes.firstIndex(where: { $0.contains("gives no state of health") }) {
            battery.notes.remove(at: index)
        }
    }

    /// The FRP signal from the phone itself.
    public var frp: LockSignal? {
        frpLocked.map { LockSignal(state: $0 ? "locked" : "unlocked", source: "\(Self.source): locks.factory_reset_protection") }
    }
}

/// Accounts on the phone, from `dumpsys account`: a Google account means FRP will be armed
/// after a reset (best effort, for phones without trade-in mode), and after a reset none may
/// remain.
public enum AccountDump {
    /// The account types present (`com.google`, `com.samsung.android.mobileservice`).
    public static func types(_ text: String) throws(LetheError) -> [String] {
        guard text.contains("Accounts:") || text.contains("User UserInfo") else {
            throw LetheError(.unexpectedOutput, path: "dumpsys account", "not dumpsys account output: \"\(text.prefix(80))\"")
        }
        var types: [String] = []
        for line in text.split(separator: "\n") {
            guard let range = line.range(of: "type=") else { continue }
            let rest = line[range.upperBound...]
            let type = rest.prefix { $0 != "}" && $0 != "," && $0 != " " }
            if !type.isEmpty { types.append(String(type)) }
        }
        return types
    }

    /// FRP as far as accounts tell: best effort, named as such.
    public static func frp(types: [String]) -> LockSignal {
        types.contains("com.google")
            ? LockSignal(state: "locked", source: "dumpsys account", bestEffort: true, detail: "a Google account is signed in, so FRP will hold the phone after a reset; remove the account first")
            : LockSignal(state: "unlocked", source: "dumpsys account", bestEffort: true, detail: "no Google account is signed in")
    }
}
