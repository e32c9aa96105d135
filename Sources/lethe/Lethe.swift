import ArgumentParser
import Foundation
import LetheCore

@main
struct Lethe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lethe",
        abstract: "Erase, verify and certify drives on a refurbishment bench.",
        discussion: """
            Lethe overwrites block devices at disk speed (O_DIRECT, several requests in flight), verifies what it wrote by reading the device back, and refuses the system disk and anything mounted or in use.

            Examples:
              lethe daemon --demo                            the bench: dashboard at http://127.0.0.1:8765/
              lethe methods                                  list erase methods and their passes
              lethe wipe /dev/sdb --method nist-clear        erase with confirmation
              lethe wipe /dev/sdb --profile hdd              erase as a profile says (lethe profiles list)
              lethe wipe /dev/disk/by-id/usb-X --method zero --serial X --yes --json
              lethe verify /dev/sdb --expect zero            read-only spot check
              lethe devices                                  what is docked, in which bay, and whether it may be erased
              lethe devices --watch --json                   stream plug and unplug events
              lethe diagnose /dev/sdb                        SMART health verdict and firmware erase capabilities
              lethe bays learn --count 4                     map bench sockets to bay labels
              lethe keys init                                create the station's signing key (once)
              lethe wipe /dev/sdb --method nist-clear --report-dir var/reports   signed certificate (JSON + PDF with QR)
              lethe report verify var/reports/ID.json        check a certificate's signature
            """,
        version: LetheVersion.string,
        subcommands: [Daemon.self, Config.self, Tokens.self, Sync.self, Catalog.self, Devices.self, Phones.self, Diagnose.self, Bays.self, Wipe.self, Verify.self, Methods.self, Profiles.self, Report.self, Keys.self, Audit.self, Bench.self]
    )
}

/// Exit codes shared by every command (also listed in README.md).
enum ExitStatus {
    /// Erased and verified as asked (or: verification found what was expected).
    static let success: Int32 = 0
    /// Erased, verified, with bad sectors listed as exceptions.
    static let erasedWithExceptions: Int32 = 3
    /// Not erased: I/O failure, device vanished, or verification failed.
    static let notErased: Int32 = 4
    /// Stopped by SIGINT/SIGTERM.
    static let aborted: Int32 = 5
    /// Refused before anything was written: bad input, protected device, no confirmation.
    static let refused: Int32 = 2
    /// The erase ran, but its certificate or record could not be written (disk full, …).
    static let reportNotWritten: Int32 = 6

    static func of(_ status: WipeStatus) -> Int32 {
        switch status {
        case .erased: success
        case .erasedWithExceptions: erasedWithExceptions
        case .notErased: notErased
        case .aborted: aborted
        }
    }
}

enum LetheVersion {
    static let string = "0.1.0"
}
