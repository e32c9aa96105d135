import CUdev
import Foundation
import LetheCore
import Synchronization

/// One hotplug change, as `lethe devices --watch` reports it.
public struct DeviceEvent: Codable, Sendable, Equatable {
    /// What happened from the bench's point of view.
    public enum Action: String, Codable, Sendable {
        /// Already there when watching started.
        case present
        /// A drive or phone appeared: plugged in, or a medium inserted (a loop device bound,
        /// a card in a reader).
        case add
        /// It went away: unplugged, or its medium removed.
        case remove
        /// Still there, but its identity changed (resized, say).
        case change
    }

    public var event: Action
    /// The device as last seen (for `remove`, as it was before it left).
    public var device: DeviceRecord
    /// The raw kernel action behind it (`add`, `change`, `remove`, `bind`…); nil for `present`.
    public var kernelAction: String?

    /// Creates an event.
    public init(event: Action, device: DeviceRecord, kernelAction: String? = nil) {
        self.event = event
        self.device = device
        self.kernelAction = kernelAction
    }
}

/// Watches udev/kernel netlink for block devices and USB devices coming and going.
///
/// The socket is read on its own thread (never the cooperative pool). Events are turned into
/// bench terms: a loop device bound with `losetup` is a kernel `change` with a size, which is
/// an `add` here; a device whose size drops to 0 is a `remove`.
public final class DeviceMonitor: Sendable {
    /// Which netlink group to listen on.
    public enum Source: String, Sendable {
        /// Events after systemd-udevd processed them (identity, ID_PATH, /dev/disk/by-id links).
        case udev
        /// Raw kernel uevents: for stations without udevd.
        case kernel
    }

    /// The source chosen.
    public let source: Source
    private let bays: BayMap
    private let stopped = Atomic<Bool>(false)

    /// Creates a monitor. By default the source is `udev` when systemd-udevd runs (its
    /// control socket answers), else `kernel`.
    public init(source: Source? = nil, bays: BayMap = BayMap()) {
        self.source = source ?? (Self.udevdIsRunning() ? .udev : .kernel)
        self.bays = bays
    }

    /// Whether a udev daemon runs: a process named `systemd-udevd` or `udevd`.
    public static func udevdIsRunning() -> Bool {
        for entry in Sysfs.list("/proc") where entry.first?.isNumber == true {
            if let comm = Sysfs.read("/proc/\(entry)/comm"), comm == "systemd-udevd" || comm == "udevd" { return true }
        }
        return false
    }

    /// Stops the stream at the next poll (within 200 ms).
    public func stop() { stopped.store(true, ordering: .relaxed) }

    /// Starts watching. `initial` records are the devices already known (they are reported as
    /// `present` by the caller, and removals of them are reported here). Fails when the netlink
    /// socket cannot be opened.
    public func events(initial: [DeviceRecord]) throws(LetheError) -> AsyncStream<DeviceEvent> {
        let (stream, continuation) = AsyncStream<DeviceEvent>.makeStream()
        let ready = DispatchSemaphore(value: 0)
        let failure = Mutex<LetheError?>(nil)
        let source = source
        let bays = bays
        let thread = Thread { [self] in
            let udev: UdevContext
            do throws(LetheError) {
                udev = try UdevContext()
            } catch {
                failure.withLock { $0 = error }
                ready.signal()
                return
            }
            guard let monitor = udev_monitor_new_from_netlink(udev.handle, source.rawValue) else {
                failure.withLock {
                    $0 = LetheError(.ioFailure, path: "netlink:\(source.rawValue)", errno: ErrorNumber(errno), "cannot open the \(source.rawValue) netlink monitor")
                }
                ready.signal()
                return
            }
            defer { udev_monitor_unref(monitor) }
            udev_monitor_filter_add_match_subsystem_devtype(monitor, "block", "disk")
            udev_monitor_filter_add_match_subsystem_devtype(monitor, "usb", "usb_device")
            udev_monitor_set_receive_buffer_size(monitor, 8 << 20)
            guard udev_monitor_enable_receiving(monitor) == 0 else {
                failure.withLock {
                    $0 = LetheError(.ioFailure, path: "netlink:\(source.rawValue)", errno: ErrorNumber(errno), "cannot bind the \(source.rawValue) netlink monitor")
                }
                ready.signal()
                return
            }
            ready.signal()
            var present = Dictionary(initial.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
            let fd = udev_monitor_get_fd(monitor)
            while !stopped.load(ordering: .relaxed) {
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&poller, 1, 200)
                guard ready > 0 else { continue }
                guard let raw = udev_monitor_receive_device(monitor) else {
                    // The socket overflowed and events were lost: what is there now is the truth.
                    if errno == ENOBUFS, let scanned = try? DeviceDiscovery.all(bays: bays) {
                        for event in Self.reconcile(present: &present, scanned: scanned) { continuation.yield(event) }
                    }
                    continue
                }
                let device = UdevDevice(owning: raw)
                for event in Self.interpret(device, present: &present, bays: bays) {
                    continuation.yield(event)
                }
            }
            continuation.finish()
        }
        thread.name = "lethe-monitor"
        thread.start()
        ready.wait()
        if let error = failure.withLock({ $0 }) { throw error }
        continuation.onTermination = { [weak self] _ in self?.stop() }
        return stream
    }

    /// Turns one kernel/udev event into bench events, updating what is present.
    static func interpret(_ device: UdevDevice, present: inout [String: DeviceRecord], bays: BayMap) -> [DeviceEvent] {
        let action = device.action ?? "change"
        if device.subsystem == "usb" {
            let portPath = device.sysname
            let path = "usb:\(portPath)"
            if action == "remove" {
                guard let gone = present.removeValue(forKey: path) else { return [] }
                return [DeviceEvent(event: .remove, device: gone, kernelAction: action)]
            }
            guard action == "add" || action == "bind", present[path] == nil else { return [] }
            let facts = UsbBus.facts(fromSysfs: device)
            let kind = UsbDeviceClass.classify(vendorId: facts.vendorId, interfaces: facts.interfaces)
            guard kind == .android || kind == .apple else { return [] }
            var record = DeviceRecord(phone: facts)
            record.bay = bays.label(for: record.portPath)
            present[path] = record
            return [DeviceEvent(event: .add, device: record, kernelAction: action)]
        }
        let path = device.devnode ?? "/dev/\(device.sysname)"
        let current = action == "remove" ? nil : DeviceDiscovery.record(for: device, bays: bays)
        return transition(at: path, to: current, present: &present, kernelAction: action)
    }

    /// What one device's new state means, given what was present at its path: an add, a
    /// remove, a change (same drive, new size), or, when the drive is another one (serial,
    /// WWN or backing file differs), a remove of the old and an add of the new: a different
    /// drive at the same node is never a mere change.
    public static func transition(at path: String, to current: DeviceRecord?, present: inout [String: DeviceRecord], kernelAction: String?) -> [DeviceEvent] {
        switch (present[path], current) {
        case (nil, let now?):
            present[path] = now
            return [DeviceEvent(event: .add, device: now, kernelAction: kernelAction)]
        case (let before?, nil):
            present[path] = nil
            return [DeviceEvent(event: .remove, device: before, kernelAction: kernelAction)]
        case (let before?, let now?) where before.serial != now.serial || before.wwn != now.wwn || before.backingFile != now.backingFile:
            present[path] = now
            return [DeviceEvent(event: .remove, device: before, kernelAction: kernelAction), DeviceEvent(event: .add, device: now, kernelAction: kernelAction)]
        case (let before?, let now?) where before.sizeBytes != now.sizeBytes || before.deviceNumber != now.deviceNumber:
            present[path] = now
            return [DeviceEvent(event: .change, device: now, kernelAction: kernelAction)]
        default:
            return []
        }
    }

    /// After events were lost (the netlink socket overflowed: ENOBUFS), what a fresh scan says
    /// changed: every path that appeared, left, or now holds another drive.
    public static func reconcile(present: inout [String: DeviceRecord], scanned: [DeviceRecord]) -> [DeviceEvent] {
        let drives = scanned.filter { $0.kind == .drive }
        let now = Dictionary(drives.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        var events: [DeviceEvent] = []
        for path in present.keys.sorted() where !path.hasPrefix("usb:") && now[path] == nil {
            events += transition(at: path, to: nil, present: &present, kernelAction: "rescan")
        }
        for record in drives.sorted(by: { $0.path < $1.path }) {
            events += transition(at: record.path, to: record, present: &present, kernelAction: "rescan")
        }
        return events
    }
}
