import Foundation
import LetheCore
import LetheTesting
import LetheWipe
import Testing

/// tcg-crypto-erase: GenKey on every locking range as the owner's Admin1, on a simulated Opal
/// drive whose range 1 covers the second half of the media, proven by the read-back.
@Suite struct TCGCryptoEraseTests {
    static let admin1 = Array("corporate IT's Admin1".utf8)
    static let size = 8 << 20

    struct Bench {
        let drive: SimulatedOpalDrive
        let base: MemoryBlockDevice
        let purge: FirmwarePurge
    }

    static func bench(locked: Bool = true, owned: Bool = true, fault: SimulatedOpalDrive.Fault = .none, password: [UInt8]? = admin1) -> Bench {
        var setup = SimulatedOpalDrive.Setup()
        setup.lockingEnabled = owned
        setup.locked = locked
        setup.mbrEnabled = locked
        setup.sid = owned ? Array("owner's SID".utf8) : nil
        setup.admin1 = owned ? admin1 : nil
        setup.lbaCount = UInt64(size / 512)
        setup.ranges = [1: UInt64(size / 1024)..<UInt64(size / 512)]
        setup.fault = fault
        let base = MemoryBlockDevice(path: "/dev/sim-opal", sizeBytes: size, fill: 0x5A)
        let drive = SimulatedOpalDrive(setup: setup, onErase: { base.scrambleAll() }) { extents in
            for extent in extents { base.scramble(Int(extent.lowerBound)..<Int(extent.upperBound)) }
        }
        var capabilities = PurgeCapabilities(FirmwareCapabilities())
        capabilities.tcg = TCGDiscovery.probe(.nvme, using: drive).discovery
        capabilities.tcgInterface = .nvme
        var options = FirmwarePurgeOptions(method: .tcgCryptoErase)
        options.samples = 32
        options.credential = password
        let media = SimulatedOpalMedia(base: base, drive: drive)
        return Bench(drive: drive, base: base, purge: FirmwarePurge(device: media, transport: drive, capabilities: capabilities, options: options, sleep: { _ in }))
    }

    @Test func aLockedOwnedDriveGetsNewKeysOnEveryRangeProvenAndCertified() throws {
        let bench = Self.bench()
        let outcome = bench.purge.run()
        #expect(outcome.status == .erased, "\(outcome.error ?? "")")
        #expect(outcome.category == .purge && outcome.verification.result == .passed)
        let methods = bench.drive.methods
        // First session: the ranges read, the locked ones (global and 1) opened, the shadow MBR
        // hidden; second session: GenKey on every range's key, 1 to MaxRanges (8) included.
        #expect(Array(methods.prefix(11)) == ["StartSession", "Get LockingInfo"] + (0...8).map { "Get range \($0)" }, "\(methods)")
        #expect(methods.contains("Set range 0") && methods.contains("Set range 1") && !methods.contains("Set range 2") && methods.contains("Set MBRControl"))
        #expect(methods.suffix(10) == ["StartSession"] + (0...8).map { "GenKey range \($0)" }, "\(methods)")
        #expect(bench.drive.reverts == 0 && !bench.drive.locked)
        // The samples always include the first block (global range) and the last (range 1);
        // the read-back found every one changed.
        #expect(outcome.verification.sampleSubsections ?? 0 >= 34, "\(outcome.verification)")
        let rangeCheck = try #require(outcome.checks?.first { $0.name == "Every locking range has a new key" })
        #expect(rangeCheck.passed && rangeCheck.observed.hasPrefix("9 of 9 ranges: the global range") && rangeCheck.observed.contains("range 1 (LBA 8192, 8192 LBAs, locked)"))
        #expect(rangeCheck.observed.contains("revert the drive"))
        let names = outcome.firmware?.commands.map(\.name) ?? []
        #expect(names.contains("GenKey on range 1's key 0000080600030001") && names.contains("StartSession on the Locking SP as Admin1"), "\(names)")
        // The password is in no record.
        let json = String(decoding: try JSONEncoder().encode(outcome), as: UTF8.self)
        #expect(!json.contains("corporate IT") && json.contains("<masked>"))
        #expect(FirmwareErase.tcgCryptoErase.ieee2883Technique == "TCG Opal GenKey on every locking range (Crypto Erase)")
    }

    @Test func aGenKeyThatKeepsTheDataIsCaughtByTheReadBack() {
        let bench = Self.bench(fault: .genKeyKeepsData)
        let outcome = bench.purge.run()
        #expect(outcome.status == .notErased)
        #expect(outcome.error?.contains("the read-back shows it did not erase") == true, "\(outcome.error ?? "")")
    }

    @Test func aRangeThatRefusesItsNewKeyIsNamedWithTheOnesDoneBefore() {
        let bench = Self.bench(fault: .genKeyFails(range: 1))
        let outcome = bench.purge.run()
        #expect(outcome.status == .notErased)
        #expect(outcome.error?.contains("GenKey on range 1's key 0000080600030001: FAIL (0x3f)") == true, "\(outcome.error ?? "")")
        #expect(outcome.error?.contains("new keys so far: the global range") == true, "\(outcome.error ?? "")")
    }

    @Test func aWrongPasswordWritesNothingAndSaysWhatToDo() throws {
        let bench = Self.bench(locked: false, password: Array("guess".utf8))
        let outcome = bench.purge.run()
        #expect(outcome.status == .notErased && bench.drive.methods == ["StartSession"])
        #expect(outcome.error?.contains("NOT_AUTHORIZED (0x01)") == true && outcome.error?.contains("ask the drive's owner") == true, "\(outcome.error ?? "")")
        // Nothing was written: every byte is as it was.
        let media = SimulatedOpalMedia(base: bench.base, drive: bench.drive)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.size, alignment: 4096)
        defer { buffer.deallocate() }
        _ = try media.read(into: buffer, at: 0)
        #expect(buffer.allSatisfy { $0 == 0x5A })
        // No password: nothing is sent at all.
        let none = Self.bench(password: nil)
        #expect(none.purge.run().error?.contains("needs the Admin1 password") == true && none.drive.methods.isEmpty)
    }

    @Test func anUnownedDriveIsSentToTheRevert() {
        let bench = Self.bench(locked: false, owned: false)
        #expect(bench.purge.refusal()?.contains("Locking SP is not active") == true)
        #expect(bench.purge.run().error?.contains("tcg-revert-sp erases an unowned drive") == true && bench.drive.methods.isEmpty)
    }

    /// The Get answer's LockOnReset list (column 9) sits between the columns read.
    @Test func aLockingRowIsReadPastItsListColumn() throws {
        let tokens: [TCGToken] = [
            .startList, .startList, .startName, .uint(3), .uint(8192), .endName, .startName, .uint(4), .uint(8192), .endName,
            .startName, .uint(9), .startList, .uint(0), .endList, .endName, .startName, .uint(10), .bytes([0, 0, 8, 6, 0, 3, 0, 1]), .endName,
            .endList, .endList, .endOfData, .startList, .uint(0), .uint(0), .uint(0), .endList,
        ]
        let values = try TCGMethodResponse(tokens: tokens).namedValues
        #expect(values[3] == .uint(8192) && values[4] == .uint(8192) && values[10] == .bytes([0, 0, 8, 6, 0, 3, 0, 1]) && values[9] == nil)
    }

    /// Set on Locking_Range1, ReadLocked and WriteLocked to False, byte for byte (Core 2.01
    /// §3.2.2 tokens: CALL F8, 8-byte short atoms A8, STARTNAME F2, Values 01 …).
    @Test func setIsEncodedAsTheSpecificationLaysItOut() {
        let call = TCGMethodCall(
            invoking: TCGLockingRange.uid(1), method: TCGUID.set,
            arguments: [.startName, .uint(1), .startList, .startName, .uint(7), .uint(0), .endName, .startName, .uint(8), .uint(0), .endName, .endList, .endName])
        let expected: [UInt8] = [
            0xF8, 0xA8, 0, 0, 0x08, 0x02, 0, 0x03, 0, 0x01, 0xA8, 0, 0, 0, 0x06, 0, 0, 0, 0x17,
            0xF0, 0xF2, 0x01, 0xF0, 0xF2, 0x07, 0x00, 0xF3, 0xF2, 0x08, 0x00, 0xF3, 0xF1, 0xF3, 0xF1, 0xF9, 0xF0, 0, 0, 0, 0xF1,
        ]
        #expect(TCGToken.encode(call.tokens) == expected)
    }
}
