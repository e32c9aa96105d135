/// The bench dashboard: one card per bay/device, live from the API's event stream (Server-Sent
/// Events), falling back to polling every second where the stream is not available.
enum Dashboard {
    static let page = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Lethe bench</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <style>
        body{font-family:system-ui,sans-serif;margin:0;background:#f3f4f6;color:#111}
        header{background:#1f3f73;color:#fff;padding:.8em 1.2em;font-size:1.2em}
        #grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:1em;padding:1em}
        .card{background:#fff;border-radius:8px;padding:1em;box-shadow:0 1px 3px #0002}
        .bay{font-weight:700;font-size:1.1em}.muted{color:#666;font-size:.9em}.next{font-weight:700;color:#8a4b00}
        .bar{height:14px;background:#e5e7eb;border-radius:7px;overflow:hidden;margin:.6em 0}
        .bar>div{height:100%;background:#2563eb;transition:width .4s}
        .erased .bar>div{background:#16a34a}.notErased .bar>div,.aborted .bar>div,.interrupted .bar>div{background:#dc2626}
        .verdict{font-weight:700}.erased .verdict{color:#16a34a}.erasedWithExceptions .verdict{color:#d97706}
        .notErased .verdict,.aborted .verdict,.interrupted .verdict{color:#dc2626}
        button{margin-right:.4em}
        </style></head>
        <body><header>Lethe bench <span id="live" style="float:right;font-size:.7em;opacity:.8"></span></header><div id="grid"><p style="padding:1em">Loading…</p></div>
        <script>
        const params=new URLSearchParams(location.hash.slice(1));
        if(params.get('token')){localStorage.setItem('letheToken',params.get('token'));history.replaceState(null,'',location.pathname)}
        const token=localStorage.getItem('letheToken')||'';
        const auth={headers:{Authorization:'Bearer '+token}};
        function h(s){return String(s??'').replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]))}
        function rate(b){return b>0?(b/1048576).toFixed(0)+' MiB/s':''}
        function eta(s){return s==null?'':'ETA '+Math.floor(s/60)+':'+String(Math.floor(s%60)).padStart(2,'0')}
        const jobs=new Map(),devices=new Map();let pending=false,mode='',dead=[];
        async function outbox(){try{const r=await fetch('/api/v1/outbox?state=dead',auth);if(r.ok){dead=(await r.json()).records;draw()}}catch(e){}}
        async function retryDead(){const r=await fetch('/api/v1/outbox/dead/retry',{method:'POST',...auth});if(!r.ok)alert((await r.json()).message);outbox()}
        function psidStart(id){const f=document.getElementById('psid-'+id);const psid=f.value.trim();f.value='';act(id,'start',{method:'tcg-psid-revert',psid})}
        function adminStart(id){const f=document.getElementById('admin-'+id);const password=f.value;f.value='';act(id,'start',{method:'tcg-crypto-erase',password})}
        async function act(id,what,body){const r=await fetch('/api/v1/jobs/'+id+'/'+what,{method:'POST',headers:{...auth.headers,'Content-Type':'application/json'},body:body?JSON.stringify(body):undefined});if(!r.ok)alert((await r.json()).message);else{jobs.set(id,await r.json());draw()}}
        const scale={A:'like new',B:'light wear',C:'moderate wear',D:'heavy wear',E:'damaged'};
        function grade(id,g){const notes=prompt('Cosmetic grade '+g+' ('+scale[g]+'). Notes (optional):','');if(notes!==null)act(id,'grade',{grade:g,notes})}
        function draw(){if(pending)return;pending=true;requestAnimationFrame(render)}
        function render(){
          pending=false;
          const list=[...jobs.values()].sort((a,b)=>a.id<b.id?1:-1);
          const seen=new Set(list.map(j=>j.device));
          let html='';
          for(const j of list){
            html+=`<div class="card ${h(j.state)}"><div class="bay">${h(j.bay||j.device)}</div>
            <div class="muted">${h(j.model||'')} · serial ${h(j.serial||'—')} · ${h(j.profile||'')} (${h(j.method)})${j.sku?' · SKU '+h(j.sku):''}</div>
            ${j.catalogNote?`<div class="muted">${h(j.catalogNote)}</div>`:''}
            ${j.battery?`<div class="muted">battery ${h(j.battery)}${j.batteryVerdict?' · '+h(j.batteryVerdict.toUpperCase()):''}</div>`:''}
            ${j.message?`<div><b>${h(j.message)}</b></div>`:''}
            ${(j.checks||[]).map(c=>`<div class="muted">${h(c)}</div>`).join('')}
            <div class="bar"><div style="width:${j.percent.toFixed(1)}%"></div></div>
            <div>${h(j.step)} ${j.pass?('pass '+j.pass+'/'+j.passCount):''} · ${j.percent.toFixed(1)}% ${rate(j.bytesPerSecond)} ${eta(j.etaSeconds)}</div>
            <div class="verdict">${h(j.state)}${j.certified?' · certified':''}</div>
            ${j.error?`<div class="muted">${h(j.error)}</div>`:''}
            ${j.state==='waiting'&&((j.message||'').includes('LOCKED')||j.method==='tcg-psid-revert')?`<div>PSID <input id="psid-${j.id}" type="password" autocomplete="off" size="34" maxlength="32" placeholder="type it, or scan the label's barcode"> <button onclick="psidStart('${j.id}')">Revert with the PSID</button></div>
            <div>or the owner's Admin1 password <input id="admin-${j.id}" type="password" autocomplete="off" size="20"> <button onclick="adminStart('${j.id}')">Crypto-erase (keeps the owner's setup)</button></div>`:''}
            <div>${j.state==='waiting'?`<button onclick="act('${j.id}','start')">Start</button>`:''}
            ${j.state==='running'||j.state==='waiting'?`<button onclick="act('${j.id}','abort')">Abort</button>`:''}
            ${j.resumable?`<button onclick="act('${j.id}','resume')">Resume</button>`:''}
            ${(j.functionChecks||[]).map(c=>`<div class="muted">${h(c)}</div>`).join('')}
            ${j.step==='grade'&&j.method==='crypto-erase-factory-reset'?`<div>Checks: ${['screen','touch','cameras','buttons','speaker','microphone'].map(c=>`${c} <button onclick="act('${j.id}','checks',{${c}:'pass'})">✓</button><button onclick="act('${j.id}','checks',{${c}:'fail'})">✗</button>`).join(' ')}</div>`:''}
            ${j.step==='grade'?`<div>Cosmetic grade: ${Object.keys(scale).map(g=>`<button title="${scale[g]}" onclick="grade('${j.id}','${g}')">${g}</button>`).join('')}</div>`:''}
            ${j.cosmeticGrade?`<div class="muted">cosmetic ${h(j.cosmeticGrade)}</div>`:''}
            ${j.refurbReportId?`<a href="/api/v1/reports/${j.refurbReportId}.pdf">Refurb report</a>`:''}
            ${j.reportId?`<a href="/api/v1/reports/${j.reportId}.pdf">Certificate</a>`:''}</div></div>`;
          }
          for(const d of [...devices.values()].filter(d=>!seen.has(d.path))){
            html+=`<div class="card"><div class="bay">${h(d.bay||d.path)}</div><div class="muted">${h(d.model||d.transport)} · serial ${h(d.serial||'—')}</div>
            <div class="${d.kind==='phone'?'next':''}">${d.protected?(d.kind==='phone'?'Next: ':'PROTECTED: ')+h(d.protectionReason):'no job'}</div></div>`;
          }
          const letters=dead.length?`<div class="card notErased" style="grid-column:1/-1"><div class="verdict">${dead.length} catalog record(s) not delivered (dead letters)</div>
            ${dead.slice(0,5).map(d=>`<div class="muted">${h(d.deviceKey)} #${d.sequence}: ${h(d.lastError)}</div>`).join('')}
            <button onclick="retryDead()">Retry dead letters</button></div>`:'';
          // A PSID being typed or scanned survives the redraws other bays cause.
          const typing={};let focused=null;
          document.querySelectorAll('input[id^="psid-"],input[id^="admin-"]').forEach(i=>{typing[i.id]=i.value;if(document.activeElement===i)focused=i.id});
          document.getElementById('grid').innerHTML=letters+(html||'<p style="padding:1em">No devices docked.</p>');
          for(const [k,v] of Object.entries(typing)){const i=document.getElementById(k);if(i)i.value=v}
          if(focused){const i=document.getElementById(focused);if(i)i.focus()}
          document.getElementById('live').textContent=mode;
        }
        async function poll(){
          try{
            const [jr,dr]=await Promise.all([fetch('/api/v1/jobs',auth),fetch('/api/v1/devices',auth)]);
            if(!jr.ok){document.getElementById('grid').innerHTML='<p style="padding:1em">'+h((await jr.json()).message)+'. Open this page as /#token=YOUR_TOKEN.</p>';return false}
            jobs.clear();devices.clear();
            for(const j of await jr.json())jobs.set(j.id,j);
            for(const d of await dr.json())devices.set(d.path,d);
            render();return true;
          }catch(e){document.getElementById('grid').innerHTML='<p style="padding:1em">Daemon not reachable: '+h(e)+'</p>';return false}
        }
        function polling(){mode='polling every second';poll();setInterval(poll,1000)}
        function stream(){
          const es=new EventSource('/api/v1/events?token='+encodeURIComponent(token));
          let opened=false;
          es.onopen=()=>{opened=true;mode='live';jobs.clear();devices.clear();console.info('lethe: live events');document.getElementById('live').textContent=mode};
          es.addEventListener('job',e=>{const j=JSON.parse(e.data);jobs.set(j.id,j);draw()});
          es.addEventListener('device',e=>{const d=JSON.parse(e.data);devices.set(d.path,d);draw()});
          es.addEventListener('deviceRemoved',e=>{devices.delete(JSON.parse(e.data).path);draw()});
          // Never opened (proxy, old browser): poll instead. Dropped later: EventSource reconnects.
          es.onerror=()=>{console.info('lethe: event stream error, open='+opened);if(!opened){es.close();polling()}else{mode='reconnecting…';draw()}};
        }
        outbox();setInterval(outbox,5000);
        poll().then(ok=>{if(!ok)return;if(params.get('live')==='poll'||!window.EventSource)polling();else stream()});
        </script></body></html>
        """
}
