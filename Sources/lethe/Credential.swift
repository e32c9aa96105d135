import Foundation
import LetheCore

/// The PSID or SID password of a TCG revert, or the Admin1 password of tcg-crypto-erase, read
/// from the technician: typed with the echo
/// off, or scanned from the label's barcode (a scanner types like a keyboard), or one line on
/// stdin when there is no terminal. It is never stored, logged or shown.
enum CredentialPrompt {
    /// Nil for tcg-revert-sp given an empty line (an unowned drive: Lethe reads the MSID).
    static func read(for erase: FirmwareErase) throws(LetheError) -> [UInt8]? {
        let psid = erase == .tcgPsidRevert
        let label = switch erase {
        case .tcgPsidRevert: "PSID of the drive (32 characters on its label, after \"PSID:\"; type it or scan its barcode): "
        case .tcgCryptoErase: "Admin1 password of the drive's Locking SP (from its owner): "
        default: "SID password of the drive's owner (Enter alone if nobody took ownership: Lethe reads the MSID): "
        }
        let line: String?
        if Output.stdinIsTerminal {
            Output.err(label)
            line = withEchoOff { readLine() }
            Output.err("\n")
        } else {
            line = readLine()
        }
        let text = (line ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        if erase == .tcgCryptoErase, text.isEmpty {
            throw LetheError(.invalidArgument, path: "Admin1 password", "no password given; nothing was sent")
        }
        guard psid else { return text.isEmpty ? nil : Array(text.utf8) }
        // Every wrong try spends one of the drive's few: a mistyped length is refused here.
        guard TCGRevert.isPSID(text) else {
            throw LetheError(
                .invalidArgument, path: "PSID",
                text.isEmpty ? "no PSID given; nothing was sent" : "a PSID is 32 letters and digits; this is \(text.count) character(s). Nothing was sent (each wrong PSID spends one of the drive's tries)")
        }
        return Array(text.utf8)
    }

    private static func withEchoOff<T>(_ body: () -> T) -> T {
        var saved = termios()
        guard tcgetattr(STDIN_FILENO, &saved) == 0 else { return body() }
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet)
        defer { tcsetattr(STDIN_FILENO, TCSANOW, &saved) }
        return body()
    }
}
