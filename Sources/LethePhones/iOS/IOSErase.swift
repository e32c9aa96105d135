import Foundation
import LetheCore

/// Erases an iPhone (Erase All Content and Settings: the phone destroys its file-system keys,
/// a cryptographic erase) and certifies nothing it did not see: the phone must drop off
/// usbmuxd, come back as a new usbmux device, and read `ActivationState: Unactivated` in
/// setup. MCInstall's `EraseDevice` first; where MCInstall refuses, mobilebackup2's.
public enum IOSErase {
    /// The NIST SP 800-88 wording for the certificate.
    public static let methodTitle = "Cryptographic erase (Erase All Content and Settings: iOS destroys the file-system keys)"

    /// Sends the erase and checks the phone. `waitSeconds` bounds each wait (for it to go, for it
    /// to come back and pair again); `say` reports each step. Blocking.
    public static func run(
        _ host: IPhoneHost, device: UsbmuxDevice, phone: PhoneInspection, waitSeconds: Double = 600, say: (String) -> Void = { _ in }
    ) -> ResetOutcome {
        var outcome = ResetOutcome(starting: .mcInstallErase)
        if let refusal = FactoryReset.refusal(phone) { return outcome.finish(.notErased, refusal) }
        do throws(LetheError) {
            let (session, record) = try host.session(device)
            defer { session.close() }
            say("sending MCInstall EraseDevice")
            let mc = try host.service("com.apple.mobile.MCInstall", on: device, session: session, record: record)
            let answer = try mc.call(["RequestType": "EraseDevice", "PreserveDataPlan": false, "DisallowProximitySetup": true])
            mc.close()
            let status = answer.string("Status") ?? "no status"
            outcome.commands.append("MCInstall EraseDevice (\(status))")
            if status != "Acknowledged" {
                let chain = (answer["ErrorChain"] as? [Any])?.compactMap { ($0 as? [String: Any])?.string("LocalizedDescription") }.joined(separator: "; ") ?? ""
                say("MCInstall refused the erase (\(status)\(chain.isEmpty ? "" : ": \(chain)")); trying mobilebackup2")
                outcome.flow = .mobileBackupErase
                try MobileBackup2.erase(host, device: device, session: session, record: record)
                outcome.commands.append("mobilebackup2 EraseDevice (sent)")
            }
        } catch {
            return outcome.finish(.notErased, "the erase could not be sent: \(error.message)", interrupted: error.code == .deviceVanished)
        }
        // It goes away…
        say("waiting for the iPhone to restart")
        let gone = FactoryReset.waitFor(seconds: waitSeconds) {
            (try? host.usbmux.listDevices()).map { devices in !devices.contains { $0.deviceID == device.deviceID } }
        }
        outcome.checks.append(ReportCheck(name: "detached from usbmuxd", expected: "yes", observed: gone ? "yes" : "no", passed: gone))
        guard gone else { return outcome.finish(.notErased, "the iPhone never restarted within \(Int(waitSeconds)) s, so no erase happened") }
        // …and comes back as a new usbmux device.
        say("the iPhone restarted; waiting for it to come back")
        var back: UsbmuxDevice?
        _ = FactoryReset.waitFor(seconds: waitSeconds) {
            back = (try? host.usbmux.listDevices())?.first { $0.udid == device.udid && $0.deviceID != device.deviceID }
            return back != nil
        }
        guard let back else {
            return outcome.finish(.notErased, "the iPhone did not come back within \(Int(waitSeconds)) s: unplugged mid-erase, or stuck; its state could not be checked, so no certificate", interrupted: true)
        }
        outcome.checks.append(ReportCheck(name: "came back as a new usbmux device", expected: "a new DeviceID", observed: "DeviceID \(device.deviceID) → \(back.deviceID)", passed: true))
        // In setup it pairs again (the old record is refused); then its activation state.
        say("the iPhone is back; checking it is in setup")
        var state: String?
        var lastProblem: String?
        _ = FactoryReset.waitFor(seconds: waitSeconds) {
            do throws(LetheError) {
                let (session, _) = try host.session(back)
                defer { session.close() }
                state = try session.value(key: "ActivationState") as? String ?? "unreadable"
                return true
            } catch {
                if let pairing = PairingState(error), pairing != .staleRecord, error.message != lastProblem {
                    lastProblem = error.message
                    say("the iPhone is back: \(pairing.instruction)")
                }
                return error.code == .deviceVanished ? nil : false
            }
        }
        let activation = state ?? "unreadable (\(lastProblem ?? "no session"))"
        outcome.checks.append(ReportCheck(name: "ActivationState", expected: "Unactivated", observed: activation, passed: activation == "Unactivated"))
        guard activation == "Unactivated" else {
            return outcome.finish(.notErased, "the iPhone came back but is not in setup: ActivationState is \(activation)")
        }
        return outcome.finish(.erased, nil)
    }
}

/// mobilebackup2's erase, for iPhones whose MCInstall refuses it: the DeviceLink version
/// exchange, `Hello` with protocol versions 2.0 and 2.1, then `EraseDevice`.
enum MobileBackup2 {
    static func erase(_ host: IPhoneHost, device: UsbmuxDevice, session: LockdownClient, record: PairRecord) throws(LetheError) {
        let service = try host.service("com.apple.mobilebackup2", on: device, session: session, record: record)
        defer { service.close() }
        let version = try service.receiveArray()
        guard version.first as? String == "DLMessageVersionExchange", version.count >= 2 else {
            throw LetheError(.unexpectedOutput, path: device.udid, "mobilebackup2 did not start with a DeviceLink version exchange")
        }
        try service.sendArray(["DLMessageVersionExchange", "DLVersionsOk", version[1]])
        guard try service.receiveArray().first as? String == "DLMessageDeviceReady" else {
            throw LetheError(.unexpectedOutput, path: device.udid, "mobilebackup2 did not say it was ready")
        }
        try service.sendArray(["DLMessageProcessMessage", ["MessageName": "Hello", "SupportedProtocolVersions": [2.0, 2.1]] as [String: Any]])
        let hello = try service.receiveArray()
        guard (hello.last as? [String: Any])?.int("ErrorCode") == 0 else {
            throw LetheError(.unexpectedOutput, path: device.udid, "mobilebackup2 refused the protocol versions 2.0 and 2.1")
        }
        try service.sendArray(["DLMessageProcessMessage", ["MessageName": "EraseDevice", "TargetIdentifier": device.udid] as [String: Any]])
    }
}

extension ServiceClient {
    /// Sends a DeviceLink message (a plist array).
    func sendArray(_ message: [Any]) throws(LetheError) {
        let bytes = try Plist.encode(any: message, what: name)
        let length = UInt32(bytes.count)
        try stream.write([UInt8(length >> 24), UInt8((length >> 16) & 0xff), UInt8((length >> 8) & 0xff), UInt8(length & 0xff)] + bytes, deadline: .now + timeout)
    }

    /// Reads a DeviceLink message.
    func receiveArray() throws(LetheError) -> [Any] {
        let deadline = ContinuousClock.now + timeout
        let header = try stream.read(exactly: 4, deadline: deadline, what: name)
        let length = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
        guard length > 0, length <= Plist.maximumBytes else { throw LetheError(.unexpectedOutput, path: name, "a message of \(length) bytes") }
        guard let array = try Plist.decodeAny(try stream.read(exactly: length, deadline: deadline, what: name), what: name) as? [Any] else {
            throw LetheError(.unexpectedOutput, path: name, "a DeviceLink message that is not an array")
        }
        return array
    }
}
