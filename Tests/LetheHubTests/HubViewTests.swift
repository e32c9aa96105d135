import Foundation
@testable import LetheHub
import Testing

/// The lookup's JSON, written by hand for speed, says what the Codable model says.
@Suite struct HubViewTests {
    static func view(sample: HubSampleState?, optionals: Bool) -> HubReportView {
        HubReportView(
            reportId: "01KAQ2M7Y8Z3B4C5D6E7F8G9H0", kind: "certificate", verdict: "certified \"quoted\" / é", certified: true,
            status: optionals ? "erased" : nil, grade: optionals ? "A" : nil, station: "bench-1", stationName: "Bench\n1",
            keyId: "kid", keyStatus: "active", keyRevokedAt: optionals ? "2026-12-06T22:00:30Z" : nil, flags: ["one", "two\u{1}"],
            signatureValid: true, digest: "abc", digestMatches: optionals ? false : nil, method: optionals ? "zero" : nil,
            category: optionals ? "Clear" : nil, manufacturer: nil, model: optionals ? "M" : nil, serial: optionals ? "S/1" : nil,
            mediaType: nil, issuedAt: optionals ? "2026-12-06T22:00:30Z" : nil, receivedAt: "2026-12-06T22:00:31Z", sample: sample,
            jws: HubJWSParts(protectedHeader: "h", payload: "p", signature: "s"), fileText: #"{"payload":"p"}"#)
    }

    @Test func theHandWrittenJSONMatchesTheCodableModel() throws {
        for sample in [nil, HubSampleState(state: "passed", checkedBy: "qa", checkedAt: nil, result: "ok")] {
            for optionals in [false, true] {
                let view = Self.view(sample: sample, optionals: optionals)
                let fast = try JSONSerialization.jsonObject(with: view.json()) as? NSDictionary
                var model = try JSONSerialization.jsonObject(with: JSONEncoder().encode(view)) as? [String: Any] ?? [:]
                model["file"] = ["payload": "p"]
                #expect(fast == model as NSDictionary, "sample \(sample != nil), optionals \(optionals)")
            }
        }
    }
}
