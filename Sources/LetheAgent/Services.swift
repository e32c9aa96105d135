import Foundation
import LetheCore
import LetheLinux
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
            case .change: break
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
