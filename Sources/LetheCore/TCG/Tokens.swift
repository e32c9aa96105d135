/// The TCG data stream (TCG Storage Architecture Core Specification 2.01, §3.2.2): atoms
/// (integers and byte strings in tiny, short, medium and long form) and control tokens.
/// Method calls, their arguments and their results travel as a flat sequence of tokens.
public enum TCGToken: Sendable, Equatable, CustomStringConvertible {
    /// An unsigned integer atom.
    case uint(UInt64)
    /// A signed integer atom.
    case int(Int64)
    /// A byte-string atom (UIDs, passwords, names).
    case bytes([UInt8])
    case startList, endList, startName, endName, call, endOfData, endOfSession, startTransaction, endTransaction
    /// The empty atom (FFh), which carries nothing.
    case empty

    public var description: String {
        switch self {
        case .uint(let value): return "\(value)"
        case .int(let value): return "\(value)s"
        case .bytes(let bytes): return "h'" + bytes.map { hexPair($0) }.joined() + "'"
        case .startList: return "["
        case .endList: return "]"
        case .startName: return "{"
        case .endName: return "}"
        case .call: return "CALL"
        case .endOfData: return "EOD"
        case .endOfSession: return "EOS"
        case .startTransaction: return "ST"
        case .endTransaction: return "ET"
        case .empty: return "EMPTY"
        }
    }

    /// Control token bytes (§3.2.2.3.2).
    static let controlBytes: [(UInt8, TCGToken)] = [
        (0xF0, .startList), (0xF1, .endList), (0xF2, .startName), (0xF3, .endName), (0xF8, .call), (0xF9, .endOfData),
        (0xFA, .endOfSession), (0xFB, .startTransaction), (0xFC, .endTransaction), (0xFF, .empty),
    ]
}

/// Why a token stream could not be read: the offset and what was wrong there.
public struct TCGParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Byte offset in the stream.
    public var offset: Int
    /// What was wrong.
    public var message: String

    public init(offset: Int, _ message: String) {
        self.offset = offset
        self.message = message
    }

    public var description: String { "TCG data at byte \(offset): \(message)" }
}

extension TCGToken {
    /// Encodes tokens in the shortest atom form, as a host must (§3.2.2.3.1).
    public static func encode(_ tokens: [TCGToken]) -> [UInt8] {
        var out: [UInt8] = []
        for token in tokens { token.append(to: &out) }
        return out
    }

    func append(to out: inout [UInt8]) {
        switch self {
        case .uint(let value):
            if value < 64 {
                out.append(UInt8(value))
            } else {
                var bytes = withUnsafeBytes(of: value.bigEndian) { Array($0) }
                while bytes.count > 1 && bytes[0] == 0 { bytes.removeFirst() }
                out.append(0x80 | UInt8(bytes.count))
                out.append(contentsOf: bytes)
            }
        case .int(let value):
            if value >= -32 && value < 32 {
                out.append(0x40 | (UInt8(bitPattern: Int8(value)) & 0x3F))
            } else {
                var bytes = withUnsafeBytes(of: value.bigEndian) { Array($0) }
                let sign: UInt8 = value < 0 ? 0xFF : 0
                while bytes.count > 1 && bytes[0] == sign && (bytes[1] & 0x80) == (sign & 0x80) { bytes.removeFirst() }
                out.append(0x90 | UInt8(bytes.count))
                out.append(contentsOf: bytes)
            }
        case .bytes(let bytes):
            switch bytes.count {
            case ..<16:
                out.append(0xA0 | UInt8(bytes.count))
            case ..<2048:
                out.append(0xD0 | UInt8(bytes.count >> 8))
                out.append(UInt8(bytes.count & 0xFF))
            default:
                out.append(0xE2)
                out.append(UInt8((bytes.count >> 16) & 0xFF))
                out.append(UInt8((bytes.count >> 8) & 0xFF))
                out.append(UInt8(bytes.count & 0xFF))
            }
            out.append(contentsOf: bytes)
        default:
            out.append(Self.controlBytes.first { $0.1 == self }!.0)
        }
    }

    /// Reads a token stream. Every atom form is accepted (a TPer may answer in any), and every
    /// length is checked against the bytes that are there; integers wider than 8 bytes, the
    /// reserved token values and continued atoms are refused with their offset.
    public static func decode(_ bytes: [UInt8]) throws(TCGParseError) -> [TCGToken] {
        var tokens: [TCGToken] = []
        var at = 0
        while at < bytes.count {
            let head = bytes[at]
            let start = at
            var isBytes = false
            var signed = false
            var length = 0
            switch head {
            case 0x00...0x3F:
                tokens.append(.uint(UInt64(head)))
                at += 1
                continue
            case 0x40...0x7F:
                tokens.append(.int(Int64(Int8(bitPattern: (head & 0x3F) << 2) >> 2)))
                at += 1
                continue
            case 0x80...0xBF:
                isBytes = head & 0x20 != 0
                signed = head & 0x10 != 0
                length = Int(head & 0x0F)
                at += 1
            case 0xC0...0xDF:
                guard at + 1 < bytes.count else { throw TCGParseError(offset: start, "medium atom header cut short") }
                isBytes = head & 0x10 != 0
                signed = head & 0x08 != 0
                length = Int(head & 0x07) << 8 | Int(bytes[at + 1])
                at += 2
            case 0xE0...0xE3:
                guard at + 3 < bytes.count else { throw TCGParseError(offset: start, "long atom header cut short") }
                isBytes = head & 0x02 != 0
                signed = head & 0x01 != 0
                length = Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
                at += 4
            default:
                guard let control = controlBytes.first(where: { $0.0 == head }) else {
                    throw TCGParseError(offset: start, "reserved token 0x\(hexPair(head))")
                }
                tokens.append(control.1)
                at += 1
                continue
            }
            guard length <= bytes.count - at else {
                throw TCGParseError(offset: start, "atom of \(length) bytes, only \(bytes.count - at) left")
            }
            let value = Array(bytes[at..<(at + length)])
            at += length
            if isBytes {
                // A "continued" byte string (sign bit set on a byte atom) is not used by Opal.
                guard !signed else { throw TCGParseError(offset: start, "continued byte strings are not supported") }
                tokens.append(.bytes(value))
            } else {
                guard length <= 8 else { throw TCGParseError(offset: start, "integer of \(length) bytes (more than 8)") }
                var unsigned: UInt64 = 0
                for byte in value { unsigned = unsigned << 8 | UInt64(byte) }
                if signed {
                    let shift = UInt64(64 - 8 * max(length, 1))
                    tokens.append(.int(length == 0 ? 0 : Int64(bitPattern: unsigned << shift) >> Int64(shift)))
                } else {
                    tokens.append(.uint(unsigned))
                }
            }
        }
        return tokens
    }
}
