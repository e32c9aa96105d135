import LetheCore
import Testing

@Suite struct MethodCatalogTests {
    @Test func everyMethodTheIssueNamesExists() {
        let names = ["zero", "one", "random", "nist-clear", "dod-3", "dod-7", "gutmann", "hmg-is5-baseline",
                     "hmg-is5-enhanced", "schneier", "bsi-vsitr", "ops2"]
        #expect(WipeMethod.catalog.map(\.name) == names)
        #expect(Set(names).count == names.count)
    }

    @Test(arguments: [("zero", 1), ("dod-3", 3), ("dod-7", 7), ("gutmann", 35), ("schneier", 7), ("bsi-vsitr", 7), ("ops2", 7), ("hmg-is5-enhanced", 3)])
    func passCounts(name: String, passes: Int) throws {
        let method = try #require(WipeMethod.named(name))
        #expect(method.passes.count == passes)
    }

    @Test func gutmannHasFourRandomPassesAtEachEnd() throws {
        let passes = try #require(WipeMethod.named("gutmann")).passes
        #expect(passes.prefix(4).allSatisfy { $0 == .random })
        #expect(passes.suffix(4).allSatisfy { $0 == .random })
        #expect(passes[6] == .bytes([0x92, 0x49, 0x24]))
    }

    @Test func resolvingChoosesRandomValuesAndComplements() throws {
        var counter: UInt8 = 0x10
        let resolved = try #require(WipeMethod.named("dod-7")).resolvePasses { count in
            defer { counter &+= 1 }
            return [UInt8](repeating: counter, count: count)
        }
        #expect(resolved.count == 7)
        #expect(resolved[0] == .bytes([0x10]))
        #expect(resolved[1] == .bytes([0xEF]))  // ~0x10
        guard case .random(let seed) = resolved[2] else { Issue.record("pass 3 must be random"); return }
        #expect(seed.count == 32)
        #expect(resolved[4] == .bytes([~resolved[3].byte(at: 0)!]))
    }

    @Test func unknownNameIsNil() {
        #expect(WipeMethod.named("shred-it-all") == nil)
        #expect(WipeMethod.named("DOD-3")?.name == "dod-3")
    }

    @Test func patternByteKeepsPhaseFromOffsetZero() {
        let pattern = ResolvedPattern.bytes([0x92, 0x49, 0x24])
        #expect(pattern.byte(at: 0) == 0x92)
        #expect(pattern.byte(at: 4 << 20) == [0x92, 0x49, 0x24][(4 << 20) % 3])
        #expect(ResolvedPattern.random(seed: []).byte(at: 0) == nil)
    }
}

@Suite struct SamplePlanTests {
    @Test(arguments: [4_194_304, 16_384, 3_906_250, 7_814_037_168] as [UInt64])
    func meetsNISTSamplingRules(totalSectors: UInt64) {
        let plan = SamplePlan(totalSectors: totalSectors, seed: 42)
        #expect(plan.subsections >= 1000)
        #expect(plan.coverage >= 0.10)
        #expect(plan.ranges.first?.first == 0)
        #expect(plan.ranges.last?.last == totalSectors - 1)
        for (a, b) in zip(plan.ranges, plan.ranges.dropFirst()) { #expect(a.end < b.first) }
        #expect(plan.ranges.allSatisfy { $0.end <= totalSectors })
    }

    @Test func isDeterministicPerSeed() {
        let a = SamplePlan(totalSectors: 1 << 22, seed: 7)
        #expect(a == SamplePlan(totalSectors: 1 << 22, seed: 7))
        #expect(a.ranges != SamplePlan(totalSectors: 1 << 22, seed: 8).ranges)
    }

    @Test func tinyDevicesAreReadWhole() {
        let plan = SamplePlan(totalSectors: 100, seed: 1)
        #expect(plan.subsections == 0)
        #expect(plan.ranges == [SectorRange(first: 0, count: 100)])
        #expect(plan.coverage == 1)
    }

    @Test func samplesSpreadOverEverySubsection() {
        let total: UInt64 = 1 << 20
        let plan = SamplePlan(totalSectors: total, seed: 3)
        for index in stride(from: UInt64(0), to: 1000, by: 97) {
            let start = index * total / 1000, end = (index + 1) * total / 1000
            #expect(plan.ranges.contains { $0.first < end && $0.end > start })
        }
    }
}

@Suite struct OutcomeTests {
    @Test func coalesceMergesTouchingRanges() {
        let merged = SectorRange.coalesce([
            SectorRange(first: 10, count: 1), SectorRange(first: 4, count: 2), SectorRange(first: 11, count: 3),
            SectorRange(first: 5, count: 1),
        ])
        #expect(merged == [SectorRange(first: 4, count: 2), SectorRange(first: 10, count: 4)])
        #expect(merged[1].description == "LBA 10-13")
    }

    @Test func statusRule() {
        let bad = [SectorRange(first: 1, count: 1)]
        #expect(WipeOutcome.status(aborted: false, fatalError: false, allPassesCompleted: true, verification: .passed, badSectors: []) == .erased)
        #expect(WipeOutcome.status(aborted: false, fatalError: false, allPassesCompleted: true, verification: .skipped, badSectors: []) == .erased)
        #expect(WipeOutcome.status(aborted: false, fatalError: false, allPassesCompleted: true, verification: .passed, badSectors: bad) == .erasedWithExceptions)
        #expect(WipeOutcome.status(aborted: false, fatalError: false, allPassesCompleted: true, verification: .failed, badSectors: []) == .notErased)
        #expect(WipeOutcome.status(aborted: false, fatalError: false, allPassesCompleted: true, verification: .notRun, badSectors: []) == .notErased)
        #expect(WipeOutcome.status(aborted: false, fatalError: true, allPassesCompleted: true, verification: .passed, badSectors: []) == .notErased)
        #expect(WipeOutcome.status(aborted: true, fatalError: true, allPassesCompleted: false, verification: .notRun, badSectors: bad) == .aborted)
    }

    @Test func errorsNameDeviceAndErrno() {
        let error = LetheError(.deviceVanished, path: "/dev/sdz", errno: .noSuchDevice, "device is gone")
        #expect(error.description == "/dev/sdz: device is gone (ENODEV)")
        #expect(ErrorNumber.noSuchDeviceOrAddress.meansDeviceGone)
        #expect(ErrorNumber.io.meansMediumError && !ErrorNumber.io.meansDeviceGone)
    }

    @Test func humanFormats() {
        #expect(HumanFormat.bytes(1536) == "1.5 KiB")
        #expect(HumanFormat.duration(3723) == "1:02:03")
        #expect(HumanFormat.fixed(0.05, 1) == "0.1")
    }
}

/// How a surface scan changes the refurb report's diagnostics and grade.
@Suite struct SurfaceGradeTests {
    func scan(_ verdict: HealthVerdict, findings: [String]) -> SurfaceScanReport {
        SurfaceScanReport(
            mode: "sample", sizeBytes: 1 << 30, bytesRead: 1 << 27, coverageBasisPoints: 1250, readBytes: 1 << 20, reads: 128,
            latencyMicroseconds: ["p50": 800, "max": 2_000], slowRegions: [], slowReads: 0,
            unreadable: verdict == .fail ? [SectorRange(first: 4096, count: 8)] : [], logicalSectorSize: 512, verdict: verdict,
            findings: findings, seconds: 1.2)
    }

    func smart(_ verdict: HealthVerdict) -> ReportDiagnostics {
        var assessment = HealthAssessment(reading: HealthReading())
        assessment.verdict = verdict
        assessment.findings = []
        return ReportDiagnostics(assessment: assessment, reading: nil)
    }

    @Test func aFailingScanFailsAHealthyDriveAndTheReasonSaysWhy() {
        let diagnostics = smart(.pass).adding(surface: scan(.fail, findings: ["8 unreadable sectors: LBA 4096-4103"]))
        #expect(diagnostics.verdict == "fail" && diagnostics.findings == ["surface: 8 unreadable sectors: LBA 4096-4103"])
        #expect(diagnostics.surface?.unreadableSectors == 8 && diagnostics.surface?.seconds == 2)
        let grade = RefurbReport.grade(diagnostics: diagnostics, status: .erasedWithExceptions)
        #expect(grade.grade == "D" && grade.reason == "health check failed: parts or recycling only (surface scan: 8 unreadable sectors: LBA 4096-4103)")
    }

    @Test func aCleanScanNeverHidesWhatSMARTSaid() {
        let clean = scan(.pass, findings: ["every read succeeded, none slower than 200 ms"])
        #expect(smart(.unknown).adding(surface: clean).verdict == "unknown", "no SMART stays grade C, even with a clean read")
        #expect(smart(.fail).adding(surface: clean).verdict == "fail")
        let healthy = smart(.pass).adding(surface: clean)
        #expect(healthy.verdict == "pass" && RefurbReport.grade(diagnostics: healthy, status: .erased) == ("A", "healthy and erased"))
        // A warning from SMART itself is not blamed on the scan.
        #expect(RefurbReport.grade(diagnostics: smart(.warn).adding(surface: clean), status: .erased).reason == "health check passed with warnings")
    }

    @Test func thresholdsThatContradictNameTheField() {
        var limits = SurfaceThresholds()
        #expect(limits.problem == nil)
        limits.unreadableSectorsWarn = 5
        #expect(limits.problem?.field == "unreadableSectorsWarn" && limits.problem?.message == "5 is above unreadableSectorsFail (1)")
        limits = SurfaceThresholds()
        limits.slowReadsWarn = 10
        limits.slowReadsFail = 3
        #expect(limits.problem?.field == "slowReadsWarn")
        limits = SurfaceThresholds()
        limits.slowMilliseconds = 0
        #expect(limits.problem?.field == "slowMilliseconds")
    }
}
