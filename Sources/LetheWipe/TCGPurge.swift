import LetheCore

/// The TCG methods of a firmware purge: a Revert of the Admin SP by PSID or SID, or GenKey on
/// every locking range as the owner's Admin1, proven as every firmware erase is, by known data
/// written before and read back after.
///
/// A locked drive refuses reads and writes, so no known data can go on it: it is reverted once
/// to open it, then the known data is written, then it is reverted again, and that second
/// revert is the one the read-back proves. The credential is never recorded: the record's
/// copy of each request masks it.
extension FirmwarePurge {
    /// Opens a locked drive (or one whose MBR shadow hides the start of the media) with a first
    /// revert, so the known data can be written. Nothing happens to an unlocked drive.
    func tcgOpenIfLocked() throws(Failure) {
        if options.method == .tcgCryptoErase { return try tcgReadRangesAndUnlock() }
        guard let tcg = capabilities.tcg, tcg.locked || (tcg.mbrEnabled && !tcg.mbrDone) else { return }
        try tcgRevertOnce(purpose: "to unlock (the drive was locked, so no known data could be written): ")
        let after = try tcgDiscovery()
        guard !after.locked else { throw Failure(message: "the drive is still locked after the revert that was to open it (Level 0 Discovery: \(after.summary))") }
    }

    /// The erase itself: a revert, then Level 0 Discovery must show the locking gone.
    func tcgRevert(_ progress: (WipeProgress) -> Void) throws(Failure) {
        report(progress, fraction: 0)
        try tcgRevertOnce(purpose: "")
        let after = try tcgDiscovery()
        guard !after.locked, !after.lockingEnabled else {
            throw Failure(message: "the revert answered SUCCESS, but Level 0 Discovery still shows locking enabled (\(after.summary))")
        }
        report(progress, fraction: 1)
    }

    func tcgRevertOnce(purpose: String) throws(Failure) {
        let host = try tcgHost()
        let authority: TCGRevert.Authority = options.method == .tcgPsidRevert ? .psid : .sid
        let credential = try tcgCredential(host, authority: authority)
        do {
            try TCGRevert.run(host, authority: authority, credential: credential, purpose: purpose)
            tcgRecord(host)
        } catch {
            tcgRecord(host)
            throw Failure(message: error.description)
        }
    }

    /// The PSID or SID password the technician gave, or the MSID for an unowned drive.
    func tcgCredential(_ host: TCGHost, authority: TCGRevert.Authority) throws(Failure) -> [UInt8] {
        if let credential = credential ?? options.credential, !credential.isEmpty { return credential }
        guard authority == .sid else {
            throw Failure(message: "tcg-psid-revert needs the PSID printed on the drive's label (type or scan it); nothing was sent")
        }
        guard capabilities.tcg?.lockingEnabled == false else {
            throw Failure(message: "the drive has an owner (locking enabled): tcg-revert-sp needs the owner's SID password, or use tcg-psid-revert with the label's PSID")
        }
        do {
            let msid = try TCGRevert.readMSID(host)
            tcgRecord(host)
            return msid
        } catch {
            tcgRecord(host)
            throw Failure(message: "reading the MSID of the unowned drive: \(error.description)")
        }
    }

    func tcgHost() throws(Failure) -> TCGHost {
        guard let interface = capabilities.tcgInterface, let comID = capabilities.tcg?.baseComID else {
            throw Failure(message: "no TCG session can be opened: " + (capabilities.refusal(options.method) ?? "Level 0 Discovery gave no ComID"))
        }
        let host = TCGHost(transport: transport, interface: interface, comID: comID)
        tcgRecorded = 0
        return host
    }

    func tcgDiscovery() throws(Failure) -> TCGDiscovery {
        guard let interface = capabilities.tcgInterface else { throw Failure(message: "no TCG interface") }
        let (discovery, problem) = TCGDiscovery.probe(interface, using: transport)
        guard let discovery else { throw Failure(message: problem ?? "Level 0 Discovery failed after the revert") }
        log(.tcgDiscovery(interface), answer: discovery.summary, succeeded: true)
        return discovery
    }

    /// Copies the host's new exchanges into the certificate's record of commands.
    func tcgRecord(_ host: TCGHost) {
        for exchange in host.exchanges.dropFirst(tcgRecorded) {
            appendCommand(.init(name: exchange.step, sent: exchange.request, answer: exchange.answer, succeeded: exchange.succeeded))
        }
        tcgRecorded = host.exchanges.count
    }

    // MARK: - tcg-crypto-erase

    /// Reads every locking range (as Admin1 of the Locking SP) and opens the locked ones, and a
    /// shadow MBR that hides the first LBAs, so the known data can go on. The keys stay.
    func tcgReadRangesAndUnlock() throws(Failure) {
        let mbrHides = capabilities.tcg.map { $0.mbrEnabled && !$0.mbrDone } ?? false
        try tcgAdminSession { host throws(TCGFailure) in
            tcgRanges = try TCGCryptoErase.ranges(host)
            try TCGCryptoErase.unlock(host, tcgRanges, mbrDone: mbrHides)
        }
        if tcgRanges.contains(where: \.locked) || mbrHides {
            let after = try tcgDiscovery()
            guard !after.locked else { throw Failure(message: "the drive is still locked after every range was unlocked (Level 0 Discovery: \(after.summary))") }
        }
    }

    /// The erase: GenKey on the key of every range read before, in one session.
    func tcgRegenerateKeys(_ progress: (WipeProgress) -> Void) throws(Failure) {
        report(progress, fraction: 0)
        try tcgAdminSession { host throws(TCGFailure) in try TCGCryptoErase.regenerateKeys(host, tcgRanges) }
        let names = tcgRanges.map(\.description).joined(separator: "; ")
        driveChecks.append(ReportCheck(
            name: "Every locking range has a new key", expected: "GenKey SUCCESS for the global range and every range up to MaxRanges",
            observed: "\(tcgRanges.count) of \(tcgRanges.count) ranges: \(names). The owner's Locking SP configuration and passwords stay; revert the drive (tcg-revert-sp, tcg-psid-revert) before it changes hands",
            passed: true))
        report(progress, fraction: 1)
    }

    /// One session on the Locking SP as Admin1 around `body`: ended, and every exchange put on
    /// the record, whether it worked or not.
    func tcgAdminSession(_ body: (TCGHost) throws(TCGFailure) -> Void) throws(Failure) {
        let host = try tcgHost()
        let password = try tcgAdminPassword()
        defer {
            host.endSession()
            tcgRecord(host)
        }
        do throws(TCGFailure) {
            try TCGCryptoErase.startSession(host, password: password)
            try body(host)
        } catch {
            throw Failure(message: error.description)
        }
    }

    /// The owner's Admin1 password, given by the technician.
    func tcgAdminPassword() throws(Failure) -> [UInt8] {
        guard let password = credential ?? options.credential, !password.isEmpty else {
            throw Failure(message: "tcg-crypto-erase needs the Admin1 password of the drive's Locking SP (from its owner); nothing was sent")
        }
        return password
    }
}
