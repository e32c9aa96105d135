// Coverage-guided fuzzing (libFuzzer) of every parser of untrusted input: what phones, drives,
// smartctl, profile and station files, HTTP bodies and the catalog send Lethe. Built only by
// scripts/fuzz.sh (LETHE_FUZZ=1, `-sanitize=fuzzer`); `LETHE_FUZZ_TARGET` picks the parser.
// A parser may refuse its input with an error; it must never crash, trap or hang.
import Foundation
import LetheConfig
import LetheCore
import LetheDiagnostics
import LethePhones
import LetheTesting

/// The parsers, by name (the corpus folder under Fuzz/corpus has the same name).
let targets: [String: @Sendable ([UInt8]) -> Void] = [
    "getprop": { _ = try? AndroidProperties.parse(text($0)) },
    "dumpsys-battery": { _ = try? DumpsysBattery.parse(text($0)) },
    "tradeinmode": { _ = try? TradeInStatus.parse(text($0)) },
    "accounts": { bytes in _ = (try? AccountDump.types(text(bytes))).map { AccountDump.frp(types: $0) } },
    "adb-host": adbHost,
    "smartctl": { _ = try? SmartctlResult.parse(json: Data($0), exitStatus: 0) },
    "device-answers": deviceAnswers,
    "profile": { _ = try? ProfileLoader.parse(text($0), file: "fuzz.yaml") },
    "station": { _ = try? DaemonConfig.parse(text($0), file: "fuzz.yaml") },
    "http-bodies": httpBodies,
    "catalog-answer": { _ = CatalogInstructions.decode(answer: Data($0)) },
    "ios-plist": iosPlist,
    "tcg": tcg,
]

/// What usbmuxd and an iPhone's lockdownd and services send: a usbmux message read off the
/// wire, the plist in it, and every reader of its values (device entries, pair records,
/// identity, battery).
func iosPlist(_ bytes: [UInt8]) {
    let header: [UInt8] = [UInt8(truncatingIfNeeded: bytes.count + 16), UInt8(truncatingIfNeeded: (bytes.count + 16) >> 8), 0, 0, 1, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0]
    _ = try? UsbmuxWire.read(ScriptedByteStream(reply: header + bytes), deadline: .now + .milliseconds(50), what: "fuzz")
    guard let values = try? Plist.decode(bytes, what: "fuzz") else { return }
    _ = try? UsbmuxDevice(fuzzing: values)
    _ = try? PairRecord(plist: values, what: "fuzz")
    var notes: [String] = []
    _ = IOSProbe.identity(values, udid: "FUZZ", notes: &notes)
    _ = IOSProbe.battery(values, entry: "AppleSmartBattery")
}

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// What the adb server answers to the host protocol's requests, and what a phone's sync service
/// and shell send back (the first byte picks which), through the real client.
func adbHost(_ bytes: [UInt8]) {
    guard let which = bytes.first else { return }
    let stream = ScriptedByteStream(reply: Array(bytes.dropFirst()))
    let client = ADBClient(server: "127.0.0.1:5037", timeout: .milliseconds(50), connector: { _ throws(LetheError) in stream })
    switch which % 7 {
    case 0: _ = try? client.version()
    case 1: _ = try? client.devices()
    case 2: _ = try? client.features(serial: "FUZZ")
    case 3: _ = try? client.shell(serial: "FUZZ", "getprop")
    // The phone's sync service (the free-space fill): RECV answers, answers to SENDs, dd output.
    case 4: try? client.pull(serial: "FUZZ", path: "/data/local/tmp/f", timeout: .milliseconds(50)) { _, _ in true }
    case 5:
        guard let session = try? ADBSyncSession(client, serial: "FUZZ", timeout: .milliseconds(50)) else { return }
        try? session.send(path: "/data/local/tmp/f", size: 1 << 17, produce: { _, _ in }, sent: { _ in true })
        _ = try? session.settle()
    default: _ = try? client.shellBytes(serial: "FUZZ", "dd if=/data/local/tmp/f bs=65536 count=1")
    }
}

/// Drive answers: ATA and NVMe IDENTIFY, sense data and ATA registers, the NVMe sanitize log,
/// DCO IDENTIFY, the active namespace list, and the firmware-capability probe over them.
func deviceAnswers(_ bytes: [UInt8]) {
    guard let which = bytes.first else { return }
    let body = Array(bytes.dropFirst())
    // Short answers are padded, so the parsers get past their length checks.
    let padded = body + [UInt8](repeating: 0, count: max(0, 4096 - body.count))
    switch which % 7 {
    case 0: _ = try? AtaIdentify(bytes: Array(padded.prefix(512)))
    case 1: _ = try? NvmeIdentify(bytes: padded)
    case 2: _ = SenseData(body).map { ($0.description, $0.ataRegisters, $0.progress) }
    case 3: _ = try? NvmeSanitizeStatus(bytes: Array(padded.prefix(512)), method: .nvmeSanitizeBlock)
    case 4: _ = HiddenAreas.factoryLastLBA(dcoIdentify: Array(padded.prefix(512)))
    case 5: _ = NvmeCommand.namespaceIds(inActiveList: body)
    default:
        let transport = ScriptedTransport(replies: [
            "ATA IDENTIFY DEVICE": .data(Array(padded.prefix(512))), "NVMe Identify Controller": .data(padded),
        ])
        _ = FirmwareCapabilities.probe(transport: .sata, using: transport)
        _ = FirmwareCapabilities.probe(transport: .nvme, using: transport)
    }
}

/// The JSON bodies the daemon takes (a cosmetic grade, function checks), decoded as its
/// handlers decode them and validated by the same rules.
func httpBodies(_ bytes: [UInt8]) {
    struct Grade: Decodable { var grade: String; var notes: String? }
    if let grade = try? JSONDecoder().decode(Grade.self, from: Data(bytes)) {
        _ = try? CosmeticGrade(grade: grade.grade, notes: grade.notes, gradedBy: "fuzz", gradedAt: "2026-12-06T00:00:00Z")
    }
    if let checks = try? JSONDecoder().decode([String: String].self, from: Data(bytes)) {
        _ = checks.filter { FunctionChecks.technicianChecks.contains($0.key) && ($0.value == "pass" || $0.value == "fail") }
    }
}

let selected: @Sendable ([UInt8]) -> Void = {
    let name = ProcessInfo.processInfo.environment["LETHE_FUZZ_TARGET"] ?? ""
    guard let target = targets[name] else {
        FileHandle.standardError.write(Data("LETHE_FUZZ_TARGET must be one of: \(targets.keys.sorted().joined(separator: ", "))\n".utf8))
        exit(2)
    }
    return target
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = start.map { Array(UnsafeRawBufferPointer(start: $0, count: count)) } ?? []
    selected(bytes)
    return 0
}

/// libFuzzer's driver, for when the build names its own entry point (SwiftPM links an
/// executable's `main` to `<Module>_main`).
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafeRawPointer?, Int) -> CInt
) -> CInt

@_cdecl("LetheFuzz_main")
public func letheFuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    return runDriver(&count, &arguments) { start, size in fuzz(start, size) }
}

/// What a self-encrypting drive answers: the TCG token stream and method answers, the
/// ComPacket envelope, Level 0 Discovery, and a whole session and revert (or the reading of
/// the locking ranges) whose IF-RECV answer is the input.
func tcg(_ bytes: [UInt8]) {
    guard let which = bytes.first else { return }
    let body = Array(bytes.dropFirst())
    switch which % 4 {
    case 0: _ = (try? TCGToken.decode(body)).map { try? TCGMethodResponse(tokens: $0).namedValues }
    case 1: _ = try? TCGComPacket(decoding: body)
    case 2: _ = try? TCGDiscovery(bytes: body).advice
    default:
        let name = DeviceCommand.securityReceive(.scsi, protocolID: 1, comID: 0x07FE).name
        let transport = ScriptedTransport(replies: [name: .data(body), DeviceCommand.securitySend(.scsi, protocolID: 1, comID: 0x07FE, data: []).name: .data([])])
        let host = TCGHost(transport: transport, interface: .scsi, comID: 0x07FE)
        host.pollLimit = 3
        if which >= 0x80 {
            _ = try? TCGCryptoErase.ranges(host)
        } else {
            _ = try? TCGRevert.run(host, authority: .psid, credential: Array("FUZZ".utf8))
        }
    }
}
