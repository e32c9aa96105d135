import ArgumentParser
import LetheSync
import Foundation
import LetheCore
import LetheReports
import LetheWipe

/// Hidden measurement helpers used by Benchmarks/ scripts.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure internal speeds (used by Benchmarks/wipe-vs-fio.sh).",
        discussion: """
            Examples:
              lethe bench prng --seconds 3
              lethe bench report --iterations 20 --json
            """,
        shouldDisplay: false,
        subcommands: [PRNG.self, ReportSpeed.self, Outbox.self])

    struct PRNG: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prng", abstract: "Keystream generation speed on one core, in GB/s (10^9 bytes).",
            discussion: """
                Examples:
                  lethe bench prng --seconds 3 --json
                """)

        @Option(help: "Seconds to run.")
        var seconds: Double = 2

        @Flag(help: "Print JSON.")
        var json = false

        func run() {
            let size = 4 << 20
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
            defer { buffer.deallocate() }
            var seed = [UInt8](repeating: 0, count: 32)
            for i in seed.indices { seed[i] = UInt8.random(in: 0...255) }
            let filler = PatternFiller(.random(seed: seed))
            // Warm up, then time whole 4 MiB buffers, as the engine fills them.
            filler.fill(buffer, offset: 0)
            var bytes = 0
            let start = Date()
            var offset: UInt64 = 0
            while Date().timeIntervalSince(start) < seconds {
                filler.fill(buffer, offset: offset)
                offset += UInt64(size)
                bytes += size
            }
            let rate = Double(bytes) / Date().timeIntervalSince(start) / 1e9
            if json {
                print("{\"prngGBPerSecondPerCore\":\(HumanFormat.fixed(rate, 2))}")
            } else {
                print("AES-128-CTR keystream: \(HumanFormat.fixed(rate, 2)) GB/s on one core")
            }
        }
    }

    struct ReportSpeed: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "report", abstract: "Time to sign one certificate and to render its PDF (median of N, milliseconds).",
            discussion: """
                Examples:
                  lethe bench report --iterations 20
                """)

        @Option(help: "Iterations.")
        var iterations = 30

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let key = ReportSamples.testKey()
            let certificate = ReportSamples.certificate()
            // The first render loads fonts (fontconfig): time it apart.
            let coldStart = Date()
            let first = try SignedReport.sign(certificate, type: SignedReport.certificateType, key: key)
            _ = try ReportRenderer.certificatePDF(first, certificate: certificate, verifyBase: "https://v.example", language: .en)
            let cold = Date().timeIntervalSince(coldStart) * 1000
            var sign: [Double] = []
            var render: [Double] = []
            var renderZh: [Double] = []
            for _ in 0..<max(1, iterations) {
                var t = Date()
                let signed = try SignedReport.sign(certificate, type: SignedReport.certificateType, key: key)
                sign.append(Date().timeIntervalSince(t) * 1000)
                t = Date()
                _ = try ReportRenderer.certificatePDF(signed, certificate: certificate, verifyBase: "https://v.example", language: .en)
                render.append(Date().timeIntervalSince(t) * 1000)
                t = Date()
                _ = try ReportRenderer.certificatePDF(signed, certificate: certificate, verifyBase: "https://v.example", language: .zhCN)
                renderZh.append(Date().timeIntervalSince(t) * 1000)
            }
            func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
            let m = (sign: median(sign), en: median(render), zh: median(renderZh))
            if json {
                print("{\"signMs\":\(HumanFormat.fixed(m.sign, 2)),\"renderEnMs\":\(HumanFormat.fixed(m.en, 2)),\"renderZhCNMs\":\(HumanFormat.fixed(m.zh, 2)),\"firstSignAndRenderMs\":\(HumanFormat.fixed(cold, 1))}")
            } else {
                print("sign (canonical JSON + Ed25519): \(HumanFormat.fixed(m.sign, 2)) ms")
                print("render PDF, en:                  \(HumanFormat.fixed(m.en, 2)) ms")
                print("render PDF, zh-CN:               \(HumanFormat.fixed(m.zh, 2)) ms")
                print("first sign + render (fonts):     \(HumanFormat.fixed(cold, 1)) ms")
            }
        }
    }

    /// Fills an outbox with sample records (for Benchmarks/sync.sh).
    struct Outbox: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Queue sample catalog records (signed with the TEST key) in an outbox.",
            discussion: """
                Examples:
                  lethe bench outbox --records 1000 --devices 50 --state-dir /tmp/bench-state
                """)
        @Option(help: "How many records.") var records = 10_000
        @Option(help: "Over how many devices.") var devices = 100
        @OptionGroup var state: StateOptions

        func run() throws {
            let started = Date()
            let ids = try CatalogSamples.fill(stateDirectory: state.directory, records: records, devices: devices)
            print("queued \(ids.count) records in \(String(format: "%.1f", Date().timeIntervalSince(started))) s; trust \(state.directory)/test-key.jwk")
        }
    }
}
