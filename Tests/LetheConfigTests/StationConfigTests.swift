import Foundation
import LetheConfig
import LetheCore
import Testing

/// The station config file: the shipped example parses; bad files are named with line and field.
@Suite struct StationConfigTests {
    static var repo: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    @Test func shippedExampleParses() throws {
        let config = try DaemonConfig.load(file: Self.repo.appendingPathComponent("deploy/lethe.yaml").path)
        #expect(config.station.id == "bench-01")
        #expect(config.station.verifyBaseURL == "https://verify.refurb.example")
        #expect(config.operators == ["A. Technician", "B. Technician"])
        #expect(config.station.operatorName == "A. Technician")
        #expect(config.bays.label(for: "pci-0000:00:14.0-usb-0:2:1.0-scsi-0:0:0:0") == "Bay 2")
        #expect(config.listen == "127.0.0.1:8765")
        #expect(config.catalogURL == "https://catalog.refurb.example/v1/records")
        #expect(config.stateDirectory == "/var/lib/lethe")
    }

    @Test(arguments: [
        ("station:\n  id: x\n  locaton: y\n", "c.yaml:3:3: station.locaton: unknown field"),
        ("listen: 127.0.0.1:99999\n", "c.yaml:1:9: listen: \"127.0.0.1:99999\" is not host:port"),
        ("station:\n  verifyBaseURL: ftp://x\n", "c.yaml:2:18: station.verifyBaseURL: \"ftp://x\" is not an http(s) URL"),
        ("catalog:\n  url: nowhere\n", "c.yaml:2:8: catalog.url: \"nowhere\" is not an http(s) URL"),
        ("operators: {a: 1}\n", "c.yaml:1:12: operators: expected a list"),
        ("bays: [1, 2]\n", "c.yaml:1:7: bays: expected port path: label lines"),
        ("stations:\n  id: x\n", "c.yaml:1:1: stations: unknown field"),
        ("station: [\n", "c.yaml:"),
    ])
    func badConfigsNameLineAndField(text: String, expected: String) {
        do {
            _ = try DaemonConfig.parse(text, file: "c.yaml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.description.contains(expected), "\(error.description)")
        }
    }
}
