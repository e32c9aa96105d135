import Foundation
import LetheCore
import Synchronization

/// usbmuxd, simulated on 127.0.0.1 (reach it with `USBMUXD_SOCKET_ADDRESS=127.0.0.1:PORT`):
/// the plist protocol (ListDevices, Listen with Attached and Detached, Connect to lockdownd or a
/// service port, ReadBUID, Read/Save/DeletePairRecord) over the iPhones plugged into it.
/// libusbmuxd and libimobiledevice (Debian's `idevice_id`, `idevicepair`, `ideviceinfo`,
/// `idevicediagnostics`) use it as they use the real daemon.
public final class SimulatedUsbmuxd: @unchecked Sendable {
    struct Attached {
        var phone: SimulatedIPhone
        var deviceID: Int
        /// Service ports opened by StartService: port → service name.
        var services: [UInt16: String] = [:]
        /// Connections to the phone (dropped when it detaches).
        var tunnels: [FDStream] = []
    }

    struct State {
        var attached: [Attached] = []
        var nextDeviceID = 1
        var nextServicePort: UInt16 = 49_152
        var pairRecords: [String: Data] = [:]
        var listeners: [FDStream] = []
        var messages: [String] = []
    }

    private let state = Mutex(State())
    private var listener: LoopbackListener?
    /// The host's BUID.
    public let buid = UUID().uuidString.uppercased()
    /// The TCP port it listens on.
    public private(set) var port = 0
    /// `USBMUXD_SOCKET_ADDRESS` for it.
    public var address: String { "127.0.0.1:\(port)" }

    /// Starts listening.
    public init() throws {
        let listener = try LoopbackListener(name: "simulated-usbmuxd") { [weak self] stream in self?.serve(stream) }
        self.listener = listener
        port = listener.port
    }

    deinit { stop() }

    /// Stops listening and drops every connection.
    public func stop() {
        listener?.stop()
        let open = state.withLock { s in s.listeners + s.attached.flatMap(\.tunnels) }
        for stream in open { stream.close() }
    }

    /// Every usbmux request it received (`ListDevices`, `Connect 62078`…).
    public var messages: [String] { state.withLock { $0.messages } }
    /// The pair records it keeps, by UDID.
    public var pairRecords: [String: Data] { state.withLock { $0.pairRecords } }

    /// Plugs a phone in: it gets a new DeviceID, and every Listen connection hears `Attached`.
    @discardableResult
    public func plug(_ phone: SimulatedIPhone) -> Int {
        phone.usbmuxd = self
        let (id, listeners) = state.withLock { s in
            let id = s.nextDeviceID
            s.nextDeviceID += 1
            s.attached.append(Attached(phone: phone, deviceID: id))
            return (id, s.listeners)
        }
        broadcast(Self.attachedEntry(phone, id), to: listeners)
        return id
    }

    /// Pulls a phone out: its connections drop, and Listen connections hear `Detached`.
    public func unplug(_ phone: SimulatedIPhone) {
        let (gone, listeners) = state.withLock { s -> (Attached?, [FDStream]) in
            guard let index = s.attached.firstIndex(where: { $0.phone === phone }) else { return (nil, s.listeners) }
            return (s.attached.remove(at: index), s.listeners)
        }
        guard let gone else { return }
        for tunnel in gone.tunnels { tunnel.close() }
        broadcast(["MessageType": "Detached", "DeviceID": gone.deviceID], to: listeners)
    }

    /// The current DeviceID of a phone (nil when unplugged).
    public func deviceID(of phone: SimulatedIPhone) -> Int? {
        state.withLock { s in s.attached.first { $0.phone === phone }?.deviceID }
    }

    static func attachedEntry(_ phone: SimulatedIPhone, _ id: Int) -> [String: Any] {
        [
            "MessageType": "Attached", "DeviceID": id,
            "Properties": [
                "ConnectionType": "USB", "DeviceID": id, "LocationID": 0x1410_0000 + id, "ProductID": 0x12a8, "SerialNumber": phone.udid,
                "ConnectionSpeed": 480_000_000, "USBSerialNumber": phone.udid,
            ] as [String: Any],
        ]
    }

    private func broadcast(_ message: [String: Any], to listeners: [FDStream]) {
        for stream in listeners { _ = try? Self.send(message, tag: 0, on: stream) }
    }

    /// An erase: the phone drops off; as the script says, it comes back erased as a new device.
    func erase(_ phone: SimulatedIPhone, behavior: SimulatedIPhone.EraseBehavior) {
        let thread = Thread { [self] in
            Thread.sleep(forTimeInterval: 0.1)
            unplug(phone)
            switch behavior {
            case .reattach(let seconds):
                phone.eraseNow()
                Thread.sleep(forTimeInterval: seconds)
                plug(phone)
            case .restartOnly(let seconds):
                Thread.sleep(forTimeInterval: seconds)
                plug(phone)
            case .vanish:
                phone.eraseNow()
            case .refuse:
                break
            }
        }
        thread.name = "simulated-erase"
        thread.start()
    }

    /// Opens a service port on the phone for StartService.
    func openService(_ name: String, on phone: SimulatedIPhone) -> UInt16? {
        guard ["com.apple.mobile.diagnostics_relay", "com.apple.mobile.MCInstall", "com.apple.mobilebackup2"].contains(name) else { return nil }
        return state.withLock { s -> UInt16? in
            guard let index = s.attached.firstIndex(where: { $0.phone === phone }) else { return nil }
            let port = s.nextServicePort
            s.nextServicePort += 1
            s.attached[index].services[port] = name
            return port
        }
    }

    // MARK: - The usbmux protocol

    static func send(_ body: [String: Any], tag: UInt32, on stream: any ByteStream) throws(LetheError) {
        let bytes = Array((try? PropertyListSerialization.data(fromPropertyList: body, format: .xml, options: 0)) ?? Data())
        func le(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        try stream.write(le(UInt32(16 + bytes.count)) + le(1) + le(8) + le(tag) + bytes, deadline: .now + .seconds(10))
    }

    private func result(_ number: Int, tag: UInt32, on stream: any ByteStream) {
        _ = try? Self.send(["MessageType": "Result", "Number": number], tag: tag, on: stream)
    }

    private func serve(_ stream: FDStream) {
        while true {
            guard let header = try? stream.read(exactly: 16, deadline: .now + .seconds(60), what: "simulated usbmuxd") else { break }
            func le(_ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(header[at + $1]) << (8 * UInt32($1)) } }
            let length = Int(le(0)), tag = le(12)
            guard length >= 16, length < 1 << 20,
                let body = try? stream.read(exactly: length - 16, deadline: .now + .seconds(10), what: "simulated usbmuxd"),
                let message = (try? PropertyListSerialization.propertyList(from: Data(body), options: [], format: nil)) as? [String: Any],
                let type = message["MessageType"] as? String
            else {
                result(1, tag: tag, on: stream)
                break
            }
            state.withLock { $0.messages.append(type) }
            switch type {
            case "ListDevices":
                let list = state.withLock { s in s.attached.map { Self.attachedEntry($0.phone, $0.deviceID) } }
                _ = try? Self.send(["DeviceList": list], tag: tag, on: stream)
            case "Listen":
                result(0, tag: tag, on: stream)
                let present = state.withLock { s in
                    s.listeners.append(stream)
                    return s.attached.map { Self.attachedEntry($0.phone, $0.deviceID) }
                }
                for entry in present { _ = try? Self.send(entry, tag: 0, on: stream) }
                // The connection now only carries events; it ends when the client closes it.
                while (try? stream.read(upTo: 64, deadline: .now + .seconds(3600)))?.isEmpty == false {}
                state.withLock { s in s.listeners.removeAll { $0 === stream } }
                stream.close()
                return
            case "ReadBUID":
                _ = try? Self.send(["BUID": buid], tag: tag, on: stream)
            case "ReadPairRecord":
                let id = message["PairRecordID"] as? String ?? ""
                if let data = state.withLock({ $0.pairRecords[id] }) {
                    _ = try? Self.send(["PairRecordData": data], tag: tag, on: stream)
                } else {
                    result(2, tag: tag, on: stream)
                }
            case "SavePairRecord":
                guard let id = message["PairRecordID"] as? String, let data = message["PairRecordData"] as? Data else {
                    result(1, tag: tag, on: stream)
                    continue
                }
                state.withLock { $0.pairRecords[id] = data }
                result(0, tag: tag, on: stream)
            case "DeletePairRecord":
                let id = message["PairRecordID"] as? String ?? ""
                state.withLock { $0.pairRecords[id] = nil }
                result(0, tag: tag, on: stream)
            case "Connect":
                connect(message, tag: tag, stream: stream)
                return
            default:
                result(1, tag: tag, on: stream)
            }
        }
        stream.close()
    }

    /// `Connect`: a tunnel to lockdownd (62078) or to a service port the phone opened.
    private func connect(_ message: [String: Any], tag: UInt32, stream: FDStream) {
        let id = message["DeviceID"] as? Int ?? -1
        let port = UInt16(truncatingIfNeeded: message["PortNumber"] as? Int ?? 0).byteSwapped
        state.withLock { $0.messages[$0.messages.count - 1] = "Connect \(port)" }
        let found: (SimulatedIPhone, String?)? = state.withLock { s in
            guard let index = s.attached.firstIndex(where: { $0.deviceID == id }) else { return nil }
            s.attached[index].tunnels.append(stream)
            return (s.attached[index].phone, s.attached[index].services[port])
        }
        guard let (phone, service) = found else {
            result(2, tag: tag, on: stream)
            stream.close()
            return
        }
        guard port == 62078 || service != nil else {
            result(3, tag: tag, on: stream)
            stream.close()
            return
        }
        result(0, tag: tag, on: stream)
        if let service {
            phone.serveService(service, on: stream)
        } else {
            phone.serveLockdown(stream)
        }
        stream.close()
    }
}
