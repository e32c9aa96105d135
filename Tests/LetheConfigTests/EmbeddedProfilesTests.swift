import Foundation
import LetheConfig
import LetheCore
import Testing

/// The profiles the binary carries are the shipped files, and /etc/lethe/profiles (here a
/// temporary folder) replaces or adds to them by name.
@Suite struct EmbeddedProfilesTests {
    @Test func theBuiltInProfilesAreTheShippedFiles() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: ProfileTests.shipped).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(EmbeddedProfiles.files.map(\.name).sorted() == files, "run scripts/embed-profiles.sh")
        for (name, text) in EmbeddedProfiles.files {
            let file = try String(contentsOfFile: "\(ProfileTests.shipped)/\(name)", encoding: .utf8)
            #expect(text + "\n" == file, "\(name) differs from the built-in copy: run scripts/embed-profiles.sh")
        }
        let builtIn = try ProfileLoader.loadEmbedded()
        let shipped = try ProfileLoader.loadDirectory(ProfileTests.shipped)
        #expect(builtIn.map(\.name).sorted() == shipped.map(\.name).sorted())
        #expect(builtIn.allSatisfy { $0.source.hasPrefix("built-in:") })
    }

    @Test func aSystemDirectoryReplacesAndAddsByName() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-etc-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // No such folder: the built-in ones alone.
        #expect(try ProfileLoader.loadDefaults(overrides: "\(dir)/none").count == EmbeddedProfiles.files.count)
        let hdd = try String(contentsOfFile: "\(ProfileTests.shipped)/hdd.yaml", encoding: .utf8)
        try hdd.replacingOccurrences(of: "priority: ", with: "priority: 1").write(toFile: "\(dir)/hdd.yaml", atomically: true, encoding: .utf8)
        try hdd.replacingOccurrences(of: "name: hdd", with: "name: lab-hdd").write(toFile: "\(dir)/lab.yaml", atomically: true, encoding: .utf8)
        let profiles = try ProfileLoader.loadDefaults(overrides: dir)
        #expect(profiles.count == EmbeddedProfiles.files.count + 1)
        #expect(profiles.first { $0.name == "hdd" }?.source == "\(dir)/hdd.yaml")
        #expect(profiles.first { $0.name == "lab-hdd" }?.source == "\(dir)/lab.yaml")
        #expect(profiles.first { $0.name == "nvme" }?.source == "built-in:nvme.yaml")
        // A broken file there is an error naming it, never a silent fall back to the built-in one.
        try "name: [".write(toFile: "\(dir)/hdd.yaml", atomically: true, encoding: .utf8)
        #expect {
            try ProfileLoader.loadDefaults(overrides: dir)
        } throws: { error in
            "\(error)".contains("\(dir)/hdd.yaml")
        }
    }
}
