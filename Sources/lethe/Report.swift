import ArgumentParser
import Foundation
import LetheCore
import LetheReports

extension ReportLanguage: ExpressibleByArgument {}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Verify, show and render signed certificates and refurb reports.",
        discussion: """
            A report file (<reportId>.json) is a JWS in the flattened JSON serialization (RFC 7515): "payload" is the RFC 8785 canonical JSON of the document, signed with the station's Ed25519 key (alg "Ed25519", RFC 9864), and "report" is the same document, readable. Any JOSE library verifies it with the station's public JWK (`lethe keys export`).

            Examples:
              lethe report verify var/reports/01KAQ2M7Y8Z3B4C5D6E7F8G9H0.json
              lethe report show var/reports/01KAQ2M7Y8Z3B4C5D6E7F8G9H0.json
              lethe report render var/reports/01KAQ2M7Y8Z3B4C5D6E7F8G9H0.json --lang de --out cert-de.pdf
            """,
        subcommands: [VerifyReport.self, Show.self, Render.self, Strings.self, Sample.self])

    static func read(_ file: String) throws(LetheError) -> Data {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw LetheError(.deviceNotFound, path: file, errno: ErrorNumber(errno), "cannot read the report")
        }
        return data
    }

    struct VerifyReport: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Check a report's signature against the trusted station keys.",
            discussion: """
            Exit status: 0 valid and signed by a trusted key; 1 not valid (the reason is printed); 2 unreadable input.

            Examples:
              lethe report verify var/reports/01KAQ2M7Y8Z3B4C5D6E7F8G9H0.json
              lethe report verify report.json --trust bench07.pub.jwk --json
            """)
        @Argument(help: "The report (<reportId>.json).") var file: String
        @Option(name: .customLong("trust"), help: ArgumentHelp("Also trust this public JWK file (repeatable).", valueName: "jwk")) var trust: [String] = []
        @Flag(help: "Print the result as JSON.") var json = false
        @OptionGroup var state: StateOptions

        struct Line: Encodable {
            var valid: Bool
            var reportId: String?
            var schema: String?
            var keyId: String?
            var digest: String?
            var certified: Bool?
            var reason: String?
            var message: String?
        }

        func run() throws {
            let data: Data
            let keys: [PublicJWK]
            do throws(LetheError) {
                data = try Report.read(file)
                keys = try state.trustedKeys(extra: trust)
            } catch {
                throw Output.fail(error, json: json)
            }
            switch Result(catching: { () throws(ReportVerificationError) -> VerifiedReport in try ReportVerifier.verify(fileData: data, trusted: keys) }) {
            case .success(let verified):
                var certified: Bool? = verified.signed.document["certified"].flatMap { if case .bool(let b) = $0 { b } else { nil } }
                let status: String? = verified.signed.document["status"].flatMap { if case .string(let s) = $0 { s } else { nil } }
                // Signed before the rule that exceptions are never certified: the signature
                // holds, the claim does not.
                let staleClaim = certified == true && status != nil && status != WipeStatus.erased.rawValue
                if staleClaim {
                    certified = false
                    Output.err("lethe: \(file): says certified with status \(status ?? "?"); some sectors were not erased, so it is not a certificate (it was signed before that rule)")
                }
                if json {
                    Output.json(Line(valid: true, reportId: verified.reportId, schema: verified.schema, keyId: verified.keyId, digest: verified.signed.digest, certified: certified))
                } else {
                    print("\(file): valid signature by station key \(verified.keyId)")
                    print("report \(verified.reportId) (\(verified.schema)), digest \(verified.signed.digest)")
                    if certified == false { print("note: this is a record of an erase that was NOT completed and verified; it is not a certificate") }
                }
            case .failure(let error):
                if json {
                    Output.json(Line(valid: false, reason: error.reason.rawValue, message: error.message))
                }
                Output.err("lethe: \(file): NOT VALID: \(error.message)")
                throw ExitCode(1)
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a readable summary of a report (and whether its signature checks out).",
            discussion: """
                Examples:
                  lethe report show var/reports/01KAQ2M7Y8Z3B4C5D6E7F8G9H0.json
                """)
        @Argument(help: "The report (<reportId>.json).") var file: String
        @OptionGroup var state: StateOptions

        func run() throws {
            let data: Data
            do throws(LetheError) { data = try Report.read(file) } catch { throw Output.fail(error, json: false) }
            let keys = (try? state.trustedKeys(extra: [])) ?? []
            let document: JSONValue
            switch Result(catching: { () throws(ReportVerificationError) -> VerifiedReport in try ReportVerifier.verify(fileData: data, trusted: keys) }) {
            case .success(let verified):
                print("signature: valid (station key \(verified.keyId))")
                document = verified.signed.document
            case .failure(let error):
                print("signature: NOT VALID: \(error.message)")
                guard let parsed = try? JSONValue.parse(data), let report = parsed["report"] else { throw ExitCode(1) }
                document = report
            }
            Self.printValue(document, indent: "")
        }

        static func printValue(_ value: JSONValue, indent: String) {
            guard case .object(let members) = value else { return }
            for key in members.keys.sorted() {
                switch members[key]! {
                case .object:
                    print("\(indent)\(key):")
                    printValue(members[key]!, indent: indent + "  ")
                case .array(let items):
                    print("\(indent)\(key): \(items.isEmpty ? "none" : "")")
                    for item in items {
                        if case .object = item {
                            print("\(indent)  -")
                            printValue(item, indent: indent + "    ")
                        } else {
                            print("\(indent)  - \(scalar(item))")
                        }
                    }
                default:
                    print("\(indent)\(key): \(scalar(members[key]!))")
                }
            }
        }

        static func scalar(_ value: JSONValue) -> String {
            switch value {
            case .null: "—"
            case .bool(let b): b ? "yes" : "no"
            case .integer(let i): String(i)
            case .string(let s): ReportRenderer.printableText(s)
            default: ""
            }
        }
    }

    struct Render: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Render a verified report's PDF again, e.g. in another language.",
            discussion: """
                Examples:
                  lethe report render var/reports/01KAQ2M7Y8Z3B4C5D6E7F8G9H0.json --lang ja --out cert-ja.pdf
                """)
        @Argument(help: "The report (<reportId>.json).") var file: String
        @Option(help: "Language: en or zh-CN.") var lang: ReportLanguage = .en
        @Option(help: ArgumentHelp("Where to write the PDF (default: beside the JSON, <reportId>.<lang>.pdf).", valueName: "file")) var out: String?
        @OptionGroup var state: StateOptions

        func run() throws {
            let data: Data
            let keys: [PublicJWK]
            let station: StationConfig
            do throws(LetheError) {
                data = try Report.read(file)
                keys = try state.trustedKeys(extra: [])
                station = try state.station()
            } catch {
                throw Output.fail(error, json: false)
            }
            let verified: VerifiedReport
            switch Result(catching: { () throws(ReportVerificationError) -> VerifiedReport in try ReportVerifier.verify(fileData: data, trusted: keys) }) {
            case .success(let value): verified = value
            case .failure(let error):
                Output.err("lethe: \(file): NOT VALID, not rendered: \(error.message)")
                throw ExitCode(1)
            }
            let pdf = try ReportWriter.renderPDF(verified, verifyBase: station.verifyBaseURL, language: lang)
            let path = out ?? (file as NSString).deletingPathExtension + ".\(lang.rawValue).pdf"
            try pdf.write(to: URL(fileURLWithPath: path))
            print(path)
        }
    }

    struct Strings: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the template strings of a language (reports/templates/<lang>.json).",
            discussion: """
                Examples:
                  lethe report strings --lang fr
                """)
        @Option(help: "Language: en or zh-CN.") var lang: ReportLanguage = .en

        func run() {
            let value = JSONValue.object(lang.strings.mapValues { .string($0) })
            FileHandle.standardOutput.write(value.prettyData())
        }
    }
}

extension Report {
    /// Writes `reports/samples/` (hidden: for maintainers).
    struct Sample: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write sample reports signed with the public TEST key.",
            discussion: """
                Examples:
                  lethe report sample --out samples/
                """, shouldDisplay: false)
        @Option(help: "Output directory.") var out = "reports/samples"

        func run() throws {
            let key = ReportSamples.testKey()
            let base = "https://verify.refurb.example"
            let certificate = ReportSamples.certificate()
            let written = try ReportWriter.write(certificate: certificate, key: key, directory: out, verifyBase: base, language: .en)
            let refurb = ReportSamples.refurb(certificateDigest: written.signed.digest)
            let refurbWritten = try ReportWriter.write(refurb: refurb, key: key, directory: out, verifyBase: base, language: .en)
            try ReportRenderer.certificatePDF(written.signed, certificate: certificate, verifyBase: base, language: .zhCN)
                .write(to: URL(fileURLWithPath: "\(out)/\(certificate.reportId).zh-CN.pdf"))
            try ReportRenderer.refurbPDF(refurbWritten.signed, report: refurb, verifyBase: base, language: .zhCN)
                .write(to: URL(fileURLWithPath: "\(out)/\(refurb.reportId).zh-CN.pdf"))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(key.publicJWK).write(to: URL(fileURLWithPath: "\(out)/test-key.pub.jwk"))
            print("wrote \(out)")
        }
    }
}
