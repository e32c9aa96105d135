import Foundation
import LetheCore
import Prometheus

/// The daemon's Prometheus metrics (`GET /metrics`, text exposition format). Counts only: no
/// serial numbers, paths or other device identities.
public final class BenchMetrics: Sendable {
    /// The registry `GET /metrics` emits.
    public let registry = PrometheusCollectorRegistry()
    let bytesWritten: Counter
    let bytesVerified: Counter
    let resumes: Counter
    let jobSeconds: ValueHistogram
    let devicesPresent: Gauge
    let throughput: Gauge
    let eventStreams: Gauge

    /// Every state a job can be in, so each has a series (0 when no job is in it).
    static let states = ["waiting", "running", "erased", "erasedWithExceptions", "notErased", "aborted", "interrupted", "refused"]

    /// Creates the metrics.
    public init() {
        bytesWritten = registry.makeCounter(descriptor: Self.name("bytes_written", "total", "Bytes written by erase passes"))
        bytesVerified = registry.makeCounter(descriptor: Self.name("bytes_verified", "total", "Bytes read back and compared by verification"))
        resumes = registry.makeCounter(descriptor: Self.name("jobs_resumed", "total", "Interrupted jobs resumed from a checkpoint"))
        jobSeconds = registry.makeValueHistogram(
            descriptor: Self.name("job_duration", "seconds", "Wall-clock seconds of finished erase jobs (this run of each)"),
            buckets: [60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400])
        devicesPresent = registry.makeGauge(descriptor: Self.name("devices_present", "", "Devices docked now (drives and phones)"))
        throughput = registry.makeGauge(descriptor: Self.name("erase", "bytes_per_second", "Sum of the running jobs' current throughput"))
        eventStreams = registry.makeGauge(descriptor: Self.name("event_streams", "", "Open /api/v1/events streams"))
        for state in Self.states { _ = jobGauge(state) }
        for status in [WipeStatus.erased, .erasedWithExceptions, .notErased, .aborted] { _ = finishedCounter(status.rawValue, certified: false) }
    }

    /// `lethe_METRIC_UNIT`.
    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "lethe", metricName: metric, unitName: unit, helpText: help)
    }

    func jobGauge(_ state: String) -> Gauge {
        registry.makeGauge(descriptor: Self.name("jobs", "", "Jobs the bench shows, by state"), labels: [("state", state)])
    }

    func finishedCounter(_ status: String, certified: Bool) -> Counter {
        registry.makeCounter(
            descriptor: Self.name("jobs_finished", "total", "Erase jobs finished, by verdict and whether a certificate was issued"),
            labels: [("status", status), ("certified", String(certified))])
    }

    /// Records a finished phone job (no bytes: a reset writes nothing Lethe can count).
    func finishedPhone(status: String, certified: Bool, seconds: Double) {
        finishedCounter(status, certified: certified).increment()
        jobSeconds.record(seconds)
    }

    /// Records a finished job.
    func finished(_ outcome: WipeOutcome, status: String, certified: Bool) {
        finishedCounter(status, certified: certified).increment()
        bytesWritten.increment(by: Int64(clamping: outcome.bytesWritten))
        bytesVerified.increment(by: Int64(clamping: outcome.verification.bytesVerified))
        jobSeconds.record(outcome.seconds)
    }

    /// Sets the gauges from the bench as it is now and returns the exposition text.
    func exposition(jobs: [JobView], devices: Int, streams: Int) -> String {
        for state in Self.states { jobGauge(state).set(to: Double(jobs.count { $0.state.rawValue == state })) }
        devicesPresent.set(to: Double(devices))
        throughput.set(to: jobs.filter { $0.state == .running }.reduce(0) { $0 + $1.bytesPerSecond })
        eventStreams.set(to: Double(streams))
        return registry.emitToString()
    }
}
