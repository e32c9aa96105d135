import Foundation
import LetheCore
import LetheLinux
import LethePhones
import Synchronization
import ServiceLifecycle

/// Feeds the bench from coldplug, then from hotplug events, until shutdown.
public struct DeviceWatchService: Service {
    let bench: Bench
    let bays: BayMap

    /// Creates the service.
    public init(bench: Bench, bays: BayMap) {
        self.bench = bench
        self.bays = bays
    }

    public func run() async throws {
        let initial = try DeviceDiscovery.all(bays: bays)
        let monitor = DeviceMonitor(bays: bays)
        let stream = try monitor.events(initial: initial)
        bench.log("watching \(monitor.source.rawValue) events (\(monitor.source == .udev ? "systemd-udevd is running" : "no systemd-udevd"))")
        for device in initial { bench.deviceAppeared(device) }
        for await event in stream.cancelOnGracefulShutdown() {
            switch event.event {
            case .add, .present: bench.deviceAppeared(event.device)
            case .remove: bench.deviceRemoved(event.device)
            case .change: bench.deviceChanged(event.device)
            }
        }
        monitor.stop()
    }
}

/// Sends a heartbeat on every open event stream every `interval` seconds, until shutdown; at
/// shutdown it ends the streams, so their responses complete and the server can stop.
public struct EventHeartbeatService: Service {
    let hub: EventHub
    let interval: Duration

    /// Creates the service.
    public init(hub: EventHub, interval: Duration = .seconds(15)) {
        self.hub = hub
        self.interval = interval
    }

    public func run() async throws {
        defer { hub.finishAll() }
        while !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            hub.publish(.heartbeat)
        }
    }
}

/// systemd's side of the daemon (`Type=notify`): `WATCHDOG=1` every half `WatchdogSec=`
/// while the bench answers (its job list is read each time, so a bench wedged on its lock stops
/// the pings and systemd restarts the daemon), and `STOPPING=1` as soon as a graceful shutdown
/// begins. `READY=1` is sent by the daemon once the HTTP server listens. Without systemd it
/// does nothing.
public struct SystemdWatchdogService: Service {
    let notifier: SystemdNotifier
    let bench: Bench

    /// Creates the service.
    public init(notifier: SystemdNotifier, bench: Bench) {
        self.notifier = notifier
        self.bench = bench
    }

    public func run() async throws {
        let notifier = notifier
        // A service that returns early ends the whole group: without systemd, wait for the end.
        guard notifier.isActive else {
            try? await gracefulShutdown()
            return
        }
        try? await withGracefulShutdownHandler {
            guard let interval = notifier.watchdogInterval else {
                try await gracefulShutdown()
                return
            }
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                _ = bench.jobs.count
                notifier.notify("WATCHDOG=1")
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            }
        } onGracefulShutdown: {
            notifier.notify("STOPPING=1\nSTATUS=stopping: running erases end at a block boundary, recorded as aborted")
        }
    }
}

/// Follows the adb server's device list (`host:track-devices`) on a thread of its own and
/// docks each phone: ready phones get a job as their profile says; a phone waiting for
/// USB-debugging approval is listed, protected, with what to do. When the server is missing
/// or goes away it says why and tries again every few seconds; the bench keeps working.
public struct PhoneWatchService: Service {
    let bench: Bench
    let client: ADBClient
    let bays: BayMap

    /// Creates the service.
    public init(bench: Bench, client: ADBClient, bays: BayMap) {
        self.bench = bench
        self.client = client
        self.bays = bays
    }

    /// The bench's record of a phone as the adb server lists it.
    public static func record(_ phone: ADBDevice) -> DeviceRecord {
        let ready = phone.state == "device"
        return DeviceRecord(
            path: "adb:\(phone.serial)", kind: .phone, transport: .adb, model: phone.model?.replacingOccurrences(of: "_", with: " "),
            serial: phone.serial, protected: !ready, protectionReason: ready ? nil : phone.stateDescription,
            notes: ready ? [] : [phone.stateDescription])
    }

    public func run() async throws {
        bench.log("watching phones through the adb server at \(client.server)")
        await runWatcher(named: "lethe-phones") { [bench, client] stop in
            var known: [String: DeviceRecord] = [:]
            var retry = WatchRetry()
            var versionChecked = false
            while !stop.isSet {
                do throws(LetheError) {
                    if !versionChecked {
                        // Shell v2 and the long device list came with adb 1.0.36 (protocol 36).
                        let version = try client.version()
                        versionChecked = true
                        if version < 36 {
                            bench.log("phones: the adb server at \(client.server) speaks protocol \(version), older than 36: exit codes and models may be missing; update adb")
                        }
                    }
                    try client.trackDevices(shouldStop: { stop.isSet }) { phones in
                        retry.succeeded()
                        // The tracking list has serials and states only: the long list adds models.
                        let detailed = (try? client.devices()).map { long in
                            phones.map { phone in long.first { $0.serial == phone.serial && $0.state == phone.state } ?? phone }
                        } ?? phones
                        var seen: [String: DeviceRecord] = [:]
                        for phone in detailed { seen["adb:\(phone.serial)"] = Self.record(phone) }
                        for (path, record) in known where seen[path] == nil { bench.deviceRemoved(record) }
                        for (path, record) in seen where known[path] != record {
                            if known[path] != nil { bench.deviceRemoved(known[path]!) }
                            // Fill files an unplug left behind go before anything else happens.
                            if !record.protected, let serial = record.serial { bench.removeFillLeftovers(client, serial: serial) }
                            bench.deviceAppeared(record)
                        }
                        known = seen
                    }
                } catch {
                    for record in known.values { bench.deviceRemoved(record) }
                    known = [:]
                    retry.failed("phones: \(error.message)\(error.path.map { " (\($0))" } ?? "")", bench: bench)
                }
                retry.pause(until: stop)
            }
        }
    }
}

/// Runs a watcher's blocking loop on a thread of its own (its protocol I/O never runs on the
/// cooperative pool) until the service is shut down, when `stop` is set and the loop returns.
func runWatcher(named name: String, _ body: @escaping @Sendable (StopFlag) -> Void) async {
    let stop = StopFlag()
    let finished = AsyncStream<Void>.makeStream()
    let thread = Thread {
        body(stop)
        finished.continuation.finish()
    }
    thread.name = name
    thread.start()
    await withGracefulShutdownHandler {
        for await _ in finished.stream {}
    } onGracefulShutdown: {
        stop.set()
    }
}

/// A watcher's retries after its daemon (the adb server, usbmuxd) failed it: the problem is
/// logged once, not every 5 s while it lasts, and again after the watcher got going.
struct WatchRetry {
    private var lastProblem: String?

    /// The watcher is going again: the next problem is news.
    mutating func succeeded() { lastProblem = nil }

    /// Logs `problem` unless it is the one already logged.
    mutating func failed(_ problem: String, bench: Bench) {
        let line = "\(problem); trying again in 5 s"
        if line != lastProblem { bench.log(line) }
        lastProblem = line
    }

    /// Waits 5 s before the next try, waking at once for `stop`.
    func pause(until stop: StopFlag) {
        for _ in 0..<50 where !stop.isSet { usleep(100_000) }
    }
}

/// A flag one thread sets and others read.
final class StopFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}
