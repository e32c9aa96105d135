import LetheCore
import LetheTesting
import Synchronization
import Testing

/// TCG sessions and the Admin SP revert against a simulated TPer that answers as the
/// specifications say, over each interface's commands.
@Suite struct TCGSessionTests {
    static let psid = Array("0123456789ABCDEFGHIJKLMNOPQRSTUV".utf8)

    final class Counter: Sendable {
        let count = Mutex(0)
    }

    static func lockedDrive(fault: SimulatedOpalDrive.Fault = .none, erased: Counter? = nil) -> SimulatedOpalDrive {
        var setup = SimulatedOpalDrive.Setup()
        setup.lockingEnabled = true
        setup.locked = true
        setup.mbrEnabled = true
        setup.sid = Array("owner's secret".utf8)
        setup.psid = psid
        setup.fault = fault
        return SimulatedOpalDrive(setup: setup) { erased?.count.withLock { $0 += 1 } }
    }

    @Test(arguments: [SecurityInterface.ata, .scsi, .nvme])
    func discoveryTravelsInEachInterfacesCommand(_ interface: SecurityInterface) throws {
        let drive = Self.lockedDrive()
        let command = DeviceCommand.tcgDiscovery(interface)
        switch command.operation {
        case .scsi(let cdb) where interface == .ata:
            // ATA PASS-THROUGH(16), PIO data-in, TRUSTED RECEIVE (5Ch), protocol 1, ComID 0001h in LBA 23:8, 4 blocks.
            #expect(cdb == [0x85, 0x08, 0x0e, 0, 1, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0x5c, 0])
        case .scsi(let cdb):
            // SECURITY PROTOCOL IN (A2h), protocol 1, SPSP 0001h, allocation length 2048.
            #expect(cdb == [0xa2, 1, 0, 1, 0, 0, 0, 0, 0x08, 0, 0, 0])
        case .nvmeAdmin(let opcode, _, let cdw10, let cdw11):
            #expect(opcode == 0x82 && cdw10 == 0x0100_0100 && cdw11 == 2048)
        }
        let (discovery, problem) = TCGDiscovery.probe(interface, using: drive)
        #expect(problem == nil)
        #expect(discovery?.locked == true && discovery?.baseComID == 0x07FE && discovery?.summary == "TCG Opal 2, LOCKED, MBR shadow active")
    }

    @Test func aLockedDriveIsRevertedWithItsPSID() throws {
        let erased = Counter()
        let drive = Self.lockedDrive(erased: erased)
        let host = TCGHost(transport: drive, interface: .nvme, comID: 0x07FE)
        try TCGRevert.run(host, authority: .psid, credential: Self.psid)
        #expect(drive.methods == ["StartSession", "Revert"] && drive.reverts == 1 && erased.count.withLock { $0 } == 1)
        let after = try #require(TCGDiscovery.probe(.nvme, using: drive).discovery)
        #expect(!after.locked && !after.lockingEnabled && !after.mbrEnabled)
        // The record names every step and answer, and never the PSID.
        let record = host.exchanges.map { "\($0.step) | \($0.request) | \($0.answer)" }.joined(separator: "\n")
        #expect(host.exchanges.map { $0.step } == ["StartSession on the Admin SP as PSID", "Revert the Admin SP"])
        #expect(record.contains("{ 0 h'<masked>' }") && record.contains("EOD [ 0 0 0 ]"), "\(record)")
        #expect(!record.contains(String(decoding: Self.psid, as: UTF8.self)) && !record.contains(Self.psid.map { String($0, radix: 16) }.joined()))
    }

    @Test func aWrongPSIDIsRefusedUntilTheTryLimitLocksItOut() throws {
        let drive = Self.lockedDrive()
        let host = TCGHost(transport: drive, interface: .ata, comID: 0x07FE)
        let wrong = Array("0123456789ABCDEFGHIJKLMNOPQRSTUX".utf8)
        #expect {
            try TCGRevert.run(host, authority: .psid, credential: wrong)
        } throws: { error in
            let failure = error as? TCGFailure
            return failure?.status == .notAuthorized && failure?.detail.contains("check it against the label") == true
        }
        for _ in 0..<3 { _ = try? TCGRevert.run(host, authority: .psid, credential: wrong) }
        // The fifth wrong try, and then even the right PSID: AUTHORITY_LOCKED_OUT until a power cycle.
        for credential in [wrong, Self.psid] {
            #expect {
                try TCGRevert.run(host, authority: .psid, credential: credential)
            } throws: { error in
                let failure = error as? TCGFailure
                return failure?.status == .authorityLockedOut && failure?.description.contains("power-cycle the drive") == true
            }
        }
        #expect(drive.reverts == 0 && drive.locked)
    }

    @Test func theOwnersSIDRevertsToo() throws {
        let drive = Self.lockedDrive()
        try TCGRevert.run(TCGHost(transport: drive, interface: .scsi, comID: 0x07FE), authority: .sid, credential: Array("owner's secret".utf8))
        #expect(drive.reverts == 1 && !drive.locked)
    }

    @Test(arguments: [SimulatedOpalDrive.Fault.truncatedAnswers, .garbageAnswers])
    func aBrokenAnswerIsAFailureNeverASuccess(_ fault: SimulatedOpalDrive.Fault) throws {
        let drive = Self.lockedDrive(fault: fault)
        let host = TCGHost(transport: drive, interface: .scsi, comID: 0x07FE)
        #expect {
            try TCGRevert.run(host, authority: .psid, credential: Self.psid)
        } throws: { error in
            let failure = error as? TCGFailure
            return failure?.step == "StartSession on the Admin SP as PSID" && failure?.status == nil && failure?.detail.contains("ComPacket") == true
        }
        #expect(drive.reverts == 0)
    }

    @Test func aDriveWithoutTCGIsNamedAsSuch() {
        let drive = Self.lockedDrive(fault: .noSecuritySubsystem)
        let (discovery, problem) = TCGDiscovery.probe(.ata, using: drive)
        #expect(discovery == nil && problem?.contains("TCG Level 0 Discovery not answered") == true && problem?.contains("ILLEGAL REQUEST") == true)
    }
}
