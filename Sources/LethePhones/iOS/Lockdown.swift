import Foundation
import LetheCore
import LetheTLS

/// lockdownd, the phone's service on TCP port 62078 (reached through a usbmux tunnel):
/// 4-byte big-endian length-framed plists; `QueryType`, `GetValue`, `Pair`, `StartSession`
/// (which turns the connection into TLS) and `StartService`. Its `Error` answers become named
/// errors: a pairing prompt waiting for the technician, a denied prompt, a passcode-locked
/// phone, a pair record the phone no longer accepts.
public final class LockdownClient: @unchecked Sendable {
    /// lockdownd's port on the device.
    public static let port: UInt16 = 62078

    private var stream: any ByteStream
    /// The phone's UDID, for messages.
    public let udid: String
    let timeout: Duration
    /// The session's TLS is on.
    public private(set) var secure = false

    /// A client over a tunnel to port 62078.
    public init(stream: any ByteStream, udid: String, timeout: Duration = .seconds(10)) {
        self.stream = stream
        self.udid = udid
        self.timeout = timeout
    }

    /// Closes the connection.
    public func close() { stream.close() }

    /// Sends one framed plist.
    static func send(_ body: [String: Any], on stream: any ByteStream, deadline: ContinuousClock.Instant) throws(LetheError) {
        let bytes = try Plist.encode(body, what: "lockdown request")
        let length = UInt32(bytes.count)
        try stream.write([UInt8(length >> 24), UInt8((length >> 16) & 0xff), UInt8((length >> 8) & 0xff), UInt8(length & 0xff)] + bytes, deadline: deadline)
    }

    /// Reads one framed plist.
    static func receive(on stream: any ByteStream, deadline: ContinuousClock.Instant, what: String) throws(LetheError) -> [String: Any] {
        let header = try stream.read(exactly: 4, deadline: deadline, what: what)
        let length = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
        guard length > 0, length <= Plist.maximumBytes else {
            throw LetheError(.unexpectedOutput, path: what, "a message of \(length) bytes")
        }
        return try Plist.decode(try stream.read(exactly: length, deadline: deadline, what: what), what: what)
    }

    /// One request and its answer; an `Error` answer throws, named.
    func call(_ request: String, _ fields: [String: Any] = [:]) throws(LetheError) -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        var body: [String: Any] = ["Request": request, "Label": "lethe"]
        body.merge(fields) { $1 }
        try Self.send(body, on: stream, deadline: deadline)
        let answer = try Self.receive(on: stream, deadline: deadline, what: "lockdown \(request)")
        if let error = answer.string("Error") { throw Self.named(error, request: request, udid: udid) }
        return answer
    }

    /// lockdownd's error names as Lethe errors a technician can act on.
    static func named(_ error: String, request: String, udid: String) -> LetheError {
        switch error {
        case "PairingDialogResponsePending":
            LetheError(.pairingPending, path: udid, "the iPhone asks \"Trust This Computer?\": unlock it and tap Trust")
        case "UserDeniedPairing":
            LetheError(.pairingDenied, path: udid, "the technician tapped \"Don't Trust\" on the iPhone: unplug it and plug it in again, then tap Trust")
        case "PasswordProtected":
            LetheError(.passcodeLocked, path: udid, "the iPhone is locked with a passcode: unlock it (enter the passcode) to pair")
        case "InvalidHostID", "InvalidPairRecord":
            LetheError(.pairRecordRejected, path: udid, "the iPhone no longer accepts this host's pair record (\(error)): it is deleted and the iPhone paired again")
        default:
            LetheError(.unexpectedOutput, path: udid, "lockdown \(request): \(error)")
        }
    }

    /// `com.apple.mobile.lockdown` for lockdownd.
    public func queryType() throws(LetheError) -> String {
        try call("QueryType").string("Type") ?? ""
    }

    /// A value (a key, a domain's dictionary, or every value with neither).
    public func value(domain: String? = nil, key: String? = nil) throws(LetheError) -> Any? {
        var fields: [String: Any] = [:]
        if let domain { fields["Domain"] = domain }
        if let key { fields["Key"] = key }
        return try call("GetValue", fields)["Value"]
    }

    /// Pairs: the phone shows its trust prompt; until the technician taps, this throws
    /// `.pairingPending`. Returns the escrow bag the phone gives on success.
    public func pair(_ record: PairRecord) throws(LetheError) -> Data? {
        let answer = try call("Pair", [
            "PairRecord": record.pairRequestRecord, "ProtocolVersion": "2", "PairingOptions": ["ExtendedPairingErrors": true],
        ])
        return answer.data("EscrowBag")
    }

    /// Starts a session with a pair record; when the phone asks for it, the connection turns
    /// into TLS (this host presents the root certificate, as libimobiledevice does). Returns
    /// the session id.
    @discardableResult
    public func startSession(_ record: PairRecord) throws(LetheError) -> String {
        let answer = try call("StartSession", ["HostID": record.hostID, "SystemBUID": record.systemBUID])
        guard let session = answer.string("SessionID") else {
            throw LetheError(.unexpectedOutput, path: udid, "lockdown StartSession: no SessionID in the answer")
        }
        if answer.bool("EnableSessionSSL") == true {
            stream = try TLSStream(
                over: stream, role: .client, certificatePEM: record.rootCertificatePEM, privateKeyPEM: record.rootPrivateKeyPEM,
                name: "lockdown \(udid)", deadline: .now + timeout)
            secure = true
        }
        return session
    }

    /// Starts a service on the phone: the port to connect to, and whether it speaks TLS.
    public func startService(_ name: String) throws(LetheError) -> (port: UInt16, ssl: Bool) {
        let answer = try call("StartService", ["Service": name])
        guard let port = answer.int("Port"), let value = UInt16(exactly: port), value > 0 else {
            throw LetheError(.unexpectedOutput, path: udid, "lockdown StartService \(name): no port in the answer")
        }
        return (value, answer.bool("EnableServiceSSL") ?? false)
    }
}
