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
        /// The PSID or SID password for a TCG revert (never stored or logged).
        public var credential: [UInt8]?
        /// The caller gives the credential after planning (`FirmwarePurge.credential`), once the
        /// drive passed every check: the CLI asks the technician only then.
        public var credentialLater = false

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
        // Drive commands act on the whole disk: a partition is refused (nist-purge overwrites it).
        let node: CommandNode
        do throws(LetheError) {
            node = try CommandNode.resolve(kernelName: kernelName)
        } catch where error.code == .unsupported && method.picksStrongestPurge {
            return fallback(reason: "\(kernelName) \(error.message)")
        }
        let transport = try LinuxCommandTransport(path: node.path, writable: true)
        let probe = FirmwareCapabilities.probe(transport: kind, using: transport)
        var capabilities = PurgeCapabilities(probe)
        if capabilities.family(transport: kind) == .scsi { capabilities.scsiSanitize = CommandNode.scsiSanitizeSupport(transport) }

        let erase: FirmwareErase
        var choice: String?
        // TCG travels in the interface's own security commands; Level 0 Discovery says whether
        // the drive speaks it, and how it is locked (nist-purge prefers an unowned drive's revert).
        if method.picksStrongestPurge || method.firmware?.family == .tcg, let interface = SecurityInterface.of(kind) {
            let (discovery, problem) = TCGDiscovery.probe(interface, using: transport)
            capabilities.tcg = discovery
            capabilities.tcgInterface = interface
            capabilities.tcgProblem = problem
        }
        if method.picksStrongestPurge {
            let (strongest, passedOver) = capabilities.strongestPurge(transport: kind)
            guard let strongest else {
                return fallback(reason: passedOver.joined(separator: "; "))
            }
            erase = strongest
            choice = "nist-purge chose \(strongest.rawValue), the strongest the drive supports" + (passedOver.isEmpty ? "" : "; passed over: " + passedOver.joined(separator: "; "))
        } else if method.firmware?.family == .tcg {
            erase = method.firmware!
            if erase != .tcgRevertSP, !settings.credentialLater, settings.credential?.isEmpty ?? true {
                let what = erase == .tcgPsidRevert ? "the PSID printed on the drive's label" : "the owner's Admin1 password of the drive's Locking SP"
                throw LetheError(.invalidArgument, path: target.path, "\(erase.rawValue) needs \(what). Nothing was sent")
            }
        } else {
            erase = method.firmware!
            let family = capabilities.family(transport: kind)
            guard erase.family == family || settings.ignoreCapabilities else {
                throw LetheError(.unsupported, path: target.path, "\(erase.rawValue) is an \(erase.family.rawValue.uppercased()) command, but this drive speaks \(family.rawValue.uppercased())" + (probe.problem.map { " (\($0))" } ?? ""))
            }
        }
        var options = FirmwarePurgeOptions(method: erase)
        options.namespace = node.namespace
        if erase.reachesEveryNamespace(formatAttributes: capabilities.nvme?.formatAttributes ?? 0) {
            options.namespaces = try guardNamespaces(of: node, target: target, erase: erase, transport: transport)
        }
        options.openHiddenAreas = settings.openHiddenAreas
        options.ignoreCapabilities = settings.ignoreCapabilities
        options.timeLimitSeconds = settings.timeLimitSeconds
        options.choice = choice
        options.credential = settings.credential
        if let seed = settings.seed { options.seed = seed }
        let purge = FirmwarePurge(device: device, transport: transport, capabilities: capabilities, options: options, cancellation: cancellation)
        if let refusal = purge.refusal() {
            throw LetheError(.unsupported, path: target.path, "\(erase.rawValue): \(refusal). Nothing was written or sent")
        }
        return .firmware(purge, method: .firmware(erase))
    }

    /// An NVMe command that reaches every namespace of the controller: each namespace the
    /// controller reports active must be a block device here, and the guard must clear each
    /// one. Returns them as the certificate names them (the target first). Fails closed: a
    /// namespace the guard cannot see, or an answer it cannot read, refuses the erase.
    static func guardNamespaces(
        of node: CommandNode, target: LinuxBlockDevice.Target, erase: FirmwareErase, transport: any CommandTransport
    ) throws(LetheError) -> [String] {
        let siblings = CommandNode.guardedNamespaces(sharing: node)
        let refusing = "\(erase.rawValue) erases every namespace of \(node.path)"
        guard let answer = try? transport.execute(NvmeCommand.activeNamespaces), let active = NvmeCommand.namespaceIds(inActiveList: answer) else {
            throw LetheError(.unsupported, path: target.path, "\(refusing), but the controller did not list its active namespaces (Identify CNS 02h), so Lethe cannot check them all. Nothing was sent")
        }
        let unseen = active.filter { id in !siblings.contains { $0.namespace == id } }
        guard unseen.isEmpty else {
            throw LetheError(.unsupported, path: target.path, "\(refusing), and namespace(s) \(unseen.map(String.init).joined(separator: ", ")) are active but have no block device on this host, so the guard cannot check them. Nothing was sent")
        }
        var named: [String] = []
        for sibling in siblings {
            guard let reasons = sibling.protection else {
                throw LetheError(.protectedDevice, path: target.path, "\(refusing), and the device number of \(sibling.kernelName) cannot be read, so the guard cannot clear it. Nothing was sent")
            }
            guard reasons.isEmpty else {
                throw LetheError(.protectedDevice, path: target.path, "refusing \(refusing): \(reasons.map(\.description).joined(separator: "; ")). Nothing was sent")
            }
            named.append("/dev/\(sibling.kernelName) (namespace \(sibling.namespace), \(sibling.sizeBytes.map { HumanFormat.bytes(Double($0)) } ?? "size unknown"))")
        }
        let own = named.firstIndex { $0.hasPrefix("/dev/\(target.identity?.kernelName ?? "")") } ?? 0
        if !named.isEmpty { named.insert(named.remove(at: own), at: 0) }
        return named
    }

    static func fallback(reason: String) -> Plan {
        let clear = WipeMethod.named("nist-clear")!
        return .overwrite(method: clear, choice: "nist-purge fell back to NIST Clear (nist-clear, one overwrite pass and full verification): the drive has no firmware erase Lethe can use (\(reason))")
    }

    /// Before an overwrite of an ATA drive (SATA, or USB behind a SAT bridge): reads its
    /// visible, native and factory sizes, so the certificate can state them. A drive that hides
    /// sectors is refused (`.unsupported`, before anything is written) unless `open`; then
    /// ``HiddenAreasBeforeOverwrite/open()`` must run before the first write. Other devices
    /// (NVMe, SCSI, loop, a bridge that drops ATA pass-through) get nil areas.
    public static func hiddenAreasBeforeOverwrite(target: LinuxBlockDevice.Target, open: Bool) throws(LetheError) -> HiddenAreasBeforeOverwrite {
        // Hidden areas belong to the whole disk: opening them through a partition is refused.
        if open, let kernelName = target.identity?.kernelName, target.number != nil {
            do throws(LetheError) {
                _ = try CommandNode.resolve(kernelName: kernelName)
            } catch where error.code == .unsupported {
                throw LetheError(.unsupported, path: target.path, "opening hidden areas (--open-hidden-areas, or the profile's erase.openHiddenAreas): \(kernelName) \(error.message)")
            } catch {}
        }
        guard let kernelName = target.identity?.kernelName, target.number != nil,
              let kind = DeviceDiscovery.drive(named: kernelName)?.transport, kind == .sata || kind == .usb,
              let node = try? CommandNode.resolve(kernelName: kernelName),
              let transport = try? LinuxCommandTransport(path: node.path, writable: true),
              let identify = try? AtaIdentify(bytes: transport.execute(.ataIdentify))
        else { return HiddenAreasBeforeOverwrite(areas: nil, opener: nil, kernelName: nil, sectorSize: 512) }
        let opener = HiddenAreaOpener(transport: transport)
        let areas = opener.inspect(visibleSectors: identify.userSectors)
        if areas.hasHiddenArea, !open {
            throw LetheError(.unsupported, path: target.path, "\(areas.refusal). Nothing was written")
        }
        return HiddenAreasBeforeOverwrite(areas: areas, opener: opener, kernelName: kernelName, sectorSize: UInt64(max(512, identify.logicalSectorSize)))
    }
}

/// An ATA drive's hidden areas found before an overwrite, and the way to open them.
public final class HiddenAreasBeforeOverwrite: @unchecked Sendable {
    /// Visible, native and factory sizes, and what was opened (nil: not an ATA drive).
    public private(set) var areas: HiddenAreas?
    let opener: HiddenAreaOpener?
    let kernelName: String?
    let sectorSize: UInt64

    init(areas: HiddenAreas?, opener: HiddenAreaOpener?, kernelName: String?, sectorSize: UInt64) {
        self.areas = areas
        self.opener = opener
        self.kernelName = kernelName
        self.sectorSize = sectorSize
    }

    /// Whether sectors are hidden and must be opened before the first write.
    public var needsOpening: Bool { areas?.hasHiddenArea == true }

    /// For the summary: what will be opened first, or nil.
    public var plan: String? {
        guard let areas, areas.hasHiddenArea else { return nil }
        return "first opening \(areas.hiddenDescription)"
    }

    /// Opens the hidden areas (DCO RESTORE, SET MAX ADDRESS EXT, checked with IDENTIFY) and
    /// has the kernel re-read the size. The caller opens the block device again afterwards.
    public func open() throws(LetheError) {
        guard var areas, areas.hasHiddenArea, let opener, let kernelName else { return }
        defer { self.areas = areas }
        do {
            try opener.open(&areas)
        } catch {
            areas.problem = error.message
            throw LetheError(error.vanished ? .deviceVanished : .ioFailure, path: "/dev/\(kernelName)", "opening the hidden areas failed: \(error.message). Nothing was written")
        }
        let expected = areas.visibleSectors + areas.hpaSectors + areas.dcoSectors
        let seen = try CommandNode.rescanCapacity(kernelName: kernelName, expectedBytes: expected * sectorSize)
        areas.actions.append("kernel rescan: /dev/\(kernelName) is now \(seen) bytes")
    }
}
