import Foundation
import LetheCore
import LethePhones
import ServiceLifecycle

extension Bench {
    /// An iPhone's job: find it on usbmuxd by UDID, inspect it through a session (identity,
    /// battery, Find My, supervision, profiles), refuse what cannot be certified, erase it, and
    /// certify only what the checks saw. Blocking; own thread.
    func runIPhone(jobId: String, device path: String, profile: Profile) {
        let udid = String(path.dropFirst("ios:".count))
        let fail = phoneJobFailure(jobId: jobId, path: path)
        guard let host = settings.iphones else { return fail("iPhones are not enabled on this station (no usbmuxd client)", refused: true) }
        let phone: PhoneInspection
        let device: UsbmuxDevice
        do throws(LetheError) {
            guard let found = try host.usbmux.listDevices().first(where: { $0.udid == udid }) else {
                throw LetheError(.deviceVanished, path: path, "the iPhone is no longer on usbmuxd")
            }
            device = found
            phone = try IOSProbe.inspect(host, device: device)
        } catch {
            if let pairing = PairingState(error) { return fail("not paired: \(pairing.instruction)", refused: true) }
            return fail("cannot inspect the iPhone: \(error.message)", gone: error.code == .deviceVanished)
        }
        show(phone, on: jobId, profile: profile)
        if let refusal = FactoryReset.refusal(phone) { return fail("refused: \(refusal)", refused: true) }
        let reporting: PhoneReporting
        do throws(LetheError) {
            reporting = try startReporting(phone, jobId: jobId, profile: profile, flow: .mcInstallErase)
        } catch {
            return fail("not started: \(error.message)")
        }
        log("\(path): job \(jobId): \(phone.identity.model ?? "iPhone"), \(ResetFlow.mcInstallErase.title)")
        transition(jobId, .step(.reset)) { $0.message = "erasing: \(ResetFlow.mcInstallErase.title)" }
        let outcome = IOSErase.run(host, device: device, phone: phone, waitSeconds: settings.phoneWaitSeconds, say: narrator(jobId: jobId, path: path))
        finishPhone(jobId: jobId, path: path, outcome: outcome, reporting: reporting, profile: profile, fail: fail)
    }
}

/// Follows usbmuxd's Listen stream on a thread of its own and docks each iPhone: one waiting
/// for the technician's trust tap is listed, protected, with what to do (unlock, tap Trust, enter
/// the passcode) and asked again every few seconds; a paired one gets a job as its profile says.
/// When usbmuxd is missing or goes away it says why and tries again; the bench keeps working.
public struct IPhoneWatchService: Service {
    let bench: Bench
    let host: IPhoneHost

    /// Creates the service.
    public init(bench: Bench, host: IPhoneHost) {
        self.bench = bench
        self.host = host
    }

    /// The bench's record of an iPhone: its model from the values it gives before pairing, and,
    /// until it is paired, what the technician must do.
    public static func record(_ device: UsbmuxDevice, values: [String: Any], pairing: PairingState) -> DeviceRecord {
        let type = values["ProductType"] as? String
        let ready = pairing == .paired
        var record = DeviceRecord(
            path: "ios:\(device.udid)", kind: .phone, transport: .ios, model: type.map { AppleModels.name($0) ?? $0 }, vendor: "Apple",
            serial: device.udid, protected: !ready, protectionReason: ready ? nil : pairing.instruction,
            notes: ready ? [] : [pairing.instruction])
        record.portPath = device.locationID.map { "usbmux-location-\(String($0, radix: 16))" }
        return record
    }

    public func run() async throws {
        bench.log("watching iPhones through usbmuxd at \(host.usbmux.address)")
        await runWatcher(named: "lethe-iphones") { [bench, host] stop in
            var known: [Int: (device: UsbmuxDevice, record: DeviceRecord)] = [:]
            var retry = WatchRetry()
            /// Where the phone stands now, asking it to pair if it is not (the prompt shows).
            func look(_ device: UsbmuxDevice) -> DeviceRecord? {
                guard let values = try? host.publicValues(device) else { return nil }
                // A phone whose job runs (an erase, its check in setup) is the job's to pair.
                if bench.jobs.contains(where: { $0.device == "ios:\(device.udid)" && $0.state == .running }) {
                    return IPhoneWatchService.record(device, values: values, pairing: .paired)
                }
                var state: PairingState
                switch host.pairingState(device) {
                case .success(let found): state = found
                case .failure: return nil
                }
                if state != .paired {
                    do throws(LetheError) {
                        try host.pair(device)
                        state = .paired
                    } catch {
                        state = PairingState(error) ?? state
                    }
                }
                return IPhoneWatchService.record(device, values: values, pairing: state)
            }
            while !stop.isSet {
                /// Phones still waiting for the trust tap are asked again.
                func askAgain() {
                    for (id, entry) in known where entry.record.protected {
                        if let record = look(entry.device), record != entry.record {
                            known[id] = (entry.device, record)
                            bench.deviceAppeared(record)
                        }
                    }
                }
                do throws(LetheError) {
                    try host.usbmux.listen(shouldStop: { stop.isSet }, onIdle: askAgain) { event in
                        retry.succeeded()
                        switch event {
                        case .attached(let device):
                            guard let record = look(device) else { return }
                            known[device.deviceID] = (device, record)
                            bench.deviceAppeared(record)
                        case .detached(let id):
                            if let gone = known.removeValue(forKey: id) { bench.deviceRemoved(gone.record) }
                        case .paired(let id):
                            if let entry = known[id], let record = look(entry.device), record != entry.record {
                                known[id] = (entry.device, record)
                                bench.deviceAppeared(record)
                            }
                        }
                        askAgain()
                    }
                } catch {
                    for entry in known.values { bench.deviceRemoved(entry.record) }
                    known = [:]
                    retry.failed("iPhones: \(error.message)", bench: bench)
                }
                retry.pause(until: stop)
            }
        }
    }
}
