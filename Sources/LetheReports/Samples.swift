import Foundation
import LetheCore

/// Sample documents and the published TEST key they are signed with: for `reports/samples/`,
/// the tests and the docs. Never use this key for real reports.
public enum ReportSamples {
    /// RFC 8032 §7.1 test 1 secret key: public, so anybody can make "valid" samples.
    public static let testSeed = Data([
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
        0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
    ])

    /// The test key.
    public static func testKey() -> StationKey { try! StationKey(seed: testSeed) }

    public static let station = ReportStation(
        id: "bench-01", name: "Lethe sample bench", location: "Unit 4, 12 Example Road, Manchester M1 1AA, UK",
        contact: "qa@refurb.example, +44 161 000 0000", keyId: testKey().keyId)

    /// A certificate for a SATA HDD erased with DoD 3-pass and sample verification (the sector
    /// its surface scan could not read was written and read back: the drive reallocated it).
    public static func certificate() -> WipeCertificate {
        let device = ReportDevice(
            manufacturer: "Western Digital", model: "WDC WD10EZEX-08WN4A0", serial: "WD-WCC6Y3KJ0RXX", firmware: "01.01A01",
            wwn: "0x50014ee2b5d1e2f3", mediaType: "magnetic hard disk", transport: "sata", sizeBytes: 1_000_204_886_016,
            logicalSectorSize: 512, source: "customer trade-in, batch 2026-11-A", bay: "Bay 3", path: "/dev/sdc")
        let passes = [
            ReportPass(index: 1, pattern: "0x00", bytesWritten: 1_000_204_886_016, completed: true, durationMs: 5_612_400, throughputBytesPerSecond: 178_211_332),
            ReportPass(index: 2, pattern: "0xff", bytesWritten: 1_000_204_886_016, completed: true, durationMs: 5_598_100, throughputBytesPerSecond: 178_666_575),
            ReportPass(index: 3, pattern: "random (AES-128-CTR)", bytesWritten: 1_000_204_886_016, completed: true, durationMs: 5_640_900, throughputBytesPerSecond: 177_310_938),
        ]
        return WipeCertificate(
            reportId: "01KAQ2M7Y8Z3B4C5D6E7F8G9H0", issuedAt: "2026-11-22T14:05:09Z", status: .erased,
            device: device,
            sanitization: ReportSanitization(
                category: "Clear", method: "dod-3", description: "DoD 5220.22-M (3 passes): DoD 5220.22-M (ECE) as in nwipe",
                technique: "overwrite", passes: passes, bytesWritten: 3_000_614_658_048, startedAt: "2026-11-22T09:24:10Z",
                finishedAt: "2026-11-22T14:05:09Z", badSectors: [], errors: [], standards: SanitizationStandards(method: WipeMethod.named("dod-3")!)),
            verification: ReportVerification(
                mode: "sample", method: "NIST SP 800-88 sampling: 1000 subsections with a pseudorandom run of sectors in each, plus the first and last sectors, read with O_DIRECT",
                result: "passed", bytesVerified: 100_020_488_704, coverageBasisPoints: 1000, mismatchedSectors: 0,
                sampleSeed: "5eed0fc0ffee"),
            tool: ReportTool(version: "0.1.0"),
            performedBy: ReportParty(name: "A. Technician", role: "bench technician", contact: "qa@refurb.example"),
            verifiedBy: ReportParty(name: "Lethe 0.1.0", role: "automatic read-back verification", contact: "A. Technician"),
            station: station, destination: "resale")
    }

    /// The refurb report that goes with `certificate()`.
    public static func refurb(certificateDigest: String) -> RefurbReport {
        var reading = HealthReading()
        reading.smartPassed = true
        reading.powerOnHours = 21_344
        reading.temperatureCelsius = 34
        reading.reallocatedSectors = 0
        reading.pendingSectors = 0
        reading.uncorrectableSectors = 0
        let assessment = HealthAssessment(reading: reading)
        // A profile that tolerates up to 15 unreadable sectors on a used disk: one warns.
        var limits = SurfaceThresholds()
        limits.unreadableSectorsFail = 16
        let bad = [SectorRange(first: 1_234_567, count: 1)]
        let slowest = SurfaceScanReport.SlowRegion(offset: 632_094_621_696, length: 1 << 20, milliseconds: 412)
        let judged = limits.judge(slowReads: 1, slowest: slowest, unreadable: bad)
        let scan = SurfaceScanReport(
            mode: "full", sizeBytes: 1_000_204_886_016, bytesRead: 1_000_204_886_016, coverageBasisPoints: 10000, readBytes: 1 << 20,
            reads: 953_870, latencyMicroseconds: ["p50": 5_623, "p90": 6_911, "p99": 9_215, "p99.9": 31_871, "max": 412_287],
            slowRegions: [slowest], slowReads: 1, unreadable: bad, logicalSectorSize: 512,
            verdict: judged.verdict, findings: judged.findings, seconds: 6_512.4, thresholds: limits)
        let diagnostics = ReportDiagnostics(assessment: assessment, reading: reading).adding(surface: scan)
        let grade = RefurbReport.grade(diagnostics: diagnostics, status: .erased)
        return RefurbReport(
            reportId: "01KAQ2M7Y8Z3B4C5D6E7F8G9H1", issuedAt: "2026-11-22T14:05:10Z", device: certificate().device,
            diagnostics: diagnostics, battery: nil, grade: grade.grade,
            gradeReason: grade.reason,
            certificate: CertificateReference(reportId: "01KAQ2M7Y8Z3B4C5D6E7F8G9H0", digest: certificateDigest, status: .erased),
            performedBy: ReportParty(name: "A. Technician", role: "bench technician", contact: "qa@refurb.example"),
            station: station, tool: ReportTool(version: "0.1.0")
        ).graded(try! CosmeticGrade(grade: "B", notes: "two fine scratches on the top cover", gradedBy: "bench", gradedAt: "2026-11-22T14:05:05Z"))
    }
}
