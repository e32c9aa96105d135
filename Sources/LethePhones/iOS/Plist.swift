import Foundation
import LetheCore

/// Property lists as usbmuxd and lockdownd speak them: XML out, XML or binary in, through
/// libplist (`PlistTree`). What comes in is untrusted (a phone, a bridge, a daemon): it is
/// size-limited, depth-checked and, when binary, structurally checked before parsing, and
/// every value is read by type, so a hostile or garbled plist is a named error, never a crash.
public enum Plist {
    /// The largest plist accepted (a pair record with certificates is a few KiB; a full
    /// IORegistry answer tens of KiB).
    public static let maximumBytes = 4 << 20
    /// The deepest nesting of arrays and dictionaries accepted.
    public static let maximumDepth = 64

    /// An XML plist of `value` (a dictionary of strings, numbers, booleans, data, dates, arrays
    /// and dictionaries).
    public static func encode(_ value: [String: Any], what: String) throws(LetheError) -> [UInt8] {
        try encode(any: value, what: what)
    }

    /// A dictionary from plist bytes (XML or binary), or an error naming `what`.
    public static func decode(_ bytes: [UInt8], what: String) throws(LetheError) -> [String: Any] {
        guard let dictionary = try decodeAny(bytes, what: what) as? [String: Any] else {
            throw LetheError(.unexpectedOutput, path: what, "a property list that is not a dictionary")
        }
        return dictionary
    }

    /// Any property list (DeviceLink messages are arrays), with the same limits.
    public static func decodeAny(_ bytes: [UInt8], what: String) throws(LetheError) -> Any {
        guard bytes.count <= maximumBytes else {
            throw LetheError(.unexpectedOutput, path: what, "a plist of \(bytes.count) bytes is larger than the \(maximumBytes) allowed")
        }
        guard !bytes.isEmpty else { throw LetheError(.unexpectedOutput, path: what, "an empty plist") }
        if bytes.starts(with: Array("bplist".utf8)) {
            if let problem = BinaryPlistCheck.problem(bytes) { throw LetheError(.unexpectedOutput, path: what, problem) }
        } else if bytes.contains(0) {
            throw LetheError(.unexpectedOutput, path: what, "an XML plist with a NUL byte in it")
        } else if let depth = nesting(bytes), depth > maximumDepth {
            throw LetheError(.unexpectedOutput, path: what, "a plist nested \(depth) deep (at most \(maximumDepth))")
        }
        guard let object = PlistTree.parse(bytes) else {
            throw LetheError(.unexpectedOutput, path: what, "not a property list: \(String(decoding: bytes.prefix(60), as: UTF8.self).debugDescription)")
        }
        return object
    }

    /// An XML plist of any property-list value (an array for DeviceLink).
    public static func encode(any value: Any, what: String) throws(LetheError) -> [UInt8] {
        guard let bytes = PlistTree.xml(value) else {
            throw LetheError(.invalidArgument, path: what, "a value a property list cannot hold (\(type(of: value)))")
        }
        return bytes
    }

    /// How deep an XML plist nests its containers, counted from its tags without parsing it.
    static func nesting(_ bytes: [UInt8]) -> Int? {
        var depth = 0, deepest = 0
        var index = 0
        let open = Array("<".utf8)[0], slash = Array("/".utf8)[0], close = Array(">".utf8)[0]
        while index < bytes.count {
            guard bytes[index] == open else { index += 1; continue }
            var end = index + 1
            while end < bytes.count, bytes[end] != close { end += 1 }
            guard end < bytes.count else { break }
            let tag = bytes[(index + 1)..<end]
            let selfClosing = tag.last == slash
            let name = String(decoding: tag.prefix { $0 != 0x20 && $0 != slash }, as: UTF8.self)
            if tag.first == slash {
                let closing = String(decoding: tag.dropFirst(), as: UTF8.self)
                if closing == "dict" || closing == "array" { depth -= 1 }
            } else if !selfClosing, name == "dict" || name == "array" {
                depth += 1
                deepest = max(deepest, depth)
            }
            index = end + 1
        }
        return deepest
    }
}

/// A strict reading of a binary plist's structure (bplist00: trailer, offset table, objects)
/// before a parser sees it. Parsers trust the file: Foundation's crashed on a set (which no
/// plist Apple writes contains) and libplist 2.2 asserts on a NUL inside a key. So every
/// object must be one of the types a plist holds (boolean, integer, real, date, data, string
/// without NULs, array, dictionary with string keys), every reference and length must lie
/// inside the file, and the graph from the top object must be no deeper than
/// `Plist.maximumDepth` (a cycle counts as too deep). Anything else is refused.
enum BinaryPlistCheck {
    /// Why `bytes` is refused, or nil when it may be parsed.
    static func problem(_ bytes: [UInt8]) -> String? {
        guard bytes.starts(with: Array("bplist00".utf8)) else { return "a binary plist of a version other than 00" }
        guard bytes.count >= 8 + 32 else { return "a binary plist shorter than its trailer" }
        let trailer = bytes.count - 32
        let offsetSize = Int(bytes[trailer + 6]), refSize = Int(bytes[trailer + 7])
        func uint(_ at: Int, _ size: Int) -> Int? {
            guard size >= 1, size <= 8, at >= 0, at + size <= bytes.count else { return nil }
            var value = 0
            for i in 0..<size {
                guard value <= Int.max >> 8 else { return nil }
                value = value << 8 | Int(bytes[at + i])
            }
            return value
        }
        guard let count = uint(trailer + 8, 8), let top = uint(trailer + 16, 8), let table = uint(trailer + 24, 8),
            count > 0, count <= bytes.count, top < count, (1...8).contains(offsetSize), (1...8).contains(refSize),
            table >= 8, table <= trailer, count <= (trailer - table) / offsetSize
        else { return "a binary plist whose trailer does not fit the file" }

        /// An object's marker, where its contents start and how many units (bytes, UTF-16
        /// characters or references) it holds.
        struct Object { var marker: UInt8; var start: Int; var length: Int }
        func object(_ index: Int) -> Object? {
            guard let at = uint(table + index * offsetSize, offsetSize), at >= 8, at < table else { return nil }
            let marker = bytes[at] >> 4
            var length = Int(bytes[at] & 0x0f)
            var start = at + 1
            if [0x4, 0x5, 0x6, 0xA, 0xD].contains(marker), length == 0x0f {
                guard start < table, bytes[start] >> 4 == 0x1 else { return nil }
                let power = Int(bytes[start] & 0x0f)
                guard power <= 3, let value = uint(start + 1, 1 << power) else { return nil }
                length = value
                start += 1 + (1 << power)
            }
            return Object(marker: marker, start: start, length: length)
        }
        /// The bytes an object's contents take, or nil when its type is not allowed.
        func size(_ item: Object, low: Int) -> Int? {
            switch item.marker {
            case 0x0: return low == 0x8 || low == 0x9 ? 0 : nil  // false, true
            case 0x1: return low <= 3 ? 1 << low : nil  // integer
            case 0x2: return low == 2 || low == 3 ? 1 << low : nil  // real
            case 0x3: return low == 3 ? 8 : nil  // date
            case 0x4, 0x5: return item.length  // data, ASCII string
            case 0x6: return item.length <= Int.max / 2 ? item.length * 2 : nil  // UTF-16 string
            case 0xA: return item.length <= Int.max / refSize ? item.length * refSize : nil
            case 0xD: return item.length <= Int.max / (2 * refSize) ? item.length * 2 * refSize : nil
            default: return nil  // UIDs, sets, nulls, fills and unassigned markers
            }
        }
        var objects: [Object] = []
        objects.reserveCapacity(count)
        for index in 0..<count {
            guard let item = object(index) else { return "a binary plist object \(index) outside the file" }
            let at = uint(table + index * offsetSize, offsetSize) ?? 0
            guard let bytesNeeded = size(item, low: Int(bytes[at] & 0x0f)) else {
                return String(format: "a binary plist object of a type a plist does not hold (marker 0x%02x)", bytes[at])
            }
            guard bytesNeeded <= table - item.start else { return "a binary plist object \(index) running past the file" }
            // A NUL inside a string (libplist 2.2 asserts on one in a key; no iPhone sends one).
            if item.marker == 0x5, bytes[item.start..<(item.start + bytesNeeded)].contains(0) {
                return "a binary plist string with a NUL in it"
            }
            if item.marker == 0x6, stride(from: item.start, to: item.start + bytesNeeded, by: 2).contains(where: { bytes[$0] == 0 && bytes[$0 + 1] == 0 }) {
                return "a binary plist string with a NUL in it"
            }
            objects.append(item)
        }
        func reference(_ item: Object, _ i: Int) -> Int? {
            guard let ref = uint(item.start + i * refSize, refSize), ref < count else { return nil }
            return ref
        }
        // Dictionary keys are strings; every reference points at an object in the table.
        for item in objects where item.marker == 0xA || item.marker == 0xD {
            let references = item.marker == 0xD ? item.length * 2 : item.length
            for i in 0..<references {
                guard let ref = reference(item, i) else { return "a binary plist reference outside the table" }
                if item.marker == 0xD, i < item.length, ![0x5, 0x6].contains(objects[ref].marker) {
                    return "a binary plist dictionary with a key that is not a string"
                }
            }
        }
        // Depth of the graph from the top object, without recursion.
        var stack: [(object: Int, depth: Int)] = [(top, 1)]
        var visits = 0
        while let (index, level) = stack.popLast() {
            visits += 1
            // More visits than objects times a small factor: a cycle or a bomb of shared refs.
            guard visits <= count * 4 + 1024 else { return "a binary plist whose objects refer to themselves" }
            let item = objects[index]
            guard item.marker == 0xA || item.marker == 0xD else { continue }
            guard level <= Plist.maximumDepth else { return "a plist nested more than \(Plist.maximumDepth) deep" }
            let references = item.marker == 0xD ? item.length * 2 : item.length
            for i in 0..<references { stack.append((reference(item, i) ?? 0, level + 1)) }
        }
        return nil
    }
}

/// Typed reads of a plist dictionary: a value of the wrong type is absent, never a crash.
extension Dictionary where Key == String, Value == Any {
    func string(_ key: String) -> String? { self[key] as? String }
    func int(_ key: String) -> Int? {
        // A boolean is not a number here (NSNumber bridges 0 and 1 to Bool, so the dynamic
        // type decides), and a number that does not fit is absent.
        guard let value = self[key], type(of: value) != Bool.self else { return nil }
        return value as? Int
    }
    func bool(_ key: String) -> Bool? {
        guard let value = self[key], type(of: value) == Bool.self else { return nil }
        return value as? Bool
    }
    func data(_ key: String) -> Data? { self[key] as? Data }
    func dictionary(_ key: String) -> [String: Any]? { self[key] as? [String: Any] }
}
