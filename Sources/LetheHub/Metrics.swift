import Foundation
import LetheSync
import Prometheus

/// The hub's Prometheus metrics (`GET /metrics`): this instance's counts. Fleet-wide numbers
/// (records, outbox depth) are read from the database at each scrape, so every instance
/// reports the same ones.
public final class HubMetrics: Sendable {
    /// The registry `GET /metrics` emits.
    public let registry = PrometheusCollectorRegistry()
    let lookupSeconds: DurationHistogram

    public init() {
        lookupSeconds = registry.makeDurationHistogram(
            descriptor: Self.name("lookup_duration", "seconds", "Time to answer a verification lookup"),
            buckets: [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(20), .milliseconds(50), .milliseconds(100), .seconds(1)])
        for result in ["stored", "duplicate", "refused", "unavailable"] { _ = ingestCounter(result) }
        for result in ["delivered", "retry", "dead"] { _ = forwardCounter(result) }
    }

    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "lethe_hub", metricName: metric, unitName: unit, helpText: help)
    }

    func ingestCounter(_ result: String) -> Counter {
        registry.makeCounter(descriptor: Self.name("ingest", "total", "Records posted by stations, by result"), labels: [("result", result)])
    }

    func forwardCounter(_ result: String) -> Counter {
        registry.makeCounter(descriptor: Self.name("forward", "total", "Posts to the shop's catalog, by result"), labels: [("result", result)])
    }

    /// Counts one ingest.
    func ingested(_ result: String) { ingestCounter(result).increment() }

    /// Counts one forward.
    func forwarded(_ result: Outbox.Result) {
        switch result {
        case .delivered: forwardCounter("delivered").increment()
        case .retry: forwardCounter("retry").increment()
        case .dead: forwardCounter("dead").increment()
        }
    }

    /// Sets the fleet gauges and returns the exposition text.
    func exposition(records: Int, outbox: [String: Int], stations: Int) -> String {
        registry.makeGauge(descriptor: Self.name("records", "", "Records stored at the hub (all instances)")).set(to: Double(records))
        registry.makeGauge(descriptor: Self.name("stations", "", "Enrolled stations, revoked ones included")).set(to: Double(stations))
        for state in ["pending", "delivered", "dead"] {
            registry.makeGauge(descriptor: Self.name("outbox", "", "Outbox rows by state (all instances)"), labels: [("state", state)])
                .set(to: Double(outbox[state] ?? 0))
        }
        return registry.emitToString()
    }
}
