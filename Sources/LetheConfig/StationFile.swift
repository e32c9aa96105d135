import Foundation
import LetheCore
import Yams

/// The station config file (YAML, comments allowed): who and where the station is, its
/// operators, bays, directories, listen address and catalog endpoint. Every error names the
/// file, line and field; the daemon refuses to start with a bad file.
public struct DaemonConfig: Sendable, Equatable {
    public var station = StationConfig()
    public var operators: [String] = []
    public var stateDirectory: String?
    public var profilesDirectory: String?
    public var listen: String?
    public var bays = BayMap()
    public var catalogURL: String?
    public var catalogSecretFile: String?
    /// Two-way mode: where to ask the catalog what to do with a docked device.
    public var catalogLookupURL: String?
    /// Seconds to wait for that answer before using the station's own profile match.
    public var catalogLookupTimeout: Double?
    /// The file it came from.
    public var source: String

    /// Defaults, for a file.
    public init(source: String) { self.source = source }

    /// Parses the text of a config file.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> DaemonConfig {
        let y = YAMLFields(file: file)
        let root = try y.document(text)
        let top = try y.mapping(root, nil, allowed: [
            "station", "operators", "destination", "mediaSource", "stateDir", "profiles", "listen", "bays", "catalog", "intake",
        ])
        var config = DaemonConfig(source: file)
        if let node = top["station"] {
            let s = try y.mapping(node, "station", allowed: ["id", "name", "location", "contact", "verifyBaseURL"])
            if let n = s["id"] { config.station.id = try y.string(n, "station.id") }
            if let n = s["name"] { config.station.name = try y.string(n, "station.name") }
            if let n = s["location"] { config.station.location = try y.string(n, "station.location") }
            if let n = s["contact"] { config.station.contact = try y.string(n, "station.contact") }
            if let n = s["verifyBaseURL"] {
                let url = try y.string(n, "station.verifyBaseURL")
                guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                    throw y.error(n, "station.verifyBaseURL", "\"\(url)\" is not an http(s) URL")
                }
                config.station.verifyBaseURL = url
            }
        }
        if let n = top["operators"] {
            config.operators = try y.strings(n, "operators")
            config.station.operatorName = config.operators.first
        }
        if let n = top["destination"] { config.station.destination = try y.string(n, "destination") }
        if let n = top["mediaSource"] { config.station.mediaSource = try y.string(n, "mediaSource") }
        if let node = top["intake"] {
            let i = try y.mapping(node, "intake", allowed: ["lot", "supplier"])
            if let n = i["lot"] { config.station.intakeLot = try y.string(n, "intake.lot") }
            if let n = i["supplier"] { config.station.intakeSupplier = try y.string(n, "intake.supplier") }
        }
        if let n = top["stateDir"] { config.stateDirectory = try y.string(n, "stateDir") }
        if let n = top["profiles"] { config.profilesDirectory = try y.string(n, "profiles") }
        if let n = top["listen"] {
            let listen = try y.string(n, "listen")
            let parts = listen.split(separator: ":")
            guard parts.count == 2, let port = Int(parts[1]), (1...65535).contains(port) else {
                throw y.error(n, "listen", "\"\(listen)\" is not host:port")
            }
            config.listen = listen
        }
        if let node = top["bays"] {
            guard case .mapping(let mapping) = node else { throw y.error(node, "bays", "expected port path: label lines") }
            for (key, value) in mapping {
                let port = try y.string(key, "bays")
                config.bays.bays[port] = try y.string(value, "bays.\(port)")
            }
        }
        if let node = top["catalog"] {
            let c = try y.mapping(node, "catalog", allowed: ["url", "secretFile", "lookupUrl", "lookupTimeoutSeconds"])
            func url(_ field: String) throws(ConfigError) -> String? {
                guard let n = c[field] else { return nil }
                let url = try y.string(n, "catalog.\(field)")
                guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                    throw y.error(n, "catalog.\(field)", "\"\(url)\" is not an http(s) URL")
                }
                return url
            }
            config.catalogURL = try url("url")
            config.catalogLookupURL = try url("lookupUrl")
            if let n = c["secretFile"] { config.catalogSecretFile = try y.string(n, "catalog.secretFile") }
            if let n = c["lookupTimeoutSeconds"] {
                guard case .scalar = n, let seconds = n.float, seconds > 0, seconds <= 60 else {
                    throw y.error(n, "catalog.lookupTimeoutSeconds", "expected seconds, more than 0 and at most 60")
                }
                config.catalogLookupTimeout = seconds
            }
        }
        return config
    }

    /// Loads a file.
    public static func load(file: String) throws(ConfigError) -> DaemonConfig {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigError(file: file, message: FileManager.default.fileExists(atPath: file) ? "cannot read the file" : "no such file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw ConfigError(file: file, message: "not UTF-8 text") }
        return try parse(text, file: file)
    }
}
