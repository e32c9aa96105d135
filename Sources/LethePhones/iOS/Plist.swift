import Foundation
import LetheCore

/// Property lists as usbmuxd and lockdownd speak them: XML out, XML or binary in, through
/// Foundation's `PropertyListSerialization`. What comes in is untrusted (a phone, a bridge, a
/// daemon): it is size-limited and depth-checked before parsing, and every value is read by
/// type, so a hostile or garbled plist is a named error, never a crash.
public enum Plist {
    /// The largest plist accepted (a pair record with certificates is a few KiB; a full
    /// IORegistry answer tens of KiB).
    public static let maximumBytes = 4 << 20
    /// The deepest nesting of arrays and dictionaries accepted.
    public static let maximumDepth = 64

    /// An XML plist of `value` (a dictionary of strings, numbers, booleans, data, dates, arrays
    /// and dictionaries).
    public static func encode(_ value: [String: Any]) -> [UInt8] {
        // Every value Lethe sends is a property-list type: this cannot fail.
        Array((try? PropertyListSerialization.data(fromPropertyList: value, format: .xml, options: 0)) ?? Data())
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
        if let depth = nesting(bytes), depth > maximumDepth {
            throw LetheError(.unexpectedOutput, path: what, "a plist nested \(depth) deep (at most \(maximumDepth))")
        }
        let object: Any
        do {
            object = try PropertyListSerialization.propertyList(from: Data(bytes), options: [], format: nil)
        } catch {
            throw LetheError(.unexpectedOutput, path: what, "not a property list: \(String(decoding: bytes.prefix(60), as: UTF8.self).debugDescription)")
        }
        return object
    }

    /// An XML plist of any property-list value (an array for DeviceLink).
    public static func encode(any value: Any) -> [UInt8] {
        Array((try? PropertyListSerialization.data(fromPropertyList: value, format: .xml, options: 0)) ?? Data())
    }

    /// How deep an XML plist nests its containers, counted from its tags without parsing it;
    /// for a binary plist, the depth of its object graph (nil when it cannot be told: the parser
    /// then decides).
    static func nesting(_ bytes: [UInt8]) -> Int? {
        if bytes.starts(with: Array("bplist00".utf8)) { return BinaryPlistDepth.depth(bytes) }
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

/// The depth of a binary plist's object graph (bplist00: trailer, offset table, objects),
/// following array and dictionary references without recursion. A cycle counts as too deep.
enum BinaryPlistDepth {
    static func depth(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 8 + 32 else { return nil }
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
            count > 0, count <= bytes.count, top < count, offsetSize >= 1, refSize >= 1
        else { return nil }
        func offset(_ object: Int) -> Int? { uint(table + object * offsetSize, offsetSize) }
        /// The children of an array or dictionary object.
        func children(_ object: Int) -> [Int]? {
            guard let at = offset(object), at < bytes.count else { return nil }
            let marker = bytes[at] >> 4
            guard marker == 0xA || marker == 0xD else { return [] }
            var length = Int(bytes[at] & 0x0f)
            var start = at + 1
            if length == 0x0f {
                guard start < bytes.count else { return nil }
                let power = Int(bytes[start] & 0x0f)
                guard power <= 3, let value = uint(start + 1, 1 << power) else { return nil }
                length = value
                start += 1 + (1 << power)
            }
            let references = marker == 0xD ? length * 2 : length
            guard references <= count * 2 else { return nil }
            var found: [Int] = []
            for i in 0..<references {
                guard let ref = uint(start + i * refSize, refSize), ref < count else { return nil }
                found.append(ref)
            }
            return found
        }
        var deepest = 0
        var stack: [(object: Int, depth: Int)] = [(top, 1)]
        var visits = 0
        while let (object, level) = stack.popLast() {
            visits += 1
            // More visits than objects times the depth limit: a cycle or a bomb of shared refs.
            guard visits <= count * 4 + 1024 else { return Int.max }
            guard let next = children(object) else { return nil }
            if next.isEmpty { continue }
            deepest = max(deepest, level)
            guard level <= Plist.maximumDepth else { return level }
            for child in next { stack.append((child, level + 1)) }
        }
        return deepest
    }
}

/// Typed reads of a plist dictionary: a value of the wrong type is absent, never a crash.
extension Dictionary where Key == String, Value == Any {
    func string(_ key: String) -> String? { self[key] as? String }
    func int(_ key: String) -> Int? {
        // A boolean is not a number here (NSNumber bridges 0 and 1 to Bool, so the dynamic
        // type decides), and a number that does not fit is absent.
        guard let value = self[key], type(of: value) != Bool.self else { return nil }
        if let number = value as? NSNumber { return Int(exactly: number.doubleValue).flatMap { _ in value as? Int } }
        return value as? Int
    }
    func bool(_ key: String) -> Bool? {
        guard let value = self[key], type(of: value) == Bool.self else { return nil }
        return value as? Bool
    }
    func data(_ key: String) -> Data? { self[key] as? Data }
    func dictionary(_ key: String) -> [String: Any]? { self[key] as? [String: Any] }
}
