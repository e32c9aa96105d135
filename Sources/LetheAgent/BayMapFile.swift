import Foundation
import LetheCore

/// The bay map file (`var/bays.json`).
public enum BayMapFile {
    /// The map, or an empty one when the file does not exist. A file that exists but does not
    /// parse is an error that names it.
    public static func load(_ file: String) throws(LetheError) -> BayMap {
        guard FileManager.default.fileExists(atPath: file) else { return BayMap() }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw LetheError(.permissionDenied, path: file, "cannot read the bay map")
        }
        do {
            return try JSONDecoder().decode(BayMap.self, from: data)
        } catch {
            throw LetheError(.invalidArgument, path: file, "bay map is not valid: \(describe(error))")
        }
    }

    /// A decoding error in plain words, with the field path.
    public static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let context), DecodingError.typeMismatch(_, let context),
            DecodingError.valueNotFound(_, let context):
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            return (field.isEmpty ? "" : "field \(field): ") + context.debugDescription
                + ((context.underlyingError as NSError?).map { " (\($0.userInfo["NSDebugDescription"] ?? $0.localizedDescription))" } ?? "")
        case DecodingError.keyNotFound(let key, _):
            return "missing field \(key.stringValue)"
        default:
            return "\(error)"
        }
    }
}
