/// Who a block device is, as far as a path cannot say: its device number, serial, WWN, size
/// and, for a loop device, its backing file. A path names a device only for a moment (a
/// different drive can take `/dev/sdc` after an unplug), so Lethe takes this at dock time and
/// compares it after every open and again when a job starts.
public struct DriveIdentity: Codable, Sendable, Equatable, CustomStringConvertible {
    /// `major:minor` of the block device.
    public var deviceNumber: String?
    public var serial: String?
    public var wwn: String?
    public var sizeBytes: UInt64?
    /// A loop device's backing file (two loop devices at one node differ only by this).
    public var backingFile: String?

    /// An identity.
    public init(deviceNumber: String?, serial: String?, wwn: String? = nil, sizeBytes: UInt64?, backingFile: String? = nil) {
        self.deviceNumber = deviceNumber
        self.serial = serial
        self.wwn = wwn
        self.sizeBytes = sizeBytes
        self.backingFile = backingFile
    }

    /// `serial S, 1.0 GiB, 8:32`.
    public var description: String {
        var parts: [String] = []
        if let serial { parts.append("serial \(serial)") }
        if let wwn { parts.append("WWN \(wwn)") }
        if let sizeBytes { parts.append(HumanFormat.bytes(Double(sizeBytes))) }
        if let backingFile { parts.append("backed by \(backingFile)") }
        if let deviceNumber { parts.append("device \(deviceNumber)") }
        return parts.isEmpty ? "no identity" : parts.joined(separator: ", ")
    }

    /// What differs between the identity expected (`self`) and the one seen now, in plain
    /// words, or nil when they are the same device. A value known on one side only is a
    /// difference too: a serial that vanished is not proof of the same drive.
    public func differences(from seen: DriveIdentity) -> String? {
        var changes: [String] = []
        func compare(_ what: String, _ before: String?, _ now: String?) {
            guard before != now else { return }
            changes.append("\(what) \(before ?? "none") → \(now ?? "none")")
        }
        compare("serial", serial, seen.serial)
        compare("WWN", wwn, seen.wwn)
        compare("size", sizeBytes.map { "\($0) bytes" }, seen.sizeBytes.map { "\($0) bytes" })
        compare("backing file", backingFile, seen.backingFile)
        compare("device number", deviceNumber, seen.deviceNumber)
        return changes.isEmpty ? nil : changes.joined(separator: ", ")
    }
}
