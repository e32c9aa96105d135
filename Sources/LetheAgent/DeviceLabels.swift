import LetheCore
import Synchronization

/// The bay and serial of each device path the bench has seen, for the journal's `BAY` and
/// `SERIAL` fields. Its lock is a leaf: nothing is called while it is held, so a log line
/// written under any other lock may read it.
public final class DeviceLabels: Sendable {
    /// What a log line about one device can carry besides the path.
    public struct Label: Sendable, Equatable {
        /// The bay's label from the bay map, if the socket is mapped.
        public var bay: String?
        /// The serial the device reported.
        public var serial: String?
    }

    private let labels = Mutex<[String: Label]>([:])

    /// An empty map.
    public init() {}

    /// Records what `device` is; a device docked later at the same path replaces it.
    public func note(_ device: DeviceRecord) {
        labels.withLock { $0[device.path] = Label(bay: device.bay, serial: device.serial) }
    }

    /// The label of a device path, if the bench has seen it.
    public subscript(path: String) -> Label? { labels.withLock { $0[path] } }
}
