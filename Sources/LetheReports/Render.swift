import CCairo
import CQrencode
import Foundation
import LetheCore

/// A QR code as a square of modules.
public struct QRCode: Sendable {
    public let size: Int
    let modules: [Bool]

    /// Encodes text (8-bit mode, error correction level M). Nil when it does not fit.
    public init?(_ text: String) {
        guard let code = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1) else { return nil }
        defer { QRcode_free(code) }
        size = Int(code.pointee.width)
        modules = (0..<(size * size)).map { code.pointee.data[$0] & 1 != 0 }
    }

    public func isDark(_ x: Int, _ y: Int) -> Bool { modules[y * size + x] }
}

/// A page layout built from data: sections of label/value rows, a verdict band and a QR code.
struct PageDocument {
    struct Row {
        var label: String
        var value: String
    }

    struct Section {
        var title: String
        var rows: [Row]
    }

    var title: String
    var subtitle: String
    var verdict: String
    /// RGB 0…1.
    var verdictColor: (Double, Double, Double)
    var sections: [Section]
    var qrText: String
    var qrCaption: String
    var footer: String
}

/// Renders reports to A4 PDF with cairo and pango; fonts from fontconfig (Noto CJK for
/// Chinese). Text is laid out with wrapping at the column width, and a row that does not fit
/// on the page moves to the next: nothing is cut off.
public enum ReportRenderer {
    static let pageWidth = 595.276
    static let pageHeight = 841.89
    static let margin = 42.0
    static let labelWidth = 170.0
    static let fontFamily = "Noto Sans CJK SC, Noto Sans, DejaVu Sans, sans-serif"

    /// The verify URL the QR code carries: `<base>/verify/<reportId>?d=<digest>`.
    public static func verifyURL(base: String, reportId: String, digest: String) -> String {
        let trimmed = base.hasSuffix("/") ? String(base.dropLast()) : base
        return "\(trimmed)/verify/\(reportId)?d=\(digest)"
    }

    /// The certificate as PDF.
    public static func certificatePDF(_ signed: SignedReport, certificate c: WipeCertificate, verifyBase: String, language: ReportLanguage) throws -> Data {
        let t = language.text
        let url = verifyURL(base: verifyBase, reportId: c.reportId, digest: signed.digest)
        let d = c.device
        let s = c.sanitization
        let v = c.verification
        var sanitization: [PageDocument.Row] = [
            .init(label: t("field.category"), value: s.standards.map { "\($0.summary) (\($0.nist); \($0.ieee2883))" } ?? "\(s.category) (NIST SP 800-88 Rev. 1)"),
            .init(label: t("field.method"), value: s.method),
            .init(label: t("field.description"), value: s.description),
            .init(label: t("field.technique"), value: s.technique),
        ]
        for pass in s.passes {
            let seconds = Double(pass.durationMs) / 1000
            sanitization.append(.init(
                label: "\(t("field.pass")) \(pass.index)",
                value: "\(pass.pattern): \(bytes(pass.bytesWritten)) in \(String(format: "%.1f", seconds)) s (\(bytes(pass.throughputBytesPerSecond))/s)\(pass.completed ? "" : " — incomplete")"))
        }
        sanitization += [
            .init(label: t("field.started"), value: s.startedAt),
            .init(label: t("field.finished"), value: s.finishedAt),
            .init(label: t("field.bytesWritten"), value: "\(s.bytesWritten) (\(bytes(s.bytesWritten)))"),
            .init(label: t("field.badSectors"), value: s.badSectors.isEmpty ? t("value.none") : s.badSectors.map { "LBA \($0.first)\($0.count > 1 ? "–\($0.first + $0.count - 1)" : "")" }.joined(separator: ", ")),
            .init(label: t("field.errors"), value: s.errors.isEmpty ? t("value.none") : s.errors.joined(separator: "; ")),
        ]
        if let namespaces = s.namespaces { sanitization.append(.init(label: t("field.namespaces"), value: namespaces.joined(separator: "; "))) }
        if let exceptions = s.exceptions { sanitization.append(.init(label: t("field.exceptions"), value: exceptions)) }
        if let choice = s.choice { sanitization.append(.init(label: t("field.choice"), value: choice)) }
        if let hidden = s.hiddenAreas {
            var text = "visible \(hidden.visibleSectors) sectors"
            if let native = hidden.nativeSectors { text += ", native \(native) (HPA \(hidden.hpaSectors))" }
            if let factory = hidden.factorySectors { text += ", factory \(factory) (DCO \(hidden.dcoSectors))" }
            if !hidden.actions.isEmpty { text += "; " + hidden.actions.joined(separator: "; ") }
            if let problem = hidden.problem { text += "; \(problem)" }
            sanitization.append(.init(label: t("field.hiddenAreas"), value: text))
        }
        if let fill = s.freeSpaceOverwrite {
            sanitization.append(.init(label: t("field.freeSpaceOverwrite"), value: fill.summary))
            sanitization.append(.init(label: t("field.freeSpaceScope"), value: fill.scope))
            sanitization.append(.init(label: t("field.freeSpaceData"), value: "\(fill.pattern): \(fill.seed)"))
            if !fill.notes.isEmpty, fill.result != "skipped" { sanitization.append(.init(label: t("field.freeSpaceNotes"), value: fill.notes.joined(separator: "; "))) }
        }
        for (index, command) in (s.commands ?? []).enumerated() {
            sanitization.append(.init(label: "\(t("field.command")) \(index + 1)", value: "\(command.name) [\(command.sent)] → \(command.answer)"))
        }
        let checks: [PageDocument.Row] = (v.checks ?? []).map {
            .init(label: t("field.check"), value: "\($0.passed ? "✔" : "✘") \($0.name): \($0.observed) (expected: \($0.expected))")
        }
        // Only a certified erase is called a certificate; an erase without read-back is not "verified".
        let verdict = c.status == .erased && !c.certified ? t("status.erasedUnverified") : t("status.\(c.status.rawValue)")
        let document = PageDocument(
            title: t(c.certified ? "certificate.title" : "record.title"), subtitle: "\(t("field.reportId")): \(c.reportId)   \(t("field.issuedAt")): \(c.issuedAt)",
            verdict: verdict, verdictColor: c.status == .erased && !c.certified ? color(for: .erasedWithExceptions) : color(for: c.status),
            sections: [
                .init(title: t("section.device"), rows: deviceRows(d, t)),
                .init(title: t("section.sanitization"), rows: sanitization),
                .init(title: t("section.verification"), rows: [
                    .init(label: t("field.verificationMethod"), value: v.method),
                    .init(label: t("field.verificationResult"), value: t("result.\(v.result)")),
                    .init(label: t("field.coverage"), value: String(format: "%.2f %%", Double(v.coverageBasisPoints) / 100)),
                    .init(label: t("field.bytesVerified"), value: "\(v.bytesVerified) (\(bytes(v.bytesVerified)))"),
                    .init(label: t("field.mismatches"), value: "\(v.mismatchedSectors)"),
                ] + (v.sampleSeed.map { [.init(label: t("field.sampleSeed"), value: $0)] } ?? []) + checks),
                .init(title: t("section.people"), rows: [
                    .init(label: t("field.performedBy"), value: party(c.performedBy)),
                    .init(label: t("field.verifiedBy"), value: party(c.verifiedBy)),
                    .init(label: t("field.location"), value: c.station.location),
                    .init(label: t("field.station"), value: "\(c.station.name) (\(c.station.id))"),
                    .init(label: t("field.contact"), value: c.station.contact),
                    .init(label: t("field.destination"), value: c.destination),
                    .init(label: t("field.tool"), value: "\(c.tool.name) \(c.tool.version)"),
                ]),
                .init(title: t("section.signature"), rows: [
                    .init(label: t("field.keyId"), value: c.station.keyId),
                    .init(label: t("field.digest"), value: signed.digest),
                    .init(label: t("field.verifyURL"), value: url),
                ]),
            ],
            qrText: url, qrCaption: c.reportId, footer: t("footer"))
        return try render(document)
    }

    /// The refurb report as PDF.
    public static func refurbPDF(_ signed: SignedReport, report r: RefurbReport, verifyBase: String, language: ReportLanguage) throws -> Data {
        let t = language.text
        let url = verifyURL(base: verifyBase, reportId: r.reportId, digest: signed.digest)
        let g = r.diagnostics
        func optional<T>(_ value: T?, _ suffix: String = "") -> String { value.map { "\($0)\(suffix)" } ?? t("value.unknown") }
        var sections: [PageDocument.Section] = [
            .init(title: t("section.device"), rows: deviceRows(r.device, t)),
            .init(title: t("section.diagnostics"), rows: [
                .init(label: t("field.verdict"), value: t("verdict.\(g.verdict)")),
                .init(label: t("field.findings"), value: g.findings.isEmpty ? t("value.none") : g.findings.joined(separator: "\n")),
                .init(label: t("field.powerOnHours"), value: optional(g.powerOnHours)),
                .init(label: t("field.temperature"), value: optional(g.temperatureCelsius, " °C")),
                .init(label: t("field.reallocated"), value: optional(g.reallocatedSectors)),
                .init(label: t("field.pending"), value: optional(g.pendingSectors)),
                .init(label: t("field.uncorrectable"), value: optional(g.uncorrectableSectors)),
                .init(label: t("field.percentageUsed"), value: optional(g.percentageUsed, " %")),
                .init(label: t("field.mediaErrors"), value: optional(g.mediaErrors)),
            ]),
        ]
        if let surface = g.surface { sections.append(surfaceSection(surface, t)) }
        if let battery = r.battery {
            sections.append(.init(title: t("section.battery"), rows: [
                .init(label: t("field.healthPercent"), value: optional(battery.healthPercent, " %")),
                .init(label: t("field.cycleCount"), value: optional(battery.cycleCount)),
                .init(label: t("field.source"), value: battery.source),
            ]))
        }
        sections.append(.init(title: t("section.certificate"), rows: r.certificate.map { ref in
            [
                .init(label: t("field.certificateId"), value: ref.reportId),
                .init(label: t("field.certificateStatus"), value: t("status.\(ref.status.rawValue)")),
                .init(label: t("field.digest"), value: ref.digest),
            ]
        } ?? [.init(label: t("field.certificateId"), value: t("value.none"))]))
        sections.append(.init(title: t("section.signature"), rows: [
            .init(label: t("field.performedBy"), value: party(r.performedBy)),
            .init(label: t("field.station"), value: "\(r.station.name) (\(r.station.id)), \(r.station.location)"),
            .init(label: t("field.keyId"), value: r.station.keyId),
            .init(label: t("field.digest"), value: signed.digest),
            .init(label: t("field.verifyURL"), value: url),
        ]))
        let document = PageDocument(
            title: t("refurb.title"), subtitle: "\(t("field.reportId")): \(r.reportId)   \(t("field.issuedAt")): \(r.issuedAt)",
            verdict: "\(t("field.grade")) \(r.grade) · \(t("verdict.\(g.verdict)"))",
            verdictColor: r.grade == "A" ? (0.13, 0.55, 0.27) : r.grade == "B" || r.grade == "C" ? (0.85, 0.55, 0.05) : (0.75, 0.12, 0.12),
            sections: sections + [.init(title: t("section.grade"), rows: [.init(label: t("field.gradeReason"), value: r.gradeReason)] + (r.cosmetic.map { c in
                [
                    .init(label: t("field.cosmeticGrade"), value: "\(c.grade): \(t("cosmetic.\(c.grade)"))"),
                    .init(label: t("field.cosmeticNotes"), value: c.notes ?? t("value.none")),
                    .init(label: t("field.gradedBy"), value: "\(c.gradedBy), \(c.gradedAt)"),
                ]
            } ?? []))],
            qrText: url, qrCaption: r.reportId, footer: t("footer"))
        return try render(document)
    }

    /// The refurb report's surface scan: verdict, how much was read, latency, slow reads,
    /// unreadable sectors and the thresholds that gave the verdict.
    static func surfaceSection(_ s: ReportSurfaceScan, _ t: (String) -> String) -> PageDocument.Section {
        func ms(_ micros: UInt64) -> String { String(format: "%.2f ms", Double(micros) / 1000) }
        let latency = ["p50", "p99", "max"].compactMap { key in s.latencyMicroseconds[key].map { "\(key) \(ms($0))" } }.joined(separator: " · ")
        let l = s.thresholds
        var rows: [PageDocument.Row] = [
            .init(label: t("field.verdict"), value: t("verdict.\(s.verdict)")),
            .init(label: t("field.coverage"), value: String(format: "%.2f %%", Double(s.coverageBasisPoints) / 100)
                + " (\(s.mode)), \(bytes(s.bytesRead)) in \(s.reads) reads, \(s.seconds) s"),
            .init(label: t("field.readLatency"), value: latency.isEmpty ? t("value.unknown") : latency),
            .init(label: t("field.slowReads"), value: s.slowReads == 0 ? t("value.none")
                : "\(s.slowReads) (> \(l.slowMilliseconds) ms); " + s.slowest.prefix(3).map { "\($0.milliseconds) ms at byte \($0.offset)" }.joined(separator: ", ")),
            .init(label: t("field.unreadable"), value: s.unreadableSectors == 0 ? t("value.none")
                : "\(s.unreadableSectors): " + s.unreadable.prefix(10).map(\.description).joined(separator: ", ") + (s.unreadable.count > 10 ? ", …" : "")),
            .init(label: t("field.thresholds"), value: "slow > \(l.slowMilliseconds) ms; slow reads warn \(l.slowReadsWarn), fail \(l.slowReadsFail.map(String.init) ?? "-"); unreadable warn \(l.unreadableSectorsWarn), fail \(l.unreadableSectorsFail)"),
        ]
        if let stopped = s.stopped { rows.append(.init(label: t("field.stopped"), value: stopped)) }
        return .init(title: t("section.surface"), rows: rows)
    }

    static func deviceRows(_ d: ReportDevice, _ t: (String) -> String) -> [PageDocument.Row] {
        let unknown = t("value.unknown")
        var rows: [PageDocument.Row] = [
            .init(label: t("field.manufacturer"), value: d.manufacturer ?? unknown),
            .init(label: t("field.model"), value: d.model ?? unknown),
            .init(label: t("field.serial"), value: d.serial ?? unknown),
            .init(label: t("field.mediaType"), value: d.mediaType),
            .init(label: t("field.capacity"), value: d.sizeBytes.map { "\($0) bytes (\(bytes($0)))" } ?? unknown),
            .init(label: t("field.source"), value: d.source),
        ]
        if let firmware = d.firmware { rows.insert(.init(label: t("field.firmware"), value: firmware), at: 3) }
        if let wwn = d.wwn { rows.insert(.init(label: t("field.wwn"), value: wwn), at: 3) }
        if let bridge = d.bridgeSerial { rows.insert(.init(label: t("field.bridgeSerial"), value: bridge), at: 3) }
        if let bay = d.bay { rows.append(.init(label: t("field.bay"), value: bay)) }
        rows.append(.init(label: t("field.path"), value: "\(d.path) (\(d.transport))"))
        return rows
    }

    static func party(_ p: ReportParty) -> String {
        [p.name, p.role, p.contact].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ", ")
    }

    static func bytes(_ value: UInt64) -> String { HumanFormat.bytes(Double(value)) }

    static func color(for status: WipeStatus) -> (Double, Double, Double) {
        switch status {
        case .erased: (0.13, 0.55, 0.27)
        case .erasedWithExceptions: (0.85, 0.55, 0.05)
        case .notErased, .aborted: (0.75, 0.12, 0.12)
        }
    }

    /// Makes text safe to show: C0/C1 controls (from firmware strings) become visible `\u{…}`.
    /// Text with control characters shown as `\\u{…}` escapes.
    public static func printableText(_ text: String) -> String { printable(text) }

    static func printable(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar == "\n" { out.append("\n"); continue }
            if scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value) {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    final class Sink {
        var data = Data()
    }

    /// Lays out and draws pages.
    static func render(_ document: PageDocument) throws -> Data {
        let sink = Sink()
        let box = Unmanaged.passRetained(sink)
        defer { box.release() }
        guard let surface = cairo_pdf_surface_create_for_stream({ closure, bytes, length in
            guard let closure, let bytes else { return CAIRO_STATUS_WRITE_ERROR }
            Unmanaged<Sink>.fromOpaque(closure).takeUnretainedValue().data.append(bytes, count: Int(length))
            return CAIRO_STATUS_SUCCESS
        }, box.toOpaque(), pageWidth, pageHeight) else {
            throw RenderError("cairo could not create a PDF surface")
        }
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE, document.title)
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "Lethe")
        let cr = cairo_create(surface)!
        var painter = Painter(cr: cr)
        painter.drawHeader(document)
        for section in document.sections {
            painter.ensureSpace(40)
            painter.sectionTitle(section.title)
            for row in section.rows { painter.row(printable(row.label), printable(row.value)) }
            painter.y += 8
        }
        painter.footer(document.footer)
        cairo_show_page(cr)
        cairo_destroy(cr)
        cairo_surface_finish(surface)
        let status = cairo_surface_status(surface)
        cairo_surface_destroy(surface)
        guard status == CAIRO_STATUS_SUCCESS else {
            throw RenderError("cairo failed: \(String(cString: cairo_status_to_string(status)))")
        }
        return sink.data
    }

    /// Draws on consecutive pages, tracking the vertical position.
    struct Painter {
        let cr: OpaquePointer
        var y = margin
        var page = 1
        var bottom: Double { pageHeight - margin - 28 }

        init(cr: OpaquePointer) { self.cr = cr }

        func layout(_ text: String, size: Double, bold: Bool = false, width: Double) -> OpaquePointer {
            let layout = pango_cairo_create_layout(cr)!
            let font = pango_font_description_from_string("\(fontFamily) \(bold ? "Bold " : "")\(size)")
            pango_layout_set_font_description(layout, font)
            pango_font_description_free(font)
            pango_layout_set_width(layout, Int32(width * Double(PANGO_SCALE)))
            // Words first; a long unbroken token (a digest, a URL) breaks between characters.
            pango_layout_set_wrap(layout, PANGO_WRAP_WORD_CHAR)
            pango_layout_set_text(layout, text, -1)
            return layout
        }

        func height(_ layout: OpaquePointer) -> Double {
            var w: Int32 = 0
            var h: Int32 = 0
            pango_layout_get_size(layout, &w, &h)
            return Double(h) / Double(PANGO_SCALE)
        }

        func draw(_ layout: OpaquePointer, x: Double, y: Double, rgb: (Double, Double, Double) = (0.1, 0.1, 0.1)) {
            cairo_set_source_rgb(cr, rgb.0, rgb.1, rgb.2)
            cairo_move_to(cr, x, y)
            pango_cairo_show_layout(cr, layout)
        }

        mutating func newPage() {
            cairo_show_page(cr)
            page += 1
            y = margin
        }

        mutating func ensureSpace(_ needed: Double) {
            if y + needed > bottom { newPage() }
        }

        mutating func drawHeader(_ d: PageDocument) {
            let qrSize = 118.0
            let textWidth = pageWidth - 2 * margin - qrSize - 16
            let title = layout(d.title, size: 19, bold: true, width: textWidth)
            draw(title, x: margin, y: y)
            y += height(title) + 4
            g_object_unref(UnsafeMutableRawPointer(title))
            let subtitle = layout(printable(d.subtitle), size: 9, width: textWidth)
            draw(subtitle, x: margin, y: y, rgb: (0.3, 0.3, 0.3))
            y += height(subtitle) + 10
            g_object_unref(UnsafeMutableRawPointer(subtitle))
            // Verdict band.
            let band = layout(d.verdict, size: 16, bold: true, width: textWidth - 20)
            let bandHeight = height(band) + 16
            cairo_set_source_rgb(cr, d.verdictColor.0, d.verdictColor.1, d.verdictColor.2)
            cairo_rectangle(cr, margin, y, textWidth, bandHeight)
            cairo_fill(cr)
            draw(band, x: margin + 10, y: y + 8, rgb: (1, 1, 1))
            g_object_unref(UnsafeMutableRawPointer(band))
            // QR code, top right, with a quiet zone.
            if let qr = QRCode(d.qrText) {
                let left = pageWidth - margin - qrSize
                let module = qrSize / Double(qr.size + 8)
                cairo_set_source_rgb(cr, 1, 1, 1)
                cairo_rectangle(cr, left, margin, qrSize, qrSize)
                cairo_fill(cr)
                cairo_set_source_rgb(cr, 0, 0, 0)
                for row in 0..<qr.size {
                    for column in 0..<qr.size where qr.isDark(column, row) {
                        cairo_rectangle(cr, left + Double(column + 4) * module, margin + Double(row + 4) * module, module, module)
                    }
                }
                cairo_fill(cr)
                let caption = layout(d.qrCaption, size: 5.6, width: qrSize + 10)
                pango_layout_set_alignment(caption, PANGO_ALIGN_CENTER)
                draw(caption, x: left - 5, y: margin + qrSize + 2, rgb: (0.3, 0.3, 0.3))
                g_object_unref(UnsafeMutableRawPointer(caption))
                y = max(y + bandHeight + 16, margin + qrSize + 24)
            } else {
                y += bandHeight + 16
            }
        }

        mutating func sectionTitle(_ title: String) {
            let l = layout(title, size: 11.5, bold: true, width: pageWidth - 2 * margin)
            draw(l, x: margin, y: y, rgb: (0.12, 0.25, 0.45))
            y += height(l) + 2
            g_object_unref(UnsafeMutableRawPointer(l))
            cairo_set_source_rgb(cr, 0.12, 0.25, 0.45)
            cairo_set_line_width(cr, 0.6)
            cairo_move_to(cr, margin, y)
            cairo_line_to(cr, pageWidth - margin, y)
            cairo_stroke(cr)
            y += 4
        }

        mutating func row(_ label: String, _ value: String) {
            let valueWidth = pageWidth - 2 * margin - labelWidth - 8
            let l = layout(label, size: 8.5, bold: true, width: labelWidth)
            let v = layout(value, size: 8.5, width: valueWidth)
            defer {
                g_object_unref(UnsafeMutableRawPointer(l))
                g_object_unref(UnsafeMutableRawPointer(v))
            }
            var lineHeight = max(height(l), height(v))
            if y + lineHeight > bottom, lineHeight <= bottom - margin {
                newPage()
            }
            if lineHeight > bottom - margin {
                // Taller than a page: draw it in page-sized slices of whole lines.
                drawTall(label: l, value: v, valueWidth: valueWidth)
                return
            }
            draw(l, x: margin, y: y, rgb: (0.25, 0.25, 0.25))
            draw(v, x: margin + labelWidth + 8, y: y)
            lineHeight += 3
            y += lineHeight
        }

        mutating func drawTall(label: OpaquePointer, value: OpaquePointer, valueWidth: Double) {
            draw(label, x: margin, y: y, rgb: (0.25, 0.25, 0.25))
            let count = pango_layout_get_line_count(value)
            for index in 0..<count {
                guard let line = pango_layout_get_line_readonly(value, index) else { continue }
                var ink = PangoRectangle()
                var logical = PangoRectangle()
                pango_layout_line_get_extents(line, &ink, &logical)
                let h = Double(logical.height) / Double(PANGO_SCALE)
                if y + h > bottom { newPage() }
                cairo_set_source_rgb(cr, 0.1, 0.1, 0.1)
                cairo_move_to(cr, margin + labelWidth + 8, y - Double(logical.y) / Double(PANGO_SCALE))
                pango_cairo_show_layout_line(cr, line)
                y += h
            }
            y += 3
        }

        mutating func footer(_ text: String) {
            let l = layout(text, size: 7, width: pageWidth - 2 * margin)
            let h = height(l)
            if y + h + 10 > pageHeight - margin { newPage() }
            draw(l, x: margin, y: pageHeight - margin - h, rgb: (0.35, 0.35, 0.35))
            g_object_unref(UnsafeMutableRawPointer(l))
        }
    }
}

/// Rendering failed.
public struct RenderError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
