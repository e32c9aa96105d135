import LetheCore

/// The NVMe Sanitize of a firmware purge, followed in the Sanitize Status log, with NVMe 2.1's
/// Media Verification state where the controller has it: the controller keeps the sanitized
/// media readable, undeallocated, until the host has read it back and says it may go on, so
/// the read-back proves what the media holds rather than what deallocated blocks return.
extension FirmwarePurge {
    func nvmeSanitize(_ progress: (WipeProgress) -> Void) throws(Failure) {
        let verify = options.mediaVerification && capabilities.nvme?.mediaVerification == true
        try send(NvmeCommand.sanitize(options.method, enterMediaVerification: verify))
        var lastState: NvmeSanitizeStatus?
        try poll(progress, what: "the sanitize") { () throws(Failure) -> (done: Bool, fraction: Double?, failed: String?) in
            let state = try sanitizeStatus()
            lastState = state
            if driveEstimateSeconds == nil { driveEstimateSeconds = state.estimatedSeconds }
            if state.failed {
                sanitizeFailed = true
                return (true, nil, "the Sanitize Status log says the sanitize failed (SSTAT 3)")
            }
            // Checked before "in progress": a controller in Media Verification may still say so.
            if verify, state.inMediaVerification {
                log(NvmeCommand.sanitizeStatusLog, answer: "SSTAT \(state.state), SSI 5h (Media Verification)", succeeded: true)
                inMediaVerification = true
                return (true, 1, nil)
            }
            if state.inProgress { return (false, Double(state.progress) / 65536, nil) }
            log(NvmeCommand.sanitizeStatusLog, answer: "SSTAT \(state.state), SPROG \(state.progress)", succeeded: state.completed)
            return state.completed ? (true, 1, nil) : (true, nil, "the Sanitize Status log says no sanitize has completed (SSTAT \(state.state))")
        }
        if verify, !inMediaVerification {
            let ssi = lastState?.sanitizeState.map { "SSI \($0)h" } ?? "no SSI in the log"
            driveChecks.append(ReportCheck(
                name: Self.mediaVerificationCheck, expected: Self.mediaVerificationExpected,
                observed: "the controller reports Media Verification (SANICAP bit 3) but completed the sanitize without entering it (\(ssi)), so the read-back read the media after deallocation",
                passed: true))
        }
    }

    /// After the read-back: Exit Media Verification State, then wait for the deallocation.
    func exitMediaVerification() throws(Failure) {
        guard inMediaVerification else { return }
        try send(NvmeCommand.sanitizeExitMediaVerification)
        var final = "SSTAT 1h"
        try poll({ _ in }, what: "the deallocation after media verification") { () throws(Failure) -> (done: Bool, fraction: Double?, failed: String?) in
            let state = try sanitizeStatus()
            if state.failed {
                sanitizeFailed = true
                return (true, nil, "the Sanitize Status log says the deallocation after media verification failed (SSTAT 3, SSI \(state.sanitizeState ?? 0)h)")
            }
            if state.inMediaVerification || state.deallocatingAfterVerification || state.inProgress { return (false, nil, nil) }
            final = "SSTAT \(state.state)h, SSI \(state.sanitizeState.map { "\($0)h" } ?? "absent")"
            log(NvmeCommand.sanitizeStatusLog, answer: final, succeeded: state.completed)
            return state.completed ? (true, 1, nil) : (true, nil, "the Sanitize Status log says the sanitize did not complete after media verification (SSTAT \(state.state))")
        }
        inMediaVerification = false
        driveChecks.append(ReportCheck(
            name: Self.mediaVerificationCheck, expected: Self.mediaVerificationExpected,
            observed: "the sample blocks were read in the Media Verification state (SSI 5h); then Exit Media Verification State (SANACT 5h), and the controller deallocated and completed (\(final))",
            passed: true))
    }

    func sanitizeStatus() throws(Failure) -> NvmeSanitizeStatus {
        let bytes = try send(NvmeCommand.sanitizeStatusLog, quiet: true).data
        do throws(IdentifyParseError) {
            return try NvmeSanitizeStatus(bytes: bytes, method: options.method)
        } catch {
            throw Failure(message: error.message)
        }
    }

    static let mediaVerificationCheck = "media verification (NVMe 2.1 EMVS)"
    static let mediaVerificationExpected = "the read-back reads the sanitized media itself, in the Media Verification state, before the controller deallocates it"
}
