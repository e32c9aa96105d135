/// UIDs of the objects and methods Lethe uses (TCG Core 2.01 §5; Opal SSC 2.02 §4.2).
public enum TCGUID {
    public static let sessionManager: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0xFF]
    public static let thisSP: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0x01]
    public static let adminSP: [UInt8] = [0, 0, 0x02, 0x05, 0, 0, 0, 0x01]
    public static let lockingSP: [UInt8] = [0, 0, 0x02, 0x05, 0, 0, 0, 0x02]
    public static let anybody: [UInt8] = [0, 0, 0, 0x09, 0, 0, 0, 0x01]
    public static let sidAuthority: [UInt8] = [0, 0, 0, 0x09, 0, 0, 0, 0x06]
    public static let psidAuthority: [UInt8] = [0, 0, 0, 0x09, 0, 0x01, 0xFF, 0x01]
    public static let admin1Authority: [UInt8] = [0, 0, 0, 0x09, 0, 0x01, 0, 0x01]
    public static let msidPIN: [UInt8] = [0, 0, 0, 0x0B, 0, 0, 0x84, 0x02]
    public static let globalRange: [UInt8] = [0, 0, 0x08, 0x02, 0, 0, 0, 0x01]
    public static let globalRangeKeyAES256: [UInt8] = [0, 0, 0x08, 0x06, 0, 0, 0, 0x01]
    public static let lockingInfo: [UInt8] = [0, 0, 0x08, 0x01, 0, 0, 0, 0x01]
    public static let mbrControl: [UInt8] = [0, 0, 0x08, 0x03, 0, 0, 0, 0x01]

    public static let startSession: [UInt8] = [0, 0, 0, 0, 0, 0, 0xFF, 0x02]
    public static let syncSession: [UInt8] = [0, 0, 0, 0, 0, 0, 0xFF, 0x03]
    public static let get: [UInt8] = [0, 0, 0, 0x06, 0, 0, 0, 0x16]
    public static let set: [UInt8] = [0, 0, 0, 0x06, 0, 0, 0, 0x17]
    public static let genKey: [UInt8] = [0, 0, 0, 0x06, 0, 0, 0, 0x10]
    public static let revert: [UInt8] = [0, 0, 0, 0x06, 0, 0, 0x02, 0x02]
    public static let revertSP: [UInt8] = [0, 0, 0, 0x06, 0, 0, 0, 0x11]

    /// A UID as 16 hex digits, for records and certificates.
    public static func text(_ uid: [UInt8]) -> String { uid.map { hexPair($0) }.joined() }
}

/// Method status codes (TCG Core 2.01 §5.1.5).
public struct TCGMethodStatus: RawRepresentable, Sendable, Equatable, Codable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let success = TCGMethodStatus(rawValue: 0x00)
    public static let notAuthorized = TCGMethodStatus(rawValue: 0x01)
    public static let spBusy = TCGMethodStatus(rawValue: 0x03)
    public static let spFailed = TCGMethodStatus(rawValue: 0x04)
    public static let spDisabled = TCGMethodStatus(rawValue: 0x05)
    public static let spFrozen = TCGMethodStatus(rawValue: 0x06)
    public static let noSessionsAvailable = TCGMethodStatus(rawValue: 0x07)
    public static let invalidParameter = TCGMethodStatus(rawValue: 0x0C)
    public static let tperMalfunction = TCGMethodStatus(rawValue: 0x0F)
    public static let transactionFailure = TCGMethodStatus(rawValue: 0x10)
    public static let authorityLockedOut = TCGMethodStatus(rawValue: 0x12)
    public static let fail = TCGMethodStatus(rawValue: 0x3F)

    static let names: [UInt8: String] = [
        0x00: "SUCCESS", 0x01: "NOT_AUTHORIZED", 0x03: "SP_BUSY", 0x04: "SP_FAILED", 0x05: "SP_DISABLED", 0x06: "SP_FROZEN",
        0x07: "NO_SESSIONS_AVAILABLE", 0x08: "UNIQUENESS_CONFLICT", 0x09: "INSUFFICIENT_SPACE", 0x0A: "INSUFFICIENT_ROWS",
        0x0C: "INVALID_PARAMETER", 0x0F: "TPER_MALFUNCTION", 0x10: "TRANSACTION_FAILURE", 0x11: "RESPONSE_OVERFLOW",
        0x12: "AUTHORITY_LOCKED_OUT", 0x3F: "FAIL",
    ]

    /// The name the specification gives it, e.g. `AUTHORITY_LOCKED_OUT (0x12)`.
    public var description: String { "\(Self.names[rawValue] ?? "status") (0x\(hexPair(rawValue)))" }
}

/// A method invocation as a token stream (TCG Core 2.01 §3.2.4.1): CALL, the invoking UID, the
/// method UID, the argument list, end of data, and the (empty) status list.
public struct TCGMethodCall: Sendable, Equatable {
    public var invoking: [UInt8]
    public var method: [UInt8]
    /// The argument tokens, without the surrounding list.
    public var arguments: [TCGToken]

    public init(invoking: [UInt8], method: [UInt8], arguments: [TCGToken] = []) {
        self.invoking = invoking
        self.method = method
        self.arguments = arguments
    }

    public var tokens: [TCGToken] {
        [.call, .bytes(invoking), .bytes(method), .startList] + arguments + [.endList, .endOfData, .startList, .uint(0), .uint(0), .uint(0), .endList]
    }

    /// StartSession on the session manager (Core §5.2.3.1): host session number, the SP,
    /// read-write, and when given, the challenge (password or PSID) and the authority.
    public static func startSession(hostSession: UInt32, sp: [UInt8], challenge: [UInt8]? = nil, authority: [UInt8]? = nil) -> TCGMethodCall {
        var arguments: [TCGToken] = [.uint(UInt64(hostSession)), .bytes(sp), .uint(1)]
        if let challenge { arguments += [.startName, .uint(0), .bytes(challenge), .endName] }
        if let authority { arguments += [.startName, .uint(3), .bytes(authority), .endName] }
        return TCGMethodCall(invoking: TCGUID.sessionManager, method: TCGUID.startSession, arguments: arguments)
    }
}

/// What came back for one method call: its status and the result tokens.
public struct TCGMethodResponse: Sendable, Equatable {
    public var status: TCGMethodStatus
    /// The tokens of the result list (for a session-manager answer: the arguments of its CALL).
    public var results: [TCGToken]
    /// The TPer closed the session (a bare End of Session token).
    public var endOfSession: Bool

    /// Reads a method's answer: `[results] EOD [status 0 0]`, or the session manager's
    /// `CALL SMUID method [args] EOD [status 0 0]`, or a bare End of Session.
    public init(tokens: [TCGToken]) throws(TCGParseError) {
        if tokens == [.endOfSession] {
            status = .success
            results = []
            endOfSession = true
            return
        }
        endOfSession = false
        guard let eod = tokens.lastIndex(of: .endOfData) else { throw TCGParseError(offset: 0, "method answer without End of Data") }
        let tail = Array(tokens[(eod + 1)...])
        guard tail.count == 5, tail[0] == .startList, tail[4] == .endList, case .uint(let code) = tail[1], code <= 0xFF else {
            throw TCGParseError(offset: 0, "method answer without a status list [status 0 0] after End of Data: \(tail)")
        }
        status = TCGMethodStatus(rawValue: UInt8(code))
        var body = Array(tokens[..<eod])
        if body.first == .call {
            guard body.count >= 5 else { throw TCGParseError(offset: 0, "session manager CALL cut short") }
            body.removeFirst(3)
        }
        guard body.isEmpty || (body.first == .startList && body.last == .endList) else {
            throw TCGParseError(offset: 0, "method results are not one list: \(body.prefix(8))")
        }
        results = body.isEmpty ? [] : Array(body.dropFirst().dropLast())
    }
}
