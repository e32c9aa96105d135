import LetheCore

/// One job as the API and the dashboard show it.
public struct JobView: Codable, Sendable, Equatable {
    public var id: String
    public var device: String
    public var bay: String?
    public var model: String?
    public var serial: String?
    public var profile: String?
    public var method: String
    /// `waiting` (manual start), `running`, then the wipe status, `interrupted` (unplugged) or
    /// `refused`. Changed only through ``apply(_:)`` (the ``JobLifecycle`` transitions).
    public private(set) var state: JobState
    /// `diagnose`, `surface`, `resume`, `write`, `flush`, `verify`, `firmware`, `reset`,
    /// `certify`, `grade` (waiting for the technician's cosmetic grade; the certificate is
    /// issued), `done`. Changed only through ``apply(_:)``.
    public private(set) var step: JobStep
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
    /// Decided by ``JobLifecycle/resumable`` only.
    public private(set) var resumable: Bool?
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

    /// A job in `lifecycle`'s state, for `device`.
    init(
        id: String, device: String, bay: String?, model: String?, serial: String?, profile: String?, method: String,
        lifecycle: JobLifecycle = JobLifecycle(), pass: Int = 0, passCount: Int, percent: Double = 0, reportId: String? = nil,
        certified: Bool? = nil, error: String? = nil
    ) {
        self.id = id
        self.device = device
        self.bay = bay
        self.model = model
        self.serial = serial
        self.profile = profile
        self.method = method
        state = lifecycle.state
        step = lifecycle.step
        resumable = lifecycle.resumable ? true : nil
        self.pass = pass
        self.passCount = passCount
        self.percent = percent
        bytesPerSecond = 0
        self.reportId = reportId
        self.certified = certified
        self.error = error
    }

    /// The job's life as the state machine sees it.
    public var lifecycle: JobLifecycle { JobLifecycle(state: state, step: step, hasCheckpoint: resumable == true) }

    /// Moves the job through one ``JobLifecycle`` transition, or throws (and changes nothing)
    /// when its state does not allow it.
    public mutating func apply(_ event: JobEvent) throws(JobTransitionError) {
        var life = lifecycle
        try life.apply(event)
        state = life.state
        step = life.step
        resumable = life.resumable ? true : nil
    }
}
