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
        bytesWritten = registry.makeCounter(name: "lethe_bytes_written_total", help: "Bytes written by erase passes")
        bytesVerified = registry.makeCounter(name: "lethe_bytes_verified_total", help: "Bytes read back and compared by verification")
        resumes = registry.makeCounter(name: "lethe_jobs_resumed_total", help: "Interrupted jobs resumed from a checkpoint")
        jobSeconds = registry.makeValueHistogram(
            name: "lethe_job_duration_seconds", buckets: [60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400],
            help: "Wall-clock seconds of finished erase jobs (this run of each)")
        devicesPresent = registry.makeGauge(name: "lethe_devices_present", help: "Devices docked now (drives and phones)")
        throughput = registry.makeGauge(name: "lethe_erase_bytes_per_second", help: "Sum of the running jobs' current throughput")
        eventStreams = registry.makeGauge(name: "lethe_event_streams", help: "Open /api/v1/events streams")
        for state in Self.states { _ = jobGauge(state) }
        for status in [WipeStatus.erased, .erasedWithExceptions, .notErased, .aborted] { _ = finishedCounter(status.rawValue, certified: false) }
    }

    func jobGauge(_ state: String) -> Gauge {
        registry.makeGauge(name: "lethe_jobs", labels: [("state", state)], help: "Jobs the bench shows, by state")
    }

    func finishedCounter(_ status: String, certified: Bool) -> Counter {
        registry.makeCounter(
            name: "lethe_jobs_finished_total", labels: [("status", status), ("certified", String(certified))],
            help: "Erase jobs finished, by verdict and whether a certificate was issued")
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
        for state in Self.states { jobGauge(state).set(to: Double(jobs.count { $0.state == state })) }
        devicesPresent.set(to: Double(devices))
        throughput.set(to: jobs.filter { $0.state == "running" }.reduce(0) { $0 + $1.bytesPerSecond })
        eventStreams.set(to: Double(streams))
        return registry.emitToString()
    }
}
