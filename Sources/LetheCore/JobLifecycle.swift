/// Where a job is in its life. The raw values are the API's `state` strings.
public enum JobState: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    /// Docked; waits for the technician (or starts by itself, as its profile says).
    case waiting
    case running
    /// Finished: the erase's own verdicts.
    case erased, erasedWithExceptions, notErased, aborted
    /// Stopped because the device went away (unplugged, kill -9 of the process, power cut).
    case interrupted
    /// Never started: the guard, the drive's identity or its capabilities said no.
    case refused

    /// The state an erase's verdict leaves a job in.
    public init(_ status: WipeStatus) {
        switch status {
        case .erased: self = .erased
        case .erasedWithExceptions: self = .erasedWithExceptions
        case .notErased: self = .notErased
        case .aborted: self = .aborted
        }
    }

    /// Whether the job is over (nothing runs, nothing waits to start).
    public var isFinished: Bool { self != .waiting && self != .running }

    /// Whether an erase finished on the device (it may be graded and sold).
    public var erasedTheDevice: Bool { self == .erased || self == .erasedWithExceptions }

    public var description: String { rawValue }
}

/// What a job is doing, or waiting for. The raw values are the API's `step` strings.
public enum JobStep: String, Codable, Sendable, CaseIterable {
    case waiting, diagnose, surface, resume, write, flush, verify, firmware
    /// A phone's factory reset (and its wait for the phone to come back).
    case reset
    case certify
    /// Waiting for the technician's cosmetic grade (the certificate is issued).
    case grade
    /// A grade request is being recorded.
    case grading
    case done

    /// The step an engine progress phase means.
    public init(_ phase: WipeProgress.Phase) {
        switch phase {
        case .write: self = .write
        case .flush: self = .flush
        case .verify: self = .verify
        case .firmware: self = .firmware
        }
    }
}

/// What happens to a job.
public enum JobEvent: Sendable, Equatable {
    /// The technician (or the profile) starts it. `identityChanges` is what differs between the
    /// drive docked for the job and the one at its path now (nil: the same drive).
    case start(identityChanges: String?)
    /// A stopped job is picked up from its checkpoint, on the drive found again.
    case resume(identityChanges: String?)
    /// The running job moved on to another step.
    case step(JobStep)
    /// The erase (or reset) ended with this verdict; `deviceGone` when the device went away,
    /// `checkpointed` when a checkpoint was saved, `awaitingGrade` when the refurb report
    /// waits for the technician's cosmetic grade.
    case finished(WipeStatus, deviceGone: Bool, checkpointed: Bool, awaitingGrade: Bool)
    /// The job ended early: refused (guard, identity, capabilities), or failed with the device
    /// still there (`gone` false) or gone.
    case refused
    case failed(deviceGone: Bool)
    /// The technician aborted it.
    case abort
    /// Its device left, or changed, before it started.
    case unplugged
    case deviceChanged
    /// The cosmetic grade: claimed by one request, released if recording it failed, recorded.
    case claimGrade, releaseGrade, graded
}

/// A transition that is not allowed, in words (an API 409).
public struct JobTransitionError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A job's life as one typed state machine: its state, its step, and whether it can be
/// resumed, changed only by ``apply(_:)`` through the transitions listed there. The identity
/// checks are guards: a start or resume on a drive that is not the one docked is refused.
public struct JobLifecycle: Sendable, Equatable {
    public private(set) var state: JobState
    public private(set) var step: JobStep
    /// A checkpoint exists to resume from (set by ``JobEvent/finished(_:deviceGone:checkpointed:awaitingGrade:)``,
    /// or by a stored job's saved checkpoint).
    public private(set) var hasCheckpoint: Bool

    /// A job in `state` at `step`.
    public init(state: JobState = .waiting, step: JobStep = .waiting, hasCheckpoint: Bool = false) {
        self.state = state
        self.step = step
        self.hasCheckpoint = hasCheckpoint
    }

    /// Whether `POST …/resume` can pick it up: stopped part-way (interrupted or aborted) with
    /// a checkpoint. The one place this is decided.
    public var resumable: Bool { (state == .interrupted || state == .aborted) && hasCheckpoint }

    /// Applies `event`, or throws without changing anything when the job's state does not
    /// allow it. A start or resume whose identity check found changes moves the job to
    /// `refused` (and throws nothing: the refusal is the outcome).
    public mutating func apply(_ event: JobEvent) throws(JobTransitionError) {
        switch (event, state) {
        case (.start(let changes), .waiting):
            (state, step) = changes == nil ? (.running, .diagnose) : (.refused, .done)
        case (.start, _):
            throw JobTransitionError("the job is \(state), not waiting")
        case (.resume(let changes), .interrupted), (.resume(let changes), .aborted):
            guard hasCheckpoint else { throw JobTransitionError("the job is \(state) but has no checkpoint to resume from; start a new job on the device") }
            if changes != nil { throw JobTransitionError("the drive found is not the one the job erased") }
            (state, step) = (.running, .resume)
            hasCheckpoint = true
        case (.resume, _):
            throw JobTransitionError("the job is \(state); only an interrupted or aborted job with a checkpoint resumes")
        case (.step(let next), .running):
            step = next
        case (.step, _):
            throw JobTransitionError("the job is \(state), not running")
        case (.finished(let status, let gone, let checkpointed, let awaitingGrade), .running):
            state = gone ? .interrupted : JobState(status)
            step = awaitingGrade && state.erasedTheDevice ? .grade : .done
            hasCheckpoint = checkpointed && (state == .interrupted || state == .aborted)
        case (.refused, .running), (.refused, .waiting):
            (state, step, hasCheckpoint) = (.refused, .done, false)
        case (.failed(let gone), .running):
            (state, step, hasCheckpoint) = (gone ? .interrupted : .notErased, .done, false)
        case (.finished, _), (.refused, _), (.failed, _):
            throw JobTransitionError("the job is \(state), not running")
        case (.abort, .waiting):
            (state, step) = (.aborted, .done)
        case (.abort, .running):
            break  // the running erase stops at the next block boundary and finishes as aborted
        case (.abort, _):
            throw JobTransitionError("the job is \(state)")
        case (.unplugged, .waiting), (.deviceChanged, .waiting):
            (state, step) = (.interrupted, .done)
        case (.unplugged, _), (.deviceChanged, _):
            break  // a running job learns it from its own I/O; a finished one stays as it is
        case (.claimGrade, _):
            guard step == .grade else { throw JobTransitionError("the job is not waiting for a cosmetic grade (\(state), step \(step.rawValue))") }
            step = .grading
        case (.releaseGrade, _):
            guard step == .grading else { throw JobTransitionError("the job is not being graded") }
            step = .grade
        case (.graded, _):
            guard step == .grading else { throw JobTransitionError("the job is not being graded") }
            step = .done
        }
    }
}
