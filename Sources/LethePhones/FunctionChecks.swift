import Foundation
import LetheCore

/// One function check of a phone: run from the host, or confirmed by the technician.
public struct FunctionCheck: Codable, Sendable, Equatable {
    public var name: String
    /// `pass`, `fail` or `unknown`.
    public var result: String
    public var detail: String
    /// The command it came from, or `technician`.
    public var source: String

    /// A check.
    public init(name: String, result: String, detail: String, source: String) {
        self.name = name
        self.result = result
        self.detail = detail
        self.source = source
    }

    /// `storage: pass (… ; df /data)`.
    public var summary: String { "\(name): \(result) (\(detail); \(source))" }
}

/// What can be checked from the host over adb (storage, sensors, modem, Wi-Fi), and the list
/// of what only the technician can (screen, touch, cameras, buttons, speaker, microphone).
public enum FunctionChecks {
    /// The checks the technician confirms on the phone, entered through the API or dashboard.
    public static let technicianChecks = ["screen", "touch", "cameras", "buttons", "speaker", "microphone"]

    /// Runs the host checks. A check whose command fails or answers garbage is `unknown`, with
    /// the reason; it never throws except when the phone is gone.
    public static func host(_ client: ADBClient, serial: String) throws(LetheError) -> [FunctionCheck] {
        var checks: [FunctionCheck] = []
        func run(_ command: String) throws(LetheError) -> (String?, String) {
            let result = try client.shell(serial: serial, command, timeout: .seconds(20))
            if result.exitCode == 0 { return (result.stdout, "") }
            return (nil, "exit \(result.exitCode.map(String.init) ?? "?"): \((result.stderr.isEmpty ? result.stdout : result.stderr).trimmingCharacters(in: .whitespacesAndNewlines).prefix(120))")
        }
        let (df, dfWhy) = try run("df /data")
        checks.append(storage(df) ?? FunctionCheck(name: "storage", result: "unknown", detail: df == nil ? dfWhy : "unreadable df output", source: "df /data"))
        let (sensors, sensorsWhy) = try run("dumpsys sensorservice")
        if let sensors {
            let count = sensorCount(sensors)
            checks.append(FunctionCheck(name: "sensors", result: count > 0 ? "pass" : "fail", detail: "\(count) sensors listed", source: "dumpsys sensorservice"))
        } else {
            checks.append(FunctionCheck(name: "sensors", result: "unknown", detail: sensorsWhy, source: "dumpsys sensorservice"))
        }
        let (baseband, _) = try run("getprop gsm.version.baseband")
        let modem = baseband?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        checks.append(FunctionCheck(
            name: "modem", result: modem.isEmpty ? "unknown" : "pass", detail: modem.isEmpty ? "no baseband version (Wi-Fi-only model, or the modem is down)" : "baseband \(modem)",
            source: "getprop gsm.version.baseband"))
        let (wifi, wifiWhy) = try run("cmd wifi status")
        let firstLine = wifi?.split(separator: "\n").first.map(String.init) ?? ""
        checks.append(FunctionCheck(
            name: "wifi", result: wifi == nil ? "unknown" : firstLine.localizedCaseInsensitiveContains("enabled") ? "pass" : "unknown",
            detail: wifi == nil ? wifiWhy : firstLine, source: "cmd wifi status"))
        return checks
    }

    /// The data partition's size and free space in bytes from `df /data` (toybox, 1K blocks).
    static func dataPartition(_ text: String) -> (total: UInt64, free: UInt64)? {
        for line in text.split(separator: "\n").dropFirst() {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            if words.count >= 4, let total = UInt64(words[1]), let free = UInt64(words[3]), total > 0, free <= total,
                case let (totalBytes, false) = total.multipliedReportingOverflow(by: 1024)
            {
                return (totalBytes, free * 1024)
            }
        }
        return nil
    }

    /// The nominal capacity a phone is sold as (16, 32, 64, 128, 256, 512 GB, 1 TB, 2 TB) for a
    /// data partition of `bytes`: the smallest that holds it (the rest is the system).
    public static func nominalCapacity(dataPartition bytes: UInt64) -> UInt64? {
        let sizes: [UInt64] = [16, 32, 64, 128, 256, 512, 1024, 2048].map { $0 * 1_000_000_000 }
        return sizes.first { $0 >= bytes }
    }

    /// `df /data` (toybox): the size and free space of the data partition.
    static func storage(_ text: String?) -> FunctionCheck? {
        guard let text, let data = dataPartition(text) else { return nil }
        return FunctionCheck(
            name: "storage", result: "pass", detail: "data partition \(data.total >> 30) GiB, \(data.free >> 30) GiB free", source: "df /data")
    }

    /// Entries of the `Sensor List:` section of `dumpsys sensorservice` (`0x0000000b) name…`).
    static func sensorCount(_ text: String) -> Int {
        text.split(separator: "\n").filter { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            return trimmed.hasPrefix("0x") && trimmed.contains(")")
        }.count
    }
}
