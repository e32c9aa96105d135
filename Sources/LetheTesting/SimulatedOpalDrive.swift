import LetheCore
import Synchronization

/// A self-encrypting drive's TPer, answering IF-SEND and IF-RECV as the TCG specifications
/// (Core 2.01, Opal SSC 2.02) say: Level 0 Discovery bytes laid out by hand from the
/// specification's tables, sessions on the Admin SP, the PSID and SID authorities with a try
/// limit, and Revert. Faults: a revert that leaves the data readable, a truncated or garbage
/// answer, a drive without a TCG subsystem, a bridge that drops security commands.
public final class SimulatedOpalDrive: CommandTransport {
    /// How the simulated drive misbehaves.
    public enum Fault: Sendable, Equatable {
        case none
        /// Revert answers SUCCESS but the media key is kept: the data stays readable.
        case revertKeepsData
        /// Every method answer is cut after 30 bytes of its ComPacket.
        case truncatedAnswers
        /// Every method answer is random bytes.
        case garbageAnswers
        /// No TCG subsystem: IF-RECV and IF-SEND fail with ILLEGAL REQUEST.
        case noSecuritySubsystem
        /// GenKey answers SUCCESS but the key is kept: the range's data stays readable.
        case genKeyKeepsData
        /// GenKey on this range's key answers FAIL.
        case genKeyFails(range: Int)
    }

    /// What the drive is.
    public struct Setup: Sendable {
        public var ssc: UInt16 = 0x0203  // Opal 2
        public var comID: UInt16 = 0x07FE
        public var lockingEnabled = false
        public var locked = false
        public var mbrEnabled = false
        public var mbrDone = false
        public var psid: [UInt8] = Array("0123456789ABCDEFGHIJKLMNOPQRSTUV".utf8)
        public var msid: [UInt8] = Array("MSID-LABEL-0001".utf8)
        /// The owner's SID password; nil means unowned (SID = MSID).
        public var sid: [UInt8]?
        /// The Locking SP's Admin1 password (the Locking SP is active while locking is enabled).
        public var admin1: [UInt8]?
        /// LockingInfo's MaxRanges: Locking_Range1 … MaxRanges besides the global range.
        public var maxRanges = 8
        /// Configured ranges: number → LBAs (the global range has every other LBA).
        public var ranges: [Int: Range<UInt64>] = [:]
        /// The media's size in 512-byte LBAs, for the global range's extent.
        public var lbaCount: UInt64 = 16384
        /// Wrong PSID, SID or Admin1 tries before AUTHORITY_LOCKED_OUT (until a power cycle).
        public var tryLimit = 5
        public var fault: Fault = .none

        public init() {}
    }

    public let path: String
    private struct State {
        var setup: Setup
        var triesLeft: Int
        var pending: [UInt8]?
        var session: (host: UInt32, tper: UInt32, authority: [UInt8], sp: [UInt8])?
        var nextTPerSession: UInt32 = 0x1000
        var reverts = 0
        var methods: [String] = []
        /// Ranges (0: global) whose reads and writes fail now.
        var lockedRanges: Set<Int> = []
    }
    private let state: Mutex<State>
    /// Runs when a Revert erases the media (the test's in-memory data changes).
    private let onErase: @Sendable () -> Void
    /// Runs when GenKey gives a range a new key, with the byte extents that range covers.
    private let onRekey: @Sendable ([Range<UInt64>]) -> Void

    /// A drive; `onErase` scrambles the test's media for a Revert, `onRekey` the extents of
    /// one range for a GenKey.
    public init(
        path: String = "/dev/sim-opal", setup: Setup = Setup(), onErase: @escaping @Sendable () -> Void = {},
        onRekey: @escaping @Sendable ([Range<UInt64>]) -> Void = { _ in }
    ) {
        self.path = path
        var initial = State(setup: setup, triesLeft: setup.tryLimit)
        if setup.locked { initial.lockedRanges = Set([0] + setup.ranges.keys) }
        state = Mutex(initial)
        self.onErase = onErase
        self.onRekey = onRekey
    }

    /// How many Reverts took effect.
    public var reverts: Int { state.withLock { $0.reverts } }
    /// The methods called, in order ("StartSession", "Revert", ...).
    public var methods: [String] { state.withLock { $0.methods } }
    /// Whether the drive is locked now.
    public var locked: Bool { state.withLock { $0.setup.locked } }

    public func send(_ command: DeviceCommand) throws(CommandFailure) -> CommandResponse {
        let fault = state.withLock { $0.setup.fault }
        guard case .scsi(let cdb) = command.operation, cdb.first == 0x85 || cdb.first == 0xa2 || cdb.first == 0xb5 else {
            if case .nvmeAdmin(let opcode, _, _, _) = command.operation, opcode == 0x81 || opcode == 0x82 {
                return try answer(command, isSend: opcode == 0x81, protocolID: UInt8(command.cdw10 >> 24), comID: UInt16((command.cdw10 >> 8) & 0xFFFF), fault: fault)
            }
            throw CommandFailure(command: command.name, path: path, status: "not a security command")
        }
        let isSend = cdb[0] == 0xb5 || (cdb[0] == 0x85 && cdb[14] == 0x5e)
        let protocolID = cdb[0] == 0x85 ? cdb[4] : cdb[1]
        let comID = cdb[0] == 0x85 ? UInt16(cdb[12]) << 8 | UInt16(cdb[10]) : UInt16(cdb[2]) << 8 | UInt16(cdb[3])
        return try answer(command, isSend: isSend, protocolID: protocolID, comID: comID, fault: fault)
    }

    private func answer(_ command: DeviceCommand, isSend: Bool, protocolID: UInt8, comID: UInt16, fault: Fault) throws(CommandFailure) -> CommandResponse {
        if fault == .noSecuritySubsystem {
            throw CommandFailure(command: command.name, path: path, status: "CHECK CONDITION, sense ILLEGAL REQUEST, INVALID FIELD IN CDB")
        }
        if !isSend && protocolID == 1 && comID == 1 {
            return CommandResponse(data: pad(discovery(), to: command.transferLength))
        }
        let setup = state.withLock { $0.setup }
        guard protocolID == 1, comID == setup.comID else {
            throw CommandFailure(command: command.name, path: path, status: "CHECK CONDITION, sense ILLEGAL REQUEST, INVALID FIELD IN CDB (ComID 0x\(String(comID, radix: 16)))")
        }
        if isSend {
            receive(command.dataOut)
            return CommandResponse()
        }
        var out = state.withLock { s -> [UInt8] in
            defer { s.pending = nil }
            // Nothing queued: an empty ComPacket (length 0), as a TPer says "no answer yet".
            return s.pending ?? (be16(0) + be16(0) + be16(setup.comID) + [UInt8](repeating: 0, count: 14))
        }
        switch fault {
        case .truncatedAnswers where out.count > 30: out = Array(out.prefix(30))
        case .garbageAnswers: out = (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 73 &+ 19) }
        default: break
        }
        return CommandResponse(data: pad(out, to: command.transferLength))
    }

    /// Level 0 Discovery, laid out from the tables of Core 2.01 §3.3.6 and Opal SSC 2.02 §3.1.1.
    private func discovery() -> [UInt8] {
        let setup = state.withLock { $0.setup }
        var features: [UInt8] = []
        // TPer feature (0001h), version 1, 12 bytes: sync supported, streaming supported.
        features += [0x00, 0x01, 0x10, 0x0C, 0x11] + [UInt8](repeating: 0, count: 11)
        // Locking feature (0002h): supported, enabled, locked, media encryption, MBR enabled, MBR done.
        var flags: UInt8 = 0x01 | 0x08
        if setup.lockingEnabled { flags |= 0x02 }
        if setup.locked { flags |= 0x04 }
        if setup.mbrEnabled { flags |= 0x10 }
        if setup.mbrDone { flags |= 0x20 }
        features += [0x00, 0x02, 0x10, 0x0C, flags] + [UInt8](repeating: 0, count: 11)
        // The SSC's feature (e.g. Opal SSC V2.00, 0203h), 16 bytes: base ComID, one ComID, no
        // range crossing, 4 admins, 8 users, initial C_PIN_SID indicator, revert behaviour.
        features += [UInt8(setup.ssc >> 8), UInt8(setup.ssc & 0xFF), 0x10, 0x10]
        features += [UInt8(setup.comID >> 8), UInt8(setup.comID & 0xFF), 0x00, 0x01, 0x00, 0x00, 0x04, 0x00, 0x08]
        features += [setup.sid == nil ? 0x00 : 0xFF, 0x00, 0, 0, 0, 0, 0]
        // Header: length of what follows the length field, revision 1, reserved, vendor.
        var header = be32(UInt32(44 + features.count)) + be32(1)
        header += [UInt8](repeating: 0, count: 40)
        return header + features
    }

    private func receive(_ data: [UInt8]) {
        let setup = state.withLock { $0.setup }
        guard let packet = try? TCGComPacket(decoding: data), let tokens = try? TCGToken.decode(packet.payload) else {
            queue(status: .invalidParameter, tper: 0, host: 0)
            return
        }
        if tokens == [.endOfSession] {
            state.withLock { $0.session = nil }
            queuePayload([.endOfSession], tper: packet.tperSession, host: packet.hostSession, comID: setup.comID)
            return
        }
        guard tokens.count >= 3, tokens[0] == .call, case .bytes(let invoking) = tokens[1], case .bytes(let method) = tokens[2] else {
            queue(status: .invalidParameter, tper: packet.tperSession, host: packet.hostSession)
            return
        }
        if invoking == TCGUID.sessionManager && method == TCGUID.startSession {
            startSession(tokens, setup: setup)
        } else if method == TCGUID.revert && invoking == TCGUID.adminSP {
            revert(packet, setup: setup)
        } else if state.withLock({ $0.session?.sp == TCGUID.lockingSP }) {
            lockingSP(invoking: invoking, method: method, arguments: Array(tokens.dropFirst(3)), packet: packet, setup: setup)
        } else if method == TCGUID.get && invoking == TCGUID.msidPIN {
            record("Get C_PIN_MSID")
            let inSession = state.withLock { $0.session?.tper == packet.tperSession && packet.tperSession != 0 }
            guard inSession else { return queue(status: .notAuthorized, tper: packet.tperSession, host: packet.hostSession) }
            queueRow([3: .bytes(setup.msid)], tper: packet.tperSession, host: packet.hostSession)
        } else {
            record("unknown method \(TCGUID.text(method))")
            queue(status: .invalidParameter, tper: packet.tperSession, host: packet.hostSession)
        }
    }

    private func startSession(_ tokens: [TCGToken], setup: Setup) {
        record("StartSession")
        guard tokens.count > 6, case .uint(let host) = tokens[4], case .bytes(let sp) = tokens[5] else {
            return queueSync(status: .invalidParameter, host: 0, tper: 0)
        }
        var challenge: [UInt8]?
        var authority: [UInt8]?
        var index = 7
        while index + 3 < tokens.count, tokens[index] == .startName {
            if case .uint(let key) = tokens[index + 1], case .bytes(let value) = tokens[index + 2] {
                if key == 0 { challenge = value } else if key == 3 { authority = value }
            }
            index += 4
        }
        // The Locking SP is Manufactured-Inactive until somebody takes ownership.
        guard sp == TCGUID.adminSP || (sp == TCGUID.lockingSP && setup.lockingEnabled) else {
            return queueSync(status: .invalidParameter, host: UInt32(host), tper: 0)
        }
        if let authority {
            let expected: [UInt8]? = switch (sp == TCGUID.lockingSP, authority) {
            case (false, TCGUID.psidAuthority): setup.psid
            case (false, TCGUID.sidAuthority): setup.sid ?? setup.msid
            case (true, TCGUID.admin1Authority): setup.admin1
            default: nil
            }
            let outcome = state.withLock { s -> TCGMethodStatus in
                if s.triesLeft <= 0 { return .authorityLockedOut }
                guard let expected, challenge == expected else {
                    s.triesLeft -= 1
                    return s.triesLeft <= 0 ? .authorityLockedOut : .notAuthorized
                }
                return .success
            }
            guard outcome == .success else { return queueSync(status: outcome, host: UInt32(host), tper: 0) }
        }
        let tper = state.withLock { s -> UInt32 in
            s.nextTPerSession += 1
            s.session = (UInt32(host), s.nextTPerSession, authority ?? TCGUID.anybody, sp)
            return s.nextTPerSession
        }
        queueSync(status: .success, host: UInt32(host), tper: tper)
    }

    private func revert(_ packet: TCGComPacket, setup: Setup) {
        record("Revert")
        let session = state.withLock { $0.session }
        guard let session, session.tper == packet.tperSession, session.host == packet.hostSession,
            session.authority == TCGUID.psidAuthority || session.authority == TCGUID.sidAuthority
        else {
            return queue(status: .notAuthorized, tper: packet.tperSession, host: packet.hostSession)
        }
        state.withLock { s in
            s.reverts += 1
            s.setup.locked = false
            s.setup.lockingEnabled = false
            s.setup.mbrEnabled = false
            s.setup.mbrDone = false
            s.setup.sid = nil
            s.setup.admin1 = nil
            s.setup.ranges = [:]
            s.lockedRanges = []
            s.session = nil
        }
        if setup.fault != .revertKeepsData { onErase() }
        queue(status: .success, tper: packet.tperSession, host: packet.hostSession)
    }

    /// Get, Set and GenKey in a session on the Locking SP, which only Admin1 may call.
    private func lockingSP(invoking: [UInt8], method: [UInt8], arguments: [TCGToken], packet: TCGComPacket, setup: Setup) {
        let (tper, host) = (packet.tperSession, packet.hostSession)
        let admin = state.withLock { $0.session.map { $0.tper == tper && $0.authority == TCGUID.admin1Authority } ?? false }
        let range: Int? = switch Array(invoking.prefix(6)) {
        case [0, 0, 0x08, 0x02, 0, 0] where invoking[7] == 1, [0, 0, 0x08, 0x06, 0, 0] where invoking[7] == 1: 0
        case [0, 0, 0x08, 0x02, 0, 0x03], [0, 0, 0x08, 0x06, 0, 0x03]: Int(invoking[6]) << 8 | Int(invoking[7])
        default: nil
        }
        let status: TCGMethodStatus
        switch method {
        case TCGUID.get where invoking == TCGUID.lockingInfo:
            record("Get LockingInfo")
            return queueRow([4: .uint(UInt64(setup.maxRanges))], tper: tper, host: host)
        case TCGUID.get:
            record("Get range \(range.map(String.init) ?? "?")")
            guard admin else { return queue(status: .notAuthorized, tper: tper, host: host) }
            guard let range, range <= setup.maxRanges, invoking[3] == 0x02 else { return queue(status: .invalidParameter, tper: tper, host: host) }
            let extent = setup.ranges[range] ?? 0..<0
            let locked = state.withLock { $0.lockedRanges.contains(range) }
            let enabled = setup.lockingEnabled && (range == 0 || !extent.isEmpty)
            let key: [UInt8] = [0, 0, 0x08, 0x06, 0, range == 0 ? 0 : 0x03, UInt8(range >> 8), range == 0 ? 1 : UInt8(range & 0xFF)]
            return queueRow([
                3: .uint(extent.lowerBound), 4: .uint(UInt64(extent.count)), 5: .uint(enabled ? 1 : 0), 6: .uint(enabled ? 1 : 0),
                7: .uint(locked ? 1 : 0), 8: .uint(locked ? 1 : 0), 10: .bytes(key),
            ], tper: tper, host: host)
        case TCGUID.set:
            record("Set \(invoking == TCGUID.mbrControl ? "MBRControl" : "range \(range.map(String.init) ?? "?")")")
            guard admin else { return queue(status: .notAuthorized, tper: tper, host: host) }
            var values: [UInt64: UInt64] = [:]
            for index in arguments.indices.dropLast(3) where arguments[index] == .startName {
                if case .uint(let column) = arguments[index + 1], case .uint(let value) = arguments[index + 2], arguments[index + 3] == .endName {
                    values[column] = value
                }
            }
            state.withLock { s in
                if invoking == TCGUID.mbrControl, let done = values[2] {
                    s.setup.mbrDone = done == 1
                } else if let range, values[7] == 0 || values[8] == 0 {
                    s.lockedRanges.remove(range)
                }
                s.setup.locked = !s.lockedRanges.isEmpty
            }
            status = .success
        case TCGUID.genKey:
            record("GenKey range \(range.map(String.init) ?? "?")")
            guard admin else { return queue(status: .notAuthorized, tper: tper, host: host) }
            guard let range, invoking[3] == 0x06 else { return queue(status: .invalidParameter, tper: tper, host: host) }
            if setup.fault == .genKeyFails(range: range) { return queue(status: .fail, tper: tper, host: host) }
            if setup.fault != .genKeyKeepsData { onRekey(extents(of: range, setup: setup)) }
            status = .success
        default:
            record("unknown Locking SP method \(TCGUID.text(method))")
            status = .invalidParameter
        }
        queue(status: status, tper: tper, host: host)
    }

    /// The bytes a range covers: its LBAs, or for the global range every LBA no other range has.
    private func extents(of range: Int, setup: Setup) -> [Range<UInt64>] {
        if range != 0 { return setup.ranges[range].map { [$0.lowerBound * 512..<$0.upperBound * 512] } ?? [] }
        var extents: [Range<UInt64>] = []
        var from: UInt64 = 0
        for other in setup.ranges.values.filter({ !$0.isEmpty }).sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if other.lowerBound > from { extents.append(from * 512..<other.lowerBound * 512) }
            from = max(from, other.upperBound)
        }
        if from < setup.lbaCount { extents.append(from * 512..<setup.lbaCount * 512) }
        return extents
    }

    /// A Get's answer: `[ [ {column: value} … ] ]`, with LockOnReset (column 9) as a list.
    private func queueRow(_ cells: [UInt64: TCGToken], tper: UInt32, host: UInt32) {
        var row: [TCGToken] = []
        for column in cells.keys.sorted() {
            if column == 10 { row += [.startName, .uint(9), .startList, .uint(0), .endList, .endName] }
            row += [.startName, .uint(column), cells[column]!, .endName]
        }
        let tokens: [TCGToken] = [.startList, .startList] + row + [.endList, .endList, .endOfData, .startList, .uint(0), .uint(0), .uint(0), .endList]
        queuePayload(tokens, tper: tper, host: host, comID: state.withLock { $0.setup.comID })
    }

    private func record(_ method: String) { state.withLock { $0.methods.append(method) } }

    private func queueSync(status: TCGMethodStatus, host: UInt32, tper: UInt32) {
        let arguments: [TCGToken] = status == .success ? [.uint(UInt64(host)), .uint(UInt64(tper))] : []
        let tokens: [TCGToken] = [.call, .bytes(TCGUID.sessionManager), .bytes(TCGUID.syncSession), .startList] + arguments
            + [.endList, .endOfData, .startList, .uint(UInt64(status.rawValue)), .uint(0), .uint(0), .endList]
        queuePayload(tokens, tper: 0, host: 0, comID: state.withLock { $0.setup.comID })
    }

    private func queue(status: TCGMethodStatus, tper: UInt32, host: UInt32) {
        let tokens: [TCGToken] = [.startList, .endList, .endOfData, .startList, .uint(UInt64(status.rawValue)), .uint(0), .uint(0), .endList]
        queuePayload(tokens, tper: tper, host: host, comID: state.withLock { $0.setup.comID })
    }

    private func queuePayload(_ tokens: [TCGToken], tper: UInt32, host: UInt32, comID: UInt16) {
        let bytes = TCGComPacket(comID: comID, tperSession: tper, hostSession: host, payload: TCGToken.encode(tokens)).encoded()
        state.withLock { $0.pending = bytes }
    }

    private func pad(_ bytes: [UInt8], to length: Int) -> [UInt8] {
        bytes.count >= length ? Array(bytes.prefix(length)) : bytes + [UInt8](repeating: 0, count: length - bytes.count)
    }
}

extension DeviceCommand {
    var cdw10: UInt32 {
        if case .nvmeAdmin(_, _, let cdw10, _) = operation { return cdw10 }
        return 0
    }
}

private func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
private func be32(_ value: UInt32) -> [UInt8] { [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)] }

/// The media behind a simulated self-encrypting drive: reads and writes fail with EIO while
/// the drive is locked, as a locked Opal drive's do (its range is read- and write-locked).
public final class SimulatedOpalMedia: BlockDevice {
    public let base: MemoryBlockDevice
    public let drive: SimulatedOpalDrive

    public init(base: MemoryBlockDevice, drive: SimulatedOpalDrive) {
        self.base = base
        self.drive = drive
    }

    public var path: String { base.path }
    public var sizeBytes: UInt64 { base.sizeBytes }
    public var logicalSectorSize: Int { base.logicalSectorSize }
    public var physicalSectorSize: Int { base.physicalSectorSize }
    public var bufferAlignment: Int { base.bufferAlignment }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(IOFailure) -> Int {
        guard !drive.locked else { throw IOFailure(operation: .write, path: path, errno: .io, offset: offset, length: buffer.count) }
        return try base.write(buffer, at: offset)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(IOFailure) -> Int {
        guard !drive.locked else { throw IOFailure(operation: .read, path: path, errno: .io, offset: offset, length: buffer.count) }
        return try base.read(into: buffer, at: offset)
    }

    public func synchronize() throws(IOFailure) { try base.synchronize() }
}
