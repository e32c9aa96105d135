import Foundation
import LetheCore
import LetheTesting
import LetheWipe
import Testing

/// tcg-psid-revert and tcg-revert-sp as firmware purges: refused before anything is sent when
/// the drive cannot do them, and otherwise proven by known data written before and read back
/// after, on a simulated Opal drive whose media is locked until it is reverted.
@Suite struct TCGPurgeTests {
    static let psid = TCGSessionTests.psid

    struct Bench {
        let drive: SimulatedOpalDrive
        let media: SimulatedOpalMedia
        let purge: FirmwarePurge
    }

    static func bench(locked: Bool, fault: SimulatedOpalDrive.Fault = .none, method: FirmwareErase, credential: [UInt8]?) -> Bench {
        var setup = SimulatedOpalDrive.Setup()
        setup.lockingEnabled = locked
        setup.locked = locked
        setup.mbrEnabled = locked
        setup.sid = locked ? Array("owner's secret".utf8) : nil
        setup.psid = psid
        setup.fault = fault
        let base = MemoryBlockDevice(path: "/dev/sim-opal", sizeBytes: 8 << 20, fill: 0x5A)
        let drive = SimulatedOpalDrive(setup: setup) { base.scrambleAll() }
        var capabilities = PurgeCapabilities(FirmwareCapabilities())
        capabilities.tcg = TCGDiscovery.probe(.ata, using: drive).discovery
        capabilities.tcgInterface = .ata
        var options = FirmwarePurgeOptions(method: method)
        options.samples = 16
        options.credential = credential
        let media = SimulatedOpalMedia(base: base, drive: drive)
        return Bench(drive: drive, media: media, purge: FirmwarePurge(device: media, transport: drive, capabilities: capabilities, options: options, sleep: { _ in }))
    }

    @Test func aLockedDriveIsPSIDRevertedProvenAndCertifiedAsPurge() throws {
        let bench = Self.bench(locked: true, method: .tcgPsidRevert, credential: Self.psid)
        let outcome = bench.purge.run()
        #expect(outcome.status == .erased, "\(outcome.error ?? "")")
        #expect(outcome.category == .purge && outcome.verification.result == .passed)
        // Locked: one revert to open it for the known data, a second that the read-back proves.
        #expect(bench.drive.methods == ["StartSession", "Revert", "StartSession", "Revert"] && bench.drive.reverts == 2)
        let names = outcome.firmware?.commands.map(\.name) ?? []
        #expect(names.contains("to unlock (the drive was locked, so no known data could be written): Revert the Admin SP"), "\(names)")
        #expect(names.contains("Revert the Admin SP") && names.contains("TCG Level 0 Discovery"), "\(names)")
        #expect(outcome.checks?.first?.passed == true)
        // The PSID is nowhere in what is kept.
        let json = String(decoding: try JSONEncoder().encode(outcome), as: UTF8.self)
        #expect(!json.contains(String(decoding: Self.psid, as: UTF8.self)) && json.contains("<masked>"))

        // The certificate: certified, Purge, its IEEE 2883 technique, the exchanges on it.
        let method = WipeMethod.firmware(.tcgPsidRevert)
        let certificate = WipeCertificate(
            outcome: outcome, method: method, device: ReportDevice(
                manufacturer: nil, model: "Simulated Opal 2 SSD", serial: "SIMOPAL0001", mediaType: "solid state (SATA)", transport: "sata",
                sizeBytes: 8 << 20, logicalSectorSize: 512, source: "test", path: "/dev/sim-opal"),
            reportId: "01KAQ2M7Y8Z3B4C5D6E7F8G9H2", issuedAt: "2026-12-07T02:00:00Z", startedAt: "2026-12-07T01:59:00Z", finishedAt: "2026-12-07T02:00:00Z",
            station: ReportStation(id: "bench-01", name: "test", location: "test", contact: "test", keyId: "test"), performedBy: ReportParty(name: "A. Technician", role: "technician"),
            destination: "resale", toolVersion: "test")
        #expect(certificate.certified && certificate.sanitization.category == "Purge")
        #expect(certificate.sanitization.standards?.summary == "Purge — IEEE 2883: TCG Opal Revert with the PSID (Crypto Erase)")
        #expect(certificate.sanitization.commands?.contains { $0.name == "Revert the Admin SP" && $0.succeeded } == true)
        #expect(certificate.verification.result == "passed" && certificate.verification.mode == "readback")
        let signedPart = String(decoding: try JSONEncoder().encode(certificate), as: UTF8.self)
        #expect(!signedPart.contains(String(decoding: Self.psid, as: UTF8.self)))
    }

    @Test func aRevertThatLeavesTheDataIsCaughtByTheReadBack() {
        let bench = Self.bench(locked: true, fault: .revertKeepsData, method: .tcgPsidRevert, credential: Self.psid)
        let outcome = bench.purge.run()
        #expect(outcome.status == .notErased)
        #expect(outcome.error?.contains("the read-back shows it did not erase") == true, "\(outcome.error ?? "")")
        #expect(outcome.checks?.first?.passed == false)
    }

    @Test func aWrongPSIDChangesNothingAndSaysWhatToDo() {
        let wrong = Array("0123456789ABCDEFGHIJKLMNOPQRSTUX".utf8)
        let bench = Self.bench(locked: true, method: .tcgPsidRevert, credential: wrong)
        let outcome = bench.purge.run()
        #expect(outcome.status == .notErased && bench.drive.reverts == 0 && bench.drive.locked)
        #expect(outcome.error?.contains("NOT_AUTHORIZED (0x01)") == true && outcome.error?.contains("check it against the label") == true, "\(outcome.error ?? "")")
        // Without any PSID, nothing is sent at all.
        let none = Self.bench(locked: true, method: .tcgPsidRevert, credential: nil)
        let refused = none.purge.run()
        #expect(refused.status == .notErased && none.drive.methods.isEmpty)
        #expect(refused.error?.contains("needs the PSID printed on the drive's label") == true, "\(refused.error ?? "")")
    }

    @Test func anUnownedDriveIsRevertedWithItsMSID() {
        let bench = Self.bench(locked: false, method: .tcgRevertSP, credential: nil)
        let outcome = bench.purge.run()
        #expect(outcome.status == .erased, "\(outcome.error ?? "")")
        #expect(bench.drive.methods == ["StartSession", "Get C_PIN_MSID", "StartSession", "Revert"] && bench.drive.reverts == 1)
        // An owned drive needs its owner's password: the MSID is not tried.
        let owned = Self.bench(locked: true, method: .tcgRevertSP, credential: nil)
        #expect(owned.purge.run().error?.contains("needs the owner's SID password") == true && owned.drive.reverts == 0)
    }

    @Test func drivesThatCannotRevertAreRefusedBeforeAnythingIsSent() throws {
        var none = PurgeCapabilities(FirmwareCapabilities())
        none.tcgProblem = "TCG Level 0 Discovery not answered: ILLEGAL REQUEST"
        #expect(none.refusal(.tcgPsidRevert)?.contains("did not answer TCG Level 0 Discovery: TCG Level 0 Discovery not answered") == true)
        var pyrite = none
        pyrite.tcgInterface = .nvme
        pyrite.tcg = try TCGDiscovery(bytes: TCGDiscoveryBytes.opal(lockingFlags: 0x03, ssc: 0x0303))
        #expect(pyrite.refusal(.tcgPsidRevert)?.contains("does not encrypt") == true)
        var opal = pyrite
        opal.tcg = try TCGDiscovery(bytes: TCGDiscoveryBytes.opal(lockingFlags: 0x09, ssc: 0x0203))
        #expect(opal.refusal(.tcgPsidRevert) == nil && opal.refusal(.tcgRevertSP) == nil)
        opal.tcg?.sidBlocked = true
        #expect(opal.refusal(.tcgRevertSP)?.contains("Block SID") == true && opal.refusal(.tcgPsidRevert) == nil)
        #expect(FirmwareErase.tcgPsidRevert.reachesEveryNamespace(formatAttributes: 0))

        // nist-purge: an unowned Opal drive's revert comes first; an owned one is passed over
        // with the reason; a drive without TCG adds nothing to the list.
        #expect(opal.strongestPurge(transport: .nvme).passedOver.first?.contains("Block SID") == true)
        opal.tcg?.sidBlocked = false
        #expect(opal.strongestPurge(transport: .nvme).method == .tcgRevertSP)
        var owned = opal
        owned.tcg = try TCGDiscovery(bytes: TCGDiscoveryBytes.opal(lockingFlags: 0x0B, ssc: 0x0203))
        let ownedChoice = owned.strongestPurge(transport: .nvme)
        #expect(ownedChoice.method != .tcgRevertSP && ownedChoice.passedOver.first?.contains("the drive has an owner") == true, "\(ownedChoice)")
        #expect(none.strongestPurge(transport: .nvme).passedOver.allSatisfy { !$0.hasPrefix("tcg") })
        #expect(WipeMethod.named("tcg-psid-revert")?.category == .purge)
    }
}

/// Level 0 Discovery answers built field by field (header, TPer, Locking, one SSC).
enum TCGDiscoveryBytes {
    static func opal(lockingFlags: UInt8, ssc: UInt16) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, 0, 0x60, 0, 0, 0, 1] + [UInt8](repeating: 0, count: 40)
        bytes += [0x00, 0x01, 0x10, 0x0C, 0x11] + [UInt8](repeating: 0, count: 11)
        bytes += [0x00, 0x02, 0x10, 0x0C, lockingFlags] + [UInt8](repeating: 0, count: 11)
        bytes += [UInt8(ssc >> 8), UInt8(ssc & 0xFF), 0x10, 0x10, 0x07, 0xFE, 0x00, 0x01] + [UInt8](repeating: 0, count: 12)
        return bytes
    }
}
