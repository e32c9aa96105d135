/// The QA dashboard (`/`): supply scorecards per supplier and per lot as charts (grade mix,
/// locks, battery health, erased and failed shares). The token comes in the URL fragment
/// (`/#token=…`), which browsers never send to a server, and is kept in the page's memory.
enum HubDashboard {
    static let page = """
        <!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>
        <title>Lethe Hub: supply quality</title>
        <style>
        body{font-family:sans-serif;margin:1.5em;color:#222}h1{font-size:1.4em}table{border-collapse:collapse;margin:.5em 0 1.5em}
        td,th{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:right}th:first-child,td:first-child{text-align:left}
        .legend span{display:inline-block;margin-right:1em}.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle}
        #status{color:#b00}
        </style>
        <body><h1>Supply quality</h1>
        <p>Group by <select id=by><option value=supplier>supplier</option><option value=lot>lot</option></select> <span id=status></span></p>
        <div class=legend id=legend></div>
        <div id=charts></div>
        <table id=table><thead><tr><th>group</th><th>units</th><th>erased</th><th>failed diagnostics</th><th>locked</th><th>median bench time</th></tr></thead><tbody></tbody></table>
        <script>
        const token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
        history.replaceState(null, '', location.pathname);
        const colors = {A:'#1a7f37',B:'#57a64a',C:'#d4a72c',D:'#d9822b',E:'#b3261e'};
        const esc = s => String(s).replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
        function bar(label, parts, total, width) {
          let x = 0, rects = '';
          for (const [name, value, color] of parts) {
            if (!value) continue;
            const w = total ? value / total * width : 0;
            rects += `<rect x="${x}" y="0" width="${w}" height="18" fill="${color}" data-part="${esc(name)}" data-value="${value}"><title>${esc(name)}: ${value}</title></rect>`;
            x += w;
          }
          return `<div class=chart data-group="${esc(label)}"><b>${esc(label)}</b><br><svg width="${width}" height="18" role="img" aria-label="${esc(label)}">${rects}</svg></div>`;
        }
        async function load() {
          const by = document.getElementById('by').value;
          const r = await fetch('/v1/scorecards?by=' + by, {headers: {Authorization: 'Bearer ' + token}});
          const status = document.getElementById('status');
          if (!r.ok) { status.textContent = (await r.json()).message; return; }
          status.textContent = '';
          const cards = await r.json();
          document.getElementById('legend').innerHTML = Object.entries(colors).map(([g, c]) => `<span><i style="background:${c}"></i>grade ${g}</span>`).join('')
            + '<span><i style="background:#6b4fbb"></i>locked</span><span><i style="background:#999"></i>battery &lt;80%</span>';
          document.getElementById('charts').innerHTML = cards.map(c =>
            bar(c.group + ' — grades', Object.keys(colors).map(g => [g, c.grades[g] || 0, colors[g]]), c.units, 420)
            + bar(c.group + ' — locked', [['locked', c.locked, '#6b4fbb'], ['not locked', c.units - c.locked, '#e6e0f5']], c.units, 420)
            + bar(c.group + ' — battery', [['<70', c.battery['<70'], '#999'], ['70-79', c.battery['70-79'], '#bbb'], ['80-89', c.battery['80-89'], '#9ccf9c'], ['90+', c.battery['90+'], '#1a7f37'], ['unknown', c.battery.unknown, '#eee']], c.units, 420)
          ).join('');
          document.querySelector('#table tbody').innerHTML = cards.map(c => `<tr data-group="${esc(c.group)}"><td>${esc(c.group)}</td><td>${c.units}</td><td>${c.erased}</td><td>${c.failedDiagnostics}</td><td>${c.locked}</td><td>${c.medianBenchSeconds == null ? '—' : Math.round(c.medianBenchSeconds / 60) + ' min'}</td></tr>`).join('');
          document.body.dataset.loaded = cards.length;
        }
        document.getElementById('by').onchange = load;
        load();
        </script></body></html>
        """
}
