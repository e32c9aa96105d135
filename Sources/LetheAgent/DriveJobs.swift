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
    /// The whole job: guard, diagnose, erase, verify, certify, record. Blocking; own thread.
    func run(jobId: String, device path: String, profile: Profile, cancellation: WipeCancellation, resume: WipeCheckpoint?, credential: [UInt8]? = nil) {
        func fail(_ message: String, refused: Bool = false, gone: Bool = false) {
            log("\(path): job \(jobId): \(message)")
            transition(jobId, refused ? .refused : .failed(deviceGone: gone)) { $0.error = message }
        }
        do {
            // Checked again on this thread: the device must still be the one docked for the job.
            if let changes = identityChanges(jobId, path: path) {
                return fail("refused: \(Self.notTheDockedDrive(path, changes))", refused: true)
            }
            let target = try LinuxBlockDevice.inspect(path, allowFile: false)
            guard target.protection.isEmpty else {
                return fail("refused: " + target.protection.map(\.description).joined(separator: "; "), refused: true)
            }
            let reporting = try Reporting(
                directory: settings.reportDirectory, stateDirectory: settings.stateDirectory, station: settings.station, target: target,
                operatorName: nil, jobId: jobId)
            reporting.thresholds = profile.thresholds
            if profile.smart { reporting.diagnoseBeforeErasing() }
            let opened = try LinuxBlockDevice(target: target, access: .readWrite)
            let onProgress: (WipeProgress) -> Void = { progress in
                self.transition(jobId, .step(JobStep(progress.phase))) {
                    $0.pass = progress.pass
                    $0.percent = progress.bytesTotal > 0 ? 100 * Double(progress.bytesDone) / Double(progress.bytesTotal) : 0
                    // The flush has no rate of its own: keep showing the last one.
                    if progress.bytesPerSecond > 0 { $0.bytesPerSecond = progress.bytesPerSecond }
                    if progress.etaSeconds != nil { $0.etaSeconds = progress.etaSeconds }
                }
            }
            if let mode = profile.surfaceScan {
                if resume == nil {
                    scanSurface(jobId: jobId, path: path, mode: mode, profile: profile, device: opened, reporting: reporting, cancellation: cancellation)
                } else {
                    log("\(path): job \(jobId): resuming an erase: the surface is not read again (the refurb report will have no surface scan)")
                }
            }
            var method = profile.method
            var verification: VerificationMode? = profile.verification
            var methodChoice: String?
            var checkpointed = false
            var outcome: WipeOutcome
            var firmwarePurge: FirmwarePurge?
            if method.usesFirmware {
                var firmwareSettings = FirmwarePlanner.Settings()
                firmwareSettings.openHiddenAreas = profile.openHiddenAreas
                firmwareSettings.credential = credential
                switch try FirmwarePlanner.plan(target: target, device: opened, method: method, settings: firmwareSettings, cancellation: cancellation) {
                case .firmware(let purge, let firmware):
                    firmwarePurge = purge
                    method = firmware
                case .overwrite(let clear, let choice):
                    method = clear
                    verification = nil
                    methodChoice = choice
                    log("\(path): job \(jobId): \(choice)")
                }
            }
            reporting.started = Date()
            if let purge = firmwarePurge {
                try reporting.recordStart(method: method, profile: profile.name)
                log("\(path): job \(jobId): erasing with \(method.name) (the drive's own erase), then a read-back of known data")
                outcome = purge.run(progress: onProgress)
            } else {
                // An ATA drive's hidden sectors: refused unless the profile opens them; opened
                // before the first write, and the device opened again at its new size.
                let hidden = try FirmwarePlanner.hiddenAreasBeforeOverwrite(target: target, open: profile.openHiddenAreas)
                var device: any BlockDevice = opened
                if hidden.needsOpening {
                    try hidden.open()
                    log("\(path): job \(jobId): \(hidden.areas?.actions.joined(separator: "; ") ?? "")")
                    device = try LinuxBlockDevice(reopening: opened, target: target)
                }
                var options = WipeOptions(method: method, verification: verification, progressInterval: 0.5)
                options.checkpointInterval = settings.checkpointInterval
                let engine = try WipeEngine(device: device, options: options, cancellation: cancellation, resumingFrom: resume)
                if let resume {
                    try reporting.recordResume(from: resume)
                } else {
                    try reporting.recordStart(method: method, profile: profile.name)
                }
                log("\(path): job \(jobId): erasing with \(method.name), verification \(options.verification.rawValue)")
                outcome = engine.run(progress: onProgress, checkpoint: { point in
                    do throws(LetheError) {
                        try reporting.saveCheckpoint(point)
                        checkpointed = true
                    } catch {
                        log("\(path): job \(jobId): checkpoint not saved (a crash now restarts this pass): \(error.message)")
                    }
                })
                outcome.methodChoice = methodChoice
                outcome.hiddenAreas = hidden.areas
            }
            transition(jobId, .step(.certify))
            var written: Reporting.Written?
            do {
                // An erased device waits for the technician's cosmetic grade before its refurb report.
                written = try reporting.write(
                    outcome: outcome, method: method, language: settings.language, toolVersion: settings.toolVersion,
                    awaitCosmeticGrade: outcome.status == .erased || outcome.status == .erasedWithExceptions)
            } catch {
                log("\(path): job \(jobId): report not written: \(error)")
            }
            // Unplugged: the remove event may come before or after the first failed request.
            let gone = cancellation.reason == 19 || outcome.deviceVanished
            try reporting.recordFinish(outcome: outcome, written: written, status: gone ? "interrupted" : nil)
            metrics.finished(outcome, status: gone ? "interrupted" : outcome.status.rawValue, certified: written?.certified ?? false)
            transition(jobId, .finished(outcome.status, deviceGone: gone, checkpointed: checkpointed, awaitingGrade: written?.refurbDraft != nil)) {
                $0.refurbReportId = written?.refurb?.reportId
                $0.percent = outcome.status == .erased || outcome.status == .erasedWithExceptions ? 100 : $0.percent
                $0.reportId = written?.certificate.reportId
                $0.certified = written?.certified
                $0.error = outcome.error ?? (gone ? "unplugged during the job" : nil)
            }
            log("\(path): job \(jobId): \(gone ? "interrupted (the device went away)" : outcome.status.rawValue)\(written.map { ", \($0.certified ? "certificate" : "record") \($0.certificate.reportId)" } ?? "")")
        } catch where error.code == .unsupported || error.code == .protectedDevice || error.code == .identityChanged {
            fail("refused: \(error.description)", refused: true)
        } catch {
            fail(error.description, gone: error.code == .deviceVanished)
        }
    }

    /// The profile's surface scan before the erase: step `surface`, its progress in percent,
    /// and its verdict in the log. The erase goes ahead whatever the verdict: a failing drive
    /// still holds data; the refurb report grades it.
    func scanSurface(
        jobId: String, path: String, mode: SurfaceScanMode, profile: Profile, device: any BlockDevice, reporting: Reporting,
        cancellation: WipeCancellation
    ) {
        transition(jobId, .step(.surface)) { $0.percent = 0 }
        log("\(path): job \(jobId): reading the surface (\(mode.rawValue)) before erasing")
        var last = ContinuousClock.now
        let scan = reporting.scanSurface(device, mode: mode, thresholds: profile.surfaceThresholds, cancellation: cancellation) { done, total in
            guard ContinuousClock.now - last > .milliseconds(500) else { return }
            last = ContinuousClock.now
            self.update(jobId) { $0.percent = total > 0 ? 100 * Double(done) / Double(total) : 100 }
        }
        log("\(path): job \(jobId): surface scan \(scan.verdict.rawValue): \(scan.findings.joined(separator: "; "))")
    }
}
