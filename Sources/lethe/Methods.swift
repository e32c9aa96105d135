import ArgumentParser
import Foundation
import LetheCore

struct Methods: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the erase methods and their passes.",
        discussion: """
            Overwrite methods are a list of passes; `random` passes write an AES-128-CTR keystream seeded per pass (NIST Clear).

            Firmware methods (ata-*, nvme-*, scsi-*) send the drive's own erase command, which also reaches the spare and remapped blocks (NIST Purge), and prove it by reading back: random data written at pseudorandom places before must be gone, and the erased pattern must be there. `nist-purge` picks the strongest one the drive supports and falls back to nist-clear, with the reason on the certificate.

            Each method also names its category under NIST SP 800-88 Rev. 2 and its technique under IEEE 2883-2022, as its certificates do.

            Examples:
              lethe methods
              lethe methods --json
            """)

    @Flag(help: "Print JSON (one array) instead of a table.")
    var json = false

    struct Entry: Encodable {
        var name: String
        var title: String
        var category: String
        var passCount: Int
        var passes: [String]
        var defaultVerification: String
        var reference: String
        /// `overwrite` or `firmware`.
        var technique: String
        /// The NIST SP 800-88 Rev. 2 category and the IEEE 2883 technique, as certificates name
        /// them: `Purge — IEEE 2883: NVMe Sanitize, Crypto Erase`.
        var standard: String
    }

    func run() {
        let entries = WipeMethod.all.map {
            Entry(
                name: $0.name, title: $0.title, category: $0.category.rawValue, passCount: $0.passes.count,
                passes: $0.passes.map(\.summary), defaultVerification: $0.usesFirmware ? "readback" : $0.defaultVerification.rawValue,
                reference: $0.reference, technique: $0.usesFirmware ? "firmware" : "overwrite",
                standard: $0.picksStrongestPurge
                    ? "Purge — IEEE 2883: the drive's strongest supported technique (Clear — IEEE 2883: Overwrite, when it has none)"
                    : SanitizationStandards(method: $0).summary)
        }
        if json {
            Output.json(entries)
            return
        }
        let nameWidth = entries.map(\.name.count).max() ?? 0
        for entry in entries {
            let name = entry.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
            if entry.technique == "firmware" {
                print("\(name)  firmware  \(entry.category)  verify=readback")
                print("\(String(repeating: " ", count: nameWidth))  \(entry.title): \(entry.reference)")
                print("\(String(repeating: " ", count: nameWidth))  \(entry.standard)")
                continue
            }
            let passes = entry.passCount > 8
                ? entry.passes.prefix(6).joined(separator: ", ") + ", … (\(entry.passCount) passes)"
                : entry.passes.joined(separator: ", ")
            print("\(name)  \(entry.passCount) pass\(entry.passCount == 1 ? " " : "es")  verify=\(entry.defaultVerification)  \(passes)")
            print("\(String(repeating: " ", count: nameWidth))  \(entry.title): \(entry.reference)")
            print("\(String(repeating: " ", count: nameWidth))  \(entry.standard)")
        }
    }
}
