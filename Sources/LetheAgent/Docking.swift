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
                row.lot = said.lot
                row.supplier = said.supplier
                if let name = said.profile {
                    profile = profiles.first { $0.name == name }
                    if profile == nil { notes.append("the catalog asked for profile \(name), which this station does not have: the station's own profile match is used") }
                    if let found = profile, found.resetsPhones != (device.kind == .phone) {
                        profile = nil
                        notes.append("the catalog asked for profile \(name), which is for \(found.resetsPhones ? "phones" : "drives"): the station's own profile match is used")
                    } else if let found = profile, !found.match.matches(device) {
                        profile = nil
                        notes.append("the catalog asked for profile \(name), whose match (\(found.match.summary)) excludes this device: the station's own profile match is used")
                    }
                }
                if said.hold == true {
                    hold = "held for independent verification\(said.lot.map { " (lot \($0))" } ?? ""): re-read it (`lethe verify`), record the result (`lethe sync sample-result`), then start it by hand"
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
}
