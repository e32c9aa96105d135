import Foundation
import GRDB
import LetheConfig
import LetheCore
import LetheLinux
import LetheReports
import LethePhones
import LetheStore
import LetheSync
import LetheWipe
import Synchronization

/// One job as the API and the dashboard show it.
public struct JobView: Codable, Sendable, Equatable {
    public var id: String
    public var device: String
    public var bay: String?
    public var model: String?
    public var serial: String?
    public var profile: String?
    public var method: String
    /// `waiting` (manual start), `running`, then the wipe status, or `interrupted` (unplugged).
    public var state: String
    /// `diagnose`, `resume`, `write`, `flush`, `verify`, `certify`, `grade` (waiting for the
    /// technician's cosmetic grade; the certificate is issued), `done`.
    public var step: String
    public var pass: Int
    public var passCount: Int
    public var percent: Double
    public var bytesPerSecond: Double
    public var etaSeconds: Double?
    public var reportId: String?
    public var certified: Bool?
    public var error: String?
    /// True when the job stopped part-way (kill -9, power cut, unplug, abort) and left a
    /// checkpoint: `POST /api/v1/jobs/{id}/resume` finishes it over the remaining range.
    public var resumable: Bool?
    /// The technician's cosmetic grade (A to E) once given.
    public var cosmeticGrade: String?
    /// The signed refurb report, once issued (after the cosmetic grade for erased devices).
    public var refurbReportId: String?
    /// The SKU the catalog gave when the device was docked (two-way mode).
    public var sku: String?
    /// What came of asking the catalog (two-way mode): its note, a fallback to the station's
    /// own profile match, or why the job is held for the technician.
    public var catalogNote: String?
    /// What the job is doing or waiting for, in words (a phone's reset: "waiting for the phone
    /// to restart", or what the technician must do on the phone).
    public var message: String?
    /// A phone's battery health and its source, and the verdict against the profile's gate.
    public var battery: String?
    public var batteryVerdict: String?
    /// A phone's out-of-box checks after its reset.
    public var checks: [String]?
    /// A phone's function checks: from the host, then the technician's.
    public var functionChecks: [String]?
}

/// What the daemon needs to run jobs.
public struct BenchSettings: Sendable {
    public var stateDirectory: String
    public var reportDirectory: String
    public var station: StationConfig
    public var profiles: [Profile]
    public var language: ReportLanguage
    public var toolVersion: String
    /// Devices whose job starts by itself whatever their profile says (the `--demo` drive).
    public var autoStartPaths: Set<String> = []
    /// Seconds between erase checkpoints (each one flushes the device first).
    public var checkpointInterval: Double = 5
    /// Two-way mode: ask the catalog what to do with each docked drive (nil: the station's own
    /// profile match decides).
    public var lookup: CatalogLookup?
    /// The adb server's client, for phones (nil: phones are not handled).
    public var adb: ADBClient?
    /// Seconds a phone reset may take to go down, and again to come back.
    public var phoneWaitSeconds = 600.0

    /// Creates settings.
    public init(stateDirectory: String, reportDirectory: String, station: StationConfig, profiles: [Profile], language: ReportLanguage, toolVersion: String) {
        self.stateDirectory = stateDirectory
        self.reportDirectory = reportDirectory
        self.station = station
        self.profiles = profiles
        self.language = language
        self.toolVersion = toolVersion
    }
}

/// The bench: devices present, jobs and their live progress. Thread-safe; jobs run on threads
/// of their own (the engine's I/O never touches the cooperative pool).
public final class Bench: Sendable {
    struct State {
        var devices: [String: DeviceRecord] = [:]
        var jobs: [String: JobView] = [:]
        var order: [String] = []
        var cancellations: [String: WipeCancellation] = [:]
        /// Who each job's device was when it was docked (or found again for a resume): checked
        /// when the job starts, since a path names a device only for a moment.
        var docked: [String: DriveIdentity] = [:]
    }

    let settings: BenchSettings
    /// The station's store (jobs, checkpoints, reports, audit chain).
    public let store: Store
    /// Live events for `GET /api/v1/events`.
    public let events = EventHub()
    /// Counters and gauges for `GET /metrics`.
    public let metrics = BenchMetrics()

    /// The Prometheus exposition text, with the gauges read now.
    public var metricsText: String { metrics.exposition(jobs: jobs, devices: devices.count, streams: events.subscriberCount) }
    private let state = Mutex(State())
    /// Log lines go here (stderr, journald-friendly).
    let log: @Sendable (String) -> Void

    /// Creates a bench showing the store's most recent jobs (those a previous process left
    /// interrupted can be resumed).
    public init(settings: BenchSettings, store: Store, log: @escaping @Sendable (String) -> Void) {
        self.settings = settings
        self.store = store
        self.log = log
        let rows = (try? store.jobs().prefix(50).reversed()) ?? []
        state.withLock { s in
            for row in rows {
                s.jobs[row.id] = view(of: row)
                s.order.append(row.id)
            }
        }
    }

    /// A stored job as the API shows it.
    func view(of row: JobRow) -> JobView {
        let point = checkpoint(row.id)
        let method = WipeMethod.named(row.method)
        let stopped = row.status == "interrupted" || row.status == "aborted"
        let certified = row.reportId.flatMap { id in try? store.read { db in try ReportRow.fetchOne(db, key: id)?.certified } }
        let awaitingGrade = (try? store.refurbDraft(jobId: row.id)) != nil
        let refurb = try? store.read { db in
            try ReportRow.filter(Column("jobId") == row.id && Column("schema") == RefurbReport.schemaName).fetchOne(db)
        }
        var view = JobView(
            id: row.id, device: row.devicePath, bay: nil, model: row.model, serial: row.serial, profile: row.profile, method: row.method,
            state: row.status, step: awaitingGrade ? "grade" : "done", pass: point?.pass ?? 0, passCount: method?.passes.count ?? 0,
            percent: row.status == "erased" || row.status == "erasedWithExceptions" ? 100 : 100 * (point?.writtenFraction ?? 0),
            bytesPerSecond: 0, reportId: row.reportId, certified: certified, error: row.error,
            resumable: stopped && point != nil ? true : nil)
        view.refurbReportId = refurb?.id
        if let asked = try? store.read({ db in try Store.catalogLookup(db, jobId: row.id) }) {
            view.sku = asked.sku
            view.catalogNote = asked.detail
        }
        if let path = refurb?.jsonPath, let data = FileManager.default.contents(atPath: path),
            let file = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let cosmetic = (file["report"] as? [String: Any])?["cosmetic"] as? [String: Any]
        {
            view.cosmeticGrade = cosmetic["grade"] as? String
        }
        return view
    }

    /// A job's saved checkpoint.
    func checkpoint(_ id: String) -> WipeCheckpoint? {
        guard let text = try? store.checkpoint(jobId: id) else { return nil }
        return try? JSONDecoder().decode(WipeCheckpoint.self, from: Data(text.utf8))
    }

    public var devices: [DeviceRecord] { state.withLock { Array($0.devices.values).sorted { $0.path < $1.path } } }
    public var jobs: [JobView] { state.withLock { s in s.order.reversed().compactMap { s.jobs[$0] } } }
    public func job(_ id: String) -> JobView? { state.withLock { $0.jobs[id] } }

    /// A device appeared: remember it, match a profile, and start or queue its job.
    public func deviceAppeared(_ device: DeviceRecord) {
        state.withLock { $0.devices[device.path] = device }
        events.publish(.device(device))
        do {
            try store.recordDeviceSeen(
                path: device.path, serial: device.serial, model: device.model, transport: device.transport.rawValue, sizeBytes: device.sizeBytes)
        } catch {
            log("\(device.path): not recorded in the store: \(error.message)")
        }
        let phone = device.transport == .adb
        guard device.kind == .drive || phone else { return }
        // A phone that restarts during its own reset is not a new job.
        if phone, jobs.contains(where: { $0.device == device.path && $0.state == "running" }) { return }
        guard !device.protected else {
            log("\(device.path): protected, not touched: \(device.protectionReason ?? "")")
            return
        }
        guard let lookup = settings.lookup else { return dock(device, answer: nil) }
        log("\(device.path): asking the catalog what to do with it (\(lookup.url), at most \(CatalogLookup.seconds(lookup.timeout)))")
        let query = CatalogQuery(serial: device.serial, model: device.model, bay: device.bay, device: device.path)
        Task { [self] in
            let answer = await lookup.ask(query)
            guard state.withLock({ $0.devices[device.path] == device }) else {
                return log("\(device.path): removed before the catalog answered")
            }
            dock(device, answer: answer)
        }
    }

    /// What the catalog's answer means for a docked device: the profile it asks for (if this
    /// station has it), its SKU, and a hold when the serial is not the one it expects. Every
    /// failure falls back to the station's own profile match, and says so.
    struct Docking {
        var profile: Profile?
        var row: CatalogLookupRow?
        var notes: [String] = []
        var hold: String?

        init(_ answer: CatalogAnswer?, device: DeviceRecord, profiles: [Profile]) {
            guard let answer else { return }
            var row = CatalogLookupRow(jobId: "", outcome: "", askedAt: Store.iso8601(Date()))
            switch answer {
            case .instructions(let said):
                row.outcome = "instructions"
                row.matchedBy = said.matchedBy
                row.profile = said.profile
                row.sku = said.sku
                row.expectedSerial = said.expectedSerial
                row.note = said.note
                if let name = said.profile {
                    profile = profiles.first { $0.name == name }
                    if profile == nil { notes.append("the catalog asked for profile \(name), which this station does not have: the station's own profile match is used") }
                    if let found = profile, found.resetsPhones != (device.transport == .adb) {
                        profile = nil
                        notes.append("the catalog asked for profile \(name), which is for \(found.resetsPhones ? "phones" : "drives"): the station's own profile match is used")
                    } else if let found = profile, !found.match.matches(device) {
                        profile = nil
                        notes.append("the catalog asked for profile \(name), whose match (\(found.match.summary)) excludes this device: the station's own profile match is used")
                    }
                }
                if let expected = said.expectedSerial, expected != device.serial {
                    hold = "the catalog expected serial \(expected), this device reports \(device.serial ?? "none"): check it is the right device, then start it by hand"
                }
                if let note = said.note { notes.append("catalog: \(note)") }
            case .unknown:
                row.outcome = "unknown"
                notes.append("the catalog has no instructions for this device: the station's own profile match is used")
            case .unavailable(let why):
                row.outcome = "unavailable"
                notes.append("catalog lookup failed (\(why)): the station's own profile match is used")
            }
            let text = ([hold].compactMap { $0 } + notes).joined(separator: "; ")
            row.detail = text.isEmpty ? nil : text
            self.row = row
        }
    }

    /// Matches a profile (the catalog's, else the station's own) and queues the device's job,
    /// starting it when the profile says so and nothing holds it.
    func dock(_ device: DeviceRecord, answer: CatalogAnswer?) {
        let docking = Docking(answer, device: device, profiles: settings.profiles)
        let chosen: Profile
        if let requested = docking.profile {
            chosen = requested
        } else {
            switch ProfileChoice.choose(for: device, among: settings.profiles) {
            case .none:
                return log("\(device.path): no profile matches (\(device.transport.rawValue)); waiting\(docking.row?.detail.map { " (\($0))" } ?? "")")
            case .ambiguous(let tied):
                return log("\(device.path): profiles \(tied.map(\.name).joined(separator: ", ")) tie at priority \(tied[0].priority); fix the profiles")
            case .chosen(let profile):
                chosen = profile
            }
        }
        let auto = (chosen.start == .auto || settings.autoStartPaths.contains(device.path)) && docking.hold == nil
        if let earlier = resumableJob(for: device) {
            if auto {
                log("\(device.path): job \(earlier.id) on this device was interrupted at \(Int(earlier.percent))%: resuming it")
                do throws(StartError) { _ = try resume(earlier.id); return } catch { log("\(device.path): cannot resume \(earlier.id): \(error.message)") }
            } else {
                log("\(device.path): job \(earlier.id) on this device was interrupted at \(Int(earlier.percent))%: resume it, or start the new job")
            }
        }
        let source = docking.profile != nil ? "the catalog chose profile" : "matched profile"
        let waiting = docking.hold != nil ? "held for the technician" : auto ? "starting" : "waiting for the technician"
        log("\(device.path): \(device.model ?? device.transport.rawValue) \(source) \(chosen.name) (\(waiting))\(docking.row?.detail.map { "; \($0)" } ?? "")")
        let id = enqueue(device: device, profile: chosen) { view in
            view.sku = docking.row?.sku
            view.catalogNote = docking.row?.detail
        }
        if var row = docking.row {
            row.jobId = id
            do throws(LetheError) { try store.recordCatalogLookup(row) } catch {
                log("\(device.path): job \(id): the catalog's answer was not recorded (its SKU will be missing from the record): \(error.message)")
            }
        }
        if auto { _ = try? start(id) }
    }

    /// A device left: forget it; a job still running on it stops (and ends as not erased).
    public func deviceRemoved(_ device: DeviceRecord) {
        let running: [WipeCancellation] = state.withLock { s in
            s.devices[device.path] = nil
            var found: [WipeCancellation] = []
            for id in s.order where s.jobs[id]?.device == device.path {
                if s.jobs[id]?.state == "waiting" { s.jobs[id]?.state = "interrupted"; s.jobs[id]?.error = "unplugged before it started" }
                // A phone goes away during its own reset: its job decides what that means.
                if s.jobs[id]?.state == "running", device.transport != .adb, let c = s.cancellations[id] { found.append(c) }
            }
            return found
        }
        for c in running { c.cancel(reason: 19) }
        events.publish(.deviceRemoved(path: device.path))
        for job in jobs where job.device == device.path && job.state == "interrupted" { events.publish(.job(job)) }
        log("\(device.path): removed")
    }

    /// A docked device changed without leaving (a new size or device number: a resize, a
    /// rescan). A job running on it goes on (its own checks decide); a job still waiting no
    /// longer describes it, so it is set aside and the device is docked again.
    public func deviceChanged(_ device: DeviceRecord) {
        let (running, waiting): (Bool, [JobView]) = state.withLock { s in
            s.devices[device.path] = device
            var waiting: [JobView] = []
            var running = false
            for id in s.order where s.jobs[id]?.device == device.path {
                if s.jobs[id]?.state == "running" { running = true }
                if s.jobs[id]?.state == "waiting" {
                    s.jobs[id]?.state = "interrupted"
                    s.jobs[id]?.step = "done"
                    s.jobs[id]?.error = "the device changed before the job started (\(device.identity)); it was docked again as a new job"
                    if let job = s.jobs[id] { waiting.append(job) }
                }
            }
            return (running, waiting)
        }
        events.publish(.device(device))
        if running {
            log("\(device.path): changed while its job runs (\(device.identity)); the job checks the drive itself")
            return
        }
        for job in waiting {
            events.publish(.job(job))
            log("\(device.path): job \(job.id) set aside: the device changed before it started (\(device.identity))")
        }
        if !waiting.isEmpty { deviceAppeared(device) }
    }

    /// The newest resumable job for `device`: same serial, or (for devices without one) same path.
    func resumableJob(for device: DeviceRecord) -> JobView? {
        state.withLock { s in
            s.order.reversed().compactMap { s.jobs[$0] }.first { job in
                guard job.resumable == true else { return false }
                if let serial = job.serial { return serial == device.serial }
                return device.serial == nil && job.device == device.path
            }
        }
    }

    func enqueue(device: DeviceRecord, profile: Profile, adding extra: (inout JobView) -> Void = { _ in }) -> String {
        let id = ReportID.make()
        var view = JobView(
            id: id, device: device.path, bay: device.bay, model: device.model, serial: device.serial, profile: profile.name,
            method: profile.resetsPhones ? PhoneReporting.methodName : profile.method.name, state: "waiting", step: "waiting", pass: 0,
            passCount: profile.resetsPhones ? 0 : profile.method.passes.count,
            percent: 0, bytesPerSecond: 0)
        extra(&view)
        state.withLock {
            $0.jobs[id] = view
            $0.order.append(id)
            if device.kind == .drive { $0.docked[id] = device.identity }
        }
        events.publish(.job(view))
        return id
    }

    /// Why a job could not start.
    public struct StartError: Error, Sendable { public var status: Int; public var message: String }

    /// Starts a waiting job on its own thread.
    public func start(_ id: String) throws(StartError) -> JobView {
        let cancellation = WipeCancellation()
        let view: JobView = try {
            () throws(StartError) -> JobView in
            try state.withLock { s throws(StartError) -> JobView in
                guard var job = s.jobs[id] else { throw StartError(status: 404, message: "no job \(id)") }
                guard job.state == "waiting" else { throw StartError(status: 409, message: "job \(id) is \(job.state), not waiting") }
                job.state = "running"
                job.step = "diagnose"
                s.jobs[id] = job
                s.cancellations[id] = cancellation
                return job
            }
        }()
        let profile = settings.profiles.first { $0.name == view.profile }!
        events.publish(.job(view))
        launch(id, device: view.device, profile: profile, cancellation: cancellation, resume: nil)
        return view
    }

    func launch(_ id: String, device: String, profile: Profile, cancellation: WipeCancellation, resume: WipeCheckpoint?) {
        let thread = Thread { [self] in
            if profile.resetsPhones {
                runPhone(jobId: id, device: device, profile: profile)
            } else {
                run(jobId: id, device: device, profile: profile, cancellation: cancellation, resume: resume)
            }
        }
        thread.name = "lethe-job"
        thread.start()
    }

    /// Finishes an interrupted job from its checkpoint, with the same method and seeds, over
    /// the remaining range. The device must be docked again (same serial, or same path for
    /// devices without one; the engine also checks the size).
    public func resume(_ id: String) throws(StartError) -> JobView {
        guard let point = checkpoint(id) else {
            if job(id) == nil { throw StartError(status: 404, message: "no job \(id)") }
            throw StartError(status: 409, message: "job \(id) has no checkpoint to resume from; start a new job on the device")
        }
        let cancellation = WipeCancellation()
        let (view, profile): (JobView, Profile) = try state.withLock { s throws(StartError) -> (JobView, Profile) in
            guard var job = s.jobs[id] else { throw StartError(status: 404, message: "no job \(id)") }
            guard job.resumable == true else { throw StartError(status: 409, message: "job \(id) is \(job.state); only an interrupted or aborted job with a checkpoint resumes") }
            let present = s.devices.values.first { device in
                if let serial = job.serial { return device.serial == serial }
                return device.serial == nil && device.path == job.device
            }
            guard let device = present else {
                throw StartError(status: 409, message: "dock the device first: \(job.serial.map { "serial \($0)" } ?? job.device) is not present")
            }
            if let busy = s.order.first(where: { s.jobs[$0]?.device == device.path && s.jobs[$0]?.state == "running" }) {
                throw StartError(status: 409, message: "job \(busy) is already running on \(device.path)")
            }
            guard let profile = settings.profiles.first(where: { $0.name == job.profile }) else {
                throw StartError(status: 409, message: "profile \(job.profile ?? "?") of job \(id) is no longer loaded")
            }
            job.device = device.path
            job.bay = device.bay
            job.state = "running"
            job.step = "resume"
            s.docked[id] = device.identity
            job.error = nil
            job.resumable = nil
            s.jobs[id] = job
            s.cancellations[id] = cancellation
            return (job, profile)
        }
        log("\(view.device): job \(id): resuming at pass \(point.pass) of \(point.patterns.count) (\(point.phase.rawValue), byte \(point.offset))")
        events.publish(.job(view))
        metrics.resumes.increment()
        launch(id, device: view.device, profile: profile, cancellation: cancellation, resume: point)
        return view
    }

    /// Asks a running job to stop at the next block boundary.
    public func abort(_ id: String) throws(StartError) -> JobView {
        let job = try state.withLock { s throws(StartError) -> JobView in
            guard var job = s.jobs[id] else { throw StartError(status: 404, message: "no job \(id)") }
            switch job.state {
            case "running": s.cancellations[id]?.cancel(reason: 15)
            case "waiting": job.state = "aborted"; job.step = "done"; s.jobs[id] = job
            default: throw StartError(status: 409, message: "job \(id) is \(job.state)")
            }
            return job
        }
        events.publish(.job(job))
        return job
    }

    func update(_ id: String, _ change: (inout JobView) -> Void) {
        let changed: JobView? = state.withLock { s in
            guard var job = s.jobs[id] else { return nil }
            change(&job)
            s.jobs[id] = job
            return job
        }
        if let changed { events.publish(.job(changed)) }
    }

    /// What a new event stream starts with: every device and job as they are now.
    public var snapshotEvents: [BenchEvent] {
        devices.map { .device($0) } + jobs.reversed().map { .job($0) }
    }

    /// The whole job: guard, diagnose, erase, verify, certify, record. Blocking; own thread.
    func run(jobId: String, device path: String, profile: Profile, cancellation: WipeCancellation, resume: WipeCheckpoint?) {
        func fail(_ message: String, state: String = "notErased") {
            log("\(path): job \(jobId): \(message)")
            update(jobId) { $0.state = state; $0.step = "done"; $0.error = message }
        }
        do {
            // The device at this path must still be the one docked for this job.
            if let expected = state.withLock({ $0.docked[jobId] }) {
                guard let current = DeviceDiscovery.drive(named: (path as NSString).lastPathComponent) else {
                    return fail("refused: \(path) is gone (the drive docked for this job was \(expected))", state: "refused")
                }
                if let changes = expected.differences(from: current.identity) {
                    return fail("refused: \(path) is not the drive docked for this job (\(changes)); another drive took its place. Nothing was written: dock it again", state: "refused")
                }
            }
            let target = try LinuxBlockDevice.inspect(path, allowFile: false)
            guard target.protection.isEmpty else {
                return fail("refused: " + target.protection.map(\.description).joined(separator: "; "), state: "refused")
            }
            let reporting = try Reporting(
                directory: settings.reportDirectory, stateDirectory: settings.stateDirectory, station: settings.station, target: target,
                operatorName: nil, jobId: jobId)
            reporting.thresholds = profile.thresholds
            if profile.smart { reporting.diagnoseBeforeErasing() }
            let opened = try LinuxBlockDevice(target: target, access: .readWrite)
            let onProgress: (WipeProgress) -> Void = { progress in
                self.update(jobId) {
                    $0.step = progress.phase.rawValue
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
            update(jobId) { $0.step = "certify" }
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
            update(jobId) {
                $0.state = gone ? "interrupted" : outcome.status.rawValue
                $0.resumable = (gone || outcome.status == .aborted) && checkpointed ? true : nil
                $0.step = written?.refurbDraft != nil ? "grade" : "done"
                $0.refurbReportId = written?.refurb?.reportId
                $0.percent = outcome.status == .erased || outcome.status == .erasedWithExceptions ? 100 : $0.percent
                $0.reportId = written?.certificate.reportId
                $0.certified = written?.certified
                $0.error = outcome.error ?? (gone ? "unplugged during the job" : nil)
            }
            log("\(path): job \(jobId): \(gone ? "interrupted (the device went away)" : outcome.status.rawValue)\(written.map { ", \($0.certified ? "certificate" : "record") \($0.certificate.reportId)" } ?? "")")
        } catch where error.code == .unsupported || error.code == .protectedDevice || error.code == .identityChanged {
            fail("refused: \(error.description)", state: "refused")
        } catch {
            fail(error.description)
        }
    }

    /// The profile's surface scan before the erase: step `surface`, its progress in percent,
    /// and its verdict in the log. The erase goes ahead whatever the verdict: a failing drive
    /// still holds data; the refurb report grades it.
    func scanSurface(
        jobId: String, path: String, mode: SurfaceScanMode, profile: Profile, device: any BlockDevice, reporting: Reporting,
        cancellation: WipeCancellation
    ) {
        update(jobId) { $0.step = "surface"; $0.percent = 0 }
        log("\(path): job \(jobId): reading the surface (\(mode.rawValue)) before erasing")
        var last = ContinuousClock.now
        let scan = reporting.scanSurface(device, mode: mode, thresholds: profile.surfaceThresholds, cancellation: cancellation) { done, total in
            guard ContinuousClock.now - last > .milliseconds(500) else { return }
            last = ContinuousClock.now
            self.update(jobId) { $0.percent = total > 0 ? 100 * Double(done) / Double(total) : 100 }
        }
        log("\(path): job \(jobId): surface scan \(scan.verdict.rawValue): \(scan.findings.joined(separator: "; "))")
    }

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
            guard job.step == "grade" else {
                throw StartError(status: 409, message: "job \(id) is not waiting for a cosmetic grade (\(job.state), step \(job.step))")
            }
            job.step = "grading"
            s.jobs[id] = job
        }
        func release(_ status: Int, _ message: String) -> StartError {
            update(id) { $0.step = "grade" }
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
        let certificate = (try? store.read { db in try ReportRow.filter(Column("jobId") == id && Column("schema") == WipeCertificate.schemaName).fetchOne(db) }) ?? nil
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
        update(id) {
            $0.step = "done"
            $0.cosmeticGrade = cosmetic.grade
            $0.refurbReportId = written.reportId
        }
        return job(id)!
    }
}
