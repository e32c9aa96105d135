import Foundation
import LetheCore
import LetheTLS
import Synchronization
import X509
import _CryptoExtras

/// An iPhone as usbmuxd and lockdownd show it, simulated: its values (lockdown domains), its
/// own RSA key, the trust prompt's answers, the hosts it paired with, its services
/// (diagnostics_relay, MCInstall) and what an erase does to it. Served by
/// ``SimulatedUsbmuxd``; Debian's libimobiledevice tools talk to it as to a real phone.
public final class SimulatedIPhone: @unchecked Sendable {
    /// What the technician does at the trust prompt, one answer per `Pair` request: nil pairs,
    /// a lockdown error name (`PairingDialogResponsePending`, `UserDeniedPairing`,
    /// `PasswordProtected`) refuses. When the list runs out, pairing succeeds.
    public typealias TrustAnswers = [String?]

    /// What `EraseDevice` does.
    public enum EraseBehavior: Sendable {
        /// Acknowledged; the phone drops off and comes back (a new usbmux device) after
        /// `seconds`, in setup, unactivated, paired with nobody.
        case reattach(seconds: Double)
        /// Acknowledged; the phone never comes back.
        case vanish
        /// Refused with this MCInstall status (and ErrorChain).
        case refuse(String)
        /// Acknowledged; the phone restarts and comes back, but nothing was erased (a lying or
        /// failed erase): still set up and activated.
        case restartOnly(seconds: Double)
    }

    /// A fault injected into one answer (by request name: `GetValue`, `StartSession`,
    /// `IORegistry`, `GetCloudConfiguration`…).
    public enum Fault: Sendable {
        /// Bytes that are not a plist.
        case garbage
        /// The length says more than is sent, then the connection closes.
        case truncated
        /// The connection closes before any answer.
        case close
    }

    /// The phone's setup.
    public struct Script: @unchecked Sendable {
        public var udid: String
        /// Lockdown's root domain: ProductType, ProductVersion, SerialNumber,
        /// InternationalMobileEquipmentIdentity, ActivationState, DeviceName…
        public var values: [String: Any]
        /// Other domains (`com.apple.disk_usage`, `com.apple.fmip`, …).
        public var domains: [String: [String: Any]] = [:]
        /// The battery's IORegistry entry and its class (`AppleSmartBattery`, or
        /// `AppleARMPMUCharger` on older models).
        public var battery: [String: Any] = [:]
        public var batteryClass = "AppleSmartBattery"
        public var trust: TrustAnswers = []
        /// MCInstall `GetCloudConfiguration` and `GetProfileList`.
        public var cloudConfiguration: [String: Any] = [:]
        public var profiles: [String: Any] = ["OrderedIdentifiers": [String](), "ProfileMetadata": [String: Any]()]
        public var erase: EraseBehavior = .reattach(seconds: 0.5)
        /// What mobilebackup2's `EraseDevice` does (when MCInstall refuses); nil: it refuses too.
        public var mobileBackupErase: EraseBehavior? = .reattach(seconds: 0.5)
        public var faults: [String: Fault] = [:]

        /// A script.
        public init(udid: String, values: [String: Any]) {
            self.udid = udid
            self.values = values
        }
    }

    /// Keys lockdown answers before a session (without pairing).
    static let publicKeys: Set<String> = [
        "DeviceClass", "DeviceName", "ProductType", "ProductVersion", "BuildVersion", "UniqueDeviceID", "HardwareModel",
        "DevicePublicKey", "WiFiAddress", "BluetoothAddress", "CPUArchitecture", "ProductName", "ProtocolVersion",
    ]

    struct State {
        var script: Script
        var trust: TrustAnswers
        var promptShowing = false
        /// HostID → the device certificate that host made (PEM), kept from its `Pair`.
        var hosts: [String: String] = [:]
        var requests: [String] = []
        var erased = false
    }

    let state: Mutex<State>
    let keyPEM: String
    let publicKeyPEM: String
    /// The phone's UDID.
    public let udid: String

    /// A phone with a fresh RSA-2048 key.
    public init(script: Script) throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        keyPEM = key.pemRepresentation
        publicKeyPEM = key.publicKey.pkcs1PEMRepresentation
        udid = script.udid
        var script = script
        script.values["UniqueDeviceID"] = script.udid
        script.values["DevicePublicKey"] = Data(publicKeyPEM.utf8)
        state = Mutex(State(script: script, trust: script.trust))
    }

    /// Every lockdown and service request it answered, in order (`GetValue DeviceName`,
    /// `Pair`, `IORegistry`, `EraseDevice`…).
    public var requests: [String] { state.withLock { $0.requests } }
    /// The hosts it is paired with.
    public var pairedHosts: [String] { state.withLock { Array($0.hosts.keys) } }
    /// True once an erase ran.
    public var erased: Bool { state.withLock { $0.erased } }

    /// Changes its setup (answers, values, faults) while it runs.
    public func update(_ change: (inout Script) -> Void) {
        state.withLock { change(&$0.script) }
    }

    /// The trust prompt shows and stays: every `Pair` is answered "pending" until `tapTrust()`.
    public func showTrustPrompt() { state.withLock { $0.promptShowing = true } }

    /// The technician taps Trust on a prompt `showTrustPrompt()` put up.
    public func tapTrust() { state.withLock { $0.promptShowing = false } }

    /// The phone forgets every host it paired with (as after an erase on another bench): a
    /// stored pair record becomes stale.
    public func forgetHosts() { state.withLock { $0.hosts = [:] } }

    /// What an erase leaves: setup, unactivated, a default name, no host.
    func eraseNow() {
        state.withLock { s in
            s.erased = true
            s.hosts = [:]
            s.trust = []
            s.script.values["ActivationState"] = "Unactivated"
            s.script.values["DeviceName"] = "iPhone"
            s.script.values["ActivationStateAcknowledged"] = false
            s.script.domains["com.apple.fmip"] = ["IsAssociated": false]
            s.script.cloudConfiguration = [:]
            s.script.profiles = ["OrderedIdentifiers": [String](), "ProfileMetadata": [String: Any]()]
        }
    }

    // MARK: - Framing

    static func send(_ body: [String: Any], on stream: any ByteStream) throws(LetheError) {
        let bytes = Array((try? PropertyListSerialization.data(fromPropertyList: body, format: .xml, options: 0)) ?? Data())
        let length = UInt32(bytes.count)
        try stream.write([UInt8(length >> 24), UInt8((length >> 16) & 0xff), UInt8((length >> 8) & 0xff), UInt8(length & 0xff)] + bytes, deadline: .now + .seconds(10))
    }

    /// A framed plist, or nil when the connection closes.
    static func receive(on stream: any ByteStream, idle: Duration = .seconds(60)) -> [String: Any]? {
        guard let header = try? stream.read(exactly: 4, deadline: .now + idle, what: "simulated iPhone") else { return nil }
        let length = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
        guard length > 0, length < 16 << 20, let body = try? stream.read(exactly: length, deadline: .now + .seconds(10), what: "simulated iPhone") else { return nil }
        return (try? PropertyListSerialization.propertyList(from: Data(body), options: [], format: nil)) as? [String: Any]
    }

    /// Answers with `body`, unless a fault is scripted for `request`. False: stop serving.
    func answer(_ request: String, _ body: [String: Any], on stream: any ByteStream) -> Bool {
        let fault = state.withLock { $0.script.faults[request] }
        switch fault {
        case .garbage?:
            let junk = Array("this is not a plist \u{0}\u{1}".utf8)
            try? stream.write([0, 0, 0, UInt8(junk.count)] + junk, deadline: .now + .seconds(5))
            return true
        case .truncated?:
            try? stream.write([0, 0, 16, 0] + Array("<?xml".utf8), deadline: .now + .seconds(5))
            return false
        case .close?:
            return false
        case nil:
            return (try? Self.send(body, on: stream)) != nil
        }
    }

    // MARK: - lockdownd

    /// Serves lockdownd on a tunnel until the connection closes (or the phone is erased).
    func serveLockdown(_ plain: any ByteStream) {
        var stream: any ByteStream = plain
        var session: String?
        while let message = Self.receive(on: stream) {
            let request = message["Request"] as? String ?? "?"
            let key = message["Key"] as? String
            state.withLock { $0.requests.append(key.map { "\(request) \($0)" } ?? request) }
            var reply: [String: Any] = ["Request": request]
            switch request {
            case "QueryType":
                reply["Type"] = "com.apple.mobile.lockdown"
            case "GetValue":
                let domain = message["Domain"] as? String
                reply["Domain"] = domain
                reply["Key"] = key
                if let value = value(domain: domain, key: key, inSession: session != nil) {
                    reply["Value"] = value
                } else {
                    reply["Error"] = "MissingValue"
                }
            case "Pair", "ValidatePair":
                if let error = pair(message, validateOnly: request == "ValidatePair") { reply["Error"] = error } else {
                    reply["EscrowBag"] = Data(repeating: 0xEB, count: 32)
                }
            case "StartSession":
                let host = message["HostID"] as? String ?? ""
                guard let certificate = state.withLock({ $0.hosts[host] }) else {
                    reply["Error"] = "InvalidHostID"
                    break
                }
                let id = UUID().uuidString
                reply["SessionID"] = id
                reply["EnableSessionSSL"] = true
                guard answer(request, reply, on: stream) else { return }
                guard let secure = try? TLSStream(
                    over: stream, role: .server, certificatePEM: certificate, privateKeyPEM: keyPEM, name: "simulated lockdown",
                    deadline: .now + .seconds(10))
                else { return }
                stream = secure
                session = id
                continue
            case "StopSession":
                _ = answer(request, reply, on: stream)
                return
            case "StartService":
                guard session != nil, let name = message["Service"] as? String else {
                    reply["Error"] = session == nil ? "NoRunningSession" : "MissingService"
                    break
                }
                guard let usbmuxd, let port = usbmuxd.openService(name, on: self) else {
                    reply["Error"] = "InvalidService"
                    break
                }
                reply["Service"] = name
                reply["Port"] = Int(port)
                reply["EnableServiceSSL"] = true
            default:
                reply["Error"] = "InvalidRequest"
            }
            guard answer(request, reply, on: stream) else { return }
        }
    }

    /// The usbmuxd serving it (for service ports).
    weak var usbmuxd: SimulatedUsbmuxd?

    func value(domain: String?, key: String?, inSession: Bool) -> Any? {
        state.withLock { s -> Any? in
            if let domain {
                guard inSession, let values = s.script.domains[domain] else { return nil }
                return key.map { values[$0] as Any? } ?? values
            }
            guard let key else {
                return inSession ? s.script.values : s.script.values.filter { Self.publicKeys.contains($0.key) }
            }
            guard inSession || Self.publicKeys.contains(key) else { return nil }
            return s.script.values[key]
        }
    }

    /// The trust prompt: nil when paired, else lockdown's error name.
    func pair(_ message: [String: Any], validateOnly: Bool) -> String? {
        guard let record = message["PairRecord"] as? [String: Any], let host = record["HostID"] as? String,
            let certificate = record["DeviceCertificate"] as? Data, record["HostCertificate"] is Data, record["RootCertificate"] is Data
        else { return "InvalidPairRecord" }
        // The device certificate must carry this phone's own key.
        let pem = String(decoding: certificate, as: UTF8.self)
        guard let parsed = try? Certificate(pemEncoded: pem), let key = _RSA.Signing.PublicKey(parsed.publicKey),
            key.pkcs1PEMRepresentation == publicKeyPEM
        else { return "InvalidPairRecord" }
        return state.withLock { s -> String? in
            if validateOnly { return s.hosts[host] == nil ? "InvalidHostID" : nil }
            if s.promptShowing { return "PairingDialogResponsePending" }
            if !s.trust.isEmpty, let refusal = s.trust.removeFirst() { return refusal }
            s.hosts[host] = pem
            return nil
        }
    }

    // MARK: - Services

    /// Serves one service connection (TLS first, with the certificate of a paired host).
    func serveService(_ name: String, on plain: any ByteStream) {
        guard let certificate = state.withLock({ $0.hosts.values.first }),
            let stream = try? TLSStream(over: plain, role: .server, certificatePEM: certificate, privateKeyPEM: keyPEM, name: "simulated \(name)", deadline: .now + .seconds(10))
        else { return }
        defer { stream.close() }
        if name == "com.apple.mobilebackup2" { return serveBackup(stream) }
        while let message = Self.receive(on: stream) {
            switch name {
            case "com.apple.mobile.diagnostics_relay":
                let request = message["Request"] as? String ?? "?"
                state.withLock { $0.requests.append(request) }
                var reply: [String: Any] = ["Status": "Success"]
                if request == "IORegistry" {
                    let (battery, kind) = state.withLock { ($0.script.battery, $0.script.batteryClass) }
                    let asked = message["EntryName"] as? String ?? message["EntryClass"] as? String
                    reply["Diagnostics"] = ["IORegistry": asked == kind ? battery : [String: Any]()]
                }
                guard answer(request, reply, on: stream) else { return }
                if request == "Goodbye" { return }
            case "com.apple.mobile.MCInstall":
                let request = message["RequestType"] as? String ?? "?"
                state.withLock { $0.requests.append(request) }
                var reply: [String: Any] = ["Status": "Acknowledged"]
                switch request {
                case "GetCloudConfiguration": reply["CloudConfiguration"] = state.withLock { $0.script.cloudConfiguration }
                case "GetProfileList": reply.merge(state.withLock { $0.script.profiles }) { $1 }
                case "EraseDevice":
                    let behavior = state.withLock { $0.script.erase }
                    if case .refuse(let status) = behavior {
                        reply = ["Status": status, "ErrorChain": [["ErrorDomain": "MCInstallationErrorDomain", "LocalizedDescription": "The erase was refused."]]]
                        break
                    }
                    _ = answer(request, reply, on: stream)
                    usbmuxd?.erase(self, behavior: behavior)
                    return
                default: break
                }
                guard answer(request, reply, on: stream) else { return }
            default:
                return
            }
        }
    }

    /// mobilebackup2: the DeviceLink version exchange, Hello, then EraseDevice.
    func serveBackup(_ stream: any ByteStream) {
        func send(_ message: [Any]) -> Bool {
            let bytes = Array((try? PropertyListSerialization.data(fromPropertyList: message, format: .xml, options: 0)) ?? Data())
            let length = UInt32(bytes.count)
            return (try? stream.write([UInt8(length >> 24), UInt8((length >> 16) & 0xff), UInt8((length >> 8) & 0xff), UInt8(length & 0xff)] + bytes, deadline: .now + .seconds(10))) != nil
        }
        func receive() -> [Any]? {
            guard let header = try? stream.read(exactly: 4, deadline: .now + .seconds(30), what: "simulated mobilebackup2") else { return nil }
            let length = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
            guard let body = try? stream.read(exactly: length, deadline: .now + .seconds(10), what: "simulated mobilebackup2") else { return nil }
            return (try? PropertyListSerialization.propertyList(from: Data(body), options: [], format: nil)) as? [Any]
        }
        guard send(["DLMessageVersionExchange", 300, 0]), receive()?.dropFirst().first as? String == "DLVersionsOk",
            send(["DLMessageDeviceReady"]), let hello = receive()?.last as? [String: Any], hello["MessageName"] as? String == "Hello",
            send(["DLMessageProcessMessage", ["ErrorCode": 0, "ProtocolVersion": 2.1] as [String: Any]]),
            let request = receive()?.last as? [String: Any], let message = request["MessageName"] as? String
        else { return }
        state.withLock { $0.requests.append("mobilebackup2 \(message)") }
        guard message == "EraseDevice" else { return }
        guard let behavior = state.withLock({ $0.script.mobileBackupErase }) else {
            _ = send(["DLMessageProcessMessage", ["ErrorCode": 1, "ErrorDescription": "EraseDevice refused"] as [String: Any]])
            return
        }
        usbmuxd?.erase(self, behavior: behavior)
    }
}
