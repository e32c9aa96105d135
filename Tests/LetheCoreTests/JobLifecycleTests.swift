import LetheCore
import Testing

/// The job's life as one typed state machine (issue 15): every transition in one place,
/// `resumable` decided once, and the identity check as a guard on start and resume.
@Suite struct JobLifecycleTests {
    @Test func aStartOnTheDockedDriveRunsAndFinishes() throws {
        var job = JobLifecycle()
        try job.apply(.start(identityChanges: nil))
        #expect(job.state == .running && job.step == .diagnose)
        try job.apply(.step(.write))
        try job.apply(.finished(.erased, deviceGone: false, checkpointed: true, awaitingGrade: true))
        #expect(job.state == .erased && job.step == .grade && !job.resumable)
        try job.apply(.claimGrade)
        #expect(throws: JobTransitionError.self, "two grades at once") { try job.apply(.claimGrade) }
        try job.apply(.releaseGrade)
        try job.apply(.claimGrade)
        try job.apply(.graded)
        #expect(job.step == .done)
    }

    @Test func anotherDriveAtTheNodeIsRefusedAtTheTransition() throws {
        var job = JobLifecycle()
        try job.apply(.start(identityChanges: "serial A → B"))
        #expect(job.state == .refused && job.step == .done)
        #expect(throws: JobTransitionError.self) { try job.apply(.start(identityChanges: nil)) }
    }

    @Test func resumableIsDecidedOnce() throws {
        var unplugged = JobLifecycle(state: .running, step: .write)
        try unplugged.apply(.finished(.notErased, deviceGone: true, checkpointed: true, awaitingGrade: false))
        #expect(unplugged.state == .interrupted && unplugged.resumable)
        var noCheckpoint = JobLifecycle(state: .running, step: .write)
        try noCheckpoint.apply(.finished(.aborted, deviceGone: false, checkpointed: false, awaitingGrade: false))
        #expect(noCheckpoint.state == .aborted && !noCheckpoint.resumable)
        #expect(throws: JobTransitionError.self) { try noCheckpoint.apply(.resume(identityChanges: nil)) }
        var failed = JobLifecycle(state: .running, step: .verify)
        try failed.apply(.finished(.notErased, deviceGone: false, checkpointed: true, awaitingGrade: false))
        #expect(!failed.resumable, "a failed erase is not resumed: it is started again")
        try unplugged.apply(.resume(identityChanges: nil))
        #expect(unplugged.state == .running && unplugged.step == .resume && !unplugged.resumable)
        var other = JobLifecycle(state: .interrupted, step: .done, hasCheckpoint: true)
        #expect(throws: JobTransitionError.self, "a resume on another drive") { try other.apply(.resume(identityChanges: "size changed")) }
    }

    @Test func waitingJobsLeaveOnUnplugAbortOrChange() throws {
        for event in [JobEvent.unplugged, .deviceChanged] {
            var job = JobLifecycle()
            try job.apply(event)
            #expect(job.state == .interrupted && job.step == .done)
        }
        var aborted = JobLifecycle()
        try aborted.apply(.abort)
        #expect(aborted.state == .aborted)
        #expect(throws: JobTransitionError.self) { try aborted.apply(.abort) }
        // A running job's unplug is learnt from its own I/O: the event changes nothing.
        var running = JobLifecycle(state: .running, step: .write)
        try running.apply(.unplugged)
        #expect(running.state == .running)
        var finished = JobLifecycle(state: .erased, step: .done)
        #expect(throws: JobTransitionError.self) { try finished.apply(.step(.write)) }
    }
}
