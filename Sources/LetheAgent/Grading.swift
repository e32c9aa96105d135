import Foundation
import GRDB
import LetheConfig
import LetheCore
import LetheLinux
import LetheReports
import LetheStore
import LetheSync
import LetheWipe

extension Bench {
    /// Records the technician's cosmetic grade and issues the job's refurb report (signed, with
    /// the grade in it). Only for a job waiting for it (step `grade`).
    public func grade(_ id: String, grade letter: String, notes: String?, by grader: String) throws(StartError) -> JobView {
        let cosmetic: CosmeticGrade
        do throws(CosmeticGrade.Invalid) {
            cosmetic = try CosmeticGrade(grade: letter, notes: notes, gradedBy: grader, gradedAt: Reporting.iso(Date()))
        } catch {
            throw StartError(status: 400, message: error.description)
        }
        // Claim the job, so two requests cannot both issue a report.
        try state.withLock { s throws(StartError) in
            guard var job = s.jobs[id] else { throw StartError(status: 404, message: "no job \(id)") }
            do throws(JobTransitionError) { try job.apply(.claimGrade) } catch {
                throw StartError(status: 409, message: "job \(id): \(error.description)")
            }
            s.jobs[id] = job
        }
        func release(_ status: Int, _ message: String) -> StartError {
            transition(id, .releaseGrade)
            log("job \(id): cosmetic grade not recorded: \(message)")
            return StartError(status: status, message: message)
        }
        let draftText: String?
        do { draftText = try store.refurbDraft(jobId: id) } catch { throw release(503, error.message) }
        guard let draftText, var report = try? JSONDecoder().decode(RefurbReport.self, from: Data(draftText.utf8)) else {
            throw release(409, "job \(id) has no refurb report waiting for a grade")
        }
        let now = Date()
        report.reportId = ReportID.make(date: now)
        report.issuedAt = Reporting.iso(now)
        report = report.graded(cosmetic)
        let written: ReportWriter.Written
        do {
            let key = try StationKey.load(stateDirectory: settings.stateDirectory)
            written = try ReportWriter.write(
                refurb: report, key: key, directory: settings.reportDirectory, verifyBase: settings.station.verifyBaseURL, language: settings.language)
        } catch {
            throw release(503, "the refurb report could not be written to \(settings.reportDirectory): \(error)")
        }
        let row = written.row(jobId: id, schema: RefurbReport.schemaName, serial: report.device.serial, certified: false, at: report.issuedAt)
        let saleGrade = report.grade
        let graded = report
        let imeis = report.device.imeis ?? []
        let station = settings.station
        let certificate = (try? store.read { db in try ReportRow.filter(Column("jobId") == id && WipeCertificate.schemaNames.contains(Column("schema"))).fetchOne(db) }) ?? nil
        let devicePath = job(id)?.device ?? "?"
        do {
            try store.write { db in
                try Store.recordReport(db, row, imeis: imeis)
                try db.execute(sql: "DELETE FROM refurbDraft WHERE jobId = ?", arguments: [id])
                try Store.appendAudit(db, kind: "grade.recorded", subject: id, detail: [
                    "cosmeticGrade": cosmetic.grade, "saleGrade": saleGrade, "by": grader, "report": written.reportId,
                ])
                try CatalogQueue.enqueue(
                    db, jobId: id, refurb: graded, refurbPath: written.jsonPath, certificatePath: certificate?.jsonPath,
                    certified: certificate?.certified ?? false, station: station, devicePath: devicePath, at: Reporting.iso(Date()))
            }
        } catch {
            try? FileManager.default.removeItem(atPath: written.jsonPath)
            try? FileManager.default.removeItem(atPath: written.pdfPath)
            throw release(503, error.message)
        }
        log("job \(id): cosmetic grade \(cosmetic.grade) by \(grader); refurb report \(written.reportId), sale grade \(report.grade)")
        transition(id, .graded) {
            $0.cosmeticGrade = cosmetic.grade
            $0.refurbReportId = written.reportId
        }
        return job(id)!
    }
}
