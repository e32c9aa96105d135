import Foundation
import GRDB
import LetheConfig
import LetheCore
import LetheDiagnostics
import LetheLinux
import LetheReports
import LetheStore
import LetheWipe

/// Everything a certified erase needs besides the engine: the station key and config (loaded
/// before anything is written), the device as discovered, its health before the erase, the
/// store (job, reports, audit chain) and the report writer. Used by `lethe wipe --report-dir`
/// and by the daemon's jobs.
public final class Reporting: @unchecked Sendable {
    public let directory: String
    let key: StationKey
    let station: StationConfig
    let target: LinuxBlockDevice.Target
    let performedBy: ReportParty
    /// The device as discovered (nil for an image file).
    public let record: DeviceRecord?
    /// Until ``diagnoseBeforeErasing()`` runs (a profile may skip it): unknown, not healthy.
    var health: HealthAssessment = {
        var assessment = HealthAssessment(reading: HealthReading())
        assessment.verdict = .unknown
        assessment.findings = [HealthFinding(.unknown, "smart", "no diagnostics were run before the erase (the profile skips them)")]
        return assessment
    }()
    var reading: HealthReading?
    /// The surface scan before the erase, if one ran (``scanSurface(_:mode:thresholds:cancellation:progress:)``).
    public private(set) var surface: SurfaceScanReport?
    /// When the erase started (set just before the first write).
    public var started = Date()
    /// Grading thresholds (from the profile).
    public var thresholds = HealthThresholds()
    /// The store (`<state>/lethe.sqlite`): the job, its reports and the audit chain.
    public let store: Store
    /// The job's id in the store.
    public let jobId: String

    /// Loads the key, the station config and the store; marks orphaned jobs interrupted.
    public init(
        directory: String, stateDirectory: String, station: StationConfig, target: LinuxBlockDevice.Target, operatorName: String?,
        jobId: String = ReportID.make()
    ) throws(LetheError) {
        self.jobId = jobId
        self.directory = directory
        self.target = target
        key = try StationKey.load(stateDirectory: stateDirectory)
        self.station = station
        store = try Store(stateDirectory: stateDirectory)
        try store.markOrphanedJobsInterrupted(isRunning: JobRow.processIsRunning)
        let env = ProcessInfo.processInfo.environment
        let name = operatorName ?? station.operatorName ?? env["SUDO_USER"] ?? env["USER"] ?? "unknown operator"
        performedBy = ReportParty(name: name, role: "bench technician", contact: station.contact)
        let kernelName = target.identity?.kernelName
        let bays = (try? BayMapFile.load("\(stateDirectory)/bays.json")) ?? BayMap()
        record = kernelName.flatMap { DeviceDiscovery.drive(named: $0, bays: bays) }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw LetheError(.invalidArgument, path: directory, "--report-dir is a file, not a directory")
        }
    }

    /// SMART before the erase (for the refurb report); a drive without SMART is `unknown`.
    public func diagnoseBeforeErasing() {
        guard target.number != nil else {
            health.verdict = .unknown
            health.findings = [HealthFinding(.unknown, "smart", "a disk image has no SMART")]
            return
        }
        let check = SmartCheck.run(device: target.resolvedPath, thresholds: thresholds, timeoutSeconds: 30)
        reading = check.reading
        health = check.assessment
    }

    /// Reads the surface before the erase (the profile's `diagnostics.surface`, or
    /// `--surface`); the result goes in the refurb report and its grade. Reads only;
    /// blocking, on the caller's thread.
    @discardableResult
    public func scanSurface(
        _ device: any BlockDevice, mode: SurfaceScanMode, thresholds: SurfaceThresholds, cancellation: WipeCancellation,
        progress: (UInt64, UInt64) -> Void
    ) -> SurfaceScanReport {
        let scan = SurfaceScanner(device: device, options: SurfaceScanOptions(mode: mode, thresholds: thresholds), cancellation: cancellation)
            .run(progress: progress)
        surface = scan
        return scan
    }

    var reportDevice: ReportDevice {
        let identity = target.identity
        guard target.number != nil else {
            return ReportDevice(
                manufacturer: nil, model: "disk image", serial: nil, mediaType: "disk image (regular file)", transport: "file",
                sizeBytes: nil, logicalSectorSize: 512, source: station.mediaSource, path: target.resolvedPath)
        }
        // A bridge's serial is never the drive's: with a record, its serial (or none) stands.
        var device = ReportDevice(
            manufacturer: record?.vendor ?? identity?.vendor, model: record?.model ?? identity?.model,
            serial: record.map { $0.serial } ?? identity?.serial, firmware: record?.firmware, wwn: record?.wwn,
            mediaType: ReportDevice.mediaType(transport: record?.transport ?? .unknown, rotational: record?.rotational),
            transport: record?.transport.rawValue ?? "unknown", sizeBytes: record?.sizeBytes,
            logicalSectorSize: record?.logicalSectorSize, source: station.mediaSource, bay: record?.bay, path: target.resolvedPath)
        device.bridgeSerial = record?.bridgeSerial ?? identity?.bridgeSerial
        return device
    }

    var reportStation: ReportStation {
        ReportStation(id: station.id, name: station.name, location: station.location, contact: station.contact, keyId: key.keyId)
    }

    /// What was written.
    public struct Written: Sendable {
        public var certificate: ReportWriter.Written
        /// The signed refurb report, or nil when it waits for the technician's cosmetic grade.
        public var refurb: ReportWriter.Written?
        /// The refurb report waiting for the cosmetic grade (stored unsigned until then).
        public var refurbDraft: RefurbReport?
        /// The signed refurb report's content (when `refurb` is set).
        public var refurbReport: RefurbReport?
        public var certified: Bool
    }

    static func iso(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    /// Records the job as running (with this process's pid) before the first write.
    public func recordStart(method: WipeMethod, profile: String?) throws(LetheError) {
        var job = JobRow(
            id: jobId, devicePath: target.resolvedPath, serial: reportDevice.serial, model: reportDevice.model, method: method.name,
            profile: profile, status: "running", startedAt: Self.iso(started))
        job.run(by: .current())
        let row = job
        let verdict = health.verdict.rawValue
        let detail = String(decoding: (try? JSONEncoder().encode(health)) ?? Data("{}".utf8), as: UTF8.self)
        let at = row.startedAt
        try store.write { db in
            try row.insert(db)
            try Store.appendAudit(db, kind: "job.started", subject: row.id, detail: ["device": row.devicePath, "method": row.method, "serial": row.serial ?? ""])
            try db.execute(
                sql: "INSERT OR REPLACE INTO diagnostic (jobId, verdict, detail, at) VALUES (?, ?, ?, ?)", arguments: [row.id, verdict, detail, at])
        }
    }

    /// Records an interrupted job as running again (this process's pid), picking up from
    /// `checkpoint`; `started` becomes the original start, so the certificate covers the whole
    /// erase.
    public func recordResume(from checkpoint: WipeCheckpoint) throws(LetheError) {
        let jobId = jobId
        let process = ProcessIdentity.current()
        let original: String? = try store.write { db in
            guard var job = try JobRow.fetchOne(db, key: jobId) else { return nil }
            job.status = "running"
            job.run(by: process)
            job.finishedAt = nil
            job.error = nil
            try job.update(db)
            try Store.appendAudit(db, kind: "job.resumed", subject: jobId, detail: [
                "device": job.devicePath, "pass": String(checkpoint.pass), "phase": checkpoint.phase.rawValue, "offset": String(checkpoint.offset),
            ])
            return job.startedAt
        }
        guard let original else { throw LetheError(.invalidArgument, path: store.path, "no job \(jobId) in the store to resume") }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: original) { started = date }
    }

    /// Saves the erase's checkpoint (its seeds and how far it got) for a resume.
    public func saveCheckpoint(_ checkpoint: WipeCheckpoint) throws(LetheError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let text = String(decoding: (try? encoder.encode(checkpoint)) ?? Data(), as: UTF8.self)
        try store.saveCheckpoint(jobId: jobId, state: text)
    }

    /// Records the outcome and the reports in one transaction, with their audit events.
    /// `status` replaces the outcome's (`interrupted` for an unplug).
    public func recordFinish(outcome: WipeOutcome, written: Written?, status: String? = nil) throws(LetheError) {
        let finished = Self.iso(Date())
        let status = status ?? outcome.status.rawValue
        let station = station
        let devicePath = target.resolvedPath
        let jobId = jobId
        let serial = reportDevice.serial
        try store.write { db in
            guard var job = try JobRow.fetchOne(db, key: jobId) else { return }
            job.status = status
            job.finishedAt = finished
            job.bytesWritten = Int64(clamping: outcome.bytesWritten)
            job.error = outcome.error
            job.reportId = written?.certificate.reportId
            try job.update(db)
            try Store.appendAudit(db, kind: "job.finished", subject: jobId, detail: ["status": status, "bytesWritten": String(outcome.bytesWritten)])
            if outcome.status == .erased || outcome.status == .erasedWithExceptions {
                // Nothing left to resume: the seeds are no longer needed.
                try db.execute(sql: "DELETE FROM checkpoint WHERE jobId = ?", arguments: [jobId])
            }
            guard let written else { return }
            try Store.recordReport(db, written.certificate.row(jobId: jobId, schema: WipeCertificate.schemaName, serial: serial, certified: written.certified, at: finished))
            if let refurb = written.refurb {
                try Store.recordReport(db, refurb.row(jobId: jobId, schema: RefurbReport.schemaName, serial: serial, certified: false, at: finished))
                if let report = written.refurbReport, CatalogQueue.carries(outcome.status), status == outcome.status.rawValue {
                    try CatalogQueue.enqueue(
                        db, jobId: jobId, refurb: report, refurbPath: refurb.jsonPath, certificatePath: written.certificate.jsonPath,
                        certified: written.certified, station: station, devicePath: devicePath, at: finished)
                }
            }
            if let draft = written.refurbDraft {
                try Self.saveDraft(db, jobId: jobId, draft: draft, certificate: written.certificate.reportId, at: finished)
            }
        }
    }

    /// Keeps a refurb report that waits for the technician's cosmetic grade (unsigned until
    /// then), with its audit event, inside the caller's transaction.
    static func saveDraft(_ db: Database, jobId: String, draft: RefurbReport, certificate: String, at: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        try db.execute(
            sql: "INSERT OR REPLACE INTO refurbDraft (jobId, draft, createdAt) VALUES (?, ?, ?)",
            arguments: [jobId, String(decoding: try encoder.encode(draft), as: UTF8.self), at])
        try Store.appendAudit(db, kind: "refurb.awaitingGrade", subject: jobId, detail: ["certificate": certificate])
    }

    /// Builds, signs and writes the certificate (or record) and the refurb report. With
    /// `awaitCosmeticGrade`, the refurb report is only drafted: the daemon signs it when the
    /// technician grades the device (``Bench/grade(_:grade:notes:by:)``).
    public func write(
        outcome: WipeOutcome, method: WipeMethod, language: ReportLanguage, toolVersion: String, cosmetic: CosmeticGrade? = nil,
        awaitCosmeticGrade: Bool = false
    ) throws -> Written {
        let finished = Date()
        var device = reportDevice
        if device.sizeBytes == nil { device.sizeBytes = outcome.sizeBytes }
        let certificate = WipeCertificate(
            outcome: outcome, method: method, device: device, reportId: ReportID.make(date: finished), issuedAt: Self.iso(finished),
            startedAt: Self.iso(started), finishedAt: Self.iso(finished), station: reportStation, performedBy: performedBy,
            destination: station.destination, toolVersion: toolVersion)
        let written = try ReportWriter.write(
            certificate: certificate, key: key, directory: directory, verifyBase: station.verifyBaseURL, language: language)
        var diagnostics = ReportDiagnostics(assessment: health, reading: reading)
        if let surface { diagnostics = diagnostics.adding(surface: surface) }
        let grade = RefurbReport.grade(diagnostics: diagnostics, status: outcome.status)
        var refurb = RefurbReport(
            reportId: ReportID.make(date: finished.addingTimeInterval(0.001)), issuedAt: Self.iso(finished), device: device,
            diagnostics: diagnostics, battery: nil, grade: grade.grade,
            gradeReason: grade.reason,
            certificate: CertificateReference(reportId: certificate.reportId, digest: written.signed.digest, status: outcome.status),
            performedBy: performedBy, station: reportStation, tool: ReportTool(version: toolVersion))
        if awaitCosmeticGrade {
            return Written(certificate: written, refurb: nil, refurbDraft: refurb, certified: certificate.certified)
        }
        if let cosmetic { refurb = refurb.graded(cosmetic) }
        let refurbWritten = try ReportWriter.write(
            refurb: refurb, key: key, directory: directory, verifyBase: station.verifyBaseURL, language: language)
        return Written(certificate: written, refurb: refurbWritten, refurbReport: refurb, certified: certificate.certified)
    }
}

extension ReportWriter.Written {
    /// The store's row for this written report.
    func row(jobId: String?, schema: String, serial: String?, certified: Bool, at: String) -> ReportRow {
        ReportRow(
            id: reportId, jobId: jobId, schema: schema, serial: serial, certified: certified, digest: signed.digest,
            jsonPath: jsonPath, pdfPath: pdfPath, issuedAt: at)
    }
}
