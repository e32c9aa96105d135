import Foundation
import GRDB
import LetheReports
import LetheStore
import LetheCore
import LethePhones
import LetheWipe

extension Bench {
    /// A phone's job: inspect (identity, battery, locks), refuse what cannot be certified,
    /// reset by the profile's flow, check the out-of-box state, certify, then wait for the
    /// technician's cosmetic grade. Blocking; own thread.
    func runPhone(jobId: String, device path: String, profile: Profile, cancellation: WipeCancellation = WipeCancellation()) {
        let serial = String(path.dropFirst("adb:".count))
        let fail = phoneJobFailure(jobId: jobId, path: path)
        guard let client = settings.adb else { return fail("phones are not enabled on this station (no adb client)", refused: true) }
        removeFillLeftovers(client, serial: serial, force: true)
        let phone: PhoneInspection
        do throws(LetheError) {
            phone = try PhoneProbe.inspect(client, serial: serial)
        } catch {
            return fail("cannot inspect the phone: \(error.message)", gone: error.code == .deviceVanished)
        }
        show(phone, on: jobId, profile: profile)
        // What the host can check before the reset (the phone is still set up and awake).
        let hostChecks: [FunctionCheck]
        do throws(LetheError) { hostChecks = try FunctionChecks.host(client, serial: serial) } catch {
            return fail("cannot check the phone: \(error.message)", gone: error.code == .deviceVanished)
        }
        update(jobId) { $0.functionChecks = hostChecks.map(\.summary) }
        if let refusal = FactoryReset.refusal(phone) { return fail("refused: \(refusal)", refused: true) }
        let flow: ResetFlow
        do throws(LetheError) {
            flow = try FactoryReset.choose(phone, requested: profile.factoryReset?.flow.flatMap(ResetFlow.init(rawValue:)))
        } catch {
            return fail("refused: \(error.message)", refused: true)
        }
        let reporting: PhoneReporting
        do throws(LetheError) {
            reporting = try startReporting(phone, jobId: jobId, profile: profile, flow: flow, functionChecks: hostChecks)
        } catch {
            return fail("not started: \(error.message)")
        }
        log("\(path): job \(jobId): \(phone.identity.model ?? "phone"), \(flow.title)")
        if let mode = profile.factoryReset?.overwriteFreeSpace, mode != .off {
            let fill = overwriteFreeSpace(client, serial: serial, mode: mode, jobId: jobId, path: path, cancellation: cancellation)
            reporting.freeSpaceOverwrite = fill.record
            if let blocked = fill.blockedReset(flow, aborted: cancellation.isCancelled) {
                return finishPhone(jobId: jobId, path: path, outcome: blocked, reporting: reporting, profile: profile, fail: fail)
            }
        }
        transition(jobId, .step(.reset)) { $0.message = flow == .guided ? ResetFlow.guidedInstructions : "resetting: \(flow.title)" }
        let outcome = FactoryReset.run(client, phone: phone, flow: flow, waitSeconds: settings.phoneWaitSeconds, say: narrator(jobId: jobId, path: path))
        finishPhone(jobId: jobId, path: path, outcome: outcome, reporting: reporting, profile: profile, fail: fail)
    }

    /// Fills the phone's free space, reads it back and removes the fill, showing progress on
    /// the job (step `write`, then `verify`).
    func overwriteFreeSpace(
        _ client: ADBClient, serial: String, mode: FreeSpaceOverwriteMode, jobId: String, path: String, cancellation: WipeCancellation
    ) -> FreeSpaceFill.Outcome {
        transition(jobId, .step(.write)) { $0.message = "overwriting the free space of /data" }
        log("\(path): job \(jobId): overwriting the free space of /data (\(mode.rawValue) read-back)")
        var phase = "write"
        let outcome = FreeSpaceFill.run(client, serial: serial, options: FreeSpaceFill.Options(mode: mode), progress: { progress in
            if progress.phase != phase {
                phase = progress.phase
                self.transition(jobId, .step(.verify))
            }
            self.update(jobId) {
                $0.percent = progress.bytesTotal == 0 ? 0 : (Double(progress.bytesDone) / Double(progress.bytesTotal) * 1000).rounded() / 10
                $0.bytesPerSecond = progress.bytesPerSecond
                $0.etaSeconds = progress.etaSeconds
                $0.message = progress.line
            }
        }, shouldStop: { cancellation.isCancelled })
        update(jobId) {
            $0.percent = 0
            $0.bytesPerSecond = 0
            $0.etaSeconds = nil
        }
        log("\(path): job \(jobId): free space: \(outcome.error ?? outcome.record?.summary ?? "not done")")
        return outcome
    }

    /// Removes fill files that an earlier job left on a phone (unplugged mid-fill), before
    /// anything else is done with it: when it docks (unless a job is running on it; `force`:
    /// the job itself asks).
    func removeFillLeftovers(_ client: ADBClient, serial: String, force: Bool = false) {
        let path = "adb:\(serial)"
        if !force, jobs.contains(where: { $0.device == path && $0.state == .running }) { return }
        let directory = FreeSpaceFill.directory
        do throws(LetheError) {
            let count = try FreeSpaceFill.removeLeftovers(client, serial: serial)
            guard count > 0 else { return }
            log("\(path): removed \(count) fill files that an interrupted free-space overwrite left in \(directory)")
            try? store.write { db in
                _ = try Store.appendAudit(db, kind: "phone.fill-removed", subject: path, detail: ["files": String(count), "directory": directory])
            }
        } catch {
            log("\(path): could not check for fill files left by an interrupted overwrite (\(error.message)); the next job removes them before it starts")
        }
    }

    /// Puts what the inspection found on the job: serial, model, battery and its verdict.
    func show(_ phone: PhoneInspection, on jobId: String, profile: Profile) {
        let battery = phone.battery?.verdict(threshold: profile.batteryMinHealthPercent)
        update(jobId) {
            $0.serial = phone.identity.serial ?? $0.serial
            $0.model = phone.identity.model ?? $0.model
            $0.battery = phone.battery?.healthPercent.map { "\($0.value)% (\($0.source))" }
            $0.batteryVerdict = battery?.rawValue
        }
    }

    /// The phone's reporting, with the signed record that its erase started.
    func startReporting(_ phone: PhoneInspection, jobId: String, profile: Profile, flow: ResetFlow, functionChecks: [FunctionCheck] = []) throws(LetheError) -> PhoneReporting {
        let reporting = try PhoneReporting(
            directory: settings.reportDirectory, stateDirectory: settings.stateDirectory, station: settings.station, phone: phone, operatorName: nil,
            jobId: jobId)
        reporting.bay = job(jobId)?.bay
        reporting.functionChecks = functionChecks
        try reporting.recordStart(profile: profile.name, flow: flow)
        return reporting
    }

    /// Logs each step a reset reports and shows it on the job.
    func narrator(jobId: String, path: String) -> (String) -> Void {
        { said in
            self.log("\(path): job \(jobId): \(said)")
            self.update(jobId) { $0.message = said }
        }
    }

    /// The end of a phone's job, Android's or an iPhone's: certificate (or record) and refurb
    /// report, the job's verdict, and the log line.
    func finishPhone(
        jobId: String, path: String, outcome: ResetOutcome, reporting: PhoneReporting, profile: Profile, fail: PhoneJobFailure
    ) {
        transition(jobId, .step(.certify))
        let written: Reporting.Written
        do {
            written = try reporting.finish(
                outcome, threshold: profile.batteryMinHealthPercent, language: settings.language, toolVersion: settings.toolVersion,
                awaitCosmeticGrade: true)
        } catch {
            return fail("the certificate could not be written: \(error)")
        }
        let status: WipeStatus = written.certified ? .erased : outcome.status == .aborted ? .aborted : .notErased
        let state = outcome.interrupted ? JobState.interrupted : JobState(status)
        metrics.finishedPhone(status: state.rawValue, certified: written.certified, seconds: outcome.finishedAt.timeIntervalSince(outcome.startedAt))
        transition(jobId, .finished(status, deviceGone: outcome.interrupted, checkpointed: false, awaitingGrade: written.refurbDraft != nil)) {
            $0.percent = written.certified ? 100 : 0
            $0.reportId = written.certificate.reportId
            $0.refurbReportId = written.refurb?.reportId
            $0.certified = written.certified
            $0.error = outcome.error
            $0.message = nil
            $0.checks = outcome.checks.map { "\($0.name) = \($0.observed) (expected \($0.expected))\($0.passed ? "" : ": FAILED")" }
        }
        log("\(path): job \(jobId): \(state), \(written.certified ? "certificate" : "record") \(written.certificate.reportId)")
    }
}

extension Bench {
    /// Records the checks the technician confirmed on a phone (screen, touch, cameras, buttons,
    /// speaker, microphone: `pass` or `fail`) into its refurb report, which waits for the
    /// cosmetic grade; a failed check makes the diagnostics fail and the grade follow.
    public func recordFunctionChecks(_ id: String, results: [String: String], by technician: String) throws(StartError) -> JobView {
        guard let current = job(id) else { throw StartError(status: 404, message: "no job \(id)") }
        guard current.method == PhoneReporting.methodName else { throw StartError(status: 409, message: "job \(id) is not a phone's") }
        guard !results.isEmpty else { throw StartError(status: 400, message: "give at least one check, e.g. {\"screen\": \"pass\"}") }
        for (name, result) in results {
            guard FunctionChecks.technicianChecks.contains(name) else {
                throw StartError(status: 400, message: "unknown check \"\(name)\"; known: \(FunctionChecks.technicianChecks.joined(separator: ", "))")
            }
            guard result == "pass" || result == "fail" else { throw StartError(status: 400, message: "\(name): \"\(result)\" is not pass or fail") }
        }
        guard current.step == .grade else {
            throw StartError(status: 409, message: "job \(id) is not waiting for its grade (\(current.state), step \(current.step)); checks are recorded before the cosmetic grade")
        }
        let checks = results.sorted { $0.key < $1.key }.map { FunctionCheck(name: $0.key, result: $0.value, detail: "confirmed by \(technician)", source: "technician") }
        do throws(LetheError) {
            try store.write { db in
                guard let text = try String.fetchOne(db, sql: "SELECT draft FROM refurbDraft WHERE jobId = ?", arguments: [id]),
                    var draft = try? JSONDecoder().decode(RefurbReport.self, from: Data(text.utf8))
                else { return }
                draft.diagnostics.findings.removeAll { finding in checks.contains { finding.hasPrefix("\($0.name): ") } }
                draft.diagnostics.findings += checks.map(\.summary)
                if checks.contains(where: { $0.result == "fail" }) {
                    draft.diagnostics.verdict = HealthVerdict.fail.rawValue
                    let regraded = RefurbReport.grade(verdict: .fail, status: draft.certificate?.status)
                    draft.grade = regraded.grade
                    draft.gradeReason = regraded.reason
                }
                let encoder = JSONEncoder()
                encoder.outputFormatting = .sortedKeys
                try db.execute(sql: "UPDATE refurbDraft SET draft = ? WHERE jobId = ?", arguments: [String(decoding: try encoder.encode(draft), as: UTF8.self), id])
                _ = try Store.appendAudit(db, kind: "checks.recorded", subject: id, detail: Dictionary(uniqueKeysWithValues: checks.map { ($0.name, $0.result) }).merging(["by": technician]) { $1 })
            }
        } catch {
            throw StartError(status: 503, message: error.message)
        }
        log("job \(id): \(technician) checked \(checks.map { "\($0.name) \($0.result)" }.joined(separator: ", "))")
        update(id) { view in
            var lines = (view.functionChecks ?? []).filter { line in !checks.contains { line.hasPrefix("\($0.name): ") } }
            lines += checks.map(\.summary)
            view.functionChecks = lines
        }
        return job(id)!
    }
}

/// Ends a phone's job that cannot go on: logs why, and moves it to refused (nothing was sent
/// to the phone) or failed (noting a phone that went away).
struct PhoneJobFailure {
    let bench: Bench
    let jobId: String
    let path: String

    func callAsFunction(_ message: String, refused: Bool = false, gone: Bool = false) {
        bench.log("\(path): job \(jobId): \(message)")
        bench.transition(jobId, refused ? .refused : .failed(deviceGone: gone)) { $0.error = message; $0.message = nil }
    }
}

extension Bench {
    /// How a phone job at `path` ends early.
    func phoneJobFailure(jobId: String, path: String) -> PhoneJobFailure { PhoneJobFailure(bench: self, jobId: jobId, path: path) }
}
