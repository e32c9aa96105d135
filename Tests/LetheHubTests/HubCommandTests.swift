import Testing

@testable import lethe_hub

/// The hub's command line as ArgumentParser reads it.
@Suite struct HubCommandTests {
    /// A kid is base64url, so one in 64 begins with "-"; it must still be read as the value of
    /// --kid (it once failed the landing CI as "Missing value for '--kid <kid>'").
    @Test func aKidThatBeginsWithADashIsTheValueOfKid() throws {
        let revoke = try Stations.Revoke.parse(["bench-1", "--kid", "-Q2xpZW50S2V5XzE"])
        #expect(revoke.kid == "-Q2xpZW50S2V5XzE" && revoke.id == "bench-1")
        #expect(try Stations.Revoke.parse(["bench-1"]).kid == nil)
    }
}
