import Crypto
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import LetheConfig
import LetheCore

/// One instruction the reference catalog holds: for the device matching `match` (exactly one of
/// `serial`, `imei`, `bay`, `device`), run `profile`, sell as `sku`, expect `expectedSerial`.
/// `lethe catalog serve --instructions FILE` loads a JSON array of these; `PUT
/// /v1/instructions` adds or replaces one.
public struct InstructionEntry: Codable, Sendable, Equatable {
    public var match: [String: String]
    public var profile: String?
    public var sku: String?
    public var expectedSerial: String?
    public var note: String?
    /// The intake lot and supplier, carried on the item's record.
    public var lot: String?
    public var supplier: String?

    /// The keys a device can be matched by, in the order they are tried.
    public static let keys = ["serial", "imei", "bay", "device"]

    /// `serial:ABC123`: the stored key.
    func key() throws(LetheError) -> String {
        guard match.count == 1, let (name, value) = match.first, Self.keys.contains(name), !value.isEmpty else {
            throw LetheError(.invalidArgument, "match must name exactly one of \(Self.keys.joined(separator: ", ")) with a value, not \(match)")
        }
        return "\(name):\(value)"
    }
}

/// An instruction as stored by the receiver.
struct StoredInstruction: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "instruction"
    var key: String
    var profile: String?
    var sku: String?
    var expectedSerial: String?
    var note: String?
    var lot: String?
    var supplier: String?
}

extension CatalogReceiver {
    static func registerInstructions(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v2: instructions") { db in
            try db.create(table: "instruction") { t in
                t.primaryKey("key", .text)
                t.column("profile", .text)
                t.column("sku", .text)
                t.column("expectedSerial", .text)
                t.column("note", .text)
            }
        }
        migrator.registerMigration("v3: intake lot and supplier") { db in
            try db.alter(table: "instruction") { t in
                t.add(column: "lot", .text)
                t.add(column: "supplier", .text)
            }
        }
    }

    /// Adds or replaces instructions.
    public func store(_ entries: [InstructionEntry]) throws(LetheError) {
        var rows: [StoredInstruction] = []
        for (index, entry) in entries.enumerated() {
            do throws(LetheError) {
                rows.append(StoredInstruction(
                    key: try entry.key(), profile: entry.profile, sku: entry.sku, expectedSerial: entry.expectedSerial, note: entry.note, lot: entry.lot,
                    supplier: entry.supplier))
            } catch {
                throw LetheError(.invalidArgument, "instruction \(index + 1): \(error.message)")
            }
        }
        do {
            try pool.write { db in for row in rows { try row.save(db) } }
        } catch {
            throw LetheError(.ioFailure, "cannot store instructions: \(error)")
        }
    }

    /// Loads a JSON array of ``InstructionEntry`` (errors name the file).
    public func loadInstructions(file path: String) throws(LetheError) -> Int {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LetheError(.ioFailure, path: path, "cannot read the instructions file")
        }
        let entries: [InstructionEntry]
        do {
            entries = try JSONDecoder().decode([InstructionEntry].self, from: data)
        } catch {
            throw LetheError(.invalidArgument, path: path, "not a JSON array of instructions ({\"match\": {\"serial\": …}, \"profile\": …, \"sku\": …}): \(error)")
        }
        do throws(LetheError) { try store(entries) } catch { throw LetheError(error.code, path: path, error.message) }
        return entries.count
    }

    /// The first instruction matching the query's keys (serial, then IMEI, bay, device).
    public func instructions(for query: CatalogQuery) throws -> CatalogInstructions? {
        try pool.read { db in
            for (name, value) in query.keys {
                if let row = try StoredInstruction.fetchOne(db, key: "\(name):\(value)") {
                    var found = CatalogInstructions(profile: row.profile, sku: row.sku, expectedSerial: row.expectedSerial, note: row.note, matchedBy: name)
                    found.lot = row.lot
                    found.supplier = row.supplier
                    return found
                }
            }
            return nil
        }
    }

    /// Instructions as a 200 whose `X-Lethe-Signature` covers the request target it answers and
    /// the body, so an answer cannot be forged or replayed for another device.
    public static func signedAnswer(_ instructions: CatalogInstructions, target: String, secret: SymmetricKey) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = try encoder.encode(instructions)
        var headers = HTTPFields()
        headers[HTTPField.Name(CatalogSignature.header)!] = CatalogSignature.sign(CatalogSignature.answerBytes(target: target, body: body), secret: secret)
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    func addInstructionRoutes(to router: Router<BasicRequestContext>) {
        router.get("v1/instructions") { request, _ in
            if self.lookupDelay > 0 { try? await Task.sleep(for: .milliseconds(Int(self.lookupDelay * 1000))) }
            let target = request.head.path ?? "/"
            guard let signature = Self.header(request, CatalogSignature.header) else {
                return Self.problem(.unauthorized, "the \(CatalogSignature.header) header is missing")
            }
            guard CatalogSignature.isValid(signature, body: Data(target.utf8), secret: self.secret) else {
                return Self.problem(.unauthorized, "\(CatalogSignature.header) does not match the request target: wrong shared secret, or the URL was altered")
            }
            let parameters = request.uri.queryParameters
            let query = CatalogQuery(
                serial: parameters.get("serial"), imei: parameters.get("imei"), model: parameters.get("model"), bay: parameters.get("bay"),
                device: parameters.get("device"))
            guard !query.keys.isEmpty else {
                return Self.problem(.badRequest, "give at least one of \(InstructionEntry.keys.joined(separator: ", ")) in the query")
            }
            do {
                guard let found = try self.instructions(for: query) else {
                    return Self.problem(.notFound, "no instructions for \(query.keys.map { "\($0.name) \($0.value)" }.joined(separator: ", "))")
                }
                return try Self.signedAnswer(found, target: target, secret: self.secret)
            } catch {
                return Self.problem(.serviceUnavailable, "the receiver could not read its instructions: \(error)", headers: [.retryAfter: "5"])
            }
        }
        router.put("v1/instructions") { request, _ in
            let body = Data(buffer: try await request.body.collect(upTo: 1 << 20))
            guard let signature = Self.header(request, CatalogSignature.header), CatalogSignature.isValid(signature, body: body, secret: self.secret) else {
                return Self.problem(.unauthorized, "\(CatalogSignature.header) is missing or does not match the body")
            }
            let entry: InstructionEntry
            do {
                entry = try JSONDecoder().decode(InstructionEntry.self, from: body)
            } catch {
                return Self.problem(.badRequest, "the body is not an instruction: \(error)")
            }
            do throws(LetheError) {
                try self.store([entry])
                return Self.json(["key": try entry.key()], status: .ok)
            } catch {
                return Self.problem(.badRequest, error.message)
            }
        }
    }
}
