import Crypto
import Foundation
import LetheCore

/// API roles: `qa` reads; `technician` reads, starts and aborts jobs.
public enum APIRole: String, Codable, Sendable, CaseIterable {
    case technician, qa

    /// Whether this role may do what `needed` may.
    public func allows(_ needed: APIRole) -> Bool { self == .technician || needed == .qa }
}

/// API tokens (`var/tokens.json`). Only SHA-256 hashes are stored; a token is shown once, when
/// it is made.
public struct TokenFile: Codable, Sendable {
    public struct Entry: Codable, Sendable {
        public var name: String
        public var role: APIRole
        public var sha256: String
    }

    public var tokens: [Entry] = []

    /// Creates an empty token file value.
    public init() {}

    public static func path(stateDirectory: String) -> String { "\(stateDirectory)/tokens.json" }

    /// Loads the file; none means no tokens. A damaged file is an error that names it.
    public static func load(stateDirectory: String) throws(LetheError) -> TokenFile {
        let path = path(stateDirectory: stateDirectory)
        guard FileManager.default.fileExists(atPath: path) else { return TokenFile() }
        guard let data = FileManager.default.contents(atPath: path) else { throw LetheError(.permissionDenied, path: path, "cannot read the token file") }
        do {
            return try JSONDecoder().decode(TokenFile.self, from: data)
        } catch {
            throw LetheError(.invalidArgument, path: path, "token file is not valid: \(BayMapFile.describe(error))")
        }
    }

    /// Adds a token and saves the file (0600). Returns the token, which is not stored.
    public mutating func add(name: String, role: APIRole, stateDirectory: String) throws(LetheError) -> String {
        var bytes = [UInt8](repeating: 0, count: 24)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &generator) }
        let token = "lethe_" + Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        tokens.removeAll { $0.name == name }
        tokens.append(Entry(name: name, role: role, sha256: Self.hash(token)))
        let path = Self.path(stateDirectory: stateDirectory)
        do {
            try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
            chmod(path, 0o600)
        } catch {
            throw LetheError(.ioFailure, path: path, "cannot write the token file: \(error.localizedDescription)")
        }
        return token
    }

    static func hash(_ token: String) -> String { SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined() }

    /// The entry for a presented token.
    public func entry(for token: String) -> Entry? {
        let digest = Self.hash(token)
        return tokens.first { $0.sha256 == digest }
    }
}
