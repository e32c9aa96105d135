import Foundation

/// What the catalog says to do with a docked device (two-way mode): which profile to run, the
/// SKU it will be sold under, and the serial it expects at that bay or for that IMEI.
public struct CatalogInstructions: Codable, Sendable, Equatable {
    /// A profile name on this station (`lethe profiles list`).
    public var profile: String?
    /// The catalog's stock-keeping unit; carried on the catalog record.
    public var sku: String?
    /// The serial the catalog expects; a docked device with another serial is held.
    public var expectedSerial: String?
    /// Free text for the technician.
    public var note: String?
    /// The key that matched: `serial`, `imei`, `bay` or `device`.
    public var matchedBy: String?
    /// The intake lot and supplier the item came in with (carried on the catalog record).
    public var lot: String?
    public var supplier: String?
    /// The hub drew this item for independent verification: the job waits for the technician.
    public var hold: Bool?

    /// Instructions.
    public init(profile: String? = nil, sku: String? = nil, expectedSerial: String? = nil, note: String? = nil, matchedBy: String? = nil) {
        self.profile = profile
        self.sku = sku
        self.expectedSerial = expectedSerial
        self.note = note
        self.matchedBy = matchedBy
    }

    /// The instructions in a catalog's answer body, or nil when it is not JSON instructions or
    /// names none of the fields (a health page, a captive portal). Hostile bodies are nil,
    /// never a crash (fuzzed).
    public static func decode(answer body: Data) -> CatalogInstructions? {
        guard let instructions = try? JSONDecoder().decode(CatalogInstructions.self, from: body), instructions != CatalogInstructions() else {
            return nil
        }
        return instructions
    }
}
