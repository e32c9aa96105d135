/// ComPacket, Packet and Data SubPacket (TCG Core 2.01 §3.2.3): the envelope around a token
/// stream that travels in IF-SEND and IF-RECV. All integers are big-endian.
public struct TCGComPacket: Sendable, Equatable {
    /// The ComID the TPer assigned to this host channel (Level 0 Discovery's base ComID).
    public var comID: UInt16
    /// TPer and host session numbers (0 and 0 outside a session).
    public var tperSession: UInt32
    public var hostSession: UInt32
    /// Bytes the TPer still holds for the host (IF-RECV answers); 0 when all came.
    public var outstandingData: UInt32
    /// Bytes the TPer needs room for before it answers (when `payload` is empty).
    public var minTransfer: UInt32
    /// The token stream of the one data subpacket.
    public var payload: [UInt8]

    static let comPacketHeader = 20
    static let packetHeader = 24
    static let subPacketHeader = 12

    public init(comID: UInt16, tperSession: UInt32 = 0, hostSession: UInt32 = 0, outstandingData: UInt32 = 0, minTransfer: UInt32 = 0, payload: [UInt8]) {
        self.comID = comID
        self.tperSession = tperSession
        self.hostSession = hostSession
        self.outstandingData = outstandingData
        self.minTransfer = minTransfer
        self.payload = payload
    }

    /// The bytes to send, padded to a multiple of 512 (the transfer unit of IF-SEND on ATA).
    public func encoded(sequence: UInt32 = 0) -> [UInt8] {
        let padded = payload + [UInt8](repeating: 0, count: (4 - payload.count % 4) % 4)
        var out: [UInt8] = []
        out += [0, 0, 0, 0] + be16(comID) + [0, 0] + be32(outstandingData) + be32(minTransfer)
        out += be32(UInt32(Self.packetHeader + Self.subPacketHeader + padded.count))
        out += be32(tperSession) + be32(hostSession) + be32(sequence) + [0, 0, 0, 0] + [0, 0, 0, 0]
        out += be32(UInt32(Self.subPacketHeader + padded.count))
        out += [0, 0, 0, 0, 0, 0, 0, 0] + be32(UInt32(payload.count))
        out += padded
        out += [UInt8](repeating: 0, count: (512 - out.count % 512) % 512)
        return out
    }

    /// Reads an IF-RECV answer. Lengths are checked against the buffer; a ComPacket with no
    /// packet (length 0) is an answer not ready yet (`payload` empty, `outstandingData` and
    /// `minTransfer` say how much is coming).
    public init(decoding bytes: [UInt8]) throws(TCGParseError) {
        guard bytes.count >= Self.comPacketHeader else { throw TCGParseError(offset: 0, "ComPacket of \(bytes.count) bytes, shorter than its 20-byte header") }
        comID = UInt16(bytes[4]) << 8 | UInt16(bytes[5])
        outstandingData = be32(bytes, 8)
        minTransfer = be32(bytes, 12)
        let length = Int(be32(bytes, 16))
        tperSession = 0
        hostSession = 0
        payload = []
        if length == 0 { return }
        guard length <= bytes.count - Self.comPacketHeader else {
            throw TCGParseError(offset: 16, "ComPacket says \(length) bytes follow, \(bytes.count - Self.comPacketHeader) came")
        }
        guard length >= Self.packetHeader + Self.subPacketHeader else { throw TCGParseError(offset: 16, "ComPacket of \(length) bytes holds no packet and subpacket") }
        let packet = Self.comPacketHeader
        tperSession = be32(bytes, packet)
        hostSession = be32(bytes, packet + 4)
        let packetLength = Int(be32(bytes, packet + 20))
        guard packetLength >= Self.subPacketHeader, packetLength <= length - Self.packetHeader else {
            throw TCGParseError(offset: packet + 20, "packet length \(packetLength) does not fit the ComPacket's \(length)")
        }
        let sub = packet + Self.packetHeader
        let kind = UInt16(bytes[sub + 6]) << 8 | UInt16(bytes[sub + 7])
        guard kind == 0 else { throw TCGParseError(offset: sub + 6, "subpacket kind \(kind) is not data") }
        let subLength = Int(be32(bytes, sub + 8))
        guard subLength <= packetLength - Self.subPacketHeader else {
            throw TCGParseError(offset: sub + 8, "subpacket length \(subLength) does not fit the packet's \(packetLength)")
        }
        payload = Array(bytes[(sub + Self.subPacketHeader)..<(sub + Self.subPacketHeader + subLength)])
    }
}

func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
func be32(_ value: UInt32) -> [UInt8] { [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)] }
func be32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
    UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
}
