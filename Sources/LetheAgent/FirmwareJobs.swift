import Foundation
import LetheCore
import LetheLinux
import LetheWipe

/// Turns a firmware method (or `nist-purge`) and a docked drive into what runs: the drive's
/// own erase, or, when `nist-purge` finds none, Clear by overwrite with the reason. Probes the
/// drive (ATA IDENTIFY, NVMe Identify Controller, SCSI REPORT SUPPORTED OPERATION CODES)
/// before anything is sent that changes it.
public enum FirmwarePlanner {
    /// What to run.
    public enum Plan {
        /// The drive's own erase: `method` is the firmware method it resolved to.
        case firmware(FirmwarePurge, method: WipeMethod)
        /// `nist-purge` found no firmware erase: overwrite with `method` (nist-clear).
        case overwrite(method: WipeMethod, choice: String)
    }

    /// Settings a technician or a profile may give.
    public struct Settings: Sendable {
        public var openHiddenAreas = false
        public var ignoreCapabilities = false
        public var timeLimitSeconds: Int?
        public var seed: UInt64?

        /// Defaults: hidden areas closed, capabilities checked, the drive's own time estimates.
        public init() {}
    }

    /// Probes `target` and plans the erase. Throws `.unsupported` with the reason (naming the
    /// IDENTIFY bit or the frozen-drive instruction) when the named method cannot run.
    public static func plan(
        target: LinuxBlockDevice.Target, device: any BlockDevice, method: WipeMethod, settings: Settings,
        cancellation: WipeCancellation = WipeCancellation()
    ) throws(LetheError) -> Plan {
        guard let kernelName = target.identity?.kernelName, target.number != nil else {
            throw LetheError(.unsupported, path: target.path, "\(method.name) needs a drive: a disk image or file has no firmware erase")
        }
        let record = DeviceDiscovery.drive(named: kernelName)
        let kind = record?.transport ?? .unknown
        guard [.sata, .nvme, .usb, .scsi].contains(kind) else {
            let reason = "a \(kind.rawValue) device has no firmware erase commands"
            if method.picksStrongestPurge { return fallback(reason: reason) }
            throw LetheError(.unsupported, path: target.path, "\(method.name): \(reason)")
        }
        let node = try CommandNode.resolve(kernelName: kernelName)
        let transport = try LinuxCommandTransport(path: node.path, writable: true)
        let probe = FirmwareCapabilities.probe(transport: kind, using: transport)
        var capabilities = PurgeCapabilities(probe)
        if capabilities.family(transport: kind) == .scsi { capabilities.scsiSanitize = CommandNode.scsiSanitizeSupport(transport) }

        let erase: FirmwareErase
        var choice: String?
        if method.picksStrongestPurge {
            let (strongest, passedOver) = capabilities.strongestPurge(transport: kind)
            guard let strongest else {
                return fallback(reason: passedOver.joined(separator: "; "))
            }
            erase = strongest
            choice = "nist-purge chose \(strongest.rawValue), the strongest the drive supports" + (passedOver.isEmpty ? "" : "; passed over: " + passedOver.joined(separator: "; "))
        } else {
            erase = method.firmware!
            let family = capabilities.family(transport: kind)
            guard erase.family == family || settings.ignoreCapabilities else {
                throw LetheError(.unsupported, path: target.path, "\(erase.rawValue) is an \(erase.family.rawValue.uppercased()) command, but this drive speaks \(family.rawValue.uppercased())" + (probe.problem.map { " (\($0))" } ?? ""))
            }
        }
        var options = FirmwarePurgeOptions(method: erase)
        options.namespace = node.namespace
        options.openHiddenAreas = settings.openHiddenAreas
        options.ignoreCapabilities = settings.ignoreCapabilities
        options.timeLimitSeconds = settings.timeLimitSeconds
        options.choice = choice
        if let seed = settings.seed { options.seed = seed }
        let purge = FirmwarePurge(device: device, transport: transport, capabilities: capabilities, options: options, cancellation: cancellation)
        if let refusal = purge.refusal() {
            throw LetheError(.unsupported, path: target.path, "\(erase.rawValue): \(refusal). Nothing was written or sent")
        }
        return .firmware(purge, method: .firmware(erase))
    }

    static func fallback(reason: String) -> Plan {
        let clear = WipeMethod.named("nist-clear")!
        return .overwrite(method: clear, choice: "nist-purge fell back to NIST Clear (nist-clear, one overwrite pass and full verification): the drive has no firmware erase Lethe can use (\(reason))")
    }
}
