/// What the USB descriptors say about one interface.
public struct UsbInterface: Codable, Sendable, Equatable {
    public var interfaceClass: UInt8
    public var interfaceSubclass: UInt8
    public var interfaceProtocol: UInt8

    /// Creates an interface triple.
    public init(_ interfaceClass: UInt8, _ interfaceSubclass: UInt8, _ interfaceProtocol: UInt8) {
        self.interfaceClass = interfaceClass
        self.interfaceSubclass = interfaceSubclass
        self.interfaceProtocol = interfaceProtocol
    }

    /// The ADB interface: vendor-specific class 0xff, subclass 0x42, protocol 0x01.
    public var isAdb: Bool { interfaceClass == 0xff && interfaceSubclass == 0x42 && interfaceProtocol == 0x01 }
    /// USB mass storage (class 0x08).
    public var isMassStorage: Bool { interfaceClass == 0x08 }
}

/// Raw facts about one USB device, from libusb's descriptors (and sysfs for strings when the
/// device node cannot be opened).
public struct UsbFacts: Sendable, Equatable {
    public var busNumber: UInt8
    public var deviceAddress: UInt8
    /// Bus and port chain, `1-2.3`, stable for a given socket on the bench.
    public var portPath: String
    public var vendorId: UInt16
    public var productId: UInt16
    public var manufacturer: String?
    public var product: String?
    public var serial: String?
    public var interfaces: [UsbInterface]
    /// Why strings or descriptors could not be read (permission, unplugged), if they could not.
    public var problems: [String]
    /// udev's ID_PATH for the device (`pci-0000:00:14.0-usb-0:2`), when udev has a database.
    public var idPath: String?

    /// Creates facts.
    public init(
        busNumber: UInt8, deviceAddress: UInt8, portPath: String, vendorId: UInt16, productId: UInt16,
        manufacturer: String? = nil, product: String? = nil, serial: String? = nil,
        interfaces: [UsbInterface] = [], problems: [String] = [], idPath: String? = nil
    ) {
        self.idPath = idPath
        self.busNumber = busNumber
        self.deviceAddress = deviceAddress
        self.portPath = portPath
        self.vendorId = vendorId
        self.productId = productId
        self.manufacturer = manufacturer
        self.product = product
        self.serial = serial
        self.interfaces = interfaces
        self.problems = problems
    }
}

/// What kind of USB device sits on a port.
public enum UsbDeviceClass: String, Codable, Sendable {
    /// Has an ADB interface (ff/42/01).
    case android
    /// Apple vendor id 0x05ac (iPhone, iPad).
    case apple
    /// A USB mass storage interface (a stick or a SATA dock).
    case massStorage
    case other

    /// Apple's USB vendor id.
    public static let appleVendorId: UInt16 = 0x05ac

    /// Classifies by vendor id and interfaces. An ADB interface wins: it means the phone can
    /// be driven now. Apple comes next, then mass storage.
    public static func classify(vendorId: UInt16, interfaces: [UsbInterface]) -> UsbDeviceClass {
        if interfaces.contains(where: \.isAdb) { return .android }
        if vendorId == appleVendorId { return .apple }
        if interfaces.contains(where: \.isMassStorage) { return .massStorage }
        return .other
    }
}

/// A USB device as Lethe reports it.
public struct UsbIdentity: Codable, Sendable, Equatable {
    /// `0x18d1`.
    public var vendorId: String
    /// `0x4ee7`.
    public var productId: String
    public var manufacturer: String?
    public var product: String?
    public var serial: String?
    public var deviceClass: UsbDeviceClass
    /// `1-2.3`.
    public var portPath: String
    public var bus: Int
    public var address: Int
    /// What could not be read.
    public var notes: [String]

    /// Builds the identity from descriptors.
    public init(facts: UsbFacts) {
        vendorId = "0x" + Self.hex4(facts.vendorId)
        productId = "0x" + Self.hex4(facts.productId)
        manufacturer = facts.manufacturer.cleaned
        product = facts.product.cleaned
        serial = facts.serial.cleaned
        deviceClass = UsbDeviceClass.classify(vendorId: facts.vendorId, interfaces: facts.interfaces)
        portPath = facts.portPath
        bus = Int(facts.busNumber)
        address = Int(facts.deviceAddress)
        notes = facts.problems
    }

    static func hex4(_ value: UInt16) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

extension UsbFacts {
    /// What the descriptors say this device is.
    public var deviceClass: UsbDeviceClass { UsbDeviceClass.classify(vendorId: vendorId, interfaces: interfaces) }
}
