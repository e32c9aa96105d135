import LetheCore
import LetheDiagnostics
import LetheLinux

/// One SMART read: smartctl run, parsed and graded. A drive whose SMART cannot be read
/// (smartctl missing or failing, garbage output, a bridge that hides it) is `unknown`, with the
/// reason as the first finding. Shared by `lethe diagnose` and the erase jobs.
public struct SmartCheck: Sendable {
    /// What smartctl said, when it said anything parseable.
    public var result: SmartctlResult?
    /// Why smartctl gave nothing usable (not found, failed to start, not JSON).
    public var error: String?
    public var assessment: HealthAssessment

    /// The reading, when SMART was available.
    public var reading: HealthReading? { result?.available == true ? result?.reading : nil }

    /// Runs `smartctl -j -a` on `device` and grades it.
    public static func run(device: String, thresholds: HealthThresholds, timeoutSeconds: Double = 60, executable: String? = nil) -> SmartCheck {
        var result: SmartctlResult?
        var failure: String?
        do {
            let output = try Smartctl.run(device: device, timeoutSeconds: timeoutSeconds, executable: executable)
            result = try SmartctlResult.parse(json: output.stdout, exitStatus: output.exitStatus)
        } catch let error as LetheError {
            failure = error.description
        } catch {
            failure = "\(device): \(error)"
        }
        var assessment = HealthAssessment(reading: result?.reading ?? HealthReading(), thresholds: thresholds)
        if result?.available != true {
            assessment.verdict = .unknown
            let why = failure ?? result?.messages.first ?? "no SMART data"
            assessment.findings.insert(HealthFinding(.unknown, "smart", "SMART unavailable on \(device): \(why)"), at: 0)
        }
        return SmartCheck(result: result, error: failure, assessment: assessment)
    }
}
