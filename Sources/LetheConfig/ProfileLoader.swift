import Foundation
import LetheCore
import Yams

/// A problem in a config or profile file, with where it is.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    /// 1-based; nil when the problem is the whole file.
    public var line: Int?
    public var column: Int?
    /// Dotted path of the field (`erase.method`), when there is one.
    public var field: String?
    public var message: String

    public var description: String { "\(location): \(detail)" }

    /// `file:line:column`.
    public var location: String {
        var location = file
        if let line { location += ":\(line)" + (column.map { ":\($0)" } ?? "") }
        return location
    }

    /// `field: message`.
    public var detail: String { (field.map { "\($0): " } ?? "") + message }
}

/// Reads YAML nodes with types checked and positions kept, so every error names the file,
/// line and field.
struct YAMLFields {
    let file: String

    func error(_ node: Node?, _ field: String?, _ message: String) -> ConfigError {
        ConfigError(file: file, line: node?.mark?.line, column: node?.mark?.column, field: field, message: message)
    }

    /// Parses a document; a syntax error keeps libyaml's position.
    func document(_ text: String) throws(ConfigError) -> Node {
        do {
            guard let node = try Yams.compose(yaml: text) else { throw error(nil, nil, "the file is empty") }
            return node
        } catch let error as ConfigError {
            throw error
        } catch let YamlError.scanner(context, problem, mark, _) {
            throw ConfigError(file: file, line: mark.line, column: mark.column, field: nil, message: "YAML syntax: \(problem)\(context.map { " (\($0.text))" } ?? "")")
        } catch let YamlError.parser(context, problem, mark, _) {
            throw ConfigError(file: file, line: mark.line, column: mark.column, field: nil, message: "YAML syntax: \(problem)\(context.map { " (\($0.text))" } ?? "")")
        } catch let YamlError.duplicatedKeysInMapping(duplicates, context) {
            throw ConfigError(file: file, line: context.mark.line, column: context.mark.column, field: duplicates.sorted().joined(separator: ", "), message: "given twice in this mapping")
        } catch {
            throw self.error(nil, nil, "YAML: \(error)")
        }
    }

    /// The members of a mapping; unknown keys are errors that list the known ones.
    func mapping(_ node: Node, _ field: String?, allowed: [String]) throws(ConfigError) -> [String: Node] {
        guard case .mapping(let mapping) = node else { throw error(node, field, "expected a mapping (key: value lines)") }
        var members: [String: Node] = [:]
        for (key, value) in mapping {
            guard let name = key.string else { throw error(key, field, "keys must be strings") }
            let path = field.map { "\($0).\(name)" } ?? name
            guard allowed.contains(name) else {
                throw error(key, path, "unknown field; known here: \(allowed.joined(separator: ", "))")
            }
            guard members[name] == nil else { throw error(key, path, "given twice") }
            members[name] = value
        }
        return members
    }

    func string(_ node: Node, _ field: String) throws(ConfigError) -> String {
        guard case .scalar(let scalar) = node else { throw error(node, field, "expected text") }
        return scalar.string
    }

    func bool(_ node: Node, _ field: String) throws(ConfigError) -> Bool {
        guard case .scalar = node, let value = node.bool else { throw error(node, field, "expected true or false") }
        return value
    }

    func int(_ node: Node, _ field: String) throws(ConfigError) -> Int {
        guard case .scalar = node, let value = node.int else { throw error(node, field, "expected a whole number") }
        return value
    }

    func uint64(_ node: Node, _ field: String) throws(ConfigError) -> UInt64 {
        let value = try int(node, field)
        guard value >= 0 else { throw error(node, field, "must not be negative") }
        return UInt64(value)
    }

    func strings(_ node: Node, _ field: String) throws(ConfigError) -> [String] {
        if case .scalar = node { return [try string(node, field)] }
        guard case .sequence(let sequence) = node else { throw error(node, field, "expected a list") }
        var result: [String] = []
        for item in sequence { result.append(try string(item, field)) }
        return result
    }

    func choice<T: RawRepresentable & CaseIterable>(_ node: Node, _ field: String, _: T.Type) throws(ConfigError) -> T where T.RawValue == String {
        let text = try string(node, field)
        guard let value = T(rawValue: text) else {
            throw error(node, field, "\"\(text)\" is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }
}

extension DeviceKind: CaseIterable {
    public static var allCases: [DeviceKind] { [.drive, .phone] }
}


/// Loads profiles from YAML files (comments allowed).
public enum ProfileLoader {
    /// Parses one profile file's text.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> Profile {
        let y = YAMLFields(file: file)
        let root = try y.document(text)
        let top = try y.mapping(root, nil, allowed: ["name", "description", "priority", "match", "diagnostics", "erase", "start"])
        guard let nameNode = top["name"] else { throw y.error(root, "name", "required") }
        let name = try y.string(nameNode, "name")
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw y.error(nameNode, "name", "use letters, digits, - and _ only")
        }
        var match = ProfileMatch()
        if let node = top["match"] {
            let m = try y.mapping(node, "match", allowed: ["kind", "transport", "rotational", "removable", "model", "vendor", "usbVendorId", "minSizeBytes", "maxSizeBytes"])
            if let n = m["kind"] {
                var kinds: [DeviceKind] = []
                for text in try y.strings(n, "match.kind") {
                    guard let kind = DeviceKind(rawValue: text) else { throw y.error(n, "match.kind", "\"\(text)\" is not drive or phone") }
                    kinds.append(kind)
                }
                match.kinds = kinds
            }
            if let n = m["transport"] {
                var transports: [Transport] = []
                for text in try y.strings(n, "match.transport") {
                    guard let transport = Transport(rawValue: text), transport != .unknown else {
                        throw y.error(n, "match.transport", "\"\(text)\" is not one of \(Transport.allCases.filter { $0 != .unknown }.map(\.rawValue).joined(separator: ", "))")
                    }
                    transports.append(transport)
                }
                match.transports = transports
            }
            if let n = m["rotational"] { match.rotational = try y.bool(n, "match.rotational") }
            if let n = m["removable"] { match.removable = try y.bool(n, "match.removable") }
            for (key, path) in [("model", \ProfileMatch.modelPattern), ("vendor", \ProfileMatch.vendorPattern)] {
                guard let n = m[key] else { continue }
                let pattern = try y.string(n, "match.\(key)")
                do {
                    _ = try Regex(pattern)
                } catch {
                    throw y.error(n, "match.\(key)", "not a regular expression: \(error)")
                }
                match[keyPath: path] = pattern
            }
            if let n = m["usbVendorId"] {
                let ids = try y.strings(n, "match.usbVendorId")
                for id in ids where !(id.hasPrefix("0x") && id.count == 6 && UInt16(id.dropFirst(2), radix: 16) != nil) {
                    throw y.error(n, "match.usbVendorId", "\"\(id)\" is not a USB vendor id like 0x05ac")
                }
                match.usbVendorIds = ids
            }
            if let n = m["minSizeBytes"] { match.minSizeBytes = try y.uint64(n, "match.minSizeBytes") }
            if let n = m["maxSizeBytes"] { match.maxSizeBytes = try y.uint64(n, "match.maxSizeBytes") }
        }
        var smart = true
        var batteryMinimum = 80
        var thresholds = HealthThresholds()
        var surfaceScan: SurfaceScanMode?
        var surfaceThresholds = SurfaceThresholds()
        var surfaceNode: Node?
        if let node = top["diagnostics"] {
            let d = try y.mapping(node, "diagnostics", allowed: ["smart", "thresholds", "batteryMinHealthPercent", "surface"])
            if let n = d["surface"] {
                surfaceNode = n
                (surfaceScan, surfaceThresholds) = try surface(n, y)
            }
            if let n = d["smart"] { smart = try y.bool(n, "diagnostics.smart") }
            if let n = d["batteryMinHealthPercent"] {
                let value = try y.int(n, "diagnostics.batteryMinHealthPercent")
                guard (1...100).contains(value) else { throw y.error(n, "diagnostics.batteryMinHealthPercent", "expected 1 to 100") }
                batteryMinimum = value
            }
            if let n = d["thresholds"] {
                let known = ["reallocatedWarn", "reallocatedFail", "pendingWarn", "pendingFail", "uncorrectableWarn", "uncorrectableFail",
                             "mediaErrorsWarn", "mediaErrorsFail", "percentageUsedWarn", "percentageUsedFail", "temperatureWarn",
                             "temperatureFail", "powerOnHoursWarn"]
                let t = try y.mapping(n, "diagnostics.thresholds", allowed: known)
                var json: [String: Int] = [:]
                for (key, value) in t { json[key] = try y.int(value, "diagnostics.thresholds.\(key)") }
                do {
                    thresholds = try JSONDecoder().decode(HealthThresholds.self, from: JSONEncoder().encode(json))
                } catch {
                    throw y.error(n, "diagnostics.thresholds", "\(error)")
                }
            }
        }
        guard let eraseNode = top["erase"] else { throw y.error(root, "erase", "required (method and verification)") }
        let e = try y.mapping(eraseNode, "erase", allowed: ["method", "verification", "flow", "openHiddenAreas", "overwriteFreeSpace"])
        guard let methodNode = e["method"] else { throw y.error(eraseNode, "erase.method", "required") }
        let methodName = try y.string(methodNode, "erase.method")
        var factoryReset: FactoryResetSettings?
        let method: WipeMethod
        if methodName == "factory-reset" {
            // Phones only: a profile that could match a drive must not name a reset.
            guard match.kinds == [.phone] || match.transports == [.adb] || match.transports == [.ios] else {
                throw y.error(methodNode, "erase.method", "factory-reset is for phones: add match.kind: phone (or match.transport: adb or ios)")
            }
            if let n = e["verification"] { throw y.error(n, "erase.verification", "a factory reset is verified by the phone's out-of-box state, not by reading back") }
            var flow: String?
            if let n = e["flow"] {
                let name = try y.string(n, "erase.flow")
                guard name == "auto" || FactoryResetSettings.flows.contains(name) else {
                    throw y.error(n, "erase.flow", "unknown flow \"\(name)\"; use auto, \(FactoryResetSettings.flows.joined(separator: ", "))")
                }
                flow = name == "auto" ? nil : name
            }
            var overwrite = FreeSpaceOverwriteMode.off
            if let n = e["overwriteFreeSpace"] {
                overwrite = try y.choice(n, "erase.overwriteFreeSpace", FreeSpaceOverwriteMode.self)
                if overwrite != .off, match.transports == [.ios] || flow.map({ $0.hasPrefix("mcinstall") || $0.hasPrefix("mobilebackup2") }) == true {
                    throw y.error(n, "erase.overwriteFreeSpace", FreeSpaceOverwriteMode.iPhoneRefusal)
                }
            }
            factoryReset = FactoryResetSettings(flow: flow, overwriteFreeSpace: overwrite)
            method = WipeMethod.catalog[0]
        } else {
            if let n = e["flow"] { throw y.error(n, "erase.flow", "only a factory-reset (phone) profile has a flow") }
            if let n = e["overwriteFreeSpace"] { throw y.error(n, "erase.overwriteFreeSpace", "only a factory-reset (phone) profile overwrites free space; a drive's overwrite is its method") }
            guard let found = WipeMethod.named(methodName) else {
                throw y.error(methodNode, "erase.method", "unknown method \"\(methodName)\"; known: \(WipeMethod.all.map(\.name).joined(separator: ", ")), and factory-reset for phones")
            }
            method = found
        }
        if let n = e["verification"], method.usesFirmware {
            throw y.error(n, "erase.verification", "a firmware erase is verified by reading back known data (readback), not by an overwrite verification mode")
        }
        let openHidden = try e["openHiddenAreas"].map { (n: Node) throws(ConfigError) in
            guard factoryReset == nil else { throw y.error(n, "erase.openHiddenAreas", "a phone has no Host Protected Area; only drive profiles open hidden areas") }
            return try y.bool(n, "erase.openHiddenAreas")
        } ?? false
        let verification = try e["verification"].map { (n: Node) throws(ConfigError) in try y.choice(n, "erase.verification", VerificationMode.self) } ?? method.defaultVerification
        var profile = Profile(
            name: name, description: try top["description"].map { (n: Node) throws(ConfigError) in try y.string(n, "description") } ?? "",
            priority: try top["priority"].map { (n: Node) throws(ConfigError) in try y.int(n, "priority") } ?? 0, match: match,
            smart: smart, thresholds: thresholds, method: method, verification: verification,
            start: try top["start"].map { (n: Node) throws(ConfigError) in try y.choice(n, "start", ProfileStart.self) } ?? .manual,
            source: file)
        profile.factoryReset = factoryReset
        profile.batteryMinHealthPercent = batteryMinimum
        profile.openHiddenAreas = openHidden
        profile.surfaceScan = surfaceScan
        profile.surfaceThresholds = surfaceThresholds
        if surfaceScan != nil, factoryReset != nil {
            throw y.error(surfaceNode, "diagnostics.surface.scan", "a phone has no block surface to scan; only drive profiles scan")
        }
        return profile
    }

    /// `diagnostics.surface`: `scan` (off, sample, full) and the thresholds its verdict uses.
    static func surface(_ node: Node, _ y: YAMLFields) throws(ConfigError) -> (SurfaceScanMode?, SurfaceThresholds) {
        let fields: [(String, WritableKeyPath<SurfaceThresholds, Int>)] = [
            ("slowMilliseconds", \.slowMilliseconds), ("slowReadsWarn", \.slowReadsWarn),
            ("unreadableSectorsWarn", \.unreadableSectorsWarn), ("unreadableSectorsFail", \.unreadableSectorsFail),
        ]
        let s = try y.mapping(node, "diagnostics.surface", allowed: ["scan", "slowReadsFail"] + fields.map(\.0))
        var mode: SurfaceScanMode?
        if let n = s["scan"] {
            let text = try y.string(n, "diagnostics.surface.scan")
            if text != "off" {
                guard let chosen = SurfaceScanMode(rawValue: text) else {
                    throw y.error(n, "diagnostics.surface.scan", "\"\(text)\" is not off, sample or full")
                }
                mode = chosen
            }
        } else {
            throw y.error(node, "diagnostics.surface.scan", "required: off, sample or full")
        }
        var limits = SurfaceThresholds()
        for (key, path) in fields {
            if let n = s[key] { limits[keyPath: path] = try y.int(n, "diagnostics.surface.\(key)") }
        }
        if let n = s["slowReadsFail"] { limits.slowReadsFail = try y.int(n, "diagnostics.surface.slowReadsFail") }
        if let problem = limits.problem {
            throw y.error(s[problem.field] ?? node, "diagnostics.surface.\(problem.field)", problem.message)
        }
        return (mode, limits)
    }

    /// Loads one file.
    public static func load(file: String) throws(ConfigError) -> Profile {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigError(file: file, message: FileManager.default.fileExists(atPath: file) ? "cannot read the file" : "no such file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw ConfigError(file: file, message: "not UTF-8 text") }
        return try parse(text, file: file)
    }

    /// Where administrators put their own profiles on an installed station.
    public static let systemDirectory = "/etc/lethe/profiles"

    /// The profiles compiled into the binary (``EmbeddedProfiles``); their source reads
    /// `built-in:NAME.yaml`.
    public static func loadEmbedded() throws(ConfigError) -> [Profile] {
        var profiles: [Profile] = []
        for (name, text) in EmbeddedProfiles.files { profiles.append(try parse(text + "\n", file: "built-in:\(name)")) }
        return profiles
    }

    /// The profiles used when no directory is named: the built-in ones, where a profile of the
    /// same name in `directory` (when it exists) replaces a built-in one and a new name adds
    /// one. A profile there that does not parse is an error naming its file, line and field.
    public static func loadDefaults(overrides directory: String = systemDirectory) throws(ConfigError) -> [Profile] {
        var profiles = try loadEmbedded()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else { return profiles }
        for profile in try loadDirectory(directory) {
            profiles.removeAll { $0.name == profile.name }
            profiles.append(profile)
        }
        return profiles
    }

    /// Loads every `*.yaml` in a directory; names must be unique.
    public static func loadDirectory(_ directory: String) throws(ConfigError) -> [Profile] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw ConfigError(file: directory, message: "no such profiles directory")
        }
        var profiles: [Profile] = []
        for entry in entries.sorted() where entry.hasSuffix(".yaml") || entry.hasSuffix(".yml") {
            let profile = try load(file: "\(directory)/\(entry)")
            if let clash = profiles.first(where: { $0.name == profile.name }) {
                throw ConfigError(file: profile.source, field: "name", message: "profile name \"\(profile.name)\" is also used by \(clash.source)")
            }
            profiles.append(profile)
        }
        return profiles
    }
}
