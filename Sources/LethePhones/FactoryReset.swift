import Foundation
import LetheCore

/// How a phone is reset.
public enum ResetFlow: String, Codable, Sendable, CaseIterable {
    /// Android 16+: `tradeinmode evaluate`, then `reboot`; the phone wipes itself on the way
    /// back.
    case tradeInMode = "trade-in-mode"
    /// Debuggable builds: `recovery --wipe_data`.
    case recovery = "recovery-wipe-data"
    /// Any phone: the technician starts the reset on the phone; Lethe waits and checks.
    case guided = "operator-guided"
    /// iPhones: MCInstall `EraseDevice` (Erase All Content and Settings).
    case mcInstallErase = "mcinstall-erase-device"
    /// iPhones, where MCInstall refuses: mobilebackup2's `EraseDevice`.
    case mobileBackupErase = "mobilebackup2-erase-device"

    /// In words, for certificates and the dashboard.
    public var title: String {
        switch self {
        case .tradeInMode: "factory reset through trade-in mode (tradeinmode evaluate, reboot)"
        case .recovery: "factory reset through recovery (recovery --wipe_data)"
        case .guided: "factory reset started by the technician on the phone"
        case .mcInstallErase: "Erase All Content and Settings through MCInstall (EraseDevice)"
        case .mobileBackupErase: "Erase All Content and Settings through mobilebackup2 (EraseDevice)"
        }
    }

    /// The commands Lethe sends (none for the guided flow).
    public var commands: [String] {
        switch self {
        case .tradeInMode: ["tradeinmode evaluate", "reboot"]
        case .recovery: ["recovery --wipe_data"]
        case .guided: []
        case .mcInstallErase: ["MCInstall EraseDevice"]
        case .mobileBackupErase: ["mobilebackup2 EraseDevice"]
        }
    }

    /// Whether the flow is an iPhone's.
    public var isIOS: Bool { self == .mcInstallErase || self == .mobileBackupErase }

    /// What the technician is told to do for the guided flow.
    public static let guidedInstructions =
        "On the phone: Settings > System > Reset options > Erase all data (factory reset). Keep the cable in; Lethe checks the phone when it restarts."
}

/// What came of a reset.
public struct ResetOutcome: Codable, Sendable, Equatable {
    public var flow: ResetFlow
    /// The commands sent, with what each answered.
    public var commands: [String]
    public var startedAt: Date
    public var finishedAt: Date
    /// The out-of-box checks, as the certificate carries them.
    public var checks: [ReportCheck]
    /// `erased` only when the phone came back and every out-of-box check passed.
    public var status: WipeStatus
    /// True when the phone never came back (unplugged or stuck mid-reset).
    public var interrupted: Bool
    public var error: String?

    /// Whether this reset may be certified: erased, and every check was made and passed.
    public var certified: Bool { status == .erased && !checks.isEmpty && checks.allSatisfy(\.passed) }

    /// A reset by `flow` starting now: not erased until its checks say so.
    init(starting flow: ResetFlow) {
        self.flow = flow
        commands = []
        startedAt = Date()
        finishedAt = startedAt
        checks = []
        status = .notErased
        interrupted = false
    }

    /// A reset that was never started because what had to come first failed or was stopped
    /// (the free-space overwrite): not erased (or aborted), with why, and whether the phone
    /// went away.
    public static func notStarted(_ flow: ResetFlow, error: String, interrupted: Bool, aborted: Bool = false) -> ResetOutcome {
        var outcome = ResetOutcome(starting: flow)
        return outcome.finish(aborted ? .aborted : .notErased, error, interrupted: interrupted)
    }

    /// Ends the reset now with `status`, why it is not erased, and whether the phone went away.
    mutating func finish(_ status: WipeStatus, _ error: String?, interrupted: Bool = false) -> ResetOutcome {
        self.status = status
        self.error = error
        self.interrupted = interrupted
        finishedAt = Date()
        return self
    }
}

/// Runs a factory reset on a phone and certifies nothing it did not see: the phone must go
/// away, come back, and show its out-of-box state (`device_provisioned` 0,
/// `user_setup_complete` 0, no accounts).
public enum FactoryReset {
    /// The NIST SP 800-88 wording for the certificate.
    public static let methodTitle = "Cryptographic erase (factory reset, file-based encryption)"

    /// Why the phone must not be reset now, or nil.
    public static func refusal(_ phone: PhoneInspection) -> String? {
        if !phone.locks.supportsCryptographicErase {
            return "the phone does not use file-based encryption (ro.crypto.type is \(phone.locks.encryption ?? "none")): a factory reset would not be a cryptographic erase, so it cannot be certified"
        }
        if let blocker = phone.locks.blockers.first {
            if phone.platform == .ios {
                return "\(blocker): after an erase the iPhone would stay locked to its owner or its organization; have the owner turn off Find My (Settings > [name] > Find My) or release it from the MDM first. Nothing was sent"
            }
            return "\(blocker): after a reset the phone would be locked to its owner; remove the account (or have the lock released) first"
        }
        return nil
    }

    /// The flow to use: the one asked for if the phone allows it, else the best it allows.
    public static func choose(_ phone: PhoneInspection, requested: ResetFlow?) throws(LetheError) -> ResetFlow {
        if let requested, requested.isIOS != (phone.platform == .ios) {
            throw LetheError(.invalidArgument, path: phone.serial, "flow \(requested.rawValue) is for \(requested.isIOS ? "iPhones" : "Android phones")")
        }
        if phone.platform == .ios { return requested ?? .mcInstallErase }
        switch requested {
        case .tradeInMode? where !phone.tradeInMode:
            throw LetheError(.invalidArgument, path: phone.serial, "trade-in mode is not available (Android 16 or later, in trade-in mode)")
        case .recovery? where !phone.debuggable:
            throw LetheError(.invalidArgument, path: phone.serial, "recovery --wipe_data needs a debuggable build (ro.debuggable=1); use the trade-in or guided flow")
        case let flow?:
            return flow
        case nil:
            return phone.tradeInMode ? .tradeInMode : phone.debuggable ? .recovery : .guided
        }
    }

    /// Resets the phone and checks it. `waitSeconds` bounds each wait (for it to go, for it to
    /// come back); `say` reports each step. Blocking.
    public static func run(
        _ client: ADBClient, phone: PhoneInspection, flow: ResetFlow, waitSeconds: Double = 600, say: (String) -> Void = { _ in }
    ) -> ResetOutcome {
        let serial = phone.serial
        var outcome = ResetOutcome(starting: flow)
        if flow == .guided { say(ResetFlow.guidedInstructions) }
        for (index, command) in flow.commands.enumerated() {
            say("sending `\(command)`")
            do throws(LetheError) {
                let result = try client.shell(serial: serial, command, timeout: .seconds(30))
                outcome.commands.append("\(command) (exit \(result.exitCode.map(String.init) ?? "?"))")
                if let code = result.exitCode, code != 0 {
                    let why = (result.stderr.isEmpty ? result.stdout : result.stderr).trimmingCharacters(in: .whitespacesAndNewlines)
                    return outcome.finish(.notErased, "`\(command)` exited \(code): \(why)")
                }
            } catch where error.code == .deviceVanished && index == flow.commands.count - 1 {
                // The phone went down while answering the reboot: that is the reset starting.
                outcome.commands.append("\(command) (the phone restarted)")
            } catch {
                return outcome.finish(.notErased, "`\(command)`: \(error.message)", interrupted: error.code == .deviceVanished)
            }
        }
        // It goes away (reboots into the reset)…
        say("waiting for the phone to restart")
        let wentAway = waitFor(seconds: waitSeconds) {
            let listed = try? client.devices()
            return listed.map { devices in !devices.contains { $0.serial == serial && $0.state == "device" } }
        }
        guard wentAway else {
            return outcome.finish(.notErased, "the phone never restarted within \(Int(waitSeconds)) s, so no reset happened")
        }
        // …and comes back.
        say("the phone restarted; waiting for it to come back")
        var lastState = "gone"
        let back = waitFor(seconds: waitSeconds) {
            guard let devices = try? client.devices() else { return nil }
            if let device = devices.first(where: { $0.serial == serial }), device.state != lastState {
                lastState = device.state
                if device.state == "unauthorized" { say("the phone is back but \(device.stateDescription)") }
            }
            return devices.contains { $0.serial == serial && $0.state == "device" }
        }
        guard back else {
            return outcome.finish(
                .notErased,
                "the phone did not come back within \(Int(waitSeconds)) s (last seen: \(lastState)): unplugged mid-reset, or USB debugging is off after the reset; its out-of-box state could not be checked, so no certificate",
                interrupted: true)
        }
        say("the phone is back; checking its out-of-box state")
        outcome.checks = outOfBoxChecks(client, serial: serial)
        let failed = outcome.checks.filter { !$0.passed }
        guard failed.isEmpty else {
            return outcome.finish(.notErased, "not in the out-of-box state: " + failed.map { "\($0.name) is \($0.observed), expected \($0.expected)" }.joined(separator: "; "))
        }
        return outcome.finish(.erased, nil)
    }

    /// `device_provisioned` 0, `user_setup_complete` 0, no accounts.
    public static func outOfBoxChecks(_ client: ADBClient, serial: String) -> [ReportCheck] {
        var checks: [ReportCheck] = []
        for (name, command) in [("device_provisioned", "settings get global device_provisioned"), ("user_setup_complete", "settings get secure user_setup_complete")] {
            do throws(LetheError) {
                let result = try client.shell(serial: serial, command, timeout: .seconds(20))
                let value = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                let observed = result.exitCode == 0 ? value : "unreadable (exit \(result.exitCode.map(String.init) ?? "?"): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)))"
                checks.append(ReportCheck(name: name, expected: "0", observed: observed, passed: result.exitCode == 0 && value == "0"))
            } catch {
                checks.append(ReportCheck(name: name, expected: "0", observed: "unreadable: \(error.message)", passed: false))
            }
        }
        do throws(LetheError) {
            let result = try client.shell(serial: serial, "dumpsys account", timeout: .seconds(20))
            let types = try AccountDump.types(result.stdout)
            checks.append(ReportCheck(name: "accounts", expected: "none", observed: types.isEmpty ? "none" : types.joined(separator: ", "), passed: result.exitCode == 0 && types.isEmpty))
        } catch {
            checks.append(ReportCheck(name: "accounts", expected: "none", observed: "unreadable: \(error.message)", passed: false))
        }
        return checks
    }

    /// Polls `probe` every half second until it says true, or `seconds` pass.
    public static func waitFor(seconds: Double, _ probe: () -> Bool?) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if probe() == true { return true }
            usleep(500_000)
        }
        return false
    }
}
