/// Why a TCG exchange failed: the command that failed, an answer that could not be read, or a
/// method status other than SUCCESS (named as the specification names it).
public struct TCGFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// What Lethe was doing ("StartSession on the Admin SP as PSID").
    public var step: String
    /// The method status, when the TPer answered with one.
    public var status: TCGMethodStatus?
    /// What went wrong otherwise.
    public var detail: String

    public init(step: String, status: TCGMethodStatus? = nil, detail: String = "") {
        self.step = step
        self.status = status
        self.detail = detail
    }

    public var description: String {
        if let status { return "\(step): \(status)" + (detail.isEmpty ? "" : ": \(detail)") }
        return "\(step): \(detail)"
    }

    /// The failure with the technician's next step when a credential was refused
    /// (NOT_AUTHORIZED) or its tries are spent (AUTHORITY_LOCKED_OUT); other failures as they are.
    func advising(notAuthorized: String, lockedOut: String) -> TCGFailure {
        var failure = self
        switch status {
        case TCGMethodStatus.notAuthorized: failure.detail = notAuthorized
        case TCGMethodStatus.authorityLockedOut: failure.detail = lockedOut
        default: break
        }
        return failure
    }
}

/// One exchange with a TPer: the request and the answer as they went over the wire, for the
/// certificate's record of commands and answers. Secrets (PSID, SID password) are masked.
public struct TCGExchange: Codable, Sendable, Equatable {
    public var step: String
    /// The request's tokens, with challenge atoms replaced by `h'<masked>'`.
    public var request: String
    /// The answer's tokens, or the failure.
    public var answer: String
    /// The TPer answered SUCCESS (or ended the session as asked).
    public var succeeded: Bool
}

/// The host side of TCG sessions on one ComID, over any transport (commands as data).
public final class TCGHost {
    public let transport: any CommandTransport
    public let interface: SecurityInterface
    public let comID: UInt16
    /// Every exchange so far, secrets masked.
    public private(set) var exchanges: [TCGExchange] = []
    private var tperSession: UInt32 = 0
    private var hostSession: UInt32 = 0
    /// How many IF-RECV polls an answer may take before the TPer is declared unresponsive.
    public var pollLimit = 50

    public init(transport: any CommandTransport, interface: SecurityInterface, comID: UInt16) {
        self.transport = transport
        self.interface = interface
        self.comID = comID
    }

    /// Sends one method call and reads its answer. `secret` atoms are masked in the record.
    public func call(_ method: TCGMethodCall, step: String, secret: [UInt8]? = nil) throws(TCGFailure) -> TCGMethodResponse {
        let request = method.tokens
        let shown = request.map { token -> String in
            if let secret, case .bytes(let bytes) = token, bytes == secret { return "h'<masked>'" }
            return token.description
        }.joined(separator: " ")
        let answer: [UInt8]
        do throws(TCGFailure) {
            answer = try exchange(TCGToken.encode(request), step: step)
        } catch {
            exchanges.append(TCGExchange(step: step, request: shown, answer: error.detail, succeeded: false))
            throw error
        }
        let tokens: [TCGToken]
        let response: TCGMethodResponse
        do throws(TCGParseError) {
            tokens = try TCGToken.decode(answer)
            response = try TCGMethodResponse(tokens: tokens)
        } catch {
            exchanges.append(TCGExchange(step: step, request: shown, answer: "unreadable: \(error)", succeeded: false))
            throw TCGFailure(step: step, detail: "the answer is not a TCG method response: \(error)")
        }
        exchanges.append(TCGExchange(
            step: step, request: shown, answer: tokens.map(\.description).joined(separator: " "), succeeded: response.status == .success))
        return response
    }

    /// IF-SEND the payload in a ComPacket, then IF-RECV until the answer is there.
    func exchange(_ payload: [UInt8], step: String) throws(TCGFailure) -> [UInt8] {
        let packet = TCGComPacket(comID: comID, tperSession: tperSession, hostSession: hostSession, payload: payload)
        do {
            _ = try transport.send(.securitySend(interface, protocolID: 1, comID: comID, data: packet.encoded()))
        } catch {
            throw TCGFailure(step: step, detail: "IF-SEND failed: \(error.description)")
        }
        var length = 2048
        for _ in 0..<pollLimit {
            let bytes: [UInt8]
            do {
                bytes = try transport.execute(.securityReceive(interface, protocolID: 1, comID: comID, length: length))
            } catch {
                throw TCGFailure(step: step, detail: "IF-RECV failed: \(error.description)")
            }
            let answer: TCGComPacket
            do throws(TCGParseError) {
                answer = try TCGComPacket(decoding: bytes)
            } catch {
                throw TCGFailure(step: step, detail: "unreadable ComPacket: \(error)")
            }
            guard answer.comID == comID else { throw TCGFailure(step: step, detail: "answer on ComID 0x\(String(answer.comID, radix: 16)), sent on 0x\(String(comID, radix: 16))") }
            if !answer.payload.isEmpty { return answer.payload }
            // Not ready yet, or more room needed: ask again (with a bigger buffer if asked).
            if answer.minTransfer > UInt32(length) { length = min(65_536, (Int(answer.minTransfer) + 511) / 512 * 512) }
        }
        throw TCGFailure(step: step, detail: "no answer after \(pollLimit) IF-RECV polls")
    }

    /// Starts a session on `sp`, authenticating as `authority` with `challenge` when given.
    public func startSession(sp: [UInt8], authority: [UInt8]? = nil, challenge: [UInt8]? = nil, step: String) throws(TCGFailure) {
        tperSession = 0
        hostSession = 0
        let host: UInt32 = 0x4C45_5448  // "LETH"
        let response = try call(.startSession(hostSession: host, sp: sp, challenge: challenge, authority: authority), step: step, secret: challenge)
        guard response.status == .success else { throw TCGFailure(step: step, status: response.status) }
        guard response.results.count >= 2, case .uint(let echoed) = response.results[0], case .uint(let tper) = response.results[1],
            echoed == UInt64(host), tper <= UInt64(UInt32.max)
        else {
            throw TCGFailure(step: step, detail: "SyncSession did not carry the host and TPer session numbers: \(response.results)")
        }
        hostSession = host
        tperSession = UInt32(tper)
    }

    /// Ends the session (End of Session token; the TPer answers with one).
    public func endSession(step: String = "end the session") {
        guard tperSession != 0 else { return }
        _ = try? exchange(TCGToken.encode([.endOfSession]), step: step)
        tperSession = 0
        hostSession = 0
    }

    /// The session ended on the TPer's side (a Revert ends it).
    public func forgetSession() {
        tperSession = 0
        hostSession = 0
    }
}

extension TCGHost {
    /// Get on `uid`, columns `columns`: the answer's column → value pairs.
    public func get(_ uid: [UInt8], columns: ClosedRange<UInt64>, step: String) throws(TCGFailure) -> [UInt64: TCGToken] {
        let cellBlock: [TCGToken] = [
            .startList, .startName, .uint(3), .uint(columns.lowerBound), .endName, .startName, .uint(4), .uint(columns.upperBound), .endName, .endList,
        ]
        let response = try call(TCGMethodCall(invoking: uid, method: TCGUID.get, arguments: cellBlock), step: step)
        guard response.status == .success else { throw TCGFailure(step: step, status: response.status) }
        return response.namedValues
    }

    /// Set on `uid`: each (column, value) pair in the Values list.
    public func set(_ uid: [UInt8], values: [(UInt64, UInt64)], step: String) throws(TCGFailure) {
        let pairs = values.flatMap { [TCGToken.startName, .uint($0.0), .uint($0.1), .endName] }
        let arguments: [TCGToken] = [.startName, .uint(1), .startList] + pairs + [.endList, .endName]
        let response = try call(TCGMethodCall(invoking: uid, method: TCGUID.set, arguments: arguments), step: step)
        guard response.status == .success else { throw TCGFailure(step: step, status: response.status) }
    }
}
