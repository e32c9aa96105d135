import Foundation
import LetheCore
import LetheTLS
import Synchronization

/// Where an iPhone stands with this host.
public enum PairingState: String, Codable, Sendable {
    /// Paired: a session starts.
    case paired
    /// The phone shows "Trust This Computer?" and waits for a tap.
    case waitingForTrust
    /// "Don't Trust" was tapped: unplug and plug in again.
    case denied
    /// Locked with a passcode: unlock it first.
    case passcodeLocked
    /// The host's record was refused (the phone was erased, or paired elsewhere): it is
    /// deleted and pairing starts again.
    case staleRecord

    /// What the technician must do, for the bay card.
    public var instruction: String {
        switch self {
        case .paired: "paired"
        case .waitingForTrust: "unlock the iPhone and tap Trust"
        case .denied: "\"Don't Trust\" was tapped: unplug the iPhone, plug it in again and tap Trust"
        case .passcodeLocked: "unlock the iPhone with its passcode, then tap Trust"
        case .staleRecord: "the old pairing was refused: unlock the iPhone and tap Trust to pair again"
        }
    }

    /// The state a pairing error means (nil for other errors).
    public init?(_ error: LetheError) {
        switch error.code {
        case .pairingPending: self = .waitingForTrust
        case .pairingDenied: self = .denied
        case .passcodeLocked: self = .passcodeLocked
        case .pairRecordRejected: self = .staleRecord
        default: return nil
        }
    }
}

/// This host's side of the iPhones on usbmuxd: pairing (with the record kept by usbmuxd),
/// lockdown sessions and service connections. Blocking: call it from a thread of its own.
public final class IPhoneHost: Sendable {
    /// The usbmuxd client.
    public let usbmux: UsbmuxClient
    /// Records offered to phones whose trust prompt is still showing, by device key: asking
    /// again sends the same one instead of making new RSA keys each time.
    private let offered = Mutex<[String: PairRecord]>([:])

    /// A host talking to usbmuxd through `usbmux`.
    public init(usbmux: UsbmuxClient) { self.usbmux = usbmux }

    /// A plain lockdown connection to the device.
    public func lockdown(_ device: UsbmuxDevice) throws(LetheError) -> LockdownClient {
        let client = LockdownClient(stream: try usbmux.connect(deviceID: device.deviceID, port: LockdownClient.port), udid: device.udid, timeout: usbmux.timeout)
        do throws(LetheError) {
            let type = try client.queryType()
            guard type == "com.apple.mobile.lockdown" else {
                throw LetheError(.unexpectedOutput, path: device.udid, "port 62078 answered QueryType with \"\(type)\", not lockdownd")
            }
        } catch {
            client.close()
            throw error
        }
        return client
    }

    /// Values a phone gives without pairing (name, product type, iOS version, UDID…).
    public func publicValues(_ device: UsbmuxDevice) throws(LetheError) -> [String: Any] {
        let client = try lockdown(device)
        defer { client.close() }
        return try client.value() as? [String: Any] ?? [:]
    }

    /// Pairs with the phone and stores the record with usbmuxd. Throws `.pairingPending`
    /// (the trust prompt is showing), `.pairingDenied` or `.passcodeLocked`: call again once
    /// the technician acted.
    @discardableResult
    public func pair(_ device: UsbmuxDevice) throws(LetheError) -> PairRecord {
        let buid = try usbmux.readBUID()
        let client = try lockdown(device)
        defer { client.close() }
        guard let key = try client.value(key: "DevicePublicKey") as? Data else {
            throw LetheError(.unexpectedOutput, path: device.udid, "lockdown gave no DevicePublicKey")
        }
        let pem = String(decoding: key, as: UTF8.self)
        var record: PairRecord
        if let earlier = offered.withLock({ $0[pem] }), earlier.systemBUID == buid {
            record = earlier
        } else {
            record = try PairRecord.make(devicePublicKeyPEM: pem, systemBUID: buid)
            record.wifiAddress = try? client.value(key: "WiFiAddress") as? String
            offered.withLock { $0[pem] = record }
        }
        record.escrowBag = try client.pair(record)
        offered.withLock { $0[pem] = nil }
        try usbmux.savePairRecord(udid: device.udid, deviceID: device.deviceID, record: record)
        return record
    }

    /// A lockdown session (TLS) with the phone: with usbmuxd's record, or after pairing. A
    /// record the phone refuses is deleted and pairing starts again; pairing errors (trust
    /// prompt, denied, passcode) are thrown for the technician.
    public func session(_ device: UsbmuxDevice) throws(LetheError) -> (LockdownClient, PairRecord) {
        var record = try usbmux.readPairRecord(udid: device.udid)
        if record == nil { record = try pair(device) }
        guard var record else { throw LetheError(.unexpectedOutput, path: device.udid, "no pair record") }
        var client = try lockdown(device)
        do {
            try client.startSession(record)
        } catch where error.code == .pairRecordRejected {
            client.close()
            try usbmux.deletePairRecord(udid: device.udid)
            record = try pair(device)
            client = try lockdown(device)
            do { try client.startSession(record) } catch {
                client.close()
                throw error
            }
        } catch {
            client.close()
            throw error
        }
        return (client, record)
    }

    /// Where the phone stands with this host now (reads only; never shows the prompt
    /// twice): paired when a session starts with the stored record.
    public func pairingState(_ device: UsbmuxDevice) -> Result<PairingState, LetheError> {
        do throws(LetheError) {
            guard let record = try usbmux.readPairRecord(udid: device.udid) else { return .success(.waitingForTrust) }
            let client = try lockdown(device)
            defer { client.close() }
            try client.startSession(record)
            return .success(.paired)
        } catch {
            return PairingState(error).map { .success($0) } ?? .failure(error)
        }
    }

    /// A connection to a service the session started (TLS when the phone asks for it).
    public func service(_ name: String, on device: UsbmuxDevice, session: LockdownClient, record: PairRecord) throws(LetheError) -> ServiceClient {
        let (port, ssl) = try session.startService(name)
        var stream = try usbmux.connect(deviceID: device.deviceID, port: port)
        if ssl {
            stream = try TLSStream(
                over: stream, role: .client, certificatePEM: record.rootCertificatePEM, privateKeyPEM: record.rootPrivateKeyPEM,
                name: "\(name) \(device.udid)", deadline: .now + usbmux.timeout)
        }
        return ServiceClient(name: name, stream: stream, timeout: usbmux.timeout)
    }
}

/// A service on the phone that speaks length-framed plists (diagnostics_relay, MCInstall).
public final class ServiceClient: @unchecked Sendable {
    public let name: String
    let stream: any ByteStream
    let timeout: Duration

    init(name: String, stream: any ByteStream, timeout: Duration) {
        self.name = name
        self.stream = stream
        self.timeout = timeout
    }

    /// Sends a request and reads its answer.
    public func call(_ request: [String: Any], timeout: Duration? = nil) throws(LetheError) -> [String: Any] {
        let deadline = ContinuousClock.now + (timeout ?? self.timeout)
        try LockdownClient.send(request, on: stream, deadline: deadline)
        return try LockdownClient.receive(on: stream, deadline: deadline, what: name)
    }

    /// Closes the connection.
    public func close() { stream.close() }
}
