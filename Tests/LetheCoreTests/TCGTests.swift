import LetheCore
import Testing

/// The TCG data stream, ComPackets and Level 0 Discovery against bytes written out by hand
/// from the tables of TCG Core 2.01 and Opal SSC 2.02 (not produced by Lethe's own encoder).
@Suite struct TCGTests {
    static func hex(_ text: String) -> [UInt8] {
        let digits = text.filter(\.isHexDigit)
        return stride(from: 0, to: digits.count, by: 2).map { i in
            UInt8(digits[digits.index(digits.startIndex, offsetBy: i)..<digits.index(digits.startIndex, offsetBy: i + 2)], radix: 16)!
        }
    }

    /// A StartSession as Core §5.2.3.1 lays it out: CALL, SMUID, StartSession, [host session,
    /// Admin SP, write, {0: challenge}, {3: PSID authority}], EOD, [0 0 0].
    @Test func startSessionIsEncodedAsTheSpecificationSays() {
        let psid = Array("0123456789ABCDEFGHIJKLMNOPQRSTUV".utf8)
        let call = TCGMethodCall.startSession(hostSession: 0x4C45_5448, sp: TCGUID.adminSP, challenge: psid, authority: TCGUID.psidAuthority)
        let expected = Self.hex("""
            F8 A8 00 00 00 00 00 00 00 FF A8 00 00 00 00 00 00 FF 02
            F0 84 4C 45 54 48 A8 00 00 02 05 00 00 00 01 01
            F2 00 D0 20
            """) + psid + Self.hex("""
            F3 F2 03 A8 00 00 00 09 00 01 FF 01 F3 F1 F9 F0 00 00 00 F1
            """)
        #expect(TCGToken.encode(call.tokens) == expected)
    }

    @Test func atomsInEveryFormReadBack() throws {
        // tiny 5, tiny signed -1, short uint 0x3FF, short signed -300, medium bytes (20),
        // long bytes (3), empty, and the control tokens.
        let bytes = Self.hex("05 7F 82 03 FF 92 FE D4 D0 14") + [UInt8](repeating: 0xAB, count: 20) + Self.hex("E2 00 00 03 01 02 03 FF F0 F1 F2 F3 F8 F9 FA FB FC")
        let tokens = try TCGToken.decode(bytes)
        #expect(tokens == [
            .uint(5), .int(-1), .uint(0x3FF), .int(-300), .bytes([UInt8](repeating: 0xAB, count: 20)), .bytes([1, 2, 3]), .empty,
            .startList, .endList, .startName, .endName, .call, .endOfData, .endOfSession, .startTransaction, .endTransaction,
        ])
        // Lethe's encoder gives the shortest form, and reads back what it wrote.
        let mine: [TCGToken] = [.uint(0), .uint(63), .uint(64), .uint(UInt64.max), .int(-32), .int(31), .int(-33), .int(Int64.min), .bytes([]), .bytes([UInt8](repeating: 1, count: 3000))]
        #expect(try TCGToken.decode(TCGToken.encode(mine)) == mine)
        #expect(TCGToken.encode([.uint(64)]) == [0x81, 0x40])
        #expect(TCGToken.encode([.int(-33)]) == [0x91, 0xDF])
    }

    @Test func brokenStreamsAreRefusedWithTheirOffset() {
        #expect(throws: TCGParseError(offset: 1, "atom of 8 bytes, only 2 left")) { try TCGToken.decode([0xF0, 0xA8, 1, 2]) }
        #expect(throws: TCGParseError(offset: 0, "reserved token 0xe4")) { try TCGToken.decode([0xE4]) }
        #expect(throws: TCGParseError(offset: 0, "integer of 9 bytes (more than 8)")) { try TCGToken.decode([0x89] + [UInt8](repeating: 1, count: 9)) }
        #expect(throws: TCGParseError(offset: 0, "medium atom header cut short")) { try TCGToken.decode([0xD0]) }
        #expect(throws: TCGParseError(offset: 0, "long atom header cut short")) { try TCGToken.decode([0xE2, 0, 0]) }
    }

    /// A TPer's SyncSession answer in its ComPacket, as Core §3.2.3 lays it out.
    static let syncSessionAnswer = hex("""
        00 00 00 00  07 FE 00 00  00 00 00 00  00 00 00 00  00 00 00 48
        00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 30
        00 00 00 00 00 00  00 00  00 00 00 23
        F8 A8 00 00 00 00 00 00 00 FF A8 00 00 00 00 00 00 FF 03
        F0 84 4C 45 54 48 82 10 01 F1 F9 F0 00 00 00 F1  00
        """)

    @Test func aSyncSessionAnswerIsRead() throws {
        let packet = try TCGComPacket(decoding: Self.syncSessionAnswer + [UInt8](repeating: 0, count: 100))
        #expect(packet.comID == 0x07FE && packet.payload.count == 35)
        let response = try TCGMethodResponse(tokens: try TCGToken.decode(packet.payload))
        #expect(response.status == .success)
        #expect(response.results == [.uint(0x4C45_5448), .uint(0x1001)])
        // Lethe's encoder lays out the same envelope (padded to 512 bytes).
        let mine = TCGComPacket(comID: 0x07FE, payload: packet.payload).encoded()
        #expect(Array(mine.prefix(Self.syncSessionAnswer.count)) == Self.syncSessionAnswer && mine.count == 512)
    }

    @Test func brokenComPacketsAreRefused() throws {
        #expect(throws: TCGParseError.self) { try TCGComPacket(decoding: Array(Self.syncSessionAnswer.prefix(30))) }
        var lying = Self.syncSessionAnswer
        lying[43] = 0x80  // the packet says it is longer than its ComPacket
        #expect(throws: TCGParseError.self) { try TCGComPacket(decoding: lying) }
        // Length 0: no answer yet, not an error.
        let empty = try TCGComPacket(decoding: Self.hex("00 00 00 00 07 FE 00 00 00 00 00 00 00 00 02 00 00 00 00 00"))
        #expect(empty.payload.isEmpty && empty.minTransfer == 512)
        // A status other than SUCCESS, and a missing status list.
        #expect(try TCGMethodResponse(tokens: try TCGToken.decode(Self.hex("F0 F1 F9 F0 12 00 00 F1"))).status == .authorityLockedOut)
        #expect(throws: TCGParseError.self) { try TCGMethodResponse(tokens: [.startList, .endList]) }
        #expect(TCGMethodStatus.authorityLockedOut.description == "AUTHORITY_LOCKED_OUT (0x12)")
    }

    /// Level 0 Discovery of an Opal 2 drive: header, TPer, Locking (flags byte), Opal SSC V2.
    static func discovery(lockingFlags: UInt8, ssc: String = "02 03", sidIndicator: String = "00") -> [UInt8] {
        hex("""
            00 00 00 60  00 00 00 01  00 00 00 00 00 00 00 00
            00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
            00 01 10 0C  11 00 00 00 00 00 00 00 00 00 00 00
            00 02 10 0C
            """) + [lockingFlags] + hex("00 00 00 00 00 00 00 00 00 00 00") + hex(ssc) + hex("""
            10 10  07 FE 00 01 00 00 04 00 08
            """) + hex(sidIndicator) + hex("00 00 00 00 00 00")
    }

    @Test func aLockedOpalDriveSaysSoAndWhatToDo() throws {
        // Supported, enabled, locked, media encryption, MBR enabled, not done.
        let locked = try TCGDiscovery(bytes: Self.discovery(lockingFlags: 0x1F, sidIndicator: "FF"))
        #expect(locked.sscs == [.opal2] && locked.baseComID == 0x07FE)
        #expect(locked.lockingSupported && locked.lockingEnabled && locked.locked && locked.mediaEncryption && locked.mbrEnabled && !locked.mbrDone)
        #expect(locked.summary == "TCG Opal 2, LOCKED, MBR shadow active")
        #expect(locked.advice.contains("PSID") && locked.advice.contains("tcg-psid-revert"))
        #expect(locked.initialSIDIndicator == 0xFF)

        let fresh = try TCGDiscovery(bytes: Self.discovery(lockingFlags: 0x09))
        #expect(!fresh.locked && !fresh.lockingEnabled && fresh.summary == "TCG Opal 2, locking not enabled")
        #expect(fresh.advice.hasPrefix("unowned"))

        let pyrite = try TCGDiscovery(bytes: Self.discovery(lockingFlags: 0x03, ssc: "03 03"))
        #expect(pyrite.sscs == [.pyrite2] && pyrite.advice.contains("does not encrypt"))
    }

    @Test func noSubsystemTruncationAndGarbageAreNamed() {
        // A drive without TCG answers IF-RECV with a header of length 0.
        let none = [UInt8](repeating: 0, count: 512)
        #expect(throws: TCGParseError.self) { try TCGDiscovery(bytes: none) }
        // The header promises more than came.
        #expect(throws: TCGParseError(offset: 0, "Level 0 Discovery says 100 bytes, 80 came")) {
            try TCGDiscovery(bytes: Array(Self.discovery(lockingFlags: 0x09).prefix(80)))
        }
        // A descriptor longer than what is left.
        var cut = Self.discovery(lockingFlags: 0x09)
        cut[3] = 0x50  // header: 84 bytes follow; the Opal descriptor now overruns
        #expect(throws: TCGParseError.self) { try TCGDiscovery(bytes: cut + [UInt8](repeating: 0, count: 8)) }
        #expect(throws: TCGParseError.self) { try TCGDiscovery(bytes: [0xDE, 0xAD]) }
    }
}
