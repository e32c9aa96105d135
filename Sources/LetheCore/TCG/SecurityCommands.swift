/// IF-RECV and IF-SEND (TCG Core 2.01 §3.3.10) on each interface, as device commands:
/// - ATA: TRUSTED RECEIVE (5Ch) and TRUSTED SEND (5Eh), PIO, inside ATA PASS-THROUGH(16)
///   (SAT-4 §12.2.2; ACS-4 §7.56/7.58): protocol in FEATURE (CDB byte 4), ComID in LBA 23:8
///   (low byte in LBA 15:8, CDB byte 10; high byte in LBA 23:16, byte 12), length in 512-byte
///   blocks in COUNT (byte 6);
/// - SCSI: SECURITY PROTOCOL IN (A2h) and OUT (B5h) (SPC-5 §6.40/6.41);
/// - NVMe: Security Receive (82h) and Security Send (81h) (NVMe 2.0 §5.25/5.26):
///   SECP in CDW10 31:24, SPSP in 23:8, length in CDW11.
public enum SecurityInterface: String, Sendable, Codable {
    case ata, scsi, nvme

    /// The interface Lethe speaks to a drive on `transport` (SATA behind a USB bridge speaks
    /// ATA through the bridge's SAT layer).
    public static func of(_ transport: Transport) -> SecurityInterface? {
        switch transport {
        case .sata, .usb: return .ata
        case .scsi: return .scsi
        case .nvme: return .nvme
        default: return nil
        }
    }
}

extension DeviceCommand {
    /// IF-RECV: `length` bytes (a multiple of 512) from security protocol `protocolID`,
    /// protocol-specific field `comID`.
    public static func securityReceive(_ interface: SecurityInterface, protocolID: UInt8, comID: UInt16, length: Int = 2048) -> DeviceCommand {
        let name = "IF-RECV protocol \(protocolID) ComID 0x\(String(comID, radix: 16))"
        switch interface {
        case .ata:
            return AtaCommand.passThrough(
                name: name, protocol: .pioDataIn, command: 0x5c, features: UInt16(protocolID), count: UInt16(min(255, length / 512)),
                lba: UInt64(comID) << 8, device: 0, extend: false, timeoutSeconds: 30)
        case .scsi:
            let n = UInt32(length)
            return .scsi(
                name: name, cdb: [0xa2, protocolID, UInt8(comID >> 8), UInt8(comID & 0xFF), 0, 0] + be32(n) + [0, 0],
                direction: .fromDevice, transferLength: length, timeoutSeconds: 30)
        case .nvme:
            return .nvmeAdmin(
                name: name, opcode: 0x82, namespace: 0, cdw10: UInt32(protocolID) << 24 | UInt32(comID) << 8, cdw11: UInt32(length),
                transferLength: length, timeoutSeconds: 30)
        }
    }

    /// IF-SEND: `data` (padded by the caller to a multiple of 512) to security protocol
    /// `protocolID`, ComID `comID`.
    public static func securitySend(_ interface: SecurityInterface, protocolID: UInt8, comID: UInt16, data: [UInt8]) -> DeviceCommand {
        let name = "IF-SEND protocol \(protocolID) ComID 0x\(String(comID, radix: 16))"
        switch interface {
        case .ata:
            return AtaCommand.passThrough(
                name: name, protocol: .pioDataOut, command: 0x5e, features: UInt16(protocolID), count: UInt16(min(255, data.count / 512)),
                lba: UInt64(comID) << 8, device: 0, extend: false, dataOut: data, timeoutSeconds: 30)
        case .scsi:
            return .scsi(
                name: name, cdb: [0xb5, protocolID, UInt8(comID >> 8), UInt8(comID & 0xFF), 0, 0] + be32(UInt32(data.count)) + [0, 0],
                dataOut: data, timeoutSeconds: 30)
        case .nvme:
            return DeviceCommand(
                name: name, operation: .nvmeAdmin(opcode: 0x81, namespace: 0, cdw10: UInt32(protocolID) << 24 | UInt32(comID) << 8, cdw11: UInt32(data.count)),
                direction: .toDevice, transferLength: data.count, dataOut: data, timeoutSeconds: 30)
        }
    }

    /// Level 0 Discovery: IF-RECV protocol 01h, ComID 0001h.
    public static func tcgDiscovery(_ interface: SecurityInterface) -> DeviceCommand {
        var command = securityReceive(interface, protocolID: 1, comID: 1, length: 2048)
        command.name = "TCG Level 0 Discovery"
        // Sent at dock time too: a drive that does not answer must not hold discovery long.
        command.timeoutSeconds = 10
        return command
    }
}

extension TCGDiscovery {
    /// Reads Level 0 Discovery through `transport`; nil with the reason when the drive has no
    /// TCG subsystem or the path to it (a USB bridge) does not pass security commands.
    public static func probe(_ interface: SecurityInterface, using transport: any CommandTransport) -> (discovery: TCGDiscovery?, problem: String?) {
        do {
            let bytes = try transport.execute(.tcgDiscovery(interface))
            return (try TCGDiscovery(bytes: bytes), nil)
        } catch let failure as CommandFailure {
            return (nil, "TCG Level 0 Discovery not answered: \(failure.description)")
        } catch let failure as TCGParseError {
            return (nil, "\(transport.path): \(failure.description)")
        } catch {
            return (nil, "\(transport.path): \(error)")
        }
    }
}
