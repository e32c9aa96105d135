import Foundation
import LetheCore

/// What `smartctl -j -a` said about a device.
public struct SmartctlResult: Codable, Sendable, Equatable {
    /// Whether SMART data was read.
    public var available: Bool
    /// The figures (empty when unavailable).
    public var reading: HealthReading
    /// smartctl's exit status bits (smartctl(8) "EXIT STATUS"), decoded.
    public var exitStatus: Int
    /// smartctl's own messages and the exit bits in plain words.
    public var messages: [String]

    /// Parses smartctl's JSON output. Never throws for odd drives: a missing section just stays
    /// nil. It throws only when the text is not smartctl JSON at all.
    public static func parse(json data: Data, exitStatus processStatus: Int32? = nil) throws(SmartctlParseError) -> SmartctlResult {
        guard !data.isEmpty else { throw SmartctlParseError("smartctl printed nothing") }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            let head = String(decoding: data.prefix(60), as: UTF8.self).replacingOccurrences(of: "\n", with: " ")
            throw SmartctlParseError("smartctl output is not JSON (\(error.localizedDescription)); it starts: \(head)")
        }
        guard let root = object as? [String: Any], let meta = root["smartctl"] as? [String: Any] else {
            throw SmartctlParseError("JSON has no \"smartctl\" object: not smartctl -j output")
        }
        let status = (meta["exit_status"] as? Int) ?? Int(processStatus ?? 0)
        var messages = ((meta["messages"] as? [[String: Any]]) ?? []).compactMap { $0["string"] as? String }
        messages += describeExit(status)

        var r = HealthReading()
        let device = root["device"] as? [String: Any]
        r.protocol = device?["protocol"] as? String
        r.model = (root["model_name"] as? String) ?? (root["scsi_model_name"] as? String)
        r.serial = root["serial_number"] as? String
        r.firmware = (root["firmware_version"] as? String) ?? (root["scsi_revision"] as? String)
        r.capacityBytes = uint((root["user_capacity"] as? [String: Any])?["bytes"])
        r.smartPassed = (root["smart_status"] as? [String: Any])?["passed"] as? Bool
        r.powerOnHours = uint((root["power_on_time"] as? [String: Any])?["hours"])
        r.temperatureCelsius = int((root["temperature"] as? [String: Any])?["current"])

        if let table = (root["ata_smart_attributes"] as? [String: Any])?["table"] as? [[String: Any]] {
            var byId: [Int: UInt64] = [:]
            for attribute in table {
                guard let id = int(attribute["id"]) else { continue }
                byId[id] = uint((attribute["raw"] as? [String: Any])?["value"]).map { raw in
                    // Raw values pack extra bytes for some ids (197/198 on some firmware);
                    // the count is the low 32 bits for the sector counters.
                    [5, 197, 198, 187].contains(id) ? raw & 0xffff_ffff : raw
                }
                if let failed = attribute["when_failed"] as? String, failed == "now" {
                    r.failingAttributes.append((attribute["name"] as? String) ?? "id \(id)")
                }
            }
            r.reallocatedSectors = byId[5]
            r.pendingSectors = byId[197]
            r.uncorrectableSectors = byId[198] ?? byId[187]
            if r.powerOnHours == nil, let hours = byId[9] { r.powerOnHours = hours & 0xffff_ffff }
        }
        if let log = root["nvme_smart_health_information_log"] as? [String: Any] {
            r.criticalWarning = int(log["critical_warning"])
            r.percentageUsed = int(log["percentage_used"])
            r.mediaErrors = uint(log["media_errors"])
            r.availableSpare = int(log["available_spare"])
            r.availableSpareThreshold = int(log["available_spare_threshold"])
            r.powerOnHours = r.powerOnHours ?? uint(log["power_on_hours"])
            r.temperatureCelsius = r.temperatureCelsius ?? int(log["temperature"])
        }
        if let scsi = root["scsi_grown_defect_list"] { r.reallocatedSectors = uint(scsi) }
        // Bits 0 and 1: the command line or the device open failed; nothing was read.
        let available = status & 0b11 == 0 && (r.smartPassed != nil || r.powerOnHours != nil || r.criticalWarning != nil || r.reallocatedSectors != nil)
        return SmartctlResult(available: available, reading: r, exitStatus: status, messages: messages)
    }

    /// smartctl(8) exit status bits in plain words.
    public static func describeExit(_ status: Int) -> [String] {
        let meanings = [
            "command line did not parse", "device open failed, or the device did not return IDENTIFY/INQUIRY",
            "some SMART or other ATA command to the disk failed", "SMART status: DISK FAILING",
            "prefail attributes at or below threshold", "some attributes were at or below threshold in the past",
            "the device error log contains records of errors", "the self-test log contains records of errors",
        ]
        return meanings.enumerated().filter { status & (1 << $0.offset) != 0 }.map { "smartctl exit bit \($0.offset): \($0.element)" }
    }

    private static func int(_ value: Any?) -> Int? {
        switch value {
        case let n as Int: n
        case let n as NSNumber: n.intValue
        default: nil
        }
    }

    private static func uint(_ value: Any?) -> UInt64? {
        switch value {
        case let n as Int where n >= 0: UInt64(n)
        case let n as UInt64: n
        case let n as NSNumber where n.int64Value >= 0: n.uint64Value
        default: nil
        }
    }
}

/// smartctl's output could not be understood.
public struct SmartctlParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    init(_ message: String) { self.message = message }
}
