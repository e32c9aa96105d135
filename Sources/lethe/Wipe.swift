import ArgumentParser
import Foundation
import LetheAgent
import LetheCore
import LetheLinux
import LetheDiagnostics
import LetheReports
import LetheWipe

/// Options shared by commands that do bulk I/O.
struct IOOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Bytes per request (multiple of 4096; suffixes K, M).", valueName: "size"))
    var blockSize: String = "1M"

    @Option(name: .long, help: "Write requests in flight (one worker thread each).")
    var queueDepth: Int = 16

    @Option(name: .long, help: "Read requests in flight while verifying (default: --queue-depth).")
    var readQueueDepth: Int?

    func blockBytes(device: String) throws(LetheError) -> Int {
        let text = blockSize.uppercased()
        let multiplier = text.hasSuffix("M") ? 1 << 20 : text.hasSuffix("K") ? 1 << 10 : 1
        let digits = multiplier == 1 ? text : String(text.dropLast())
        guard let value = Int(digits), value > 0 else {
            throw LetheError(.invalidArgument, path: device, "--block-size '\(blockSize)' is not a size (examples: 4M, 1024K, 65536)")
        }
        return value * multiplier
    }
}

struct Wipe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Erase a block device with an overwrite method, then verify it.",
        discussion: """
            The device is refused, before anything is written, when it (or a partition or dm/md device on it) holds /, /boot or swap, has a mounted file system, or is in use. Writing needs --yes, or the device name typed at a terminal prompt. With --serial, the device must report that serial.

            Exit status: 0 erased and verified as asked (certified with --report-dir); 3 erased with exceptions (sectors that could not be overwritten are listed; never certified); 4 not erased (a device that stops answering ends here at once); 5 aborted (SIGINT/SIGTERM); 2 refused or bad input.

            With --json, stdout carries one JSON object per line: {"type":"progress",...} while it runs, and exactly one {"type":"result",...} (or {"type":"error",...}) at the end.

            Examples:
              lethe wipe /dev/sdb --method nist-clear
              lethe wipe /dev/disk/by-id/ata-X --method dod-3 --verify sample --serial X --yes
              lethe wipe disk.img --method zero --allow-file --yes --json
              lethe wipe /dev/nvme0n1 --method tcg-psid-revert --report-dir reports   (asks for the label's PSID)
              lethe wipe /dev/nvme0n1 --method tcg-crypto-erase --report-dir reports   (asks for the owner's Admin1 password)
            """)

    @Argument(help: "Block device to erase (/dev/sdX, /dev/nvmeXnY, /dev/disk/by-id/...).")
    var device: String

    @Option(help: "Erase method (see `lethe methods`).")
    var method: String?

    @Option(help: ArgumentHelp("Erase as this profile says (method, verification, thresholds); see `lethe profiles list`.", valueName: "name"))
    var profile: String?

    @OptionGroup var profiles: ProfileOptions

    @Option(name: .customLong("verify"), help: "Read-back: off, last, all, or sample (NIST: ≥1000 subsections, ≥10%). Default: the method's.")
    var verification: VerificationMode?

    @Option(help: "Refuse unless the device reports this serial number.")
    var serial: String?

    @Flag(help: "Do not ask for confirmation.")
    var yes = false

    @Flag(help: "Stream progress and the result as JSON lines on stdout.")
    var json = false

    @Flag(help: "Allow a regular file (a disk image) instead of a block device.")
    var allowFile = false

    @Flag(help: "Run every check (guard, serial, sizes), print the plan, and exit without writing.")
    var dryRun = false

    @Option(help: ArgumentHelp("Seed for the sample verification plan (default: random, recorded in the result).", visibility: .hidden))
    var sampleSeed: UInt64?

    @OptionGroup var io: IOOptions

    @Option(help: ArgumentHelp("Write the signed certificate and the refurb report here (<reportId>.json and .pdf). Needs the station key (`lethe keys init`).", valueName: "dir"))
    var reportDir: String?

    @Option(help: "Language of the PDFs: en or zh-CN.")
    var lang: ReportLanguage = .en

    @Option(name: .customLong("operator"), help: ArgumentHelp("Who is erasing, for the certificate (default: operatorName in station.json, else the login name).", valueName: "name"))
    var operatorName: String?

    @Option(help: ArgumentHelp("The device's cosmetic grade for the refurb report, CTIA style: A like new, B light wear, C moderate wear, D heavy wear, E damaged. The sale grade is the worse of this and the health/erase grade.", valueName: "A-E"))
    var cosmeticGrade: String?

    @Option(help: ArgumentHelp("What the technician saw, with --cosmetic-grade (at most 500 characters).", valueName: "text"))
    var cosmeticNotes: String?

    @Flag(help: "ATA drives: open a Host Protected Area or Device Configuration Overlay first (before a firmware erase or an overwrite; the kernel then re-reads the size), so no hidden sectors stay unerased. Without it, a drive that hides sectors is refused.")
    var openHiddenAreas = false

    @Flag(help: "Firmware methods: send the command even when IDENTIFY says the drive lacks it (drives that misreport). The read-back still decides; nothing unproven is certified.")
    var ignoreCapabilities = false

    @Option(help: ArgumentHelp("Firmware methods: stop waiting after this many seconds (default: the drive's own estimate with a margin, else 12 hours).", valueName: "seconds"))
    var firmwareTimeLimit: Int?

    @Option(help: ArgumentHelp("Read the surface before erasing: full (every sector) or sample (NIST-style, at least 10%). Slow and unreadable regions go in the refurb report and lower its grade. Default: the profile's diagnostics.surface, else none.", valueName: "full|sample"))
    var surface: SurfaceScanMode?

    @OptionGroup var state: StateOptions

    func run() throws {
        var outcome: WipeOutcome
        var resolvedMethod: WipeMethod?
        var methodChoice: String?
        var reporting: Reporting?
        // A bad grade is refused before anything is written.
        let cosmetic: CosmeticGrade?
        do throws(CosmeticGrade.Invalid) {
            if cosmeticNotes != nil, cosmeticGrade == nil { throw CosmeticGrade.Invalid(description: "--cosmetic-notes needs --cosmetic-grade") }
            let env = ProcessInfo.processInfo.environment
            cosmetic = try cosmeticGrade.map { grade throws(CosmeticGrade.Invalid) in
                try CosmeticGrade(
                    grade: grade, notes: cosmeticNotes, gradedBy: operatorName ?? env["SUDO_USER"] ?? env["USER"] ?? "unknown operator",
                    gradedAt: ISO8601DateFormatter().string(from: Date()))
            }
        } catch {
            throw Output.fail(LetheError(.invalidArgument, path: "--cosmetic-grade", error.description), json: json)
        }
        do {
            let chosen = try chooseMethod()
            let target = try LinuxBlockDevice.inspect(device, allowFile: allowFile)
            if !target.protection.isEmpty {
                throw LetheError(.protectedDevice, path: device,
                    "refusing to erase: " + target.protection.map(\.description).joined(separator: "; "))
            }
            if let serial {
                let actual = target.identity?.serial
                guard let actual else {
                    throw LetheError(.serialMismatch, path: device, "--serial \(serial) given, but the device reports no serial number")
                }
                guard actual == serial else {
                    throw LetheError(.serialMismatch, path: device, "serial mismatch: the device reports '\(actual)', not '\(serial)'")
                }
            }
            if let reportDir {
                // Before anything is written: no key, no erase that promises a certificate.
                reporting = try Reporting(directory: reportDir, stateDirectory: state.directory, station: try state.station(), target: target, operatorName: operatorName)
                reporting?.thresholds = chosen.profile?.thresholds ?? HealthThresholds()
            }
            let opened = try LinuxBlockDevice(target: target, access: dryRun ? .readOnly : .readWrite)
            var method = chosen.method
            var plan: FirmwarePlanner.Plan?
            if method.usesFirmware {
                var settings = FirmwarePlanner.Settings()
                settings.openHiddenAreas = openHiddenAreas || (chosen.profile?.openHiddenAreas ?? false)
                settings.ignoreCapabilities = ignoreCapabilities
                settings.timeLimitSeconds = firmwareTimeLimit
                settings.seed = sampleSeed
                settings.credentialLater = true
                plan = try FirmwarePlanner.plan(target: target, device: opened, method: method, settings: settings)
                // A TCG revert's PSID or SID: asked for only now that the drive passed every check.
                if case .firmware(let purge, _)? = plan, purge.options.method.family == .tcg, !dryRun {
                    purge.credential = try CredentialPrompt.read(for: purge.options.method)
                }
            }
            if case .overwrite(let clear, let choice)? = plan {
                method = clear
                methodChoice = choice
                Output.err("lethe: \(choice)")
            }
            // Either the drive's own erase or the overwrite engine; the rest is the same.
            let summary: String
            let cancellation: WipeCancellation
            let stopping: String
            let execute: ((WipeProgress) -> Void) -> WipeOutcome
            // What must happen after the confirmation, before the first write.
            var prepare: () throws(LetheError) -> Void = {}
            if case .firmware(let purge, let firmware)? = plan {
                method = firmware
                summary = "\(opened.path) (\(identify(opened))) with \(firmware.name): \(firmware.title), then a read-back of known data"
                cancellation = purge.cancellation
                stopping = "the drive's own erase cannot be stopped; Lethe stops waiting and certifies nothing"
                execute = { purge.run(progress: $0) }
            } else {
                let options = WipeOptions(
                    method: method, verification: methodChoice == nil ? (verification ?? chosen.verification) : nil, blockSize: try io.blockBytes(device: device),
                    queueDepth: io.queueDepth, readQueueDepth: io.readQueueDepth, progressInterval: json ? 1 : 0.5, sampleSeed: sampleSeed)
                // An ATA drive's hidden sectors: refused now, or opened after the confirmation.
                let hidden = try FirmwarePlanner.hiddenAreasBeforeOverwrite(target: target, open: openHiddenAreas || (chosen.profile?.openHiddenAreas ?? false))
                let stop = WipeCancellation()
                var engine = try WipeEngine(device: opened, options: options, cancellation: stop)
                summary = describe(opened, options: options) + (hidden.plan.map { ", \($0)" } ?? "")
                cancellation = stop
                stopping = "stopping at the next block boundary and flushing"
                prepare = { () throws(LetheError) in
                    guard hidden.needsOpening else { return }
                    try hidden.open()
                    Output.err("lethe: \(hidden.areas?.actions.joined(separator: "; ") ?? "")")
                    engine = try WipeEngine(device: try LinuxBlockDevice(reopening: opened, target: target), options: options, cancellation: stop)
                }
                execute = { progress in
                    var result = engine.run(progress: progress)
                    result.hiddenAreas = hidden.areas
                    return result
                }
            }
            resolvedMethod = method
            if dryRun {
                print("dry run: would erase \(summary)")
                return
            }
            if !yes { try confirm(opened, summary: summary) }
            try prepare()
            reporting?.diagnoseBeforeErasing()
            let trap = SignalTrap { signal in
                cancellation.cancel(reason: signal)
                Output.err("\nlethe: \(signal == SIGTERM ? "SIGTERM" : "SIGINT"): \(stopping)")
            }
            if let mode = surface ?? chosen.profile?.surfaceScan {
                try scanSurface(opened, mode: mode, thresholds: chosen.profile?.surfaceThresholds ?? SurfaceThresholds(), reporting: reporting, cancellation: cancellation)
            }
            Output.err("lethe: erasing \(summary)")
            reporting?.started = Date()
            try reporting?.recordStart(method: method, profile: chosen.profile?.name)
            let renderer = ProgressRenderer(json: json)
            outcome = execute(renderer.show)
            if outcome.methodChoice == nil { outcome.methodChoice = methodChoice }
            renderer.finish()
            withExtendedLifetime(trap) {}
        } catch let error as LetheError {
            throw Output.fail(error, json: json)
        }
        var reportId: String?
        var reportFailed = false
        if let reporting, let method = resolvedMethod {
            var written: Reporting.Written?
            do {
                written = try reporting.write(
                    outcome: outcome, method: method, language: lang, toolVersion: LetheVersion.string, cosmetic: cosmetic)
            } catch {
                reportFailed = true
                Output.err("lethe: \(outcome.device): the erase finished (\(outcome.status.rawValue)) but its report could not be written to \(reporting.directory): \(error)")
            }
            do throws(LetheError) {
                try reporting.recordFinish(outcome: outcome, written: written)
            } catch {
                reportFailed = true
                Output.err("lethe: \(error)")
            }
            if let written {
                reportId = written.certificate.reportId
                Output.err("lethe: \(written.certified ? "certificate" : "erase record (NOT a certificate: \(outcome.status.rawValue), verification \(outcome.verification.result.rawValue))") \(written.certificate.jsonPath) and \(written.certificate.pdfPath)")
                if let refurb = written.refurb { Output.err("lethe: refurb report \(refurb.jsonPath) and \(refurb.pdfPath)") }
            }
        }
        report(outcome, reportId: reportId)
        if reportFailed { throw ExitCode(ExitStatus.reportNotWritten) }
        throw ExitCode(ExitStatus.of(outcome.status))
    }

    /// Reads the surface before the erase and says what it found; with --report-dir the scan
    /// goes in the refurb report. Ctrl-C here stops before anything is written.
    private func scanSurface(
        _ device: LinuxBlockDevice, mode: SurfaceScanMode, thresholds: SurfaceThresholds, reporting: Reporting?, cancellation: WipeCancellation
    ) throws(LetheError) {
        Output.err("lethe: reading the surface (\(mode.rawValue)) before erasing\(reporting == nil ? " (no --report-dir: the result is only printed)" : "")")
        let progress = Output.surfaceProgress(json: json)
        let scan = reporting?.scanSurface(device, mode: mode, thresholds: thresholds, cancellation: cancellation, progress: progress)
            ?? SurfaceScanner(device: device, options: SurfaceScanOptions(mode: mode, thresholds: thresholds), cancellation: cancellation).run(progress: progress)
        Output.err("lethe: surface \(scan.verdict.rawValue.uppercased()): \(scan.findings.joined(separator: "; "))")
        if cancellation.isCancelled {
            throw LetheError(.cancelled, path: device.path, "stopped during the surface scan; nothing was written")
        }
    }

    /// The method and verification from --method or --profile (exactly one).
    private func chooseMethod() throws(LetheError) -> (method: WipeMethod, verification: VerificationMode?, profile: Profile?) {
        switch (method, profile) {
        case (nil, nil):
            throw LetheError(.invalidArgument, path: device, "say how to erase: --method NAME (see `lethe methods`) or --profile NAME (see `lethe profiles list`)")
        case (.some, .some):
            throw LetheError(.invalidArgument, path: device, "give --method or --profile, not both")
        case (let name?, nil):
            guard let chosen = WipeMethod.named(name) else {
                throw LetheError(.unknownMethod, path: device,
                    "unknown method '\(name)'; known methods: \(WipeMethod.catalog.map(\.name).joined(separator: ", "))")
            }
            return (chosen, nil, nil)
        case (nil, let name?):
            let chosen = try profiles.named(name)
            guard !chosen.resetsPhones else {
                throw LetheError(.invalidArgument, path: "--profile", "profile \(name) resets phones (factory-reset); use `lethe phones erase SERIAL`")
            }
            return (chosen.method, chosen.verification, chosen)
        }
    }

    /// `Model, serial S, 1.0 GiB, 512-byte sectors` (and the backing file, and page cache).
    private func identify(_ device: LinuxBlockDevice) -> String {
        var who: [String] = []
        if let model = device.identity?.model { who.append(model) }
        if let serial = device.identity?.serial { who.append("serial \(serial)") }
        if let backing = device.identity?.backingFile { who.append("backed by \(backing)") }
        who.append("\(HumanFormat.bytes(Double(device.sizeBytes))), \(device.logicalSectorSize)-byte sectors")
        if !device.isDirect { who.append("page cache (file system has no O_DIRECT)") }
        return who.joined(separator: ", ")
    }

    private func describe(_ device: LinuxBlockDevice, options: WipeOptions) -> String {
        let passes = options.method.passes.count
        return "\(device.path) (\(identify(device))) with \(options.method.name): \(passes) pass\(passes == 1 ? "" : "es"), verification \(options.verification.rawValue), \(HumanFormat.bytes(Double(options.blockSize))) × \(options.queueDepth) in flight (\(options.readQueueDepth) when verifying)"
    }

    private func confirm(_ device: LinuxBlockDevice, summary: String) throws(LetheError) {
        guard Output.stdinIsTerminal else {
            throw LetheError(.confirmationRequired, path: device.path, "refusing to erase without --yes (no terminal to confirm on)")
        }
        let name = device.identity?.kernelName ?? (device.path as NSString).lastPathComponent
        Output.err("About to ERASE \(summary).\nEverything on it will be destroyed. Type \(name) to continue: ")
        let answer = readLine()?.trimmingCharacters(in: .whitespaces)
        guard answer == name || answer == device.path else {
            throw LetheError(.confirmationRequired, path: device.path, "not confirmed; nothing was written")
        }
    }

    struct ResultLine: Encodable {
        var type = "result"
        var device: String
        var method: String
        var category: String
        var status: WipeStatus
        var sizeBytes: UInt64
        var logicalSectorSize: Int
        var bytesWritten: UInt64
        var passes: [PassRecord]
        var verification: VerificationRecord
        var badSectors: [SectorRange]
        var throughputBytesPerSecond: Double
        var seconds: Double
        var error: String?
        /// For an erase with exceptions: what was left out and what to do next.
        var exceptions: String?
        var reportId: String?
    }

    private func report(_ o: WipeOutcome, reportId: String?) {
        if json {
            Output.json(ResultLine(
                device: o.device, method: o.method, category: o.category.rawValue, status: o.status, sizeBytes: o.sizeBytes,
                logicalSectorSize: o.logicalSectorSize, bytesWritten: o.bytesWritten, passes: o.passes,
                verification: o.verification, badSectors: o.badSectors,
                throughputBytesPerSecond: o.throughputBytesPerSecond.rounded(), seconds: o.seconds, error: o.error,
                exceptions: o.exceptionsAdvice, reportId: reportId))
            if let error = o.error { Output.err("lethe: \(o.device): \(error)") }
            return
        }
        print("device:       \(o.device)")
        print("method:       \(o.method) (\(o.category.rawValue))")
        print("status:       \(o.status.rawValue)")
        for pass in o.passes {
            let check = pass.verification.map { ", verify \($0.rawValue)" } ?? ""
            print("pass \(pass.index):       \(pass.pattern), \(HumanFormat.bytes(Double(pass.bytesWritten))) in \(HumanFormat.fixed(pass.seconds, 1)) s (\(HumanFormat.bytes(pass.throughputBytesPerSecond))/s)\(pass.completed ? "" : ", INCOMPLETE")\(check)")
        }
        var verify = "\(o.verification.mode.rawValue): \(o.verification.result.rawValue), \(HumanFormat.bytes(Double(o.verification.bytesVerified))) read"
        if o.verification.mode == .sample, let subsections = o.verification.sampleSubsections {
            verify += ", \(subsections) subsections, \(HumanFormat.fixed(o.verification.coverage * 100, 1))% of the device, seed \(o.verification.sampleSeed ?? 0)"
        }
        print("verification: \(verify)")
        for mismatch in o.verification.firstMismatches.prefix(5) {
            print("  differs at offset \(mismatch.offset): expected \(hex(mismatch.expected)), found \(hex(mismatch.found))")
        }
        if let advice = o.exceptionsAdvice {
            print("not erased:   \(advice)")
        }
        print("throughput:   \(HumanFormat.bytes(o.throughputBytesPerSecond))/s, \(HumanFormat.fixed(o.seconds, 1)) s in all")
        if let reportId { print("report:       \(reportId)") }
        if let error = o.error { Output.err("lethe: \(o.device): \(error)") }
    }
}

func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return "0x" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 15)])
}

extension VerificationMode: ExpressibleByArgument {}
extension SurfaceScanMode: ExpressibleByArgument {}
extension FreeSpaceOverwriteMode: ExpressibleByArgument {}
