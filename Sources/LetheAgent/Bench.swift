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
    /// usbmuxd's client, for iPhones (nil: iPhones are not handled).
    public var iphones: IPhoneHost?
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
    let state = Mutex(State())
    /// Log lines go here (stderr, journald-friendly).
    let log: @Sendable (String) -> Void
    /// Bay and serial by device path, for the fields of the log's journal entries.
    public let labels: DeviceLabels

    /// Creates a bench showing the store's most recent jobs (those a previous process left
    /// interrupted can be resumed).
    public init(settings: BenchSettings, store: Store, labels: DeviceLabels = DeviceLabels(), log: @escaping @Sendable (String) -> Void) {
        self.settings = settings
        self.store = store
        self.labels = labels
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
        let certified = row.reportId.flatMap { id in try? store.read { db in try ReportRow.fetchOne(db, key: id)?.certified } }
        let awaitingGrade = (try? store.refurbDraft(jobId: row.id)) != nil
        let refurb = try? store.read { db in
            try ReportRow.filter(Column("jobId") == row.id && Column("schema") == RefurbReport.schemaName).fetchOne(db)
        }
        let state = JobState(rawValue: row.status) ?? .notErased
        var view = JobView(
            id: row.id, device: row.devicePath, bay: nil, model: row.model, serial: row.serial, profile: row.profile, method: row.method,
            lifecycle: JobLifecycle(state: state, step: awaitingGrade ? .grade : .done, hasCheckpoint: point != nil),
            pass: point?.pass ?? 0, passCount: method?.passes.count ?? 0,
            percent: state.erasedTheDevice ? 100 : 100 * (point?.writtenFraction ?? 0),
            reportId: row.reportId, certified: certified, error: row.error)
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
        labels.note(device)
        state.withLock { $0.devices[device.path] = device }
        events.publish(.device(device))
        do {
            try store.recordDeviceSeen(
                path: device.path, serial: device.serial, model: device.model, transport: device.transport.rawValue, sizeBytes: device.sizeBytes)
        } catch {
            log("\(device.path): not recorded in the store: \(error.message)")
        }
        let phone = device.transport == .adb || device.transport == .ios
        guard device.kind == .drive || phone else { return }
        // A phone that restarts during its own reset is not a new job.
        if phone, jobs.contains(where: { $0.device == device.path && $0.state == .running }) { return }
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
        // A locked self-encrypting drive: named now, with the next step, and never started into
        // an overwrite that could only fail.
        let lockedStep = chosen.method.firmware?.family == .tcg ? nil : device.lockedNextStep
        let auto = (chosen.start == .auto || settings.autoStartPaths.contains(device.path)) && docking.hold == nil && lockedStep == nil
        if let earlier = resumableJob(for: device) {
            if auto {
                log("\(device.path): job \(earlier.id) on this device was interrupted at \(Int(earlier.percent))%: resuming it")
                do throws(StartError) { _ = try resume(earlier.id); return } catch { log("\(device.path): cannot resume \(earlier.id): \(error.message)") }
            } else {
                log("\(device.path): job \(earlier.id) on this device was interrupted at \(Int(earlier.percent))%: resume it, or start the new job")
            }
        }
        let source = docking.profile != nil ? "the catalog chose profile" : "matched profile"
        let waiting = lockedStep != nil ? "held: locked" : docking.hold != nil ? "held for the technician" : auto ? "starting" : "waiting for the technician"
        log("\(device.path): \(device.model ?? device.transport.rawValue) \(source) \(chosen.name) (\(waiting))\(docking.row?.detail.map { "; \($0)" } ?? "")")
        if let lockedStep { log("\(device.path): \(lockedStep)") }
        let id = enqueue(device: device, profile: chosen) { view in
            view.sku = docking.row?.sku
            view.catalogNote = docking.row?.detail
            view.message = lockedStep
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
                if s.jobs[id]?.state == .waiting, (try? s.jobs[id]?.apply(.unplugged)) != nil { s.jobs[id]?.error = "unplugged before it started" }
                // A phone goes away during its own reset: its job decides what that means.
                if s.jobs[id]?.state == .running, device.kind != .phone, let c = s.cancellations[id] { found.append(c) }
            }
            return found
        }
        for c in running { c.cancel(reason: 19) }
        events.publish(.deviceRemoved(path: device.path))
        for job in jobs where job.device == device.path && job.state == .interrupted { events.publish(.job(job)) }
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
                if s.jobs[id]?.state == .running { running = true }
                if s.jobs[id]?.state == .waiting, (try? s.jobs[id]?.apply(.deviceChanged)) != nil {
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
            method: profile.resetsPhones ? PhoneReporting.methodName : profile.method.name,
            passCount: profile.resetsPhones ? 0 : profile.method.passes.count)
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

    /// What differs between the drive docked for job `id` and the one at `path` now (nil: the
    /// same drive, or a phone). A drive that is gone is a difference too.
    func identityChanges(_ id: String, path: String) -> String? {
        guard let expected = state.withLock({ $0.docked[id] }) else { return nil }
        guard let current = DeviceDiscovery.drive(named: (path as NSString).lastPathComponent) else {
            return "\(path) is gone (the drive docked for this job was \(expected))"
        }
        return expected.differences(from: current.identity)
    }

    /// Starts a waiting job on its own thread. The start is guarded: when the drive at the
    /// job's path is not the one docked for it, the job is refused and nothing is written.
    /// `method` may replace the profile's method with a TCG revert (for a locked
    /// self-encrypting drive), and `credential` carries its PSID, SID or Admin1 password: kept in
    /// memory for the job's session only, never logged or stored.
    public func start(_ id: String, method override: String? = nil, credential: [UInt8]? = nil) throws(StartError) -> JobView {
        let cancellation = WipeCancellation()
        guard let path = job(id)?.device else { throw StartError(status: 404, message: "no job \(id)") }
        var replacement: WipeMethod?
        if let override {
            guard let method = WipeMethod.named(override), method.firmware?.family == .tcg else {
                throw StartError(status: 400, message: "method: only tcg-psid-revert, tcg-revert-sp or tcg-crypto-erase may replace the profile's method at start, not \"\(override)\"")
            }
            replacement = method
        }
        let effective = replacement?.firmware ?? job(id).flatMap { WipeMethod.named($0.method)?.firmware }
        if effective == .tcgPsidRevert {
            guard TCGRevert.isPSID(String(decoding: credential ?? [], as: UTF8.self)) else {
                throw StartError(status: 400, message: "psid: a PSID is 32 letters and digits (the label shows it after \"PSID:\"); nothing was sent")
            }
        }
        if effective == .tcgCryptoErase, credential?.isEmpty ?? true {
            throw StartError(status: 400, message: "password: tcg-crypto-erase needs the owner's Admin1 password of the drive's Locking SP; nothing was sent")
        }
        if let job = job(id), job.state == .waiting, effective?.family != .tcg,
            let locked = state.withLock({ $0.devices[path] })?.lockedNextStep
        {
            throw StartError(status: 409, message: "job \(id) refused: \(path) is \(locked)")
        }
        let changes = identityChanges(id, path: path)
        let view: JobView = try {
            () throws(StartError) -> JobView in
            try state.withLock { s throws(StartError) -> JobView in
                guard var job = s.jobs[id] else { throw StartError(status: 404, message: "no job \(id)") }
                do throws(JobTransitionError) { try job.apply(.start(identityChanges: changes)) } catch {
                    throw StartError(status: 409, message: "job \(id): \(error.description)")
                }
                if let changes { job.error = Self.notTheDockedDrive(path, changes) }
                if let replacement, changes == nil { job.method = replacement.name }
                s.jobs[id] = job
                if job.state == .running { s.cancellations[id] = cancellation }
                return job
            }
        }()
        events.publish(.job(view))
        if let changes {
            log("\(path): job \(id): refused: \(Self.notTheDockedDrive(path, changes))")
            throw StartError(status: 409, message: "job \(id) refused: \(Self.notTheDockedDrive(path, changes))")
        }
        var profile = settings.profiles.first { $0.name == view.profile }!
        if let replacement {
            profile.method = replacement
            log("\(path): job \(id): started with \(replacement.name) in place of the profile's \(profile.name) method")
        }
        launch(id, device: view.device, profile: profile, cancellation: cancellation, resume: nil, credential: credential)
        return view
    }

    /// The refusal's words when another drive is at a job's path.
    static func notTheDockedDrive(_ path: String, _ changes: String) -> String {
        "\(path) is not the drive docked for this job (\(changes)); another drive took its place. Nothing was written: dock it again"
    }

    /// Applies a lifecycle event to job `id`, with any other changes, and publishes it. A
    /// transition the job's state does not allow changes nothing and is logged. Returns the job.
    @discardableResult
    func transition(_ id: String, _ event: JobEvent, _ change: (inout JobView) -> Void = { _ in }) -> JobView? {
        let result: (job: JobView?, problem: String?) = state.withLock { s in
            guard var job = s.jobs[id] else { return (nil, nil) }
            do throws(JobTransitionError) { try job.apply(event) } catch { return (nil, error.description) }
            change(&job)
            s.jobs[id] = job
            return (job, nil)
        }
        if let problem = result.problem { log("job \(id): \(event) not applied: \(problem)") }
        if let job = result.job { events.publish(.job(job)) }
        return result.job
    }

    func launch(_ id: String, device: String, profile: Profile, cancellation: WipeCancellation, resume: WipeCheckpoint?, credential: [UInt8]? = nil) {
        let thread = Thread { [self] in
            if profile.resetsPhones, device.hasPrefix("ios:") {
                runIPhone(jobId: id, device: device, profile: profile)
            } else if profile.resetsPhones {
                runPhone(jobId: id, device: device, profile: profile, cancellation: cancellation)
            } else {
                run(jobId: id, device: device, profile: profile, cancellation: cancellation, resume: resume, credential: credential)
            }
            // What the job's threads freed (worker stacks, the PDF's fonts and surfaces) stays in
            // the C allocator's per-thread arenas otherwise: after 16 jobs at once the daemon
            // held some 280 MiB it no longer used. Hand it back to the kernel.
            ProcessMemory.returnFreedMemory()
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
            if let busy = s.order.first(where: { s.jobs[$0]?.device == device.path && s.jobs[$0]?.state == .running }) {
                throw StartError(status: 409, message: "job \(busy) is already running on \(device.path)")
            }
            guard let profile = settings.profiles.first(where: { $0.name == job.profile }) else {
                throw StartError(status: 409, message: "profile \(job.profile ?? "?") of job \(id) is no longer loaded")
            }
            // Found by serial (or path and no serial): the same drive; the engine checks the size.
            do throws(JobTransitionError) { try job.apply(.resume(identityChanges: nil)) } catch {
                throw StartError(status: 409, message: "job \(id): \(error.description)")
            }
            job.device = device.path
            job.bay = device.bay
            s.docked[id] = device.identity
            job.error = nil
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
            do throws(JobTransitionError) { try job.apply(.abort) } catch {
                throw StartError(status: 409, message: "job \(id): \(error.description)")
            }
            // A running erase stops at the next block boundary and finishes as aborted.
            if job.state == .running { s.cancellations[id]?.cancel(reason: 15) }
            s.jobs[id] = job
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

}
