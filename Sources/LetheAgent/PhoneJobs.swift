import Foundation
import LetheCore
import LethePhones

extension Bench {
    /// A phone's job: inspect (identity, battery, locks), refuse what cannot be certified,
    /// reset by the profile's flow, check the out-of-box state, certify, then wait for the
    /// technician's cosmetic grade. Blocking; own thread.
    func runPhone(jobId: String, device path: String, profile: Profile) {
        let serial = String(path.dropFirst("adb:".count))
        func fail(_ message: String, state: String = "notErased") {
            log("\(path): job \(jobId): \(message)")
            update(jobId) { $0.state = state; $0.step = "done"; $0.error = message; $0.message = nil }
        }
        guard let client = settings.adb else { return fail("phones are not enabled on this station (no adb client)", state: "refused") }
        let phone: PhoneInspection
        do throws(LetheError) {
            phone = try PhoneProbe.inspect(client, serial: serial)
        } catch {
            return fail("cannot inspect the phone: \(error.message)", state: error.code == .deviceVanished ? "interrupted" : "notErased")
        }
        let battery = phone.battery?.verdict(threshold: profile.batteryMinHealthPercent)
        update(jobId) {
            $0.serial = phone.identity.serial ?? $0.serial
            $0.model = phone.identity.model ?? $0.model
            $0.battery = phone.battery?.healthPercent.map { "\($0.value)% (\($0.source))" }
            $0.batteryVerdict = battery?.rawValue
        }
        if let refusal = FactoryReset.refusal(phone) { return fail("refused: \(refusal)", state: "refused") }
        let flow: ResetFlow
        do throws(LetheError) {
            flow = try FactoryReset.choose(phone, requested: profile.factoryReset?.flow.flatMap(ResetFlow.init(rawValue:)))
        } catch {
            return fail("refused: \(error.message)", state: "refused")
        }
        let reporting: PhoneReporting
        do throws(LetheError) {
            reporting = try PhoneReporting(
                directory: settings.reportDirectory, stateDirectory: settings.stateDirectory, station: settings.station, phone: phone, operatorName: nil,
                jobId: jobId)
            reporting.bay = job(jobId)?.bay
            try reporting.recordStart(profile: profile.name, flow: flow)
        } catch {
            return fail("not started: \(error.message)")
        }
        log("\(path): job \(jobId): \(phone.identity.model ?? "phone"), \(flow.title)")
        update(jobId) { $0.step = "reset"; $0.message = flow == .guided ? ResetFlow.guidedInstructions : "resetting: \(flow.title)" }
        let outcome = FactoryReset.run(client, phone: phone, flow: flow, waitSeconds: settings.phoneWaitSeconds) { said in
            self.log("\(path): job \(jobId): \(said)")
            self.update(jobId) { $0.message = said }
        }
        update(jobId) { $0.step = "certify" }
        let written: Reporting.Written
        do {
            written = try reporting.finish(
                outcome, threshold: profile.batteryMinHealthPercent, language: settings.language, toolVersion: settings.toolVersion,
                awaitCosmeticGrade: true)
        } catch {
            return fail("the certificate could not be written: \(error)")
        }
        let state = outcome.interrupted ? "interrupted" : written.certified ? "erased" : "notErased"
        metrics.finishedPhone(status: state, certified: written.certified, seconds: outcome.finishedAt.timeIntervalSince(outcome.startedAt))
        update(jobId) {
            $0.state = state
            $0.step = written.refurbDraft != nil ? "grade" : "done"
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
