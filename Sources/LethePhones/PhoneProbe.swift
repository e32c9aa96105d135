import Foundation
import LetheCore

/// A phone's platform: how Lethe talks to it.
public enum PhonePlatform: String, Codable, Sendable {
    /// Android, through the adb server.
    case android
    /// iPhone or iPad, through usbmuxd and lockdownd.
    case ios
}

/// Everything Lethe reads from a docked phone before it erases it.
public struct PhoneInspection: Codable, Sendable, Equatable {
    /// Android or iOS.
    public var platform: PhonePlatform = .android
    /// The adb serial (`R3CTEST0S24`, or `127.0.0.1:PORT` over TCP), or an iPhone's UDID.
    public var serial: String
    public var identity: PhoneIdentity
    public var battery: PhoneBattery?
    public var locks: PhoneLocks
    /// True when `tradeinmode getstatus` answered (Android 16+ trade-in mode).
    public var tradeInMode: Bool
    /// True on a debuggable build (`ro.debuggable=1`): recovery `--wipe_data` is permitted.
    public var debuggable: Bool
    /// What could not be read, each naming its command.
    public var notes: [String]

    /// Lethe's path for it: `adb:SERIAL` or `ios:UDID`.
    public var path: String { platform == .ios ? "ios:\(serial)" : "adb:\(serial)" }
}

/// Reads a phone through the adb server: `getprop` (required), then `tradeinmode getstatus`
/// (Android 16+), `dumpsys battery` and `dumpsys account`. A probe that fails is a note, not a
/// failure of the whole inspection; only an unreadable identity is.
public enum PhoneProbe {
    /// Runs a command and returns its stdout when it exited 0, else a note.
    static func run(_ client: ADBClient, _ serial: String, _ command: String, notes: inout [String]) throws(LetheError) -> String? {
        let result = try client.shell(serial: serial, command)
        guard result.exitCode == 0 || (result.exitCode == nil && !result.stdout.isEmpty) else {
            let why = result.stderr.isEmpty ? result.stdout : result.stderr
            notes.append("`\(command)` exited \(result.exitCode.map(String.init) ?? "?"): \(why.trimmingCharacters(in: .whitespacesAndNewlines).prefix(200))")
            return nil
        }
        return result.stdout
    }

    /// Inspects the phone. Throws when it vanishes, is unauthorized, or its identity cannot be
    /// read.
    public static func inspect(_ client: ADBClient, serial: String) throws(LetheError) -> PhoneInspection {
        var notes: [String] = []
        guard let text = try run(client, serial, "getprop", notes: &notes) else {
            throw LetheError(.unexpectedOutput, path: serial, "cannot read the phone's properties: \(notes.joined(separator: "; "))")
        }
        let props: AndroidProperties
        do throws(LetheError) { props = try AndroidProperties.parse(text) } catch {
            throw LetheError(.unexpectedOutput, path: serial, error.message)
        }
        var identity = props.identity
        var battery: PhoneBattery?
        if let text = try run(client, serial, "dumpsys battery", notes: &notes) {
            do throws(LetheError) { battery = try DumpsysBattery.parse(text) } catch { notes.append(error.message) }
        }
        // Trade-in mode: the phone's own statement of IMEIs, battery health and FRP.
        var tradeIn: TradeInStatus?
        if (identity.sdk ?? 0) >= 36, let text = try run(client, serial, "tradeinmode getstatus", notes: &notes) {
            do throws(LetheError) { tradeIn = try TradeInStatus.parse(text) } catch { notes.append(error.message) }
        }
        if let tradeIn {
            identity.imeis = tradeIn.identity.imeis
            identity.capacityBytes = tradeIn.identity.capacityBytes ?? identity.capacityBytes
            var merged = battery ?? PhoneBattery()
            tradeIn.apply(to: &merged)
            battery = merged
        }
        // Capacity: the phone's own figure (trade-in mode), else the nominal size that holds
        // its data partition, named as such.
        if identity.capacityBytes == nil, let text = try run(client, serial, "df /data", notes: &notes),
            let data = FunctionChecks.dataPartition(text)?.total, let nominal = FunctionChecks.nominalCapacity(dataPartition: data)
        {
            identity.capacityBytes = nominal
            notes.append("capacity \(nominal / 1_000_000_000) GB is the nominal size that holds the \(data / 1_000_000_000) GB data partition (df /data)")
        }
        var frp = tradeIn?.frp
        if frp == nil, let text = try run(client, serial, "dumpsys account", notes: &notes) {
            do throws(LetheError) { frp = AccountDump.frp(types: try AccountDump.types(text)) } catch { notes.append(error.message) }
        }
        let locks = PhoneLocks(
            frp: frp ?? LockSignal(state: "unknown", source: "none", bestEffort: true, detail: "neither trade-in mode nor the account list could be read"),
            knoxGuard: props.knoxGuard, bootloaderUnlocked: identity.bootloaderLocked.map { !$0 }, encryption: identity.encryption)
        return PhoneInspection(
            serial: serial, identity: identity, battery: battery, locks: locks, tradeInMode: tradeIn != nil,
            debuggable: props["ro.debuggable"] == "1", notes: notes)
    }
}
