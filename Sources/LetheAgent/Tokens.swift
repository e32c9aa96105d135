import Crypto
import Foundation
import LetheCore
import Synchronization

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

    /// A fresh random token (`lethe_` and 32 characters of URL-safe base64).
    public static func newToken() -> String {
        var bytes = [UInt8](repeating: 0, count: 24)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &generator) }
        return "lethe_" + Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }

    /// Adds a token and saves the file (0600). Returns the token, which is not stored.
    public mutating func add(name: String, role: APIRole, stateDirectory: String) throws(LetheError) -> String {
        let token = Self.newToken()
        tokens.removeAll { $0.name == name }
        tokens.append(Entry(name: name, role: role, sha256: Self.hash(token)))
        try save(stateDirectory: stateDirectory)
        return token
    }

    /// Removes the token named `name` and saves the file. A running daemon stops accepting it
    /// within a second. Throws when there is no such token.
    public mutating func remove(name: String, stateDirectory: String) throws(LetheError) {
        guard tokens.contains(where: { $0.name == name }) else {
            throw LetheError(.invalidArgument, path: Self.path(stateDirectory: stateDirectory), "no token named \(name); `lethe tokens list` shows them")
        }
        tokens.removeAll { $0.name == name }
        try save(stateDirectory: stateDirectory)
    }

    /// Writes the file atomically, readable by its owner only.
    func save(stateDirectory: String) throws(LetheError) {
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
    }

    static func hash(_ token: String) -> String { SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined() }

    /// The entry for a presented token.
    public func entry(for token: String) -> Entry? {
        let digest = Self.hash(token)
        return tokens.first { $0.sha256 == digest }
    }
}

/// The tokens the daemon accepts: the token file, read again whenever it changes (`lethe
/// tokens add|remove` take effect within a second, without a restart), plus tokens that live in
/// memory only (the `--demo` token, never written to disk). A file that becomes unreadable
/// accepts no file token until it is fixed (fail closed), and says so once in the log.
public final class TokenStore: Sendable {
    private struct State {
        var file = TokenFile()
        var stamp: [Int]?
        var checked = Date.distantPast
        var problem: String?
    }

    let stateDirectory: String
    private let memory: Mutex<[TokenFile.Entry]>
    private let state = Mutex(State())
    let log: @Sendable (String) -> Void

    /// Loads the token file (an unreadable one is an error, for the daemon's start).
    public init(stateDirectory: String, log: @escaping @Sendable (String) -> Void) throws(LetheError) {
        self.stateDirectory = stateDirectory
        self.log = log
        memory = Mutex([])
        let file = try TokenFile.load(stateDirectory: stateDirectory)
        let stamp = Self.stamp(TokenFile.path(stateDirectory: stateDirectory))
        state.withLock { $0.file = file; $0.stamp = stamp; $0.checked = Date() }
    }

    /// Adds a token that is never written to disk (gone when the daemon stops). Returns it.
    public func addInMemory(name: String, role: APIRole) -> String {
        let token = TokenFile.newToken()
        memory.withLock { $0.append(TokenFile.Entry(name: name, role: role, sha256: TokenFile.hash(token))) }
        return token
    }

    /// What the file's metadata looks like now (inode, size, modification time in ns).
    static func stamp(_ path: String) -> [Int]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return [Int(info.st_ino), Int(info.st_size), Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec)]
    }

    /// The tokens now: the file is looked at again at most once a second.
    public var current: TokenFile {
        let path = TokenFile.path(stateDirectory: stateDirectory)
        var file: TokenFile = state.withLock { s in
            guard Date().timeIntervalSince(s.checked) >= 1 else { return s.file }
            s.checked = Date()
            let stamp = Self.stamp(path)
            guard stamp != s.stamp else { return s.file }
            s.stamp = stamp
            do throws(LetheError) {
                s.file = try TokenFile.load(stateDirectory: stateDirectory)
                if s.problem != nil { log("tokens: \(path) is readable again: \(s.file.tokens.count) token(s)") }
                s.problem = nil
                log("tokens: \(path) changed: \(s.file.tokens.count) token(s) now")
            } catch {
                s.file = TokenFile()
                if s.problem != error.description { log("tokens: \(error.description); no token from the file is accepted until it is fixed") }
                s.problem = error.description
            }
            return s.file
        }
        file.tokens += memory.withLock { $0 }
        return file
    }
}
