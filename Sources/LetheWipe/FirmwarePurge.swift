import Foundation
import LetheCore

/// How to run a firmware erase.
public struct FirmwarePurgeOptions: Sendable {
    public var method: FirmwareErase
    /// 4 KiB blocks written with known data before the erase and read back after it (plus the
    /// first and the last block).
    public var samples = 128
    /// Chooses the sample locations (recorded on the certificate).
    public var seed: UInt64 = UInt64.random(in: 1...UInt64.max)
    /// Seconds between status polls.
    public var pollSeconds = 1.0
    /// Gives up waiting after this long; nil: the drive's own estimate (security erase, NVMe
    /// sanitize) with a margin, or 12 hours when the drive gives none.
    public var timeLimitSeconds: Int?
    /// Open a Host Protected Area or a Device Configuration Overlay before erasing (ATA).
    public var openHiddenAreas = false
    /// Send the commands even when IDENTIFY says the drive lacks them (drives that misreport;
    /// the read-back still decides).
    public var ignoreCapabilities = false
    /// The NVMe namespace the block device is.
    public var namespace: UInt32 = 1
    /// NVMe sanitize: enter the Media Verification state (EMVS, NVMe 2.1) when the controller
    /// has it (SANICAP bit 3), so the read-back reads the sanitized media itself, before the
    /// controller deallocates it.
    public var mediaVerification = true
    /// Why this method (what `nist-purge` passed over), for the certificate.
    public var choice: String?
    /// NVMe: every namespace the command reaches, as the certificate names them (nil: only
    /// the one being erased).
    public var namespaces: [String]?

    /// The PSID or SID password for a TCG revert, or the Admin1 password for
    /// tcg-crypto-erase: used for the session, never recorded.
    public var credential: [UInt8]?

    /// Options for `method`.
    public init(method: FirmwareErase) { self.method = method }
}

/// Runs a drive's own erase command and proves it by reading back: known data is written at
/// pseudorandom places first; afterwards it must be gone and, for block erase, format and
/// overwrite, the expected uniform pattern must be there. A "success" status alone is never
/// trusted. Every command and answer is recorded. A temporary security password is always
/// cleared; a failed sanitize is taken out of its failure state where the drive allows.
///
/// Blocking: the caller runs it on its own thread.
public final class FirmwarePurge: @unchecked Sendable {
    let device: any BlockDevice
    let transport: any CommandTransport
    let capabilities: PurgeCapabilities
    public let options: FirmwarePurgeOptions
    /// The PSID or SID password, when it comes after planning (it replaces
    /// `options.credential`). Used for the session, never recorded.
    public var credential: [UInt8]?
    /// Stops the wait for a drive (SIGINT, abort). A command already sent runs on in the drive.
    public let cancellation: WipeCancellation
    private var record: FirmwareEraseRecord
    private let started = Date()
    private let sleep: @Sendable (Double) -> Void
    private let now: @Sendable () -> Date

    /// A purge of `device` (for the read-back) through `transport` (for the commands).
    /// `sleep` waits between status polls and `now` tells the time for the time limit (tests
    /// pass a clock that moves only when slept on).
    public init(
        device: any BlockDevice, transport: any CommandTransport, capabilities: PurgeCapabilities, options: FirmwarePurgeOptions,
        cancellation: WipeCancellation = WipeCancellation(), sleep: @escaping @Sendable (Double) -> Void = { Thread.sleep(forTimeInterval: $0) },
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.now = now
        self.device = device
        self.transport = transport
        self.capabilities = capabilities
        self.options = options
        self.cancellation = cancellation
        self.sleep = sleep
        record = FirmwareEraseRecord(method: options.method)
        record.namespaces = options.namespaces
    }

    /// Why the purge cannot run, before anything is written or sent (nil: it can).
    public func refusal() -> String? {
        options.ignoreCapabilities ? nil : capabilities.refusal(options.method)
    }

    struct Failure: Error {
        var message: String
        var vanished = false
        var cancelled = false
    }

    /// Runs it. `progress` gets the drive's own progress while it erases.
    public func run(progress: (WipeProgress) -> Void = { _ in }) -> WipeOutcome {
        let method = options.method
        var checks: [ReportCheck] = []
        var verification = VerificationRecord(mode: .sample, result: .notRun, sampleSeed: options.seed)
        var failure: Failure?
        var samples: [(offset: UInt64, canary: [UInt8])] = []
        do {
            if let refusal = refusal() { throw Failure(message: "refused before anything was sent: \(refusal)") }
            if cancellation.isCancelled { throw Failure(message: "stopped before anything was sent to the drive", cancelled: true) }
            if method.family == .ata { try hiddenAreas() }
            if method.family == .tcg { try tcgOpenIfLocked() }
            samples = try writeCanaries()
            try erase(progress: progress)
            (verification, checks) = try readBack(samples)
            try exitMediaVerification()
            checks += driveChecks
        } catch let error as Failure {
            failure = error
        } catch {
            failure = Failure(message: "\(error)")
        }
        cleanUp()
        let status: WipeStatus
        var message = failure?.message
        if failure?.cancelled == true {
            status = .aborted
        } else if failure != nil {
            status = .notErased
        } else if verification.result == .passed {
            status = .erased
        } else {
            status = .notErased
            message = "the drive reported success, but the read-back shows it did not erase: "
                + checks.filter { !$0.passed }.map { "\($0.name): \($0.observed)" }.joined(separator: "; ")
        }
        let seconds = Date().timeIntervalSince(started)
        var outcome = WipeOutcome(
            device: device.path, method: method.rawValue, category: method.category, status: status, sizeBytes: device.sizeBytes,
            logicalSectorSize: device.logicalSectorSize, bytesWritten: 0,
            passes: [PassRecord(index: 1, pattern: method.title, bytesWritten: 0, completed: failure == nil, seconds: seconds)],
            verification: verification, badSectors: [], throughputBytesPerSecond: 0, seconds: seconds, error: message)
        outcome.deviceVanished = failure?.vanished ?? false
        outcome.firmware = record
        outcome.methodChoice = options.choice
        outcome.checks = checks
        return outcome
    }

    // MARK: - Commands

    /// Adds a command and the drive's answer to the certificate's record.
    func log(_ command: DeviceCommand, answer: String, succeeded: Bool) {
        appendCommand(.init(name: command.name, sent: command.wire, answer: answer, succeeded: succeeded))
    }

    func appendCommand(_ command: FirmwareEraseRecord.Command) { record.commands.append(command) }

    /// Sends a command and records it with the drive's answer.
    @discardableResult
    func send(_ command: DeviceCommand, quiet: Bool = false) throws(Failure) -> CommandResponse {
        do {
            let response = try transport.send(command)
            var answer = "good"
            if let registers = SenseData(response.sense)?.ataRegisters { answer = "ATA \(registers)" }
            if case .nvmeAdmin = command.operation, response.completion != 0 { answer = "good, dword 0 0x\(String(response.completion, radix: 16))" }
            if !quiet { log(command, answer: answer, succeeded: true) }
            return response
        } catch {
            log(command, answer: error.status, succeeded: false)
            throw Failure(message: "\(command.name) failed: \(error.status)", vanished: error.deviceGone)
        }
    }

    /// The drive's current IDENTIFY (security state changes as the erase goes).
    func identify() throws(Failure) -> AtaIdentify {
        let bytes = try send(.ataIdentify, quiet: true).data
        do {
            return try AtaIdentify(bytes: bytes)
        } catch {
            throw Failure(message: "ATA IDENTIFY: \(error.message)")
        }
    }

    // MARK: - Hidden areas

    func hiddenAreas() throws(Failure) {
        guard let ata = capabilities.ata else { return }
        let opener = HiddenAreaOpener(transport: transport)
        var areas = opener.inspect(visibleSectors: ata.userSectors)
        defer {
            record.hiddenAreas = areas
            record.commands += opener.commands
        }
        guard areas.hasHiddenArea else { return }
        guard options.openHiddenAreas else { throw Failure(message: areas.refusal) }
        do {
            try opener.open(&areas)
        } catch {
            throw Failure(message: error.message, vanished: error.vanished)
        }
    }

    // MARK: - Known data before, read-back after

    /// The sample blocks: the first, the last, and `samples` pseudorandom 4 KiB-aligned ones.
    func sampleOffsets() -> [UInt64] {
        let block: UInt64 = 4096
        let blocks = device.sizeBytes / block
        guard blocks > 0 else { return [] }
        var rng = SplitMix64(seed: options.seed)
        var chosen: Set<UInt64> = [0, blocks - 1]
        while chosen.count < min(Int(blocks), options.samples + 2) {
            chosen.insert(UInt64.random(in: 0..<blocks, using: &rng))
        }
        return chosen.sorted().map { $0 * block }
    }

    func transfer(_ offset: UInt64, write bytes: [UInt8]?) throws(Failure) -> [UInt8] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: max(4096, device.bufferAlignment))
        defer { buffer.deallocate() }
        do {
            if let bytes {
                buffer.copyBytes(from: bytes)
                _ = try device.write(UnsafeRawBufferPointer(buffer), at: offset)
                return bytes
            }
            var done = 0
            while done < 4096 {
                let n = try device.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]), at: offset + UInt64(done))
                guard n > 0 else { break }
                done += n
            }
            return Array(buffer.prefix(done))
        } catch {
            throw Failure(message: "\(bytes == nil ? "reading" : "writing") the sample at byte \(offset): \(error)", vanished: error.errno == .noSuchDevice || error.errno == .noSuchDeviceOrAddress)
        }
    }

    func writeCanaries() throws(Failure) -> [(offset: UInt64, canary: [UInt8])] {
        var generator = SystemRandomNumberGenerator()
        var samples: [(offset: UInt64, canary: [UInt8])] = []
        for offset in sampleOffsets() {
            let canary = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
            samples.append((offset, try transfer(offset, write: canary)))
        }
        do {
            try device.synchronize()
        } catch {
            throw Failure(message: "flushing the known data before the erase: \(error)")
        }
        for sample in samples where try transfer(sample.offset, write: nil) != sample.canary {
            throw Failure(message: "the device did not keep the known data written at byte \(sample.offset) before the erase, so an erase could not be proven")
        }
        return samples
    }

    func readBack(_ samples: [(offset: UInt64, canary: [UInt8])]) throws(Failure) -> (VerificationRecord, [ReportCheck]) {
        let clock = Date()
        var canariesLeft = 0
        var notUniform = 0
        var values: [UInt8: Int] = [:]
        var firstMismatches: [Mismatch] = []
        for sample in samples {
            let now = try transfer(sample.offset, write: nil)
            if now == sample.canary {
                canariesLeft += 1
                if firstMismatches.count < 16 { firstMismatches.append(Mismatch(offset: sample.offset, expected: 0, found: now.first ?? 0)) }
            }
            if let first = now.first, now.allSatisfy({ $0 == first }) {
                values[first, default: 0] += 1
            } else {
                notUniform += 1
            }
        }
        let total = samples.count
        var checks = [ReportCheck(
            name: "known data gone", expected: "none of the \(total) sample blocks written before the erase reads back the same",
            observed: canariesLeft == 0 ? "none did" : "\(canariesLeft) of \(total) still hold what was written before", passed: canariesLeft == 0)]
        let spread = values.sorted { $0.value > $1.value }.map { "\(hexByte($0.key)) in \($0.value)" }.joined(separator: ", ")
        switch options.method.effect {
        case .crypto:
            break
        case .block:
            checks.append(ReportCheck(
                name: "erased pattern", expected: "every sample block holds one repeated byte value (the drive's erased state)",
                observed: notUniform == 0 ? "\(spread) of \(total)" : "\(notUniform) of \(total) blocks hold mixed data\(spread.isEmpty ? "" : "; \(spread)")",
                passed: notUniform == 0))
        case .overwrite:
            let zeros = values[0] ?? 0
            checks.append(ReportCheck(
                name: "overwrite pattern", expected: "every sample block holds 0x00 (the pattern Lethe asked the drive to write)",
                observed: "\(zeros) of \(total) do", passed: zeros == total))
        }
        let passed = checks.allSatisfy(\.passed)
        let bytes = UInt64(total) * 4096
        let record = VerificationRecord(
            mode: .sample, result: passed ? .passed : .failed, bytesVerified: bytes,
            coverage: device.sizeBytes == 0 ? 0 : Double(bytes) / Double(device.sizeBytes), sampleSeed: options.seed,
            sampleSubsections: total, mismatchedSectors: UInt64(canariesLeft + (options.method.effect == .crypto ? 0 : notUniform)) * UInt64(4096 / max(1, device.logicalSectorSize)),
            firstMismatches: firstMismatches, seconds: Date().timeIntervalSince(clock))
        return (record, checks)
    }

    // MARK: - The erase

    /// The wait allowed: the operator's limit, else the drive's estimate with half again as
    /// margin (at least 10 minutes), else 12 hours.
    func timeLimit(estimateSeconds: Int?) -> Int {
        options.timeLimitSeconds ?? estimateSeconds.map { max(600, $0 * 3 / 2) } ?? 12 * 3600
    }

    func report(_ progress: (WipeProgress) -> Void, fraction: Double, etaSeconds: Double? = nil) {
        let size = device.sizeBytes
        let done = UInt64(Double(size) * min(1, max(0, fraction)))
        let elapsed = Date().timeIntervalSince(started)
        progress(WipeProgress(
            phase: .firmware, pass: 1, passCount: 1, phaseBytesDone: done, phaseBytesTotal: size, bytesDone: done, bytesTotal: size,
            bytesPerSecond: elapsed > 0 ? Double(done) / elapsed : 0, etaSeconds: etaSeconds, badSectorCount: 0))
    }

    func erase(progress: (WipeProgress) -> Void) throws(Failure) {
        let method = options.method
        switch method {
        case .ataSanitizeCrypto, .ataSanitizeBlock, .ataSanitizeOverwrite:
            try ataSanitize(progress)
        case .ataSecureErase, .ataSecureEraseEnhanced:
            try ataSecurityErase(progress)
        case .nvmeSanitizeCrypto, .nvmeSanitizeBlock, .nvmeSanitizeOverwrite:
            try nvmeSanitize(progress)
        case .nvmeFormatUserData, .nvmeFormatCrypto:
            let namespace = try send(NvmeCommand.identifyNamespace(options.namespace), quiet: true).data
            let format: NvmeNamespaceFormat
            do {
                format = try NvmeNamespaceFormat(bytes: namespace)
            } catch {
                throw Failure(message: error.message)
            }
            // FNA bit 1: a secure erase applies to every namespace, so it must name them all.
            let all = (capabilities.nvme?.formatAttributes ?? 0) & 0x2 != 0
            report(progress, fraction: 0)
            try send(NvmeCommand.format(method, namespace: all ? 0xFFFF_FFFF : options.namespace, current: format, timeoutSeconds: options.timeLimitSeconds ?? 3600))
            report(progress, fraction: 1)
        case .scsiSanitizeCrypto, .scsiSanitizeBlock, .scsiSanitizeOverwrite:
            try send(ScsiCommand.sanitize(method))
            try poll(progress, what: "the sanitize") { () throws(Failure) -> (done: Bool, fraction: Double?, failed: String?) in
                let answer = try self.send(ScsiCommand.requestSense, quiet: true).data
                guard let sense = SenseData(answer) else { return (true, 1, nil) }
                if sense.key == 2, sense.asc == 0x04, sense.ascq == 0x1b { return (false, sense.progress.map { Double($0) / 65536 }, nil) }
                if sense.key == 3, sense.asc == 0x31 {
                    self.sanitizeFailed = true
                    return (true, nil, "the drive reports: \(sense)")
                }
                return (true, 1, nil)
            }
        case .scsiFormatUnit:
            report(progress, fraction: 0)
            try send(ScsiCommand.formatUnit(timeoutSeconds: options.timeLimitSeconds ?? 3600))
            report(progress, fraction: 1)
        case .tcgPsidRevert, .tcgRevertSP:
            try tcgRevert(progress)
        case .tcgCryptoErase:
            try tcgRegenerateKeys(progress)
        }
    }

    /// Polls until done, failed, the time limit, a cancel, or the drive going away.
    func poll(
        _ progress: (WipeProgress) -> Void, what: String,
        status: () throws(Failure) -> (done: Bool, fraction: Double?, failed: String?)
    ) throws(Failure) {
        let began = now()
        var lastFraction = 0.0
        while true {
            let answer: (done: Bool, fraction: Double?, failed: String?)
            do {
                answer = try status()
            } catch {
                if error.vanished {
                    throw Failure(message: "the drive went away during \(what) (\(error.message)); it carries on at its next power-on and refuses reads until then. Dock it again and run Lethe once more to certify it", vanished: true)
                }
                throw error
            }
            record.statusPolls += 1
            if let failed = answer.failed { throw Failure(message: "\(what) failed: \(failed)") }
            if let fraction = answer.fraction { lastFraction = fraction }
            let elapsed = Date().timeIntervalSince(started)
            report(progress, fraction: answer.done ? 1 : lastFraction, etaSeconds: lastFraction > 0.01 && !answer.done ? elapsed / lastFraction - elapsed : nil)
            if answer.done { return }
            if cancellation.isCancelled {
                throw Failure(message: "stopped waiting (\(cancellation.reason == 15 ? "SIGTERM" : "abort")): \(what) goes on inside the drive, which cannot be stopped; nothing is certified", cancelled: true)
            }
            // The drive's estimate may come with its first status answer (NVMe sanitize log).
            let limit = timeLimit(estimateSeconds: driveEstimateSeconds)
            if now() >= began.addingTimeInterval(Double(limit)) {
                throw Failure(message: "\(what) did not finish within \(limit) s (\(Int(lastFraction * 100)) % done by the drive's count); it goes on inside the drive, which refuses reads and writes until it ends. Nothing is certified")
            }
            sleep(options.pollSeconds)
        }
    }

    func ataSanitize(_ progress: (WipeProgress) -> Void) throws(Failure) {
        try send(AtaCommand.sanitize(options.method))
        try poll(progress, what: "the sanitize") { () throws(Failure) -> (done: Bool, fraction: Double?, failed: String?) in
            let response: CommandResponse
            do throws(CommandFailure) {
                response = try transport.send(AtaCommand.sanitizeStatus())
            } catch {
                // An ABORT answer to SANITIZE STATUS EXT is the failure report itself.
                if let registers = SenseData(error.sense)?.ataRegisters, registers.failed {
                    let state = AtaSanitizeStatus(registers)
                    log(AtaCommand.sanitizeStatus(), answer: "ATA \(registers)", succeeded: false)
                    sanitizeFailed = true
                    return (true, nil, state.failureReason ?? "the drive aborted SANITIZE STATUS EXT")
                }
                throw Failure(message: "ATA SANITIZE STATUS EXT failed: \(error.status)", vanished: error.deviceGone)
            }
            guard let registers = SenseData(response.sense)?.ataRegisters else {
                throw Failure(message: "SANITIZE STATUS EXT returned no ATA registers (the bridge drops them); the sanitize cannot be followed")
            }
            let state = AtaSanitizeStatus(registers)
            if state.failed {
                sanitizeFailed = true
                return (true, nil, state.failureReason)
            }
            if state.inProgress { return (false, Double(state.progress) / 65536, nil) }
            log(AtaCommand.sanitizeStatus(), answer: "ATA \(registers)", succeeded: true)
            return state.completedWithoutError || !registers.complete ? (true, 1, nil) : (true, nil, "the drive says the sanitize did not complete without error (\(registers))")
        }
    }

    func ataSecurityErase(_ progress: (WipeProgress) -> Void) throws(Failure) {
        let enhanced = options.method == .ataSecureEraseEnhanced
        let minutes = enhanced ? capabilities.ata?.enhancedEraseMinutes : capabilities.ata?.eraseMinutes
        // The drive's own estimate (words 89/90) is the time limit.
        let limit = timeLimit(estimateSeconds: minutes.map { $0 * 60 })
        passwordSet = true
        try send(AtaCommand.securitySetPassword(ataTemporaryPassword))
        guard try identify().securityEnabled else {
            passwordSet = false
            throw Failure(message: "SECURITY SET PASSWORD was accepted, but IDENTIFY shows no password set (word 128 bit 1 clear); the erase would be refused")
        }
        try send(AtaCommand.securityErasePrepare)
        report(progress, fraction: 0, etaSeconds: minutes.map { Double($0 * 60) })
        try send(AtaCommand.securityEraseUnit(ataTemporaryPassword, enhanced: enhanced, timeoutSeconds: limit))
        let after = try identify()
        if after.securityEnabled || after.securityLocked {
            throw Failure(message: "SECURITY ERASE UNIT returned good status, but the drive still has the password set (IDENTIFY word 128: enabled \(after.securityEnabled), locked \(after.securityLocked)); the erase did not run")
        }
        passwordSet = false
        report(progress, fraction: 1)
    }

    private var passwordSet = false
    /// The drive's own estimate for the running operation, when it gives one.
    var driveEstimateSeconds: Int?
    var sanitizeFailed = false
    /// An NVMe sanitize left the controller in the Media Verification state (EMVS).
    var inMediaVerification = false
    /// How many of the TCG host's exchanges are in the record already.
    var tcgRecorded = 0
    /// tcg-crypto-erase: the locking ranges read before the known data went on.
    var tcgRanges: [TCGLockingRange] = []
    /// Checks of the drive's own exchange (TCG ranges, NVMe media verification), for the
    /// certificate beside the read-back's.
    var driveChecks: [ReportCheck] = []

    /// Never leave a drive locked; take a failed sanitize out of its failure state.
    func cleanUp() {
        if passwordSet {
            let state = try? identify()
            if state?.securityLocked ?? true { _ = try? send(AtaCommand.securityUnlock(ataTemporaryPassword)) }
            if state?.securityEnabled ?? true { _ = try? send(AtaCommand.securityDisablePassword(ataTemporaryPassword)) }
            if let final = try? identify(), !final.securityEnabled, !final.securityLocked {
                log(.ataIdentify, answer: "security: no password set, not locked", succeeded: true)
            } else {
                log(.ataIdentify, answer: "the temporary password could not be cleared: run hdparm --user-master u --security-disable \(ataTemporaryPassword) on it", succeeded: false)
            }
        }
        if inMediaVerification { _ = try? send(NvmeCommand.sanitizeExitMediaVerification) }
        if sanitizeFailed {
            switch options.method.family {
            case .ata: _ = try? send(AtaCommand.sanitizeStatus(clearFailure: true))
            case .nvme: _ = try? send(NvmeCommand.sanitizeExitFailureMode)
            case .scsi: _ = try? send(ScsiCommand.sanitizeExitFailureMode)
            case .tcg: break
            }
        }
    }
}
