import ArgumentParser
import Foundation
import LetheCore
import LetheLinux

struct Bays: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Map the bench's sockets (udev port paths) to bay labels.",
        discussion: """
            Examples:
              lethe bays learn --count 4
              lethe bays set pci-0000:00:14.0-usb-0:1 "Bay 1"
              lethe bays show
            """,
        subcommands: [Show.self, Set.self, Learn.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the bay map.",
            discussion: """
                Examples:
                  lethe bays show
                  lethe bays show --bays /var/lib/lethe/bays.json
                """)
        @OptionGroup var bays: BayOptions

        func run() throws {
            do throws(LetheError) {
                let map = try bays.load()
                if map.bays.isEmpty { print("No bays in \(bays.file). Use `lethe bays learn` or `lethe bays set`.") }
                for (port, label) in map.bays.sorted(by: { $0.value < $1.value }) { print("\(label)\t\(port)") }
            } catch {
                throw Output.fail(error, json: false)
            }
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Label one port path (as shown by `lethe devices --json`, field portPath).",
            discussion: """
                Examples:
                  lethe bays set pci-0000:00:14.0-usb-0:1 "Bay 1"
                """)
        @Argument(help: "The port path.") var portPath: String
        @Argument(help: "The label, e.g. \"Bay 3\".") var label: String
        @OptionGroup var bays: BayOptions

        func run() throws {
            do throws(LetheError) {
                var map = try bays.load()
                map.bays[portPath] = label
                try Bays.save(map, to: bays.file)
                print("\(label) = \(portPath) (saved to \(bays.file))")
            } catch {
                throw Output.fail(error, json: false)
            }
        }
    }

    struct Learn: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Walk the bench: plug one device into each bay in turn, and Lethe records the socket.",
            discussion: """
                For each bay, Lethe waits for a drive or phone to appear and writes its port path under the bay's label. Use any device (a USB stick is fine); it is only looked at, never written. USB sockets are recorded at the port, so a phone and a dock in the same socket share the bay.

                Examples:
                  lethe bays learn --count 4
                  lethe bays learn --labels "Left,Middle,Right" --timeout 120
                """)
        @Option(help: "How many bays.") var count: Int = 4
        @Option(help: ArgumentHelp("Labels, comma-separated (default: Bay 1, Bay 2, …).", valueName: "labels")) var labels: String?
        @Option(help: "Seconds to wait for each device.") var timeout: Double = 120
        @OptionGroup var bays: BayOptions

        func run() async throws {
            let names = labels.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? (1...max(1, count)).map { "Bay \($0)" }
            var map: BayMap
            let initial: [DeviceRecord]
            do throws(LetheError) {
                map = try bays.load()
                initial = try DeviceDiscovery.all(bays: map)
            } catch {
                throw Output.fail(error, json: false)
            }
            let monitor = DeviceMonitor(bays: map)
            let stream: AsyncStream<DeviceEvent>
            do throws(LetheError) {
                stream = try monitor.events(initial: initial)
            } catch {
                throw Output.fail(error, json: false)
            }
            var iterator = stream.makeAsyncIterator()
            for label in names {
                print("Plug a device into \(label) (waiting up to \(Int(timeout)) s)…")
                let deadline = Date().addingTimeInterval(timeout)
                var learnt: String?
                while learnt == nil, Date() < deadline {
                    guard let event = await iterator.next() else { break }
                    guard event.event == .add, event.device.transport != .loop, let port = event.device.portPath else { continue }
                    learnt = Bays.socket(of: port)
                    print("  \(label) = \(learnt!) (\(event.device.model ?? event.device.path))")
                }
                guard let learnt else {
                    Output.err("lethe: no device appeared for \(label) within \(Int(timeout)) s; stopping")
                    break
                }
                map.bays[learnt] = label
                do throws(LetheError) { try Bays.save(map, to: bays.file) } catch { throw Output.fail(error, json: false) }
            }
            monitor.stop()
            print("Bay map saved to \(bays.file).")
        }
    }

    /// The socket part of a port path: for USB, up to the port (`usb-1-2` or
    /// `pci-0000:00:14.0-usb-0:2`), dropping the interface and SCSI tail.
    static func socket(of portPath: String) -> String {
        if let range = portPath.range(of: "-usb-") {
            let tail = portPath[range.upperBound...]
            let port = tail.split(separator: ":", omittingEmptySubsequences: false).prefix(2).joined(separator: ":")
            return String(portPath[..<range.upperBound]) + port
        }
        return portPath
    }

    static func save(_ map: BayMap, to file: String) throws(LetheError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let directory = (file as NSString).deletingLastPathComponent
        do {
            if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            try encoder.encode(map).write(to: URL(fileURLWithPath: file), options: .atomic)
        } catch {
            throw LetheError(.ioFailure, path: file, "cannot write the bay map: \(error.localizedDescription)")
        }
    }
}
