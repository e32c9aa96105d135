import Foundation
import LetheCore

/// The public page a buyer's phone opens from the QR code. The hub's verdict is rendered on the
/// server; the script then checks the signature again in the browser (WebCrypto Ed25519)
/// against the published JWKS, and the QR code's digest, so a buyer need not trust the hub.
enum VerifyPage {
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
    }

    static func page(_ title: String, ok: Bool, _ body: String) -> String {
        """
        <!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>
        <title>\(escape(title))</title>
        <style>body{font-family:sans-serif;max-width:40em;margin:1.5em auto;padding:0 1em;line-height:1.45}
        h1{color:\(ok ? "#17803d" : "#b00")}dt{color:#555;font-size:.9em}dd{margin:0 0 .6em 0}
        #browser-check{padding:.6em;border-radius:.4em;background:#f3f3f3}#browser-check[data-result=valid]{background:#e4f6e9}
        #browser-check[data-result=invalid],#browser-check[data-result=error]{background:#fde8e8}code{word-break:break-all}</style>
        <body><h1 id=verdict>\(escape(title))</h1>\(body)</body></html>
        """
    }

    static func notFound(id: String) -> String {
        page("Unknown certificate", ok: false, "<p>This hub holds no report with id <code>\(escape(id))</code>. Check the code, or ask the seller.</p>")
    }

    static func render(_ view: HubReportView) -> String {
        let title: String
        if !view.flags.isEmpty {
            title = "Do NOT trust this report"
        } else if view.kind == "certificate" {
            title = view.certified ? "Erase certified" : "NOT certified: \(view.status ?? "no status")"
        } else {
            title = "Refurb report: grade \(view.grade ?? "?")"
        }
        let ok = view.flags.isEmpty && (view.kind != "certificate" || view.certified)
        var rows: [(String, String)] = [
            ("Verdict", view.verdict),
            ("Device", [view.manufacturer, view.model].compactMap { $0 }.joined(separator: " ").nonEmpty ?? "unknown"),
            ("Serial", view.serial ?? "unknown"),
        ]
        if let method = view.method { rows.append(("Method", [view.category, method].compactMap { $0 }.joined(separator: " — "))) }
        rows.append(("Date", view.issuedAt ?? "unknown"))
        rows.append(("Station", "\(view.stationName) (\(view.station))"))
        rows.append(("Signature (checked by the hub)", view.signatureValid ? "valid, station key \(view.keyId) (\(view.keyStatus))" : "does NOT verify"))
        if let matches = view.digestMatches {
            rows.append(("QR code digest", matches ? "matches the signed document" : "does NOT match this document"))
        }
        if let sample = view.sample {
            rows.append(("Independent verification", sample.state == "hold" ? "drawn for a second check, not yet done"
                : "\(sample.state) — \(sample.result ?? ""), by \(sample.checkedBy ?? "?") at \(sample.checkedAt ?? "?")"))
        }
        let list = rows.map { "<dt>\(escape($0.0))</dt><dd data-field='\(escape($0.0))'>\(escape($0.1))</dd>" }.joined()
        let flags = view.flags.map { "<p style='color:#b00'><b>\(escape($0))</b></p>" }.joined()
        let protected = view.jws.protectedHeader, payload = view.jws.payload, signature = view.jws.signature
        return page(title, ok: ok, """
            \(flags)<dl>\(list)</dl>
            <p id=browser-check data-result=pending>Checking the signature in this browser…</p>
            <div id=jws hidden data-id='\(escape(view.reportId))' data-kid='\(escape(view.keyId))' data-protected='\(escape(protected))'
              data-payload='\(escape(payload))' data-signature='\(escape(signature))' data-serial='\(escape(view.serial ?? ""))'></div>
            <p><a href="/v1/reports/\(escape(view.reportId))">The signed document (JSON)</a> ·
              <a href="/.well-known/jwks.json">The station keys (JWKS)</a></p>
            <script>\(script)</script>
            """)
    }

    /// Checks the JWS with WebCrypto against `/.well-known/jwks.json`; writes the result in
    /// `#browser-check` (`data-result`: valid, invalid, error).
    static let script = """
        (async () => {
          const out = document.getElementById('browser-check'), el = document.getElementById('jws');
          const say = (result, text) => { out.dataset.result = result; out.textContent = text; };
          const bytes = s => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4)), c => c.charCodeAt(0));
          const b64url = a => btoa(String.fromCharCode(...a)).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
          try {
            if (!window.crypto || !crypto.subtle) throw new Error('this page is not served over HTTPS, so the browser offers no WebCrypto');
            const jwks = await (await fetch('/.well-known/jwks.json')).json();
            const k = (jwks.keys || []).find(k => k.kid === el.dataset.kid);
            if (!k) return say('invalid', 'Checked in this browser: the key ' + el.dataset.kid + ' is not published by this hub');
            const key = await crypto.subtle.importKey('jwk', {kty: 'OKP', crv: 'Ed25519', x: k.x}, {name: 'Ed25519'}, false, ['verify']);
            const signed = new TextEncoder().encode(el.dataset.protected + '.' + el.dataset.payload);
            const ok = await crypto.subtle.verify({name: 'Ed25519'}, key, bytes(el.dataset.signature), signed);
            if (!ok) return say('invalid', 'Checked in this browser: the signature does NOT verify');
            const doc = JSON.parse(new TextDecoder().decode(bytes(el.dataset.payload)));
            if (doc.reportId !== el.dataset.id) return say('invalid', 'Checked in this browser: the signed document is ' + doc.reportId + ', not ' + el.dataset.id);
            if (((doc.device || {}).serial || '') !== el.dataset.serial) return say('invalid', 'Checked in this browser: the signed serial differs from the one shown');
            const digest = b64url(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes(el.dataset.payload))));
            const qr = new URLSearchParams(location.search).get('d');
            const qrText = qr === null ? '' : (qr === digest ? '; the QR code digest matches' : '; but the QR code digest does NOT match');
            if (qr !== null && qr !== digest) return say('invalid', 'Checked in this browser: the signature is valid' + qrText);
            say(k.revoked_at ? 'invalid' : 'valid', 'Checked in this browser: the signature is valid (Ed25519, station ' + k.station + ', key ' + k.kid + ')' + qrText + (k.revoked_at ? '; but this key was revoked at ' + k.revoked_at : ''));
          } catch (e) {
            say('error', 'This browser could not check the signature itself: ' + e.message);
          }
        })();
        """
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
