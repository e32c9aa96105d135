import ArgumentParser
import Foundation
import LetheCore
import LetheWipe

/// Hidden measurement helpers used by Benchmarks/ scripts.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure internal speeds (used by Benchmarks/wipe-vs-fio.sh).",
        shouldDisplay: false,
        subcommands: [PRNG.self])

    struct PRNG: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prng", abstract: "Keystream generation speed on one core, in GB/s (10^9 bytes).")

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
}
