import ArgumentParser
import Foundation
import LetheAgent
import LetheCore
import LetheDiagnostics
import LetheLinux
import LetheWipe

struct Diagnose: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Grade a drive's health from SMART and probe its firmware erase capabilities.",
        discussion: """
            Runs smartmontools' `smartctl -j -a` (ATA, SCSI and NVMe) and grades power-on hours, temperature, reallocated / pending / uncorrectable sectors and, for NVMe, endurance used, media errors, available spare and critical warnings. The verdict is pass, warn or fail; unknown when SMART cannot be read (loop devices, docks that do not pass SMART through). Thresholds come from --thresholds (a JSON object; any key of the defaults below).

            It also sends ATA IDENTIFY DEVICE (through ATA PASS-THROUGH(16)) or NVMe Identify Controller and reports the security feature set (supported, frozen, erase times), sanitize support and HPA: what a firmware erase could use. Nothing is written.

            Exit status: 0 pass, 3 warn, 4 fail, 1 unknown, 2 refused (no such device).

            Examples:
              lethe diagnose /dev/sda
              lethe diagnose /dev/nvme0n1 --json
              lethe diagnose /dev/sdb --thresholds strict.json
            """)

    @Argument(help: "The drive (/dev/sdX, /dev/nvmeXnY, /dev/disk/by-id/...).")
    var device: String

    @Flag(help: "Print one JSON object.")
    var json = false

    @Option(help: ArgumentHelp("Health thresholds (JSON), overriding the defaults key by key.", valueName: "file"))
    var thresholds: String?

    @Option(help: ArgumentHelp("Also read the surface: full (every sector) or sample (NIST-style: 1,000+ subsections, at least 10%). Reads only; times every read and finds slow and unreadable regions.", valueName: "full|sample"))
    var surface: String?

    @Option(help: ArgumentHelp("With --surface: a read slower than this is a slow region (the verdict warns).", valueName: "ms"))
    var slowMs = 200

    @Option(help: .hidden)
    var smartctl: String?

    @OptionGroup var bays: BayOptions

    struct Report: Encodable {
        var device: DeviceRecord?
        var smart: SmartctlResult?
        var smartError: String?
        var health: HealthAssessment
        var capabilities: FirmwareCapabilities
        /// TCG Level 0 Discovery: the self-encrypting drive's SSC and locking state.
        var selfEncryption: TCGDiscovery?
        /// Why Level 0 Discovery gave nothing (no TCG subsystem, or a bridge that drops it).
        var selfEncryptionProblem: String?
        var thresholds: HealthThresholds
        var surface: SurfaceScanReport?
        /// The worse of the SMART verdict and the surface scan's.
        var verdict: HealthVerdict
    }

    func run() throws {
        let limits: HealthThresholds
        let target: LinuxBlockDevice.Target
        let map: BayMap
        do throws(LetheError) {
            limits = try loadThresholds()
            target = try LinuxBlockDevice.inspect(device, allowFile: false)
            map = try bays.load()
        } catch {
            throw Output.fail(error, json: json)
        }
        let name = target.identity?.kernelName ?? (target.resolvedPath as NSString).lastPathComponent
        let record = DeviceDiscovery.drive(named: name, bays: map)

        let check = SmartCheck.run(device: target.resolvedPath, thresholds: limits, executable: smartctl)
        let (smart, smartError, health) = (check.result, check.error, check.assessment)

        let capabilities: FirmwareCapabilities
        var selfEncryption: (discovery: TCGDiscovery?, problem: String?) = (nil, nil)
        do throws(LetheError) {
            let transport = try LinuxCommandTransport(path: target.resolvedPath)
            capabilities = FirmwareCapabilities.probe(transport: record?.transport ?? .unknown, using: transport)
            if let interface = SecurityInterface.of(record?.transport ?? .unknown) {
                selfEncryption = TCGDiscovery.probe(interface, using: transport)
            } else {
                selfEncryption.problem = "\((record?.transport ?? .unknown).rawValue) devices carry no security protocol commands"
            }
        } catch {
            capabilities = FirmwareCapabilities(problem: error.description)
        }

        var scan: SurfaceScanReport?
        if let surface {
            guard let mode = SurfaceScanOptions.Mode(rawValue: surface) else {
                throw Output.fail(LetheError(.invalidArgument, path: "--surface", "\"\(surface)\" is not full or sample"), json: json)
            }
            do throws(LetheError) {
                let opened = try LinuxBlockDevice(target: target, access: .readOnly)
                var options = SurfaceScanOptions(mode: mode)
                options.thresholds.slowMilliseconds = max(1, slowMs)
                scan = SurfaceScanner(device: opened, options: options).run(progress: Output.surfaceProgress(json: json))
            } catch {
                throw Output.fail(error, json: json)
            }
        }
        let verdict = max(health.verdict, scan?.verdict ?? .unknown)
        let report = Report(
            device: record, smart: smart, smartError: smartError, health: health, capabilities: capabilities,
            selfEncryption: selfEncryption.discovery, selfEncryptionProblem: selfEncryption.problem, thresholds: limits, surface: scan,
            verdict: verdict)
        if json {
            Output.json(report)
        } else {
            printReport(report, path: target.resolvedPath)
        }
        switch verdict {
        case .pass: return
        case .warn: throw ExitCode(ExitStatus.erasedWithExceptions)
        case .fail: throw ExitCode(ExitStatus.notErased)
        case .unknown: throw ExitCode(1)
        }
    }

    func validate() throws {
        if let surface, SurfaceScanOptions.Mode(rawValue: surface) == nil {
            throw ValidationError("--surface: \"\(surface)\" is not full or sample")
        }
    }

    func loadThresholds() throws(LetheError) -> HealthThresholds {
        guard let thresholds else { return HealthThresholds() }
        guard let data = FileManager.default.contents(atPath: thresholds) else {
            throw LetheError(.deviceNotFound, path: thresholds, "cannot read the thresholds file")
        }
        do {
            return try JSONDecoder().decode(HealthThresholds.self, from: data)
        } catch {
            throw LetheError(.invalidArgument, path: thresholds, "thresholds file is not valid: \(BayOptions.describe(error))")
        }
    }

    func printReport(_ report: Report, path: String) {
        if let d = report.device { print(Devices.line(d)) } else { print(path) }
        print("health: \(report.health.verdict.rawValue.uppercased())")
        if let tcg = report.selfEncryption {
            print("self-encryption: \(tcg.summary)")
            print("  \(tcg.advice)")
        } else if let problem = report.selfEncryptionProblem {
            print("self-encryption: unknown (\(problem))")
        }
        if let scan = report.surface {
            let latency = ["p50", "p99", "max"].compactMap { key in scan.latencyMicroseconds[key].map { "\(key) \(Double($0) / 1000) ms" } }.joined(separator: ", ")
            print("surface (\(scan.mode)): \(scan.verdict.rawValue.uppercased()), \(HumanFormat.bytes(Double(scan.bytesRead))) read in \(scan.reads) reads of up to \(HumanFormat.bytes(Double(scan.readBytes))) (\(Double(scan.coverageBasisPoints) / 100)%), latency \(latency)")
            for finding in scan.findings { print("  \(finding)") }
            for region in scan.slowRegions.prefix(5) { print("  slow: \(region.milliseconds) ms at byte \(region.offset)") }
        }
        for finding in report.health.findings { print("  [\(finding.verdict.rawValue)] \(finding.message)") }
        if let r = report.smart?.reading, report.smart?.available == true {
            var facts: [String] = []
            if let v = r.powerOnHours { facts.append("power-on \(v) h") }
            if let v = r.temperatureCelsius { facts.append("\(v) °C") }
            if let v = r.reallocatedSectors { facts.append("reallocated \(v)") }
            if let v = r.pendingSectors { facts.append("pending \(v)") }
            if let v = r.uncorrectableSectors { facts.append("uncorrectable \(v)") }
            if let v = r.percentageUsed { facts.append("endurance used \(v)%") }
            if let v = r.mediaErrors { facts.append("media errors \(v)") }
            if let v = r.availableSpare { facts.append("spare \(v)%") }
            if let v = r.criticalWarning { facts.append("critical warning 0x\(String(v, radix: 16))") }
            print("smart: " + facts.joined(separator: ", "))
        }
        let c = report.capabilities
        if let ata = c.ata {
            print("ata: security \(ata.securitySupported ? "supported" : "not supported")\(ata.securityFrozen ? ", FROZEN (power-cycle the drive to unfreeze)" : "")\(ata.securityEnabled ? ", password set" : ""), enhanced erase \(ata.enhancedEraseSupported ? "yes" : "no") (\(ata.enhancedEraseMinutes.map { "\($0) min" } ?? "time not given")), sanitize \(ata.sanitizeSupported ? [ata.cryptoScrambleSupported ? "crypto" : nil, ata.blockEraseSupported ? "block" : nil, ata.overwriteSupported ? "overwrite" : nil].compactMap { $0 }.joined(separator: "/") : "no"), HPA \(ata.hpaSupported ? (ata.hpaEnabled ? "enabled" : "supported") : "no")")
        }
        if let nvme = c.nvme {
            print("nvme: format \(nvme.formatSupported ? "yes" : "no") (crypto erase \(nvme.cryptoEraseFormat ? "yes" : "no")), sanitize \(nvme.sanitizeCapabilities == 0 ? "no" : [nvme.cryptoEraseSanitize ? "crypto" : nil, nvme.blockEraseSanitize ? "block" : nil, nvme.overwriteSanitize ? "overwrite" : nil].compactMap { $0 }.joined(separator: "/"))\(nvme.mediaVerification ? " with media verification (EMVS)" : ""), FNA 0x\(String(nvme.formatAttributes, radix: 16))")
        }
        if let problem = c.problem { print("firmware: \(problem)") }
    }
}
