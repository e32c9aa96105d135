import ArgumentParser
import Foundation
import LetheCore
import LetheLinux
import LetheWipe

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read a whole device and check that it holds one byte value (read-only).",
        discussion: """
            For QA spot checks after an erase. Nothing is written, so the device may be in use. Reads bypass the page cache (O_DIRECT).

            Exit status: 0 every byte matched; 4 some bytes differ (the first offsets are listed) or sectors could not be read; 2 bad input.

            Examples:
              lethe verify /dev/sdb --expect zero
              lethe verify /dev/sdb --expect byte:0xAA --json
            """)

    @Argument(help: "Block device (or, with --allow-file, an image) to read.")
    var device: String

    @Option(help: "What every byte should be: zero, one (0xFF), or byte:0xNN.")
    var expect: String

    @Flag(help: "Print the result as JSON on stdout.")
    var json = false

    @Flag(help: "Allow a regular file (a disk image).")
    var allowFile = false

    @OptionGroup var io: IOOptions

    struct ResultLine: Encodable {
        var type = "result"
        var device: String
        var expected: String
        var matches: Bool
        var sizeBytes: UInt64
        var bytesVerified: UInt64
        var mismatchedSectors: UInt64
        var firstMismatches: [Mismatch]
        var unreadableSectors: [SectorRange]
        var seconds: Double
        var error: String?
    }

    func run() throws {
        let result: ResultLine
        do {
            let byte = try parseExpectation()
            let target = try LinuxBlockDevice.inspect(device, allowFile: true)
            if target.number == nil, !allowFile {
                throw LetheError(.notABlockDevice, path: device, "is a regular file; pass --allow-file to read a disk image")
            }
            let opened = try LinuxBlockDevice(target: target, access: .readOnly)
            let options = WipeOptions(
                method: WipeMethod.named("zero")!, verification: .last, blockSize: try io.blockBytes(device: device),
                queueDepth: io.queueDepth, readQueueDepth: io.readQueueDepth)
            let engine = try WipeEngine(device: opened, options: options)
            let trap = SignalTrap { engine.cancellation.cancel(reason: $0) }
            let renderer = ProgressRenderer(json: false)
            let check = engine.check(expecting: .bytes([byte]), progress: json ? { _ in } : renderer.show)
            renderer.finish()
            withExtendedLifetime(trap) {}
            result = ResultLine(
                device: device, expected: hex(byte),
                matches: check.error == nil && check.record.result == .passed && check.badSectors.isEmpty,
                sizeBytes: opened.sizeBytes, bytesVerified: check.record.bytesVerified,
                mismatchedSectors: check.record.mismatchedSectors, firstMismatches: check.record.firstMismatches,
                unreadableSectors: check.badSectors, seconds: check.record.seconds,
                error: check.error ?? (engine.cancellation.isCancelled ? "interrupted" : nil))
        } catch let error as LetheError {
            throw Output.fail(error, json: json)
        }
        if json {
            Output.json(result)
        } else {
            print("\(result.device): \(result.matches ? "every byte is \(result.expected)" : "does NOT hold \(result.expected) everywhere") (\(HumanFormat.bytes(Double(result.bytesVerified))) read in \(HumanFormat.fixed(result.seconds, 1)) s)")
            if result.mismatchedSectors > 0 {
                print("\(result.mismatchedSectors) sector(s) differ; first differing offsets:")
                for m in result.firstMismatches {
                    print("  offset \(m.offset) (0x\(String(m.offset, radix: 16))): found \(hex(m.found)), expected \(hex(m.expected))")
                }
            }
            if !result.unreadableSectors.isEmpty {
                print("unreadable: \(result.unreadableSectors.map(\.description).joined(separator: ", "))")
            }
        }
        if let error = result.error { Output.err("lethe: \(device): \(error)") }
        if !result.matches { throw ExitCode(ExitStatus.notErased) }
    }

    private func parseExpectation() throws(LetheError) -> UInt8 {
        switch expect.lowercased() {
        case "zero": return 0x00
        case "one": return 0xFF
        default:
            let lower = expect.lowercased()
            if lower.hasPrefix("byte:") {
                var digits = String(lower.dropFirst(5))
                if digits.hasPrefix("0x") { digits = String(digits.dropFirst(2)) }
                if let value = UInt8(digits, radix: 16) { return value }
            }
            throw LetheError(.invalidArgument, path: device, "--expect '\(expect)' is not zero, one or byte:0xNN")
        }
    }
}
