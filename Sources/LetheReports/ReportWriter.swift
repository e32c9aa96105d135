import Foundation
import LetheCore

/// Signs reports and writes them as `<reportId>.json` (the signed truth) and `<reportId>.pdf`
/// (a view of it). The JSON is written first, to a temporary name, fsynced and renamed, so a
/// crash never leaves a half-written report.
public enum ReportWriter {
    /// What was written.
    public struct Written: Sendable {
        public var reportId: String
        public var jsonPath: String
        public var pdfPath: String
        public var signed: SignedReport
    }

    /// Signs and writes a wipe certificate.
    public static func write(
        certificate: WipeCertificate, key: StationKey, directory: String, verifyBase: String, language: ReportLanguage
    ) throws -> Written {
        let signed = try SignedReport.sign(certificate, type: SignedReport.certificateType, key: key)
        let pdf = try ReportRenderer.certificatePDF(signed, certificate: certificate, verifyBase: verifyBase, language: language)
        return try store(signed, pdf: pdf, reportId: certificate.reportId, directory: directory)
    }

    /// Signs and writes a refurb report.
    public static func write(
        refurb: RefurbReport, key: StationKey, directory: String, verifyBase: String, language: ReportLanguage
    ) throws -> Written {
        let signed = try SignedReport.sign(refurb, type: SignedReport.refurbType, key: key)
        let pdf = try ReportRenderer.refurbPDF(signed, report: refurb, verifyBase: verifyBase, language: language)
        return try store(signed, pdf: pdf, reportId: refurb.reportId, directory: directory)
    }

    /// Renders the PDF of a verified report again (another language, a lost PDF).
    public static func renderPDF(_ verified: VerifiedReport, verifyBase: String, language: ReportLanguage) throws -> Data {
        let decoder = JSONDecoder()
        switch verified.schema {
        case let schema where WipeCertificate.isCertificate(schema: schema):
            let certificate = try decoder.decode(WipeCertificate.self, from: verified.signed.payload)
            return try ReportRenderer.certificatePDF(verified.signed, certificate: certificate, verifyBase: verifyBase, language: language)
        case RefurbReport.schemaName:
            let report = try decoder.decode(RefurbReport.self, from: verified.signed.payload)
            return try ReportRenderer.refurbPDF(verified.signed, report: report, verifyBase: verifyBase, language: language)
        default:
            throw RenderError("unknown document schema \"\(verified.schema)\"")
        }
    }

    static func store(_ signed: SignedReport, pdf: Data, reportId: String, directory: String) throws -> Written {
        guard ReportID.isValid(reportId) else { throw RenderError("report id \"\(reportId)\" is not a Lethe report id") }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let json = "\(directory)/\(reportId).json"
        let pdfPath = "\(directory)/\(reportId).pdf"
        try durableWrite(signed.fileData, to: json)
        try durableWrite(pdf, to: pdfPath)
        return Written(reportId: reportId, jsonPath: json, pdfPath: pdfPath, signed: signed)
    }

    /// Writes every byte of `raw` to `fd` (going on after short writes and EINTR, which used to
    /// end the loop as if it had succeeded and leave a truncated signed file), then fsyncs.
    /// Returns the errno of a failure, or nil.
    static func writeAll(_ fd: Int32, _ raw: UnsafeRawBufferPointer, write: (Int32, UnsafeRawPointer, Int) -> Int = { Glibc.write($0, $1, $2) }) -> Int32? {
        var offset = 0
        while offset < raw.count {
            let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            if n == 0 { return EIO }
            offset += n
        }
        return fsync(fd) == 0 ? nil : errno
    }

    /// Writes to `path.tmp`, fsyncs, renames over `path`, fsyncs the directory.
    static func durableWrite(_ data: Data, to path: String) throws {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let failure: Int32? = data.withUnsafeBytes { raw in writeAll(fd, raw) }
        // Written completely and durably, or not at all: a short file is never renamed in place.
        close(fd)
        if let failure {
            unlink(temporary)
            throw POSIXError(POSIXErrorCode(rawValue: failure) ?? .EIO)
        }
        guard rename(temporary, path) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let dir = open((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY)
        if dir >= 0 {
            fsync(dir)
            close(dir)
        }
    }
}
