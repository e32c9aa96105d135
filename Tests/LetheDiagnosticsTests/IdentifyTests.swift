import Foundation
import LetheCore
import LetheTesting
import Testing

/// IDENTIFY parsing on real byte dumps (sources in Fixtures/README.md), and the probe flow
/// through the scripted transport.
@Suite struct IdentifyTests {
    static func fixture(_ name: String) throws -> Data {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil))
        return try Data(contentsOf: url)
    }

    static func samsung870() throws -> [UInt8] {
        HexDump.ataWords(String(decoding: try fixture("ata-identify-samsung-870qvo.txt"), as: UTF8.self))
    }

    /// A Samsung 870 QVO 4 TB (CrystalDiskInfo dump): frozen security, enhanced erase, HPA.
    @Test func samsung870QvoIdentify() throws {
        let bytes = try Self.samsung870()
        #expect(bytes.count == 512)
        let id = try AtaIdentify(bytes: bytes)
        #expect(id.model == "Samsung SSD 870 QVO 4TB")
        #expect(id.serial == "S5STNF0W706332M")
        #expect(id.firmware == "SVQ02B6Q")
        // smartctl on the same drive: 4,000,787,030,016 bytes.
        #expect(id.userSectors == 7_814_037_168)
        #expect(id.userSectors * UInt64(id.logicalSectorSize) == 4_000_787_030_016)
        #expect(id.securitySupported)
        #expect(!id.securityEnabled)
        #expect(!id.securityLocked)
        #expect(id.securityFrozen)
        #expect(id.enhancedEraseSupported)
        #expect(id.eraseMinutes == 4)
        #expect(id.enhancedEraseMinutes == 8)
        #expect(!id.sanitizeSupported)
        #expect(id.hpaSupported)
        #expect(id.hpaEnabled)
        #expect(id.checksumValid == true)
    }

    /// QEMU's AHCI disk, read with `hdparm --Istdout` in the lab: no security, no sanitize.
    @Test func qemuSataIdentify() throws {
        let bytes = HexDump.ataWords(String(decoding: try Self.fixture("ata-identify-qemu-sata.txt"), as: UTF8.self))
        let id = try AtaIdentify(bytes: bytes)
        #expect(id.model == "LAB SATA DISK")
        #expect(id.serial == "LABSATA0001")
        #expect(id.userSectors * 512 == 1 << 30)
        #expect(!id.securitySupported)
        #expect(!id.sanitizeSupported)
    }

    @Test func corruptedIdentifyIsCaught() throws {
        var bytes = try Self.samsung870()
        bytes[54] ^= 0x01
        #expect(try AtaIdentify(bytes: bytes).checksumValid == false)
        #expect(throws: IdentifyParseError.self) { try AtaIdentify(bytes: Array(bytes.prefix(100))) }
        var atapi = bytes
        atapi[1] = 0x85
        #expect(throws: IdentifyParseError.self) { try AtaIdentify(bytes: atapi) }
    }

    /// QEMU 7.2's NVMe controller, `nvme id-ctrl -b` in the lab: Format NVM, no Sanitize.
    @Test func qemuNvmeIdentifyController() throws {
        let id = try NvmeIdentify(bytes: [UInt8](try Self.fixture("nvme-identify-controller-qemu72.bin")))
        #expect(id.vendorId == "0x1b36")
        #expect(id.model == "QEMU NVMe Ctrl")
        #expect(id.serial == "LABNVME0001")
        #expect(id.firmware == "7.2.22")
        #expect(id.formatSupported)
        #expect(id.sanitizeCapabilities == 0)
        #expect(!id.cryptoEraseFormat)
        #expect(id.namespaceCount == 256)
        #expect(throws: IdentifyParseError.self) { try NvmeIdentify(bytes: [UInt8](repeating: 0, count: 4096)) }
    }

    @Test func probeSendsIdentifyThroughATAPassThrough16() throws {
        let transport = ScriptedTransport(path: "/dev/sdx", replies: ["ATA IDENTIFY DEVICE": .data(try Self.samsung870())])
        // Through a USB-SATA bridge, this is how the drive's own serial replaces the dock's.
        #expect(AtaIdentify.driveSerial(through: transport) == (try AtaIdentify(bytes: try Self.samsung870())).serial.trimmingCharacters(in: .whitespaces))
        let caps = FirmwareCapabilities.probe(transport: .sata, using: transport)
        #expect(caps.ata?.securityFrozen == true)
        #expect(caps.problem == nil)
        let sent = try #require(transport.sent.first)
        let (direction, length) = (sent.direction, sent.transferLength)
        guard case .scsi(let cdb) = sent.operation else {
            Issue.record("not a SCSI command")
            return
        }
        #expect(cdb.count == 16)
        #expect(cdb[0] == 0x85)  // ATA PASS-THROUGH(16)
        #expect(cdb[1] == 0x08)  // PIO data-in
        #expect(cdb[14] == 0xec)  // IDENTIFY DEVICE
        #expect(direction == .fromDevice)
        #expect(length == 512)
    }

    @Test func probeReportsABridgeThatRefuses() {
        let transport = ScriptedTransport(path: "/dev/sdy", replies: ["ATA IDENTIFY DEVICE": .failure(status: "sense key 0x5 asc/ascq 0x20/0x0")])
        #expect(AtaIdentify.driveSerial(through: transport) == nil, "a bridge without ATA pass-through gives no drive serial")
        let caps = FirmwareCapabilities.probe(transport: .usb, using: transport)
        #expect(caps.ata == nil)
        #expect(caps.problem?.contains("/dev/sdy") == true)
        #expect(caps.problem?.contains("0x20") == true)
        let nvme = FirmwareCapabilities.probe(transport: .nvme, using: ScriptedTransport(replies: ["NVMe Identify Controller": .data([1, 2, 3])]))
        #expect(nvme.problem?.contains("4096 expected") == true)
        #expect(FirmwareCapabilities.probe(transport: .loop, using: ScriptedTransport(replies: [:])).problem?.contains("loop") == true)
    }
}
