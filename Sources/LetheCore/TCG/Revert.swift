/// Revert of the Admin SP (Opal SSC 2.02 §5.2.2; TCG Storage Feature Set: PSID): the TPer
/// goes back to its factory state, and every locking range's media key is regenerated, so
/// what was written reads as noise. Authorised by the PSID printed on the drive's label, or by
/// the SID password (the MSID while nobody took ownership).
public enum TCGRevert {
    /// Who authorises it.
    public enum Authority: String, Sendable, Codable {
        case psid, sid

        var uid: [UInt8] { self == .psid ? TCGUID.psidAuthority : TCGUID.sidAuthority }
        var label: String { self == .psid ? "PSID" : "SID" }
    }

    /// Runs it: a session on the Admin SP as `authority` with `credential`, then Revert on the
    /// Admin SP. The TPer ends the session itself. The credential never appears in the
    /// record (`host.exchanges`) nor in an error.
    /// `purpose` prefixes the record's step names ("to unlock: ").
    public static func run(_ host: TCGHost, authority: Authority, credential: [UInt8], purpose: String = "") throws(TCGFailure) {
        let start = "\(purpose)StartSession on the Admin SP as \(authority.label)"
        do {
            try host.startSession(sp: TCGUID.adminSP, authority: authority.uid, challenge: credential, step: start)
        } catch {
            throw explain(error, authority: authority)
        }
        let step = "\(purpose)Revert the Admin SP"
        let response = try host.call(TCGMethodCall(invoking: TCGUID.adminSP, method: TCGUID.revert), step: step)
        host.forgetSession()
        guard response.status == .success else { throw TCGFailure(step: step, status: response.status) }
    }

    /// Whether `text` has a PSID's form: 32 ASCII letters and digits, as drive labels print it.
    /// Checked before anything is sent, because each wrong PSID spends one of the drive's tries.
    public static func isPSID(_ text: String) -> Bool {
        text.count == 32 && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
    }

    /// Reads the MSID, the SID's factory value, which anybody may read (C_PIN_MSID, column 3,
    /// PIN) in an unauthenticated session on the Admin SP.
    public static func readMSID(_ host: TCGHost) throws(TCGFailure) -> [UInt8] {
        try host.startSession(sp: TCGUID.adminSP, step: "StartSession on the Admin SP (Anybody)")
        defer { host.endSession() }
        let step = "Get the MSID (C_PIN_MSID, column PIN)"
        let cells = try host.get(TCGUID.msidPIN, columns: 3...3, step: step)
        guard case .bytes(let pin)? = cells[3], !pin.isEmpty else {
            throw TCGFailure(step: step, detail: "the answer carries no PIN column: \(cells)")
        }
        return pin
    }

    /// The technician's next step for the statuses a wrong or exhausted credential gives.
    static func explain(_ failure: TCGFailure, authority: Authority) -> TCGFailure {
        failure.advising(
            notAuthorized: "the \(authority.label) was not accepted; check it against the label (32 characters for a PSID) and try again",
            lockedOut: "the drive refuses the \(authority.label) after too many wrong tries; power-cycle the drive (unplug it), then try once more with the right one")
    }
}
