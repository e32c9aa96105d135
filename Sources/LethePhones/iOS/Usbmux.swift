import Foundation
import LetheCore

/// One iPhone or iPad as usbmuxd lists it.
public struct UsbmuxDevice: Codable, Sendable, Equatable {
    /// usbmuxd's handle for this attachment (a new one after every re-attach: an erase, a
    /// re-plug).
    public var deviceID: Int
    /// The UDID (usbmuxd's `SerialNumber`).
    public var udid: String
    /// `USB` or `Network`.
    public var connectionType: String
    public var productID: Int?
    public var locationID: Int?

    /// A device.
    public init(deviceID: Int, udid: String, connectionType: String = "USB", productID: Int? = nil, locationID: Int? = nil) {
        self.deviceID = deviceID
        self.udid = udid
        self.connectionType = connectionType
        self.productID = productID
        self.locationID = locationID
    }

    /// Reads an entry as usbmuxd sends it (for tests and the fuzzer).
    public init(fuzzing entry: [String: Any]) throws(LetheError) { try self.init(entry: entry, what: "usbmuxd") }

    /// Reads an `Attached` entry: `DeviceID` at the top or in `Properties` (clients differ).
    init(entry: [String: Any], what: String) throws(LetheError) {
        let properties = entry.dictionary("Properties") ?? [:]
        guard let id = entry.int("DeviceID") ?? properties.int("DeviceID") else {
            throw LetheError(.unexpectedOutput, path: what, "a device entry without a DeviceID")
        }
        guard let udid = properties.string("SerialNumber"), !udid.isEmpty else {
            throw LetheError(.unexpectedOutput, path: what, "device \(id) has no SerialNumber (UDID)")
        }
        self.init(
            deviceID: id, udid: udid, connectionType: properties.string("ConnectionType") ?? "USB", productID: properties.int("ProductID"),
            locationID: properties.int("LocationID"))
    }
}

/// What usbmuxd's `Listen` stream says.
public enum UsbmuxEvent: Sendable, Equatable {
    case attached(UsbmuxDevice)
    case detached(deviceID: Int)
    case paired(deviceID: Int)
}

/// usbmuxd's wire format: a 16-byte little-endian header (total length, version 1, message
/// type 8 = plist, tag) and an XML plist.
public enum UsbmuxWire {
    /// The header plus body of a plist message.
    public static func frame(_ body: [UInt8], tag: UInt32) -> [UInt8] {
        func le(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        return le(UInt32(16 + body.count)) + le(1) + le(8) + le(tag) + body
    }

    /// Reads one message: its tag and its plist.
    public static func read(_ stream: any ByteStream, deadline: ContinuousClock.Instant, what: String) throws(LetheError) -> (tag: UInt32, body: [String: Any]) {
        let header = try stream.read(exactly: 16, deadline: deadline, what: what)
        func le(_ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(header[at + $1]) << (8 * UInt32($1)) } }
        let length = Int(le(0))
        guard length >= 16, length - 16 <= Plist.maximumBytes else {
            throw LetheError(.unexpectedOutput, path: what, "a usbmux message of \(length) bytes")
        }
        guard le(8) == 8 else { throw LetheError(.unexpectedOutput, path: what, "usbmux message type \(le(8)), not 8 (plist)") }
        let body = try stream.read(exactly: length - 16, deadline: deadline, what: what)
        return (le(12), try Plist.decode(body, what: what))
    }
}

/// A client of usbmuxd (the daemon that owns the iPhones' USB side): the device list, the
/// attach/detach stream, tunnels to a device's TCP ports, and the pair records usbmuxd keeps.
/// Blocking, with a deadline on every call: use it from a thread of its own.
public final class UsbmuxClient: Sendable {
    /// Opens a connection to usbmuxd (its UNIX socket, or TCP).
    public typealias Connector = @Sendable (_ timeout: Duration) throws(LetheError) -> any ByteStream

    let connector: Connector
    /// Where usbmuxd is, for messages.
    public let address: String
    /// The time limit of each call.
    public let timeout: Duration

    /// A client.
    public init(address: String, timeout: Duration = .seconds(10), connector: @escaping Connector) {
        self.address = address
        self.timeout = timeout
        self.connector = connector
    }

    /// usbmuxd's result codes, in words.
    static func describe(_ number: Int) -> String {
        switch number {
        case 0: "ok"
        case 1: "bad command"
        case 2: "no such device (or no pair record)"
        case 3: "connection refused by the device"
        case 6: "bad protocol version"
        default: "result \(number)"
        }
    }

    func request(_ type: String, _ fields: [String: Any] = [:]) throws(LetheError) -> [UInt8] {
        var body: [String: Any] = ["MessageType": type, "ClientVersionString": "lethe", "ProgName": "lethe", "kLibUSBMuxVersion": 3]
        body.merge(fields) { $1 }
        return UsbmuxWire.frame(try Plist.encode(body, what: "usbmuxd \(type)"), tag: 1)
    }

    /// Sends one request on a fresh connection and returns the answer and the connection.
    func exchange(_ type: String, _ fields: [String: Any] = [:]) throws(LetheError) -> ([String: Any], any ByteStream) {
        let stream: any ByteStream
        do {
            stream = try connector(timeout)
        } catch where error.code == .unavailable {
            throw LetheError(.unavailable, path: address, errno: error.errno, "usbmuxd is not running (nothing listens on \(address)): apt-get install usbmuxd, or plug an iPhone in (udev starts it)")
        }
        let deadline = ContinuousClock.now + timeout
        do {
            try stream.write(try request(type, fields), deadline: deadline)
            let answer = try UsbmuxWire.read(stream, deadline: deadline, what: "usbmuxd \(type)")
            return (answer.body, stream)
        } catch {
            stream.close()
            throw error
        }
    }

    /// Sends a request whose answer is a `Result`; throws unless it is 0.
    func result(_ type: String, _ fields: [String: Any] = [:], what: String) throws(LetheError) {
        let (answer, stream) = try exchange(type, fields)
        stream.close()
        guard let number = answer.int("Number") else {
            throw LetheError(.unexpectedOutput, path: "usbmuxd \(type)", "an answer without a Result number")
        }
        guard number == 0 else {
            throw LetheError(number == 2 ? .deviceVanished : .unexpectedOutput, path: what, "usbmuxd \(type): \(Self.describe(number))")
        }
    }

    /// Every device usbmuxd has now.
    public func listDevices() throws(LetheError) -> [UsbmuxDevice] {
        let (answer, stream) = try exchange("ListDevices")
        stream.close()
        guard let list = answer["DeviceList"] as? [Any] else {
            throw LetheError(.unexpectedOutput, path: "usbmuxd ListDevices", "no DeviceList in the answer")
        }
        var devices: [UsbmuxDevice] = []
        for case let entry as [String: Any] in list {
            devices.append(try UsbmuxDevice(entry: entry, what: "usbmuxd ListDevices"))
        }
        return devices
    }

    /// The host's system BUID (the same for every pair record this host makes).
    public func readBUID() throws(LetheError) -> String {
        let (answer, stream) = try exchange("ReadBUID")
        stream.close()
        guard let buid = answer.string("BUID"), !buid.isEmpty else {
            throw LetheError(.unexpectedOutput, path: "usbmuxd ReadBUID", "no BUID in the answer")
        }
        return buid
    }

    /// The pair record usbmuxd keeps for `udid`, or nil when there is none.
    public func readPairRecord(udid: String) throws(LetheError) -> PairRecord? {
        let (answer, stream) = try exchange("ReadPairRecord", ["PairRecordID": udid])
        stream.close()
        if let number = answer.int("Number") {
            guard number == 2 || number == 0 else { throw LetheError(.unexpectedOutput, path: "usbmuxd ReadPairRecord", Self.describe(number)) }
            return nil
        }
        guard let data = answer.data("PairRecordData") else {
            throw LetheError(.unexpectedOutput, path: "usbmuxd ReadPairRecord", "no PairRecordData in the answer")
        }
        return try PairRecord(plist: try Plist.decode(Array(data), what: "pair record \(udid)"), what: "pair record \(udid)")
    }

    /// Stores a pair record for `udid` (usbmuxd writes it to /var/lib/lockdown).
    public func savePairRecord(udid: String, deviceID: Int, record: PairRecord) throws(LetheError) {
        let data = Data(try Plist.encode(record.plist, what: "pair record \(udid)"))
        try result("SavePairRecord", ["PairRecordID": udid, "PairRecordData": data, "DeviceID": deviceID], what: "pair record \(udid)")
    }

    /// Deletes the pair record for `udid` (a stale one the phone no longer accepts).
    public func deletePairRecord(udid: String) throws(LetheError) {
        try result("DeletePairRecord", ["PairRecordID": udid], what: "pair record \(udid)")
    }

    /// A tunnel to TCP `port` on the device: the returned stream carries the device's bytes.
    public func connect(deviceID: Int, port: UInt16) throws(LetheError) -> any ByteStream {
        // The port goes in network byte order inside the integer (62078 is sent as 32498).
        let (answer, stream) = try exchange("Connect", ["DeviceID": deviceID, "PortNumber": Int(port.byteSwapped)])
        guard let number = answer.int("Number") else {
            stream.close()
            throw LetheError(.unexpectedOutput, path: "usbmuxd Connect", "an answer without a Result number")
        }
        guard number == 0 else {
            stream.close()
            throw LetheError(number == 2 ? .deviceVanished : .unavailable, path: "device \(deviceID) port \(port)", "usbmuxd Connect: \(Self.describe(number))")
        }
        return stream
    }

    /// Follows attach and detach events (`Listen`) until `shouldStop` says so (checked at least
    /// once a second) or the connection fails. Calls `onEvent` for each, and `onIdle` after
    /// each second without one.
    public func listen(shouldStop: @Sendable () -> Bool, onIdle: () -> Void = {}, onEvent: (UsbmuxEvent) -> Void) throws(LetheError) {
        let (answer, stream) = try exchange("Listen")
        defer { stream.close() }
        guard answer.int("Number") == 0 else {
            throw LetheError(.unexpectedOutput, path: "usbmuxd Listen", "refused: \(answer.int("Number").map(Self.describe) ?? "no result")")
        }
        while !shouldStop() {
            // Wait up to a second for the first byte (to look at shouldStop again), then read
            // the whole message with the normal deadline: a message is never cut in two.
            let first: [UInt8]
            do {
                first = try stream.read(upTo: 1, deadline: .now + .seconds(1))
            } catch where error.code == .timedOut {
                onIdle()
                continue
            }
            guard !first.isEmpty else { throw LetheError(.unavailable, path: address, "usbmuxd closed the Listen connection") }
            let message = try UsbmuxWire.read(PrefixedStream(first, stream), deadline: .now + timeout, what: "usbmuxd Listen").body
            switch message.string("MessageType") {
            case "Attached": onEvent(.attached(try UsbmuxDevice(entry: message, what: "usbmuxd Listen")))
            case "Detached": if let id = message.int("DeviceID") { onEvent(.detached(deviceID: id)) }
            case "Paired": if let id = message.int("DeviceID") { onEvent(.paired(deviceID: id)) }
            default: continue
            }
        }
    }
}

/// A stream with some bytes already read from it put back in front.
final class PrefixedStream: ByteStream, @unchecked Sendable {
    private var prefix: [UInt8]
    private let stream: any ByteStream

    init(_ prefix: [UInt8], _ stream: any ByteStream) {
        self.prefix = prefix
        self.stream = stream
    }

    func write(_ bytes: [UInt8], deadline: ContinuousClock.Instant) throws(LetheError) { try stream.write(bytes, deadline: deadline) }

    func read(upTo count: Int, deadline: ContinuousClock.Instant) throws(LetheError) -> [UInt8] {
        guard prefix.isEmpty else {
            let chunk = Array(prefix.prefix(count))
            prefix.removeFirst(chunk.count)
            return chunk
        }
        return try stream.read(upTo: count, deadline: deadline)
    }

    func close() { stream.close() }
}
