import ArgumentParser
import Foundation
import LetheCore

/// Writes to stdout/stderr, JSON lines and the terminal progress bar.
enum Output {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func json<T: Encodable>(_ value: T) {
        guard let data = try? encoder.encode(value), let line = String(data: data, encoding: .utf8) else { return }
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func err(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// A surface scan's progress on stderr, every two seconds (nothing with `--json`).
    static func surfaceProgress(json: Bool) -> (UInt64, UInt64) -> Void {
        var last = ContinuousClock.now
        return { done, total in
            guard !json, ContinuousClock.now - last > .seconds(2) else { return }
            last = ContinuousClock.now
            err("surface: \(total == 0 ? 100 : done * 100 / total)% (\(HumanFormat.bytes(Double(done))) of \(HumanFormat.bytes(Double(total))))")
        }
    }

    static var stderrIsTerminal: Bool { isatty(2) == 1 }
    static var stdinIsTerminal: Bool { isatty(0) == 1 }

    /// Reports a refusal or failure before work started: one line on stderr, and with `--json`
    /// a `{"type":"error"}` object on stdout.
    static func fail(_ error: LetheError, json: Bool) -> ExitCode {
        err("lethe: \(error)")
        if json { Output.json(ErrorLine(code: error.code.description, device: error.path, errno: error.errno?.description, message: error.message)) }
        return ExitCode(error.code == .cancelled ? ExitStatus.aborted : ExitStatus.refused)
    }

    struct ErrorLine: Encodable {
        var type = "error"
        var code: String
        var device: String?
        var errno: String?
        var message: String
    }
}

/// Renders progress: a one-line bar on a terminal, JSON lines with `--json`, a plain line every
/// 10 s otherwise (logs).
final class ProgressRenderer {
    let json: Bool
    let terminal = Output.stderrIsTerminal
    private var lastPlain = Date.distantPast
    private var drewBar = false

    init(json: Bool) { self.json = json }

    struct Line: Encodable {
        var type = "progress"
        var phase: String
        var pass: Int
        var passCount: Int
        var bytesDone: UInt64
        var bytesTotal: UInt64
        var phaseBytesDone: UInt64
        var phaseBytesTotal: UInt64
        var percent: Double
        var throughputBytesPerSecond: Double
        var etaSeconds: Double?
        var badSectors: UInt64
    }

    /// Draws `p`.
    func show(_ p: WipeProgress) { show(p, stage: nil) }

    /// Draws `p`; `stage` names the step in place of "pass N/M phase" (a phone's fill).
    func show(_ p: WipeProgress, stage named: String?) {
        if json {
            Output.json(Line(
                phase: p.phase.rawValue, pass: p.pass, passCount: p.passCount, bytesDone: p.bytesDone,
                bytesTotal: p.bytesTotal, phaseBytesDone: p.phaseBytesDone, phaseBytesTotal: p.phaseBytesTotal,
                percent: (p.fraction * 1000).rounded() / 10, throughputBytesPerSecond: p.bytesPerSecond.rounded(),
                etaSeconds: p.etaSeconds.map { $0.rounded() }, badSectors: p.badSectorCount))
            return
        }
        let percent = HumanFormat.fixed(p.fraction * 100, 1)
        let rate = HumanFormat.bytes(p.bytesPerSecond) + "/s"
        let eta = p.etaSeconds.map(HumanFormat.duration) ?? "--:--"
        let stage = named ?? "pass \(p.pass)/\(p.passCount) \(p.phase.rawValue)"
        let bad = p.badSectorCount > 0 ? "  bad sectors: \(p.badSectorCount)" : ""
        if terminal {
            let width = 30
            let filled = Int(p.fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            FileHandle.standardError.write(Data("\r\u{1B}[2K\(bar) \(percent)%  \(stage)  \(rate)  ETA \(eta)\(bad)".utf8))
            drewBar = true
        } else if Date().timeIntervalSince(lastPlain) >= 10 {
            lastPlain = Date()
            Output.err("lethe: \(percent)% \(stage) \(rate) ETA \(eta)\(bad)")
        }
    }

    func finish() {
        if drewBar { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Turns SIGINT/SIGTERM into a cancellation request instead of an abrupt exit.
final class SignalTrap {
    private var sources: [any DispatchSourceSignal] = []

    init(onSignal: @escaping @Sendable (Int32) -> Void) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { onSignal(number) }
            source.resume()
            sources.append(source)
        }
    }

    deinit {
        for source in sources { source.cancel() }
    }
}
