import Foundation
import LetheCore

/// Reads a paired iPhone: identity (lockdown's values, the disk usage domain), battery
/// (diagnostics_relay's IORegistry), and locks (Find My, supervision and profiles through
/// MCInstall). A probe that fails is a note naming it, not a failure of the whole inspection;
/// only an unreadable identity is.
public enum IOSProbe {
    /// Inspects the phone through a started session.
    public static func inspect(_ host: IPhoneHost, device: UsbmuxDevice) throws(LetheError) -> PhoneInspection {
        let (session, record) = try host.session(device)
        defer { session.close() }
        guard let values = try session.value() as? [String: Any] else {
            throw LetheError(.unexpectedOutput, path: device.udid, "lockdown GetValue gave no dictionary of values")
        }
        var notes: [String] = []
        var identity = identity(values, udid: device.udid, notes: &notes)
        if let usage = (try? session.value(domain: "com.apple.disk_usage")) as? [String: Any], let total = usage.int("TotalDiskCapacity"), total > 0 {
            identity.capacityBytes = UInt64(total)
        } else {
            notes.append("capacity: lockdown's com.apple.disk_usage gave no TotalDiskCapacity")
        }
        var battery: PhoneBattery?
        do throws(LetheError) {
            battery = try Self.battery(host, device: device, session: session, record: record)
        } catch {
            notes.append("battery: \(error.message)")
        }
        var locks = PhoneLocks(
            frp: LockSignal(state: "unknown", source: "not applicable to iPhones (see Find My)", bestEffort: true), encryption: "file")
        locks.findMy = findMy(try? session.value(domain: "com.apple.fmip", key: "IsAssociated"))
        do throws(LetheError) {
            try management(host, device: device, session: session, record: record, locks: &locks)
        } catch {
            notes.append("supervision and profiles (MCInstall): \(error.message)")
            locks.supervision = LockSignal(state: "unknown", source: "MCInstall GetCloudConfiguration", bestEffort: true, detail: error.message)
        }
        return PhoneInspection(
            platform: .ios, serial: device.udid, identity: identity, battery: battery, locks: locks, tradeInMode: false, debuggable: false,
            notes: notes)
    }

    /// Identity from lockdown's root values.
    public static func identity(_ values: [String: Any], udid: String, notes: inout [String]) -> PhoneIdentity {
        var id = PhoneIdentity()
        id.brand = "Apple"
        id.manufacturer = "Apple"
        id.udid = udid
        // An empty answer is no answer.
        let values = values.filter { ($0.value as? String)?.isEmpty != true }
        id.productType = values.string("ProductType")
        if let type = id.productType {
            id.model = AppleModels.name(type) ?? type
            if AppleModels.name(type) == nil { notes.append("product type \(type) is not in the model table (Sources/LethePhones/iOS/AppleModels.swift)") }
        }
        id.device = values.string("HardwareModel")
        id.serial = values.string("SerialNumber")
        if let number = values.string("ModelNumber") { id.modelNumber = number + (values.string("RegionInfo") ?? "") }
        id.iosVersion = values.string("ProductVersion")
        id.fingerprint = values.string("BuildVersion").map { "iOS \(id.iosVersion ?? "?") (\($0))" }
        id.activationState = values.string("ActivationState")
        id.imeis = ["InternationalMobileEquipmentIdentity", "InternationalMobileEquipmentIdentity2"].compactMap { values.string($0) }.filter { !$0.isEmpty }
        id.encryption = "file"
        return id
    }

    /// Find My from `com.apple.fmip IsAssociated`: true is a lock; false is not proof of the
    /// contrary (it reads false on some locked devices), so it is "unknown", and said so.
    static func findMy(_ value: Any?) -> LockSignal {
        switch value as? Bool {
        case true?: LockSignal(state: "locked", source: "lockdown com.apple.fmip IsAssociated")
        case false?:
            LockSignal(
                state: "unknown", source: "lockdown com.apple.fmip IsAssociated", bestEffort: true,
                detail: "IsAssociated reads false, which some locked iPhones also say: check Settings > [name] > Find My on the phone")
        case nil: LockSignal(state: "unknown", source: "lockdown com.apple.fmip", bestEffort: true, detail: "IsAssociated could not be read")
        }
    }

    /// The battery from the IORegistry (`AppleSmartBattery`, older models
    /// `AppleARMPMUCharger`): health is the raw maximum capacity over the design capacity.
    static func battery(_ host: IPhoneHost, device: UsbmuxDevice, session: LockdownClient, record: PairRecord) throws(LetheError) -> PhoneBattery {
        let service = try host.service("com.apple.mobile.diagnostics_relay", on: device, session: session, record: record)
        defer {
            _ = try? service.call(["Request": "Goodbye"])
            service.close()
        }
        for entry in ["AppleSmartBattery", "AppleARMPMUCharger"] {
            let answer = try service.call(["Request": "IORegistry", "EntryName": entry])
            guard answer.string("Status") == "Success" else {
                throw LetheError(.unexpectedOutput, path: device.udid, "diagnostics_relay IORegistry \(entry): \(answer.string("Status") ?? "no status")")
            }
            let registry = answer.dictionary("Diagnostics")?.dictionary("IORegistry") ?? [:]
            guard !registry.isEmpty else { continue }
            return battery(registry, entry: entry)
        }
        throw LetheError(.unexpectedOutput, path: device.udid, "diagnostics_relay has no AppleSmartBattery or AppleARMPMUCharger entry")
    }

    /// Battery figures from an IORegistry entry, each tagged with its source.
    public static func battery(_ registry: [String: Any], entry: String) -> PhoneBattery {
        var battery = PhoneBattery()
        let source = "diagnostics_relay IORegistry \(entry)"
        if let raw = registry.int("AppleRawMaxCapacity"), let design = registry.int("DesignCapacity"), design > 0, raw >= 0,
            case let (scaled, false) = raw.multipliedReportingOverflow(by: 100)
        {
            battery.healthPercent = Sourced(min(100, scaled / design), source: "\(source): AppleRawMaxCapacity / DesignCapacity")
        } else {
            battery.notes.append("\(source) has no AppleRawMaxCapacity and DesignCapacity")
        }
        if let cycles = registry.int("CycleCount"), cycles >= 0 { battery.cycleCount = Sourced(cycles, source: "\(source): CycleCount") }
        if let level = registry.int("CurrentCapacity"), (0...100).contains(level) { battery.level = level }
        // Hundredths of a degree; a bench is above freezing and a battery below 80 °C, so a
        // reading outside that is not a reading.
        if let hundredths = registry.int("Temperature"), (0...8_000).contains(hundredths) {
            battery.temperatureCelsius = Double(hundredths) / 100
        }
        if let millivolts = registry.int("Voltage"), (0...20_000).contains(millivolts) { battery.voltageMillivolts = millivolts }
        return battery
    }

    /// Supervision and profiles through MCInstall.
    static func management(_ host: IPhoneHost, device: UsbmuxDevice, session: LockdownClient, record: PairRecord, locks: inout PhoneLocks) throws(LetheError) {
        let service = try host.service("com.apple.mobile.MCInstall", on: device, session: session, record: record)
        defer { service.close() }
        let cloud = try service.call(["RequestType": "GetCloudConfiguration"])
        guard cloud.string("Status") == "Acknowledged" else {
            throw LetheError(.unexpectedOutput, path: device.udid, "MCInstall GetCloudConfiguration: \(cloud.string("Status") ?? "no status")")
        }
        let configuration = cloud.dictionary("CloudConfiguration") ?? [:]
        let supervised = configuration.bool("IsSupervised") == true
        let organization = configuration.string("OrganizationName")
        locks.supervision = LockSignal(
            state: supervised || configuration.bool("IsMDMUnremovable") == true ? "locked" : "unlocked",
            source: "MCInstall GetCloudConfiguration IsSupervised", detail: organization)
        let list = try service.call(["RequestType": "GetProfileList"])
        let metadata = list.dictionary("ProfileMetadata") ?? [:]
        locks.profiles = (list["OrderedIdentifiers"] as? [Any] ?? []).compactMap { $0 as? String }.map { id in
            (metadata.dictionary(id)?.string("PayloadDisplayName")).map { "\($0) (\(id))" } ?? id
        }
    }
}
