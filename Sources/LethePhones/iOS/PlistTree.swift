import CPlist
import Foundation

/// Swift values to and from libplist's node trees. libplist is the parser libimobiledevice
/// and usbmuxd use with every iPhone on Linux, fuzzed continuously by OSS-Fuzz; Foundation's
/// parser on Linux crashed on a binary plist holding a set and leaked on every malformed one.
///
/// Values are plain Swift: `String`, `Int`, `Bool`, `Double`, `Data`, `Date`, `[Any]` and
/// `[String: Any]`. libplist 2.2 keeps integers as 64 bits without a sign: one above
/// `Int.max` (which no iPhone sends) reads as negative, and the readers treat both as absent.
enum PlistTree {
    /// Parses XML or binary plist bytes; nil when libplist cannot read them.
    static func parse(_ bytes: [UInt8]) -> Any? {
        var root: plist_t?
        bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                plist_from_memory(chars.baseAddress, UInt32(chars.count), &root)
            }
        }
        guard let root else { return nil }
        defer { plist_free(root) }
        return value(of: root)
    }

    /// An XML plist of `value`; nil when it holds something a plist cannot.
    static func xml(_ value: Any) -> [UInt8]? {
        guard let root = node(of: value) else { return nil }
        defer { plist_free(root) }
        var text: UnsafeMutablePointer<CChar>?
        var length: UInt32 = 0
        plist_to_xml(root, &text, &length)
        guard let text else { return nil }
        defer { plist_to_xml_free(text) }
        return text.withMemoryRebound(to: UInt8.self, capacity: Int(length)) { Array(UnsafeBufferPointer(start: $0, count: Int(length))) }
    }

    /// The Swift value of a node (nil for UIDs and anything else a plist should not hold).
    private static func value(of node: plist_t) -> Any? {
        switch plist_get_node_type(node) {
        case PLIST_BOOLEAN:
            var flag: UInt8 = 0
            plist_get_bool_val(node, &flag)
            return flag != 0
        case PLIST_UINT:
            var number: UInt64 = 0
            plist_get_uint_val(node, &number)
            return Int(truncatingIfNeeded: number)
        case PLIST_REAL:
            var number = 0.0
            plist_get_real_val(node, &number)
            return number
        case PLIST_STRING:
            var length: UInt64 = 0
            guard let pointer = plist_get_string_ptr(node, &length) else { return "" }
            return pointer.withMemoryRebound(to: UInt8.self, capacity: Int(length)) {
                String(decoding: UnsafeBufferPointer(start: $0, count: Int(length)), as: UTF8.self)
            }
        case PLIST_DATA:
            var length: UInt64 = 0
            guard let pointer = plist_get_data_ptr(node, &length), length > 0 else { return Data() }
            return Data(bytes: pointer, count: Int(length))
        case PLIST_DATE:
            var seconds: Int32 = 0, microseconds: Int32 = 0
            plist_get_date_val(node, &seconds, &microseconds)
            return Date(timeIntervalSinceReferenceDate: Double(seconds) + Double(microseconds) / 1_000_000)
        case PLIST_ARRAY:
            let count = plist_array_get_size(node)
            var items: [Any] = []
            items.reserveCapacity(Int(count))
            for index in 0..<count {
                if let item = plist_array_get_item(node, index), let value = value(of: item) { items.append(value) }
            }
            return items
        case PLIST_DICT:
            var entries: [String: Any] = [:]
            var iterator: plist_dict_iter?
            plist_dict_new_iter(node, &iterator)
            guard let iterator else { return entries }
            defer { free(iterator) }
            while true {
                var key: UnsafeMutablePointer<CChar>?
                var item: plist_t?
                plist_dict_next_item(node, iterator, &key, &item)
                guard let key else { break }
                defer { free(key) }
                if let item, let value = value(of: item) { entries[String(cString: key)] = value }
            }
            return entries
        default:
            return nil
        }
    }

    /// A new node for a Swift value (the caller frees it), or nil for a value a plist cannot
    /// hold. Booleans are told from numbers by their dynamic type.
    private static func node(of value: Any) -> plist_t? {
        if type(of: value) == Bool.self, let flag = value as? Bool { return plist_new_bool(flag ? 1 : 0) }
        switch value {
        case let text as String:
            return plist_new_string(text)
        case let number as Int:
            return plist_new_uint(UInt64(bitPattern: Int64(number)))
        case let number as UInt64:
            return plist_new_uint(number)
        case let number as Double:
            return plist_new_real(number)
        case let data as Data:
            return data.withUnsafeBytes { plist_new_data($0.bindMemory(to: CChar.self).baseAddress, UInt64(data.count)) }
        case let bytes as [UInt8]:
            return bytes.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { plist_new_data($0.baseAddress, UInt64(bytes.count)) }
            }
        case let date as Date:
            let interval = date.timeIntervalSinceReferenceDate
            let seconds = interval.rounded(.down)
            return plist_new_date(Int32(clamping: Int(seconds)), Int32((interval - seconds) * 1_000_000))
        case let items as [Any]:
            let array = plist_new_array()
            for item in items {
                guard let child = node(of: item) else {
                    plist_free(array)
                    return nil
                }
                plist_array_append_item(array, child)
            }
            return array
        case let entries as [String: Any]:
            let dictionary = plist_new_dict()
            // Sorted keys: the same value always makes the same bytes.
            for (key, item) in entries.sorted(by: { $0.key < $1.key }) {
                guard let child = node(of: item) else {
                    plist_free(dictionary)
                    return nil
                }
                plist_dict_set_item(dictionary, key, child)
            }
            return dictionary
        default:
            return nil
        }
    }
}
