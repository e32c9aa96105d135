import Crypto
import Foundation
import LetheConfig
@testable import LetheSync
import Testing

/// The catalog's instructions count only when signed over the request they answer (issue 15,
/// item 9): anybody on the path could otherwise choose how a drive is erased.
@Suite struct LookupTests {
    let secret = SymmetricKey(data: Data("a shared secret of 32 bytes long".utf8))
    let target = "/v1/instructions?device=%2Fdev%2Fsdb&station=bench-1"
    let body = Data(#"{"profile":"catalog-choice","sku":"SKU-1"}"#.utf8)

    func answer(signature: String?, target: String? = nil) -> CatalogAnswer {
        CatalogLookup.interpret(status: 200, body: body, url: "http://catalog", signature: signature, target: target ?? self.target, secret: secret)
    }

    @Test func aSignedAnswerIsInstructions() {
        let signature = CatalogSignature.sign(CatalogSignature.answerBytes(target: target, body: body), secret: secret)
        #expect(answer(signature: signature) == .instructions(CatalogInstructions(profile: "catalog-choice", sku: "SKU-1")))
    }

    @Test func unsignedForgedOrReplayedAnswersAreRefused() {
        guard case .unavailable(let unsigned) = answer(signature: nil) else { Issue.record("an unsigned answer was trusted"); return }
        #expect(unsigned.contains("unsigned"))
        let wrongKey = CatalogSignature.sign(CatalogSignature.answerBytes(target: target, body: body), secret: SymmetricKey(data: Data(repeating: 1, count: 32)))
        guard case .unavailable = answer(signature: wrongKey) else { Issue.record("a forged answer was trusted"); return }
        // The right signature for another device's request, replayed here.
        let other = CatalogSignature.sign(CatalogSignature.answerBytes(target: "/v1/instructions?device=%2Fdev%2Fsdc&station=bench-1", body: body), secret: secret)
        guard case .unavailable(let replayed) = answer(signature: other) else { Issue.record("a replayed answer was trusted"); return }
        #expect(replayed.contains("another request"))
        // A 404 needs no signature: it only sends the station to its own profile match.
        #expect(CatalogLookup.interpret(status: 404, body: Data(), url: "u", signature: nil, target: target, secret: secret) == .unknown)
    }
}
