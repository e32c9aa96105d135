import Foundation
import LetheCore
import LetheTesting
import LetheWipe
import Synchronization
import Testing

/// Every firmware-erase flow through the scripted transport, with the exact bytes each command
/// puts on the wire. IDENTIFY data comes from real drives (Fixtures/README.md): the Samsung
/// 870 QVO's own dump, with words 59 and 128 changed where a test needs another capability
/// (and the A5h checksum made right again). Status answers (ATA registers in the SAT ATA Status
/// Return descriptor, the NVMe Sanitize Status log) are built field by field from ACS-4
/// §7.35.8, SAT-4 §12.2.2.6 and NVMe Base 2.0 §5.16.1.25: no public dump of a drive mid-sanitize
/// was found.
@Suite struct FirmwarePurgeTests {
    static let mib = 1 << 20

    /// The Samsung 870 QVO's IDENTIFY with `change` applied to its words, checksum fixed.
    static func samsung(_ change: (inout [UInt16]) -> Void = { _ in }) throws -> [UInt8] {
        let bytes = try IdentifyTests.samsung870()
        var words = stride(from: 0, to: 512, by: 2).map { UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8 }
        change(&words)
        var out = words.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
        out[510] = 0xA5
        out[511] = 0
        out[511] = 0 &- out.reduce(UInt8(0), &+)
        return out
    }

    /// Word 128 with security supported and enhanced erase, and the given state bits.
    static func security(enabled: Bool = false, locked: Bool = false, frozen: Bool = false) -> (inout [UInt16]) -> Void {
        { words in
            words[128] = 0x0021 | (enabled ? 2 : 0) | (locked ? 4 : 0) | (frozen ? 8 : 0)
        }
    }

    /// SAT descriptor-format sense with the ATA Status Return descriptor (CK_COND answers).
    static func ataSense(key: UInt8 = 0x01, asc: UInt8 = 0, ascq: UInt8 = 0x1d, error: UInt8 = 0, status: UInt8 = 0x50, count: UInt16 = 0, lba: UInt64 = 0) -> [UInt8] {
        [0x72, key, asc, ascq, 0, 0, 0, 14,
         0x09, 0x0c, 0x01, error, UInt8(count >> 8), UInt8(count & 0xff),
         UInt8(lba >> 24 & 0xff), UInt8(lba & 0xff), UInt8(lba >> 32 & 0xff), UInt8(lba >> 8 & 0xff), UInt8(lba >> 40 & 0xff), UInt8(lba >> 16 & 0xff),
         0x40, status]
    }

    static func registers(count: UInt16 = 0, lba: UInt64 = 0, status: UInt8 = 0x50, error: UInt8 = 0) -> ScriptedTransport.Reply {
        .response(CommandResponse(sense: ataSense(error: error, status: status, count: count, lba: lba)))
    }

    /// The device aborted the command (ATA ERROR 04h ABRT, STATUS 51h), as libata reports it.
    static let aborted = ScriptedTransport.Reply.failure(
        status: "SCSI status 0x2, sense key 0xb (ABORTED COMMAND)", sense: ataSense(key: 0x0b, ascq: 0, error: 0x04, status: 0x51))

    static func nvmeController(sanicap: UInt8 = 0, fna: UInt8 = 0) throws -> [UInt8] {
        var bytes = [UInt8](try IdentifyTests.fixture("nvme-identify-controller-qemu72.bin"))
        bytes[328] = sanicap
        bytes[524] = fna
        return bytes
    }

    static func nvmeNamespace(blocks: UInt64, flbas: UInt8 = 0) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 4096)
        for i in 0..<8 { bytes[i] = UInt8(blocks >> (8 * UInt64(i)) & 0xff) }
        bytes[26] = flbas
        return bytes
    }

    static func sanitizeLog(state: UInt8, progress: UInt16 = 0xffff, cryptoEstimate: UInt32 = 0xffff_ffff, ssi: UInt8 = 0) -> ScriptedTransport.Reply {
        var bytes = [UInt8](repeating: 0, count: 512)
        bytes[36] = ssi
        bytes[0] = UInt8(progress & 0xff)
        bytes[1] = UInt8(progress >> 8)
        bytes[2] = state
        for i in 0..<4 { bytes[16 + i] = UInt8(cryptoEstimate >> (8 * UInt32(i)) & 0xff) }
        return .data(bytes)
    }

    static func purge(
        _ method: FirmwareErase, identify: [UInt8]? = nil, nvme: [UInt8]? = nil, scsi: [FirmwareErase: Bool] = [:], device: MemoryBlockDevice,
        transport: ScriptedTransport, configure: (inout FirmwarePurgeOptions) -> Void = { _ in }
    ) throws -> FirmwarePurge {
        var options = FirmwarePurgeOptions(method: method)
        options.seed = 42
        options.samples = 32
        options.pollSeconds = 0
        configure(&options)
        let probe = FirmwareCapabilities(ata: try identify.map { try AtaIdentify(bytes: $0) }, nvme: try nvme.map { try NvmeIdentify(bytes: $0) })
        return FirmwarePurge(device: device, transport: transport, capabilities: PurgeCapabilities(probe, scsiSanitize: scsi), options: options, sleep: { _ in })
    }

    static func cdb(_ command: DeviceCommand?) -> [UInt8] {
        guard case .scsi(let cdb)? = command?.operation else { return [] }
        return cdb
    }

    // MARK: - ATA security erase

    @Test func enhancedSecurityEraseSetsThePasswordErasesAndIsVerified() throws {
        let device = MemoryBlockDevice(sizeBytes: 8 * Self.mib)
        let idle = try Self.samsung(Self.security())
        let armed = try Self.samsung(Self.security(enabled: true))
        let transport = ScriptedTransport(
            path: "/dev/sdx",
            sequences: [
                "ATA IDENTIFY DEVICE": [.data(armed), .data(idle)],
                "ATA READ NATIVE MAX ADDRESS EXT": [Self.registers(lba: 7_814_037_167)],
                "ATA DEVICE CONFIGURATION IDENTIFY": [Self.aborted],
                "ATA SECURITY SET PASSWORD (user)": [.data([])],
                "ATA SECURITY ERASE PREPARE": [.data([])],
                "ATA SECURITY ERASE UNIT (enhanced)": [.data([])],
            ],
            effects: ["ATA SECURITY ERASE UNIT (enhanced)": { device.fillAll(0x00) }])
        let purge = try Self.purge(.ataSecureEraseEnhanced, identify: idle, device: device, transport: transport)
        let outcome = purge.run()
        #expect(outcome.status == .erased && outcome.error == nil, "\(outcome)")
        #expect(outcome.category == .purge && outcome.verification.result == .passed)
        #expect(outcome.checks?.map(\.passed) == [true, true], "\(outcome.checks ?? [])")
        #expect(outcome.checks?.last?.observed.hasPrefix("0x00 in 34 of 34") == true, "\(outcome.checks ?? [])")
        let hidden = try #require(outcome.firmware?.hiddenAreas)
        #expect(hidden.nativeSectors == 7_814_037_168 && hidden.visibleSectors == 7_814_037_168 && !hidden.hasHiddenArea)

        let names = transport.sentNames
        #expect(names.filter { $0.hasPrefix("ATA SECURITY") } == [
            "ATA SECURITY SET PASSWORD (user)", "ATA SECURITY ERASE PREPARE", "ATA SECURITY ERASE UNIT (enhanced)",
        ])
        // SET PASSWORD: PIO data-out (protocol 5), one block, F1h; the user password "Lethe".
        let set = try #require(transport.sent.first { $0.name == "ATA SECURITY SET PASSWORD (user)" })
        #expect(Self.cdb(set) == [0x85, 0x0a, 0x06, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0xf1, 0])
        #expect(set.direction == .toDevice && set.dataOut.count == 512 && Array(set.dataOut[0..<7]) == [0, 0] + Array("Lethe".utf8))
        // ERASE UNIT: word 0 bit 1 (enhanced); the time limit is the drive's 8 minutes (word 90)
        // with a margin, at least 10 minutes.
        let erase = try #require(transport.sent.first { $0.name == "ATA SECURITY ERASE UNIT (enhanced)" })
        #expect(Self.cdb(erase)[14] == 0xf4 && erase.dataOut[0] == 0x02 && erase.timeoutSeconds == 720)
        // READ NATIVE MAX ADDRESS EXT: non-data, 48-bit, CK_COND for the registers.
        let native = try #require(transport.sent.first { $0.name == "ATA READ NATIVE MAX ADDRESS EXT" })
        #expect(Self.cdb(native) == [0x85, 0x07, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x27, 0])
        #expect(outcome.firmware?.commands.map(\.name).contains("ATA SECURITY ERASE UNIT (enhanced)") == true)
    }

    @Test func aFrozenDriveGetsTheReplugInstructionAndNothingIsSent() throws {
        let frozen = try Self.samsung(Self.security(frozen: true))
        let transport = ScriptedTransport(sequences: [:])
        let purge = try Self.purge(.ataSecureErase, identify: frozen, device: MemoryBlockDevice(sizeBytes: Self.mib), transport: transport)
        let refusal = try #require(purge.refusal())
        #expect(refusal.contains("FROZEN") && refusal.contains("hot re-plug") && refusal.contains("suspend and resume"), "\(refusal)")
        let outcome = purge.run()
        #expect(outcome.status == .notErased && transport.sent.isEmpty)
    }

    /// The lab's SATA disk aborts SECURITY ERASE UNIT (hdparm exits 0 all the same): Lethe
    /// reports it failed, and takes its temporary password off again.
    @Test func anAbortedSecurityEraseFailsAndThePasswordIsCleared() throws {
        let device = MemoryBlockDevice(sizeBytes: 4 * Self.mib)
        let idle = try Self.samsung(Self.security())
        let armed = try Self.samsung(Self.security(enabled: true))
        let transport = ScriptedTransport(sequences: [
            "ATA IDENTIFY DEVICE": [.data(armed), .data(armed), .data(idle)],
            "ATA READ NATIVE MAX ADDRESS EXT": [Self.registers(lba: 7_814_037_167)],
            "ATA SECURITY SET PASSWORD (user)": [.data([])],
            "ATA SECURITY ERASE PREPARE": [.data([])],
            "ATA SECURITY ERASE UNIT (normal)": [Self.aborted],
            "ATA SECURITY DISABLE PASSWORD (user)": [.data([])],
        ])
        let outcome = try Self.purge(.ataSecureErase, identify: idle, device: device, transport: transport).run()
        #expect(outcome.status == .notErased && outcome.verification.result == .notRun)
        #expect(outcome.error?.contains("SECURITY ERASE UNIT (normal) failed") == true && outcome.error?.contains("ABORTED COMMAND") == true, "\(outcome.error ?? "")")
        #expect(transport.sentNames.contains("ATA SECURITY DISABLE PASSWORD (user)"))
        #expect(!transport.sentNames.contains("ATA SECURITY UNLOCK (user)"), "not locked: no unlock needed")
        let last = try #require(outcome.firmware?.commands.last)
        #expect(last.succeeded && last.answer.contains("no password set"), "\(last)")
    }

    @Test func aDriveLeftLockedIsUnlockedAndItsPasswordDisabled() throws {
        let idle = try Self.samsung(Self.security())
        let armed = try Self.samsung(Self.security(enabled: true))
        let locked = try Self.samsung(Self.security(enabled: true, locked: true))
        let transport = ScriptedTransport(sequences: [
            "ATA IDENTIFY DEVICE": [.data(armed), .data(locked), .data(idle)],
            "ATA READ NATIVE MAX ADDRESS EXT": [Self.registers(lba: 7_814_037_167)],
            "ATA SECURITY SET PASSWORD (user)": [.data([])],
            "ATA SECURITY ERASE PREPARE": [.data([])],
            // The drive went through a reset mid-erase: the command timed out.
            "ATA SECURITY ERASE UNIT (normal)": [.failure(status: "SG_IO ioctl failed", errno: .timedOut)],
            "ATA SECURITY UNLOCK (user)": [.data([])],
            "ATA SECURITY DISABLE PASSWORD (user)": [.data([])],
        ])
        let outcome = try Self.purge(.ataSecureErase, identify: idle, device: MemoryBlockDevice(sizeBytes: Self.mib), transport: transport).run()
        #expect(outcome.status == .notErased)
        let names = transport.sentNames
        let unlock = try #require(names.firstIndex(of: "ATA SECURITY UNLOCK (user)"))
        let disable = try #require(names.firstIndex(of: "ATA SECURITY DISABLE PASSWORD (user)"))
        #expect(unlock < disable)
        #expect(outcome.firmware?.commands.last?.answer.contains("no password set") == true)
    }

    // MARK: - ATA sanitize

    static func sanitizeCapable() throws -> [UInt8] {
        try samsung { words in
            words[59] |= 0x1000 | 0x2000 | 0x8000  // sanitize, crypto scramble, block erase (no overwrite)
        }
    }

    @Test func ataCryptoScramblePollsProgressAndProvesTheKnownDataGone() throws {
        let device = MemoryBlockDevice(sizeBytes: 8 * Self.mib)
        let identify = try Self.sanitizeCapable()
        let transport = ScriptedTransport(
            sequences: [
                "ATA READ NATIVE MAX ADDRESS EXT": [Self.registers(lba: 7_814_037_167)],
                "ATA SANITIZE CRYPTO SCRAMBLE": [.data([])],
                "ATA SANITIZE STATUS EXT": [
                    Self.registers(count: 0x4000, lba: 0x4000), Self.registers(count: 0x4000, lba: 0xC000), Self.registers(count: 0x8000),
                ],
            ],
            effects: ["ATA SANITIZE CRYPTO SCRAMBLE": { device.scrambleAll() }])
        let progress = Mutex<[Double]>([])
        let outcome = try Self.purge(.ataSanitizeCrypto, identify: identify, device: device, transport: transport).run { update in
            progress.withLock { $0.append(update.fraction) }
        }
        #expect(outcome.status == .erased, "\(outcome.error ?? "")")
        #expect(outcome.checks?.count == 1 && outcome.checks?.first?.name == "known data gone")
        let fractions = progress.withLock { $0 }
        #expect(fractions.contains { abs($0 - 0.25) < 0.01 } && fractions.contains { abs($0 - 0.75) < 0.01 } && fractions.last == 1, "\(fractions)")
        // SANITIZE DEVICE B4h, feature 0011h, LBA "Cryp" (43727970h), FAILURE MODE (count bit 4).
        let sanitize = try #require(transport.sent.first { $0.name == "ATA SANITIZE CRYPTO SCRAMBLE" })
        #expect(Self.cdb(sanitize) == [0x85, 0x07, 0x00, 0x00, 0x11, 0x00, 0x10, 0x43, 0x70, 0x00, 0x79, 0x00, 0x72, 0x40, 0xb4, 0x00])
        #expect(outcome.firmware?.statusPolls == 3)
    }

    @Test func aSanitizeThatNeverFinishesIsNotCertified() throws {
        let transport = ScriptedTransport(sequences: [
            "ATA READ NATIVE MAX ADDRESS EXT": [Self.registers(lba: 7_814_037_167)],
            "ATA SANITIZE BLOCK ERASE": [.data([])],
            "ATA SANITIZE STATUS EXT": [Self.registers(count: 0x4000, lba: 0x0100)],
        ])
        let outcome = try Self.purge(.ataSanitizeBlock, identify: try Self.sanitizeCapable(), device: MemoryBlockDevice(sizeBytes: Self.mib), transport: transport) {
            $0.timeLimitSeconds = 0
        }.run()
        #expect(outcome.status == .notErased && outcome.error?.contains("did not finish within 0 s") == true, "\(outcome.error ?? "")")
    }

    @Test func aFailedSanitizeIsReportedAndItsFailureStateCleared() throws {
        let transport = ScriptedTransport(sequences: [
            "ATA READ NATIVE MAX ADDRESS EXT": [Self.registers(lba: 7_814_037_167)],
            "ATA SANITIZE BLOCK ERASE": [.data([])],
            "ATA SANITIZE STATUS EXT": [
                Self.registers(count: 0x4000, lba: 0x2000),
                .failure(status: "sense key 0xb", sense: Self.ataSense(key: 0x0b, ascq: 0, error: 0x04, status: 0x51, lba: 1)),
            ],
            "ATA SANITIZE STATUS EXT (clear failure)": [Self.registers()],
        ])
        let outcome = try Self.purge(.ataSanitizeBlock, identify: try Self.sanitizeCapable(), device: MemoryBlockDevice(sizeBytes: Self.mib), transport: transport).run()
        #expect(outcome.status == .notErased && outcome.error?.contains("sanitize command unsuccessful") == true, "\(outcome.error ?? "")")
        let clear = try #require(transport.sent.last)
        #expect(clear.name == "ATA SANITIZE STATUS EXT (clear failure)" && Self.cdb(clear)[6] == 0x01, "CLEAR SANITIZE OPERATION FAILED is count bit 0")
    }

    @Test func aDriveUnpluggedDuringASanitizeSaysSo() throws {
        let transport = ScriptedTransport(sequences: [
            "ATA READ NATIVE MAX ADDRESS EXT": [Self.registers(lba: 7_814_037_167)],
            "ATA SANITIZE CRYPTO SCRAMBLE": [.data([])],
            "ATA SANITIZE STATUS EXT": [Self.registers(count: 0x4000, lba: 0x1000), .failure(status: "SG_IO ioctl failed", errno: .noSuchDevice)],
        ])
        let outcome = try Self.purge(.ataSanitizeCrypto, identify: try Self.sanitizeCapable(), device: MemoryBlockDevice(sizeBytes: Self.mib), transport: transport).run()
        #expect(outcome.status == .notErased && outcome.deviceVanished)
        #expect(outcome.error?.contains("went away during the sanitize") == true && outcome.error?.contains("Dock it again") == true, "\(outcome.error ?? "")")
    }

    /// A USB bridge that drops ATA pass-through: IDENTIFY already fails, so the purge is
    /// refused with the bridge named; and a bridge that passes IDENTIFY but not SANITIZE.
    @Test func aBridgeWithoutATAPassThroughIsNamed() throws {
        let bridge = ScriptedTransport(path: "/dev/sdu", replies: [
            "ATA IDENTIFY DEVICE": .failure(status: "SCSI status 0x2, sense \(SenseData.describe([0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0x00]))"),
        ])
        let probe = FirmwareCapabilities.probe(transport: .usb, using: bridge)
        let refusal = try #require(PurgeCapabilities(probe).refusal(.ataSanitizeCrypto))
        #expect(refusal.contains("did not answer ATA IDENTIFY") && refusal.contains("no ATA pass-through"), "\(refusal)")
        #expect(PurgeCapabilities(probe).family(transport: .usb) == .scsi)

        let halfBridge = ScriptedTransport(sequences: [
            "ATA READ NATIVE MAX ADDRESS EXT": [Self.registers(lba: 7_814_037_167)],
            "ATA SANITIZE CRYPTO SCRAMBLE": [.failure(status: "SCSI status 0x2, sense \(SenseData.describe([0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0x00]))")],
        ])
        let outcome = try Self.purge(.ataSanitizeCrypto, identify: try Self.sanitizeCapable(), device: MemoryBlockDevice(sizeBytes: Self.mib), transport: halfBridge).run()
        #expect(outcome.status == .notErased && outcome.error?.contains("does not support this command") == true, "\(outcome.error ?? "")")
    }

    // MARK: - Hidden areas

    @Test func aHostProtectedAreaIsFoundAndOpenedOnlyWhenAsked() throws {
        let visible: UInt64 = 7_814_037_168
        let hpa: UInt64 = 1_000_000
        let identify = try Self.samsung(Self.security())
        let reopened = try Self.samsung { words in
            Self.security()(&words)
            let total = visible + hpa
            for i in 0..<4 { words[100 + i] = UInt16(total >> (16 * UInt64(i)) & 0xffff) }
        }
        func script() -> ScriptedTransport {
            ScriptedTransport(sequences: [
                "ATA READ NATIVE MAX ADDRESS EXT": [Self.registers(lba: visible + hpa - 1)],
                "ATA DEVICE CONFIGURATION IDENTIFY": [Self.aborted],
                "ATA SET MAX ADDRESS EXT": [Self.registers(lba: visible + hpa - 1)],
                "ATA IDENTIFY DEVICE": [.data(reopened)],
            ])
        }
        let closed = script()
        let refused = try Self.purge(.ataSecureErase, identify: identify, device: MemoryBlockDevice(sizeBytes: Self.mib), transport: closed).run()
        #expect(refused.status == .notErased && refused.error?.contains("hides 1000000 sector(s) behind a Host Protected Area") == true, "\(refused.error ?? "")")
        #expect(refused.error?.contains("--open-hidden-areas") == true && !closed.sentNames.contains("ATA SET MAX ADDRESS EXT"))
        #expect(refused.firmware?.hiddenAreas?.hpaSectors == hpa)

        let opening = script()
        let opened = try Self.purge(.ataSecureErase, identify: identify, device: MemoryBlockDevice(sizeBytes: Self.mib), transport: opening) { $0.openHiddenAreas = true }.run()
        let setMax = try #require(opening.sent.first { $0.name == "ATA SET MAX ADDRESS EXT" })
        // 37h, 48-bit, VV (count bit 0) so it stays open, LBA = native max.
        let lba = visible + hpa - 1
        #expect(Self.cdb(setMax) == [0x85, 0x07, 0x20, 0, 0, 0, 1, UInt8(lba >> 24 & 0xff), UInt8(lba & 0xff), UInt8(lba >> 32 & 0xff), UInt8(lba >> 8 & 0xff), 0, UInt8(lba >> 16 & 0xff), 0x40, 0x37, 0])
        #expect(opened.firmware?.hiddenAreas?.actions.first?.contains("\(visible + hpa) sectors visible") == true, "\(String(describing: opened.firmware?.hiddenAreas))")
    }

    /// The opener an overwrite uses: DCO first, then the HPA, each command logged; a drive
    /// that accepts SET MAX but keeps its size is caught; a bridge without pass-through only
    /// leaves a problem to report.
    @Test func theOverwritePathOpensADCOAndAnHPAAndChecksTheSize() throws {
        let visible: UInt64 = 7_000_000_000
        let native: UInt64 = 7_500_000_000
        let factory: UInt64 = 7_814_037_168
        var dco = [UInt8](repeating: 0, count: 512)
        dco[0] = 2
        for i in 0..<4 { dco[6 + 2 * i] = UInt8((factory - 1) >> (16 * UInt64(i)) & 0xff); dco[7 + 2 * i] = UInt8((factory - 1) >> (16 * UInt64(i) + 8) & 0xff) }
        func identify(_ sectors: UInt64) throws -> [UInt8] {
            try Self.samsung { words in for i in 0..<4 { words[100 + i] = UInt16(sectors >> (16 * UInt64(i)) & 0xffff) } }
        }
        func script(after: UInt64) throws -> ScriptedTransport {
            ScriptedTransport(sequences: [
                "ATA READ NATIVE MAX ADDRESS EXT": [Self.registers(lba: native - 1)],
                "ATA DEVICE CONFIGURATION IDENTIFY": [.data(dco)],
                "ATA DEVICE CONFIGURATION RESTORE": [Self.registers()],
                "ATA SET MAX ADDRESS EXT": [Self.registers(lba: factory - 1)],
                "ATA IDENTIFY DEVICE": [.data(try identify(after))],
            ])
        }
        let good = try script(after: factory)
        let opener = HiddenAreaOpener(transport: good)
        var areas = opener.inspect(visibleSectors: visible)
        #expect(areas.hpaSectors == native - visible && areas.dcoSectors == factory - native && areas.problem == nil)
        #expect(good.sentNames == ["ATA READ NATIVE MAX ADDRESS EXT", "ATA DEVICE CONFIGURATION IDENTIFY"], "inspecting changes nothing")
        #expect(areas.refusal.hasPrefix("the drive hides 500000000 sector(s) behind a Host Protected Area and 314037168 behind a Device Configuration Overlay"))
        try opener.open(&areas)
        #expect(good.sentNames.suffix(3) == ["ATA DEVICE CONFIGURATION RESTORE", "ATA SET MAX ADDRESS EXT", "ATA IDENTIFY DEVICE"])
        #expect(opener.commands.map(\.name) == ["ATA DEVICE CONFIGURATION RESTORE", "ATA SET MAX ADDRESS EXT"] && opener.commands.allSatisfy(\.succeeded))
        #expect(areas.actions == ["DEVICE CONFIGURATION RESTORE: the factory size is back", "SET MAX ADDRESS EXT: 7814037168 sectors visible (was 7000000000)"])

        // Accepted, but the size did not change: an error, never a silent partial erase.
        let stubborn = HiddenAreaOpener(transport: try script(after: visible))
        var same = stubborn.inspect(visibleSectors: visible)
        #expect(throws: HiddenAreaOpener.Failure.self) { try stubborn.open(&same) }
        do {
            try stubborn.open(&same)
        } catch {
            #expect(error.message == "SET MAX ADDRESS EXT was accepted, but IDENTIFY still shows 7000000000 sectors, not 7814037168")
        }

        // A USB bridge that drops ATA pass-through: nothing found, and the reason kept.
        let bridge = HiddenAreaOpener(transport: ScriptedTransport(sequences: [
            "ATA READ NATIVE MAX ADDRESS EXT": [.failure(status: "SCSI status 0x2, sense key 0x5 (ILLEGAL REQUEST)", errno: nil, sense: [], nvmeStatus: nil)],
        ]))
        let unknown = bridge.inspect(visibleSectors: visible)
        #expect(!unknown.hasHiddenArea && unknown.problem == "READ NATIVE MAX ADDRESS EXT: SCSI status 0x2, sense key 0x5 (ILLEGAL REQUEST)")
    }

    @Test func dcoIdentifyGivesTheFactorySize() {
        var dco = [UInt8](repeating: 0, count: 512)
        dco[0] = 2  // revision
        let last: UInt64 = 0x1_D1C0_BEAF
        for i in 0..<4 { dco[6 + 2 * i] = UInt8(last >> (16 * UInt64(i)) & 0xff); dco[7 + 2 * i] = UInt8(last >> (16 * UInt64(i) + 8) & 0xff) }
        #expect(HiddenAreas.factoryLastLBA(dcoIdentify: dco) == last)
        var areas = HiddenAreas(visibleSectors: 1000, nativeSectors: 1200, factorySectors: last + 1)
        #expect(areas.hpaSectors == 200 && areas.dcoSectors == last + 1 - 1200)
        areas.nativeSectors = nil
        #expect(areas.hpaSectors == 0)
        #expect(HiddenAreas.factoryLastLBA(dcoIdentify: [UInt8](repeating: 0, count: 512)) == nil, "revision 0: no DCO")
    }

    // MARK: - NVMe

    @Test func nvmeCryptoSanitizeFollowsTheStatusLog() throws {
        let device = MemoryBlockDevice(path: "/dev/nvme9n1", sizeBytes: 8 * Self.mib)
        let transport = ScriptedTransport(
            path: "/dev/nvme9",
            sequences: [
                "NVMe Sanitize, Crypto Erase": [.data([])],
                "NVMe Get Log Page (Sanitize Status)": [Self.sanitizeLog(state: 2, progress: 0x8000, cryptoEstimate: 30), Self.sanitizeLog(state: 1)],
            ],
            effects: ["NVMe Sanitize, Crypto Erase": { device.scrambleAll() }])
        let outcome = try Self.purge(.nvmeSanitizeCrypto, nvme: try Self.nvmeController(sanicap: 0x7), device: device, transport: transport).run()
        #expect(outcome.status == .erased, "\(outcome.error ?? "")")
        let sanitize = try #require(transport.sent.first)
        // Sanitize 84h, SANACT 4 (crypto erase) with AUSE (bit 3).
        #expect(sanitize.operation == .nvmeAdmin(opcode: 0x84, namespace: 0, cdw10: 0x0c, cdw11: 0))
        // Get Log Page 02h, LID 81h, 128 dwords (NUMDL 127).
        #expect(transport.sent[1].operation == .nvmeAdmin(opcode: 0x02, namespace: 0xffff_ffff, cdw10: 0x007f_0081, cdw11: 0))
        #expect(outcome.firmware?.commands.last?.answer == "SSTAT 1, SPROG 65535")
    }

    /// The NVMe Sanitize Status log's own estimate (EToCE) sets how long Lethe waits: one and a
    /// half times it (at least 10 minutes), not the 12 hours for a drive that gives none. The
    /// clock moves only when the poll sleeps, a minute a time.
    @Test(arguments: [(UInt32(1_000), 1_500), (UInt32(0xffff_ffff), 43_200)])
    func nvmeSanitizeWaitsAsLongAsTheDrivesEstimate(estimate: UInt32, limit: Int) throws {
        let transport = ScriptedTransport(sequences: [
            "NVMe Sanitize, Crypto Erase": [.data([])],
            "NVMe Get Log Page (Sanitize Status)": [Self.sanitizeLog(state: 2, progress: 0x1000, cryptoEstimate: estimate)],
        ])
        let clock = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        var options = FirmwarePurgeOptions(method: .nvmeSanitizeCrypto)
        options.seed = 42
        options.samples = 8
        options.pollSeconds = 60
        let probe = FirmwareCapabilities(nvme: try NvmeIdentify(bytes: try Self.nvmeController(sanicap: 0x7)))
        let purge = FirmwarePurge(
            device: MemoryBlockDevice(sizeBytes: Self.mib), transport: transport, capabilities: PurgeCapabilities(probe), options: options,
            sleep: { seconds in clock.withLock { $0 = $0.addingTimeInterval(seconds) } }, now: { clock.withLock { $0 } })
        let outcome = purge.run()
        #expect(outcome.status == .notErased && outcome.error?.contains("did not finish within \(limit) s (6 % done by the drive's count)") == true, "\(outcome.error ?? "")")
        let polls = outcome.firmware?.statusPolls ?? 0
        #expect(polls == limit / 60 + 1, "one poll a minute until the limit: \(polls)")
    }

    /// NVMe 2.1 media verification: EMVS set when SANICAP bit 3 says the controller has it,
    /// the read-back done in the Media Verification state (SSI 5h), then Exit Media
    /// Verification State and the wait for the deallocation. The exit here fills the media
    /// with noise, so a read-back after it would fail the block erase's pattern check: the
    /// order is proven, not assumed.
    @Test func nvmeMediaVerificationReadsBeforeTheControllerDeallocates() throws {
        let device = MemoryBlockDevice(path: "/dev/nvme9n1", sizeBytes: 8 * Self.mib)
        let transport = ScriptedTransport(
            path: "/dev/nvme9",
            sequences: [
                "NVMe Sanitize, Block Erase": [.data([])],
                "NVMe Sanitize, Exit Media Verification State": [.data([])],
                "NVMe Get Log Page (Sanitize Status)": [
                    Self.sanitizeLog(state: 2, progress: 0x4000, ssi: 3), Self.sanitizeLog(state: 2, ssi: 5),
                    Self.sanitizeLog(state: 2, ssi: 6), Self.sanitizeLog(state: 1, ssi: 0),
                ],
            ],
            effects: ["NVMe Sanitize, Block Erase": { device.fillAll(0xFF) }, "NVMe Sanitize, Exit Media Verification State": { device.scrambleAll() }])
        let outcome = try Self.purge(.nvmeSanitizeBlock, nvme: try Self.nvmeController(sanicap: 0x0A), device: device, transport: transport).run()
        #expect(outcome.status == .erased, "\(outcome.error ?? "")")
        // Sanitize 84h, SANACT 2 (block erase), AUSE (bit 3), EMVS (bit 10).
        #expect(transport.sent.first?.operation == .nvmeAdmin(opcode: 0x84, namespace: 0, cdw10: 0x40a, cdw11: 0))
        let exit = try #require(transport.sent.first { $0.name == "NVMe Sanitize, Exit Media Verification State" })
        #expect(exit.operation == .nvmeAdmin(opcode: 0x84, namespace: 0, cdw10: 5, cdw11: 0))
        #expect(transport.sent.last?.name == "NVMe Get Log Page (Sanitize Status)")
        let check = try #require(outcome.checks?.first { $0.name == "media verification (NVMe 2.1 EMVS)" })
        #expect(check.passed && check.observed.contains("read in the Media Verification state (SSI 5h)") && check.observed.contains("SSTAT 1h, SSI 0h"), "\(check)")
        #expect(outcome.checks?.first { $0.name == "erased pattern" }?.observed == "0xFF in 34 of 34")

        // Without SANICAP bit 3 nothing changes: no EMVS, no exit, no check.
        let plain = MemoryBlockDevice(path: "/dev/nvme9n1", sizeBytes: 8 * Self.mib)
        let older = ScriptedTransport(
            sequences: ["NVMe Sanitize, Block Erase": [.data([])], "NVMe Get Log Page (Sanitize Status)": [Self.sanitizeLog(state: 1)]],
            effects: ["NVMe Sanitize, Block Erase": { plain.fillAll(0xFF) }])
        let before = try Self.purge(.nvmeSanitizeBlock, nvme: try Self.nvmeController(sanicap: 0x02), device: plain, transport: older).run()
        #expect(before.status == .erased && older.sent.first?.operation == .nvmeAdmin(opcode: 0x84, namespace: 0, cdw10: 0x0a, cdw11: 0))
        #expect(!older.sentNames.contains("NVMe Sanitize, Exit Media Verification State") && before.checks?.count == 2)
    }

    /// A controller that says it has media verification but completes without entering it:
    /// certified on the read-back as before, and the certificate says plainly what happened.
    @Test func aControllerThatSkipsMediaVerificationIsNamed() throws {
        let device = MemoryBlockDevice(path: "/dev/nvme9n1", sizeBytes: 8 * Self.mib)
        let transport = ScriptedTransport(
            sequences: ["NVMe Sanitize, Crypto Erase": [.data([])], "NVMe Get Log Page (Sanitize Status)": [Self.sanitizeLog(state: 1, ssi: 0)]],
            effects: ["NVMe Sanitize, Crypto Erase": { device.scrambleAll() }])
        let outcome = try Self.purge(.nvmeSanitizeCrypto, nvme: try Self.nvmeController(sanicap: 0x09), device: device, transport: transport).run()
        #expect(outcome.status == .erased, "\(outcome.error ?? "")")
        #expect(!transport.sentNames.contains("NVMe Sanitize, Exit Media Verification State"))
        let check = try #require(outcome.checks?.first { $0.name == "media verification (NVMe 2.1 EMVS)" })
        #expect(check.observed.contains("completed the sanitize without entering it (SSI 0h)"), "\(check)")
    }

    /// An exit that fails leaves the drive unusable: not certified, and the exit is tried again
    /// on the way out.
    @Test func aFailedExitFromMediaVerificationIsNotCertified() throws {
        let device = MemoryBlockDevice(path: "/dev/nvme9n1", sizeBytes: 8 * Self.mib)
        let transport = ScriptedTransport(
            sequences: [
                "NVMe Sanitize, Crypto Erase": [.data([])],
                "NVMe Sanitize, Exit Media Verification State": [.failure(status: "NVMe status 0x2 (Invalid Field in Command)", nvmeStatus: 2)],
                "NVMe Get Log Page (Sanitize Status)": [Self.sanitizeLog(state: 2, ssi: 5)],
            ],
            effects: ["NVMe Sanitize, Crypto Erase": { device.scrambleAll() }])
        let outcome = try Self.purge(.nvmeSanitizeCrypto, nvme: try Self.nvmeController(sanicap: 0x09), device: device, transport: transport).run()
        #expect(outcome.status == .notErased && outcome.error?.contains("Exit Media Verification State") == true, "\(outcome.error ?? "")")
        #expect(transport.sentNames.filter { $0 == "NVMe Sanitize, Exit Media Verification State" }.count == 2)
    }

    @Test func aFailedNvmeSanitizeExitsFailureMode() throws {
        let transport = ScriptedTransport(sequences: [
            "NVMe Sanitize, Block Erase": [.data([])],
            "NVMe Get Log Page (Sanitize Status)": [Self.sanitizeLog(state: 3)],
            "NVMe Sanitize, Exit Failure Mode": [.data([])],
        ])
        let outcome = try Self.purge(.nvmeSanitizeBlock, nvme: try Self.nvmeController(sanicap: 0x2), device: MemoryBlockDevice(sizeBytes: Self.mib), transport: transport).run()
        #expect(outcome.status == .notErased && outcome.error?.contains("SSTAT 3") == true)
        #expect(transport.sent.last?.operation == .nvmeAdmin(opcode: 0x84, namespace: 0, cdw10: 1, cdw11: 0))
    }

    @Test func nvmeFormatKeepsTheLBAFormatAndSetsSES() throws {
        let device = MemoryBlockDevice(sizeBytes: 4 * Self.mib)
        let transport = ScriptedTransport(
            sequences: [
                "NVMe Identify Namespace": [.data(Self.nvmeNamespace(blocks: 8192, flbas: 0x12))],  // format 2, metadata at the end
                "NVMe Format NVM, User Data Erase (SES=1)": [.data([])],
            ],
            effects: ["NVMe Format NVM, User Data Erase (SES=1)": { device.fillAll(0) }])
        let outcome = try Self.purge(.nvmeFormatUserData, nvme: try Self.nvmeController(), device: device, transport: transport).run()
        #expect(outcome.status == .erased && outcome.category == .purge, "\(outcome.error ?? "")")
        // Format NVM 80h on namespace 1: LBAF 2, MSET 1, SES 1 (bits 11:9).
        #expect(transport.sent.last?.operation == .nvmeAdmin(opcode: 0x80, namespace: 1, cdw10: 0x2 | 0x10 | 0x200, cdw11: 0))
    }

    @Test func nistPurgeTakesTheStrongestAndSaysWhatItPassedOver() throws {
        // QEMU 7.2's controller: SANICAP 0, FNA 0, Format NVM supported.
        let qemu = PurgeCapabilities(FirmwareCapabilities(nvme: try NvmeIdentify(bytes: try Self.nvmeController())))
        let (method, passedOver) = qemu.strongestPurge(transport: .nvme)
        #expect(method == .nvmeFormatUserData)
        #expect(passedOver.count == 3 && passedOver[0].contains("SANICAP 0x0") && passedOver[2].contains("FNA 0x0"), "\(passedOver)")
        // With crypto sanitize: that first.
        let better = PurgeCapabilities(FirmwareCapabilities(nvme: try NvmeIdentify(bytes: try Self.nvmeController(sanicap: 0x3))))
        #expect(better.strongestPurge(transport: .nvme).method == .nvmeSanitizeCrypto)
        // The lab's SATA disk: nothing, with each reason.
        let sata = try AtaIdentify(bytes: HexDump.ataWords(String(decoding: try IdentifyTests.fixture("ata-identify-qemu-sata.txt"), as: UTF8.self)))
        let none = PurgeCapabilities(FirmwareCapabilities(ata: sata)).strongestPurge(transport: .sata)
        #expect(none.method == nil && none.passedOver.count == 5)
        #expect(none.passedOver[0].contains("word 59 bit 12") && none.passedOver[4].contains("word 128 bit 0"), "\(none.passedOver)")
        // The Samsung with sanitize crypto: crypto scramble first.
        #expect(PurgeCapabilities(FirmwareCapabilities(ata: try AtaIdentify(bytes: try Self.sanitizeCapable()))).strongestPurge(transport: .sata).method == .ataSanitizeCrypto)
    }

    // MARK: - SCSI

    @Test func scsiBlockSanitizePollsRequestSense() throws {
        let device = MemoryBlockDevice(sizeBytes: 4 * Self.mib)
        // NOT READY, 04/1B sanitize in progress, SKSV with progress 0x4000; then NO SENSE.
        let inProgress: [UInt8] = [0x70, 0, 0x02, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x04, 0x1b, 0, 0x80, 0x40, 0x00]
        let transport = ScriptedTransport(
            sequences: [
                "SCSI SANITIZE, BLOCK ERASE": [.data([])],
                "SCSI REQUEST SENSE": [.data(inProgress + [UInt8](repeating: 0, count: 234)), .data([0x70, 0, 0, 0, 0, 0, 0, 10] + [UInt8](repeating: 0, count: 244))],
            ],
            effects: ["SCSI SANITIZE, BLOCK ERASE": { device.fillAll(0xff) }])
        let outcome = try Self.purge(.scsiSanitizeBlock, scsi: [.scsiSanitizeBlock: true], device: device, transport: transport).run()
        #expect(outcome.status == .erased, "\(outcome.error ?? "")")
        #expect(outcome.checks?.last?.observed.hasPrefix("0xFF in 34 of 34") == true, "\(outcome.checks ?? [])")
        // SANITIZE 48h: IMMED, AUSE, service action 02h.
        #expect(Self.cdb(transport.sent.first) == [0x48, 0xa2, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(SenseData(inProgress)?.progress == 0x4000)
    }

    /// The lab's USB disk: FORMAT UNIT answers "good" and leaves the data. The known data is
    /// still there, so nothing is certified.
    @Test func aFormatThatSaysGoodButLeavesTheDataIsCaught() throws {
        let device = MemoryBlockDevice(sizeBytes: 4 * Self.mib)
        let transport = ScriptedTransport(sequences: ["SCSI FORMAT UNIT": [.data([])]])
        let outcome = try Self.purge(.scsiFormatUnit, device: device, transport: transport).run()
        #expect(outcome.status == .notErased && outcome.verification.result == .failed)
        #expect(outcome.error?.contains("reported success, but the read-back shows it did not erase") == true, "\(outcome.error ?? "")")
        #expect(outcome.checks?.first?.observed == "34 of 34 still hold what was written before")
        #expect(outcome.category == .clear)
    }

    @Test func sanitizeOverwriteCarriesItsParameterList() {
        let command = ScsiCommand.sanitize(.scsiSanitizeOverwrite)
        guard case .scsi(let cdb) = command.operation else {
            Issue.record("not SCSI")
            return
        }
        #expect(cdb == [0x48, 0xa1, 0, 0, 0, 0, 0, 0, 8, 0] && command.dataOut == [0x01, 0, 0, 4, 0, 0, 0, 0] && command.direction == .toDevice)
        #expect(ScsiCommand.isSupported([0, 0x03]) == true && ScsiCommand.isSupported([0, 0x01]) == false && ScsiCommand.isSupported([]) == nil)
    }
}
