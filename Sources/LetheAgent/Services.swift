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
