import LetheCore

/// Finds and opens an ATA drive's hidden areas: a Host Protected Area (READ NATIVE MAX
/// ADDRESS EXT against IDENTIFY) and a Device Configuration Overlay (DCO IDENTIFY). Opening
/// sends DEVICE CONFIGURATION RESTORE and SET MAX ADDRESS EXT, then checks the new size with
/// IDENTIFY. Every command that changes the drive is kept in ``commands`` with its answer.
/// Used before a firmware erase and before an overwrite. Blocking.
public final class HiddenAreaOpener: @unchecked Sendable {
    /// Why opening failed.
    public struct Failure: Error, Sendable {
        public var message: String
        /// The drive went away while it was being opened.
        public var vanished: Bool
    }

    let transport: any CommandTransport
    /// The commands that changed the drive, in order, with the drive's answers.
    public private(set) var commands: [FirmwareEraseRecord.Command] = []

    /// An opener that talks to the drive through `transport`.
    public init(transport: any CommandTransport) { self.transport = transport }

    /// The visible, native and factory sizes. Reads only. A drive that does not answer READ
    /// NATIVE MAX gets a ``HiddenAreas/problem`` instead of a native size.
    public func inspect(visibleSectors: UInt64) -> HiddenAreas {
        var areas = HiddenAreas(visibleSectors: visibleSectors)
        do {
            let response = try transport.send(AtaCommand.readNativeMaxAddress)
            if let registers = SenseData(response.sense)?.ataRegisters, registers.complete {
                areas.nativeSectors = registers.lba + 1
            } else {
                areas.problem = "READ NATIVE MAX ADDRESS EXT returned no registers"
            }
        } catch {
            areas.problem = "READ NATIVE MAX ADDRESS EXT: \(error.status)"
        }
        if let dco = try? transport.send(AtaCommand.dcoIdentify), let last = HiddenAreas.factoryLastLBA(dcoIdentify: dco.data) {
            areas.factorySectors = last + 1
        }
        return areas
    }

    /// Opens what `areas` found hidden (DCO first, then the HPA) and checks the size the drive
    /// now reports; the actions are added to `areas`.
    public func open(_ areas: inout HiddenAreas) throws(Failure) {
        guard areas.hasHiddenArea else { return }
        if areas.dcoSectors > 0 {
            try send(AtaCommand.dcoRestore)
            areas.actions.append("DEVICE CONFIGURATION RESTORE: the factory size is back")
        }
        let last = (areas.dcoSectors > 0 ? areas.factorySectors! : areas.nativeSectors!) - 1
        try send(AtaCommand.setMaxAddress(lastLBA: last))
        let identify: AtaIdentify
        do {
            identify = try AtaIdentify(bytes: try transport.execute(.ataIdentify))
        } catch let error as CommandFailure {
            throw Failure(message: "ATA IDENTIFY after SET MAX ADDRESS EXT: \(error.status)", vanished: error.deviceGone)
        } catch {
            throw Failure(message: "ATA IDENTIFY after SET MAX ADDRESS EXT: \(error)", vanished: false)
        }
        guard identify.userSectors == last + 1 else {
            throw Failure(message: "SET MAX ADDRESS EXT was accepted, but IDENTIFY still shows \(identify.userSectors) sectors, not \(last + 1)", vanished: false)
        }
        areas.actions.append("SET MAX ADDRESS EXT: \(identify.userSectors) sectors visible (was \(areas.visibleSectors))")
    }

    private func send(_ command: DeviceCommand) throws(Failure) {
        do {
            let response = try transport.send(command)
            let answer = SenseData(response.sense)?.ataRegisters.map { "ATA \($0)" } ?? "good"
            commands.append(.init(name: command.name, sent: command.wire, answer: answer, succeeded: true))
        } catch {
            commands.append(.init(name: command.name, sent: command.wire, answer: error.status, succeeded: false))
            throw Failure(message: "\(command.name) failed: \(error.status)", vanished: error.deviceGone)
        }
    }
}

extension HiddenAreas {
    /// What is hidden, in words: `N sector(s) behind a Host Protected Area and M behind a
    /// Device Configuration Overlay`.
    public var hiddenDescription: String {
        "\(hpaSectors) sector(s) behind a Host Protected Area and \(dcoSectors) behind a Device Configuration Overlay"
    }

    /// The refusal when hidden sectors would stay unerased, with what to do instead.
    public var refusal: String {
        "the drive hides \(hiddenDescription); they would stay unerased. Run with --open-hidden-areas (profile: erase.openHiddenAreas: true) to open them first"
    }
}
