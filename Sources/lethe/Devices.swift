import ArgumentParser
import Foundation
import LetheAgent
import LetheCore
import LetheLinux
import LethePhones

/// Where the station's bay map lives.
struct BayOptions: ParsableArguments {
    @Option(name: .customLong("bays"), help: ArgumentHelp("The station's bay map (JSON: {\"bays\": {PORT_PATH: LABEL}}).", valueName: "file"))
    var file = "var/bays.json"

    /// The map, or an empty one when the file does not exist. A file that exists but does not
    /// parse is an error that names it.
    func load() throws(LetheError) -> BayMap { try BayMapFile.load(file) }

    static func describe(_ error: any Error) -> String { BayMapFile.describe(error) }
}

struct Devices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List docked drives and phones: bay, identity, size, and whether Lethe may erase them.",
        discussion: """
            Drives come from libudev (sysfs plus udev's database when systemd-udevd runs); phones from libusb, listed as soon as they are on USB, before adb or usbmux is set up, and from the adb server when one runs (path adb:SERIAL; `lethe phones` starts it), and iPhones from usbmuxd when it runs (path ios:UDID). PROTECTED devices (the system disk, anything mounted or held) are refused by `lethe wipe`, with the reason shown here.

            --watch keeps running and reports each plug (`add`) and unplug (`remove`). Binding a loop device or inserting a card counts as `add`. It listens to udev's events when systemd-udevd runs, else to the kernel's, and says which on stderr.

            Examples:
              lethe devices
              lethe devices --json | jq '.[] | select(.protected == false)'
              lethe devices --watch --json
              lethe devices --usb        every USB device with its class (android, apple, massStorage, other)
            """)

    @Flag(help: "Print JSON: an array of devices, or with --watch one event object per line.")
    var json = false

    @Flag(help: "Keep running and report devices as they come and go.")
    var watch = false

    @Flag(help: "List every USB device with its descriptors and class instead.")
    var usb = false

    @Option(help: ArgumentHelp("With --watch: the netlink source, udev or kernel (default: udev when systemd-udevd runs).", valueName: "source"))
    var source: String?

    @OptionGroup var bays: BayOptions
    @OptionGroup var adb: ADBOptions
    @OptionGroup var usbmux: UsbmuxOptions

    func run() async throws {
        let map: BayMap
        var records: [DeviceRecord]
        do throws(LetheError) {
            map = try bays.load()
            records = try DeviceDiscovery.all(bays: map)
        } catch {
            throw Output.fail(error, json: json)
        }
        // Phones over adb, when an adb server runs (listing never starts one).
        if !watch, !usb {
            let port = adb.adbPort ?? LocalADBServer.port()
            let client = ADBClient(server: "127.0.0.1:\(port)", timeout: .seconds(2), connector: LocalADBServer.connector(port: port))
            if let phones = try? client.devices() { records += phones.map(PhoneWatchService.record) }
            // iPhones, when usbmuxd runs: paired ones are ready, others say what to do (listing
            // never shows the trust prompt: it does not pair).
            if let host = try? usbmux.host(timeout: .seconds(3)), let listed = try? host.usbmux.listDevices() {
                for device in listed {
                    let values = (try? host.publicValues(device)) ?? [:]
                    let state = (try? host.pairingState(device).get()) ?? .waitingForTrust
                    records.append(IPhoneWatchService.record(device, values: values, pairing: state))
                }
            }
        }
        if usb {
            let devices = UsbBus.devices().map(UsbIdentity.init(facts:))
            if json {
                Output.json(devices)
            } else {
                for device in devices {
                    print("\(device.portPath.padding(toLength: 10, withPad: " ", startingAt: 0)) \(device.vendorId):\(device.productId) \(device.deviceClass.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0)) \(device.manufacturer ?? "-") / \(device.product ?? "-") / serial \(device.serial ?? "-")")
                    for note in device.notes { print("           note: \(note)") }
                }
            }
            return
        }
        guard watch else {
            if json {
                Output.json(records)
            } else {
                Self.printTable(records)
            }
            return
        }
        var chosen: DeviceMonitor.Source?
        if let source {
            guard let parsed = DeviceMonitor.Source(rawValue: source) else {
                throw Output.fail(LetheError(.invalidArgument, path: "--source", "unknown source \"\(source)\"; use udev or kernel"), json: json)
            }
            chosen = parsed
        }
        let monitor = DeviceMonitor(source: chosen, bays: map)
        let why = chosen != nil ? "as asked" : monitor.source == .udev ? "systemd-udevd is running" : "systemd-udevd is not running"
        let stream: AsyncStream<DeviceEvent>
        do throws(LetheError) {
            stream = try monitor.events(initial: records)
        } catch {
            throw Output.fail(error, json: json)
        }
        // Printed once the socket is bound: from here on no event is missed.
        Output.err("lethe: watching \(monitor.source.rawValue) events (\(why)); Ctrl-C to stop")
        for record in records { emit(DeviceEvent(event: .present, device: record)) }
        for await event in stream { emit(event) }
    }

    func emit(_ event: DeviceEvent) {
        if json {
            Output.json(event)
            return
        }
        let sign = switch event.event {
        case .present: "="
        case .add: "+"
        case .remove: "-"
        case .change: "~"
        }
        // Unbuffered: a watcher piped into another program sees each event at once.
        FileHandle.standardOutput.write(Data("\(sign) \(Self.line(event.device))\n".utf8))
    }

    static func line(_ d: DeviceRecord) -> String {
        let size = d.sizeBytes.map { HumanFormat.bytes(Double($0)) } ?? "?"
        var text = "\(d.path)  \(d.transport.rawValue)  \(size)  \(d.model ?? "-")  serial \(d.serial ?? "-")  bay \(d.bay ?? "-")"
        if d.protected { text += "  PROTECTED: \(d.protectionReason ?? "")" }
        if let sed = d.selfEncryption { text += "  \(sed)" }
        return text
    }

    static func printTable(_ records: [DeviceRecord]) {
        guard !records.isEmpty else {
            print("No drives or phones found.")
            return
        }
        let rows = records.map { d in
            [
                d.path, d.kind.rawValue, d.transport.rawValue, d.sizeBytes.map { HumanFormat.bytes(Double($0)) } ?? "?", d.model ?? "-",
                d.serial ?? "-", d.bay ?? "-",
                d.kind == .phone ? (d.protected ? "WAITING: \(d.protectionReason ?? "")" : "ready") : d.protected ? "PROTECTED: \(d.protectionReason ?? "")"
                    : d.encryptionLocked == true ? "LOCKED (\(d.selfEncryption ?? "TCG")): revert with its PSID, --method tcg-psid-revert"
                    : d.selfEncryption.map { "erasable (\($0))" } ?? "erasable",
            ]
        }
        let header = ["PATH", "KIND", "TRANSPORT", "SIZE", "MODEL", "SERIAL", "BAY", "STATUS"]
        let widths = (0..<header.count).map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        for row in [header] + rows {
            print(zip(row, widths).enumerated().map { index, cell in
                index == row.count - 1 ? cell.0 : cell.0.padding(toLength: cell.1, withPad: " ", startingAt: 0)
            }.joined(separator: "  "))
        }
        for note in records.flatMap(\.notes) { Output.err("note: \(note)") }
        if let port = records.first(where: { $0.bay == nil && $0.portPath != nil && $0.transport != .loop })?.portPath {
            Output.err("hint: no bay label for port \(port); `lethe bays learn` writes the bay map")
        }
    }
}
