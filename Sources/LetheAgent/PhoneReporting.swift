import Foundation
import LetheConfig
import LetheCore
import LethePhones
import LetheReports
import LetheStore

/// The records of a phone's erase: the job in the store before the reset, then the signed
/// certificate (certified only when the phone came back in its out-of-box state), the refurb
/// report with its battery and lock findings, and the catalog record, in one transaction.
/// The phone's counterpart of ``Reporting``; used by `lethe phones erase` and the daemon.
public final class PhoneReporting: @unchecked Sendable {
    public let directory: String
    let key: StationKey
    let station: StationConfig
    let performedBy: ReportParty
    public let store: Store
    public let jobId: String
    public let phone: PhoneInspection
    /// The bay label, when the station's bay map names the phone's port.
    public var bay: String?
    /// Function checks run from the host (storage, sensors, modem, Wi-Fi).
    public var functionChecks: [FunctionCheck] = []
    /// The overwrite of the phone's free space before its reset, when the profile asked for one.
    public var freeSpaceOverwrite: ReportFreeSpaceOverwrite?
    /// The method name on certificates and in the store.
    public static let methodName = "crypto-erase-factory-reset"

    /// Loads the key and the store (nothing is written yet).
    public init(directory: String, stateDirectory: String, station: StationConfig, phone: PhoneInspection, operatorName: String?, jobId: String = ReportID.make()) throws(LetheError) {
        self.directory = directory
        self.station = station
        self.phone = phone
        self.jobId = jobId
        key = try StationKey.load(stateDirectory: stateDirectory)
        store = try Store(stateDirectory: stateDirectory)
        try store.markOrphanedJobsInterrupted(isRunning: JobRow.processIsRunning)
        let env = ProcessInfo.processInfo.environment
        let name = operatorName ?? station.operatorName ?? env["SUDO_USER"] ?? env["USER"] ?? "unknown operator"
        performedBy = ReportParty(name: name, role: "bench technician", contact: station.contact)
    }

    var path: String { phone.path }
    var isIOS: Bool { phone.platform == .ios }

    /// The phone as reports describe it.
    public var reportDevice: ReportDevice {
        let id = phone.identity
        // An iPhone's model says what was sold: the name, the product type and the model number.
        let model = isIOS ? id.model.map { name in ([id.productType, id.modelNumber].compactMap { $0 }).isEmpty ? name : "\(name) (\([id.productType, id.modelNumber].compactMap { $0 }.joined(separator: ", ")))" } : id.model
        var device = ReportDevice(
            manufacturer: id.manufacturer ?? id.brand, model: model, serial: id.serial ?? phone.serial, firmware: id.fingerprint,
            mediaType: "mobile phone", transport: isIOS ? "ios" : "adb", sizeBytes: id.capacityBytes, logicalSectorSize: nil, source: station.mediaSource,
            bay: bay, path: path)
        device.imeis = id.imeis.isEmpty ? nil : id.imeis
        return device
    }

    /// The phone's diagnostics: battery against `threshold`, the locks, what could not be read.
    public func diagnostics(threshold: Int) -> (verdict: HealthVerdict, findings: [String]) {
        var findings: [String] = []
        var verdict = HealthVerdict.unknown
        if let battery = phone.battery {
            verdict = battery.verdict(threshold: threshold)
            if let health = battery.healthPercent {
                findings.append("battery health \(health.value)% (\(health.source)); the gate is \(threshold)%")
            } else {
                findings.append("battery health could not be read: \(battery.notes.joined(separator: "; "))")
            }
            if let condition = battery.condition, condition != "good" { findings.append("battery condition: \(condition)") }
            if let cycles = battery.cycleCount { findings.append("\(cycles.value) charge cycles (\(cycles.source))") }
        } else {
            findings.append("the battery could not be read")
        }
        for blocker in phone.locks.blockers { findings.append(blocker) }
        if isIOS {
            if let findMy = phone.locks.findMy, findMy.state != "locked" {
                findings.append("Find My: \(findMy.state)\(findMy.bestEffort ? " (best effort)" : "") from \(findMy.source)\(findMy.detail.map { ": \($0)" } ?? "")")
            }
            if let supervision = phone.locks.supervision, supervision.state == "unknown" {
                findings.append("supervision could not be read (\(supervision.source))")
            }
            if !phone.locks.profiles.isEmpty { findings.append("configuration profiles: \(phone.locks.profiles.joined(separator: ", "))") }
            if let activation = phone.identity.activationState { findings.append("activation state before the erase: \(activation)") }
        } else if phone.locks.frp.bestEffort, phone.locks.frp.state != "locked" {
            findings.append("FRP: \(phone.locks.frp.state) (best effort, from \(phone.locks.frp.source))")
        }
        if phone.locks.bootloaderUnlocked == true {
            findings.append("the bootloader is unlocked (verified boot \(phone.identity.verifiedBootState ?? "unknown"))")
            if verdict == .pass { verdict = .warn }
        }
        if !phone.locks.blockers.isEmpty { verdict = .fail }
        for check in functionChecks {
            findings.append(check.summary)
            if check.result == "fail" { verdict = .fail }
        }
        findings += phone.notes
        return (verdict, findings)
    }

    /// Records the job as running before the reset is sent.
    public func recordStart(profile: String?, flow: ResetFlow) throws(LetheError) {
        var job = JobRow(
            id: jobId, devicePath: path, serial: reportDevice.serial, model: reportDevice.model, method: Self.methodName, profile: profile,
            status: "running", startedAt: Reporting.iso(Date()))
        job.run(by: .current())
        let row = job
        try store.write { db in
            try row.insert(db)
            try Store.appendAudit(db, kind: "job.started", subject: row.id, detail: ["device": row.devicePath, "method": row.method, "flow": flow.rawValue, "serial": row.serial ?? ""])
        }
    }

    /// Signs and writes the certificate (or record) and the refurb report, and records them
    /// with the job's end and its catalog record, in one transaction.
    public func finish(
        _ outcome: ResetOutcome, threshold: Int, language: ReportLanguage, toolVersion: String, cosmetic: CosmeticGrade? = nil,
        awaitCosmeticGrade: Bool = false
    ) throws -> Reporting.Written {
        let device = reportDevice
        let finished = Date()
        var verification = ReportVerification(
            mode: "state",
            method: isIOS
                ? "the iPhone dropped off usbmuxd, came back as a new usbmux device, paired again in setup and reads ActivationState Unactivated"
                : "the phone restarted and came back in its out-of-box state: device_provisioned 0, user_setup_complete 0, no accounts",
            result: outcome.checks.isEmpty ? "notRun" : outcome.checks.allSatisfy(\.passed) ? "passed" : "failed",
            bytesVerified: 0, coverageBasisPoints: 0, mismatchedSectors: 0)
        verification.checks = outcome.checks.isEmpty ? nil : outcome.checks
        var sanitization = ReportSanitization(
            category: "Purge", method: Self.methodName,
            description: "\(isIOS ? IOSErase.methodTitle : FactoryReset.methodTitle): \(outcome.flow.title)\(outcome.commands.isEmpty ? "" : "; sent: " + outcome.commands.joined(separator: ", ")); NIST SP 800-88 Rev. 2, Cryptographic Erase",
            technique: "factory reset (crypto erase)", passes: [], bytesWritten: 0, startedAt: Reporting.iso(outcome.startedAt),
            finishedAt: Reporting.iso(outcome.finishedAt), badSectors: [],
            errors: outcome.error.map { [$0] } ?? [])
        sanitization.standards = .phoneReset(category: sanitization.category)
        if let fill = freeSpaceOverwrite {
            sanitization.freeSpaceOverwrite = fill
            sanitization.bytesWritten = fill.bytesWritten
            if fill.result == "passed" {
                sanitization.description += "; before the reset, in addition: an overwrite of the file system's free space (\(fill.bytesWritten) bytes, \(fill.mode == "full" ? "all read back" : "a sample read back"))"
            }
        }
        let party = performedBy
        let certificate = WipeCertificate(
            reportId: ReportID.make(date: finished), issuedAt: Reporting.iso(finished), status: outcome.certified ? .erased : outcome.status == .erased ? .notErased : outcome.status,
            device: device, sanitization: sanitization, verification: verification, tool: ReportTool(version: toolVersion), performedBy: party,
            verifiedBy: ReportParty(name: "Lethe \(toolVersion)", role: "automated verification"), station: reportStation, destination: station.destination)
        let written = try ReportWriter.write(certificate: certificate, key: key, directory: directory, verifyBase: station.verifyBaseURL, language: language)
        let (verdict, findings) = diagnostics(threshold: threshold)
        let grade = RefurbReport.grade(verdict: verdict, status: certificate.status)
        var diagnosticsReport = ReportDiagnostics(assessment: HealthAssessment(reading: HealthReading()), reading: nil)
        diagnosticsReport.verdict = verdict.rawValue
        diagnosticsReport.findings = findings
        let battery = phone.battery.map { battery in
            ReportBattery(
                healthPercent: battery.healthPercent?.value, cycleCount: battery.cycleCount?.value,
                source: [battery.healthPercent?.source, battery.cycleCount?.source].compactMap { $0 }.first ?? (isIOS ? "diagnostics_relay" : "dumpsys battery"))
        }
        var refurb = RefurbReport(
            reportId: ReportID.make(date: finished.addingTimeInterval(0.001)), issuedAt: Reporting.iso(finished), device: device,
            diagnostics: diagnosticsReport, battery: battery, grade: grade.grade, gradeReason: grade.reason,
            certificate: CertificateReference(reportId: certificate.reportId, digest: written.signed.digest, status: certificate.status),
            performedBy: party, station: reportStation, tool: ReportTool(version: toolVersion))
        if let cosmetic { refurb = refurb.graded(cosmetic) }
        // A certified phone waits for the technician's cosmetic grade, as a drive does.
        let draft = awaitCosmeticGrade && certificate.certified ? refurb : nil
        let refurbWritten = draft == nil
            ? try ReportWriter.write(refurb: refurb, key: key, directory: directory, verifyBase: station.verifyBaseURL, language: language) : nil
        let result = Reporting.Written(certificate: written, refurb: refurbWritten, refurbDraft: draft, refurbReport: draft == nil ? refurb : nil, certified: certificate.certified)
        let status = outcome.interrupted ? "interrupted" : certificate.status.rawValue
        let at = Reporting.iso(finished)
        let (jobId, serial, imeis, station, path) = (jobId, device.serial, device.imeis ?? [], station, path)
        let error = outcome.error
        let signedRefurb = refurb
        try store.write { db in
            if var job = try JobRow.fetchOne(db, key: jobId) {
                job.status = status
                job.finishedAt = at
                job.error = error
                job.reportId = written.reportId
                try job.update(db)
            }
            try Store.appendAudit(db, kind: "job.finished", subject: jobId, detail: ["status": status, "flow": outcome.flow.rawValue])
            try Store.recordReport(db, written.row(jobId: jobId, schema: WipeCertificate.schemaName, serial: serial, certified: certificate.certified, at: at), imeis: imeis)
            if let draft {
                try Reporting.saveDraft(db, jobId: jobId, draft: draft, certificate: written.reportId, at: at)
                return
            }
            guard let refurbWritten else { return }
            try Store.recordReport(db, refurbWritten.row(jobId: jobId, schema: RefurbReport.schemaName, serial: serial, certified: false, at: at), imeis: imeis)
            if !outcome.interrupted, CatalogQueue.carries(certificate.status) {
                try CatalogQueue.enqueue(
                    db, jobId: jobId, refurb: signedRefurb, refurbPath: refurbWritten.jsonPath, certificatePath: written.jsonPath,
                    certified: certificate.certified, station: station, devicePath: path, at: at)
            }
        }
        return result
    }

    var reportStation: ReportStation {
        ReportStation(id: station.id, name: station.name, location: station.location, contact: station.contact, keyId: key.keyId)
    }
}
