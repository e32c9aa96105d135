#!/usr/bin/env bash
# A 16-bay bench: sixteen erases at once in the daemon against fio with sixteen jobs, on the
# same sixteen loop devices in one run (root):
#
#   Benchmarks/bench-16.sh [--shm] [--devices N] [SIZE_MIB=1024] [ROUNDS=3]
#
#   --shm        loop devices over files in /dev/shm (memory speed: the stand-in for PCIe 4/5
#                NVMe drives, where CPU per byte decides); default: files on disk, direct I/O.
#   --devices N  N bays instead of 16 (Benchmarks/concurrent.sh is --devices 8).
#
# fio: one job per device, libaio, direct=1, iodepth=8, bs=4M, sequential write; aggregate
# bandwidth from its group report. Lethe: `lethe daemon` with the devices named by
# --auto-start (nothing else on the machine is touched; the profile is `zero`, verification
# off, so both sides only write); aggregate = bytes written / (last job.finished - first
# job.started) from the audit log, so the certificates' signing and rendering count against
# Lethe. Each Lethe round is divided by the mean of the fio runs just before and after it; the
# median ratio is printed. While the jobs run, the daemon's RSS is sampled (the peak, less the
# daemon's once the jobs are done, per running job) and the API (GET /api/v1/jobs) and the
# dashboard (GET /) are timed every 50 ms. Goals: aggregate >= 0.90x fio; every answer within
# 100 ms.
set -euo pipefail
SHM=0
DEVICES=16
while [ $# -gt 0 ]; do
  case "$1" in
    --shm) SHM=1; shift ;;
    --devices) DEVICES=$2; shift 2 ;;
    *) break ;;
  esac
done
SIZE_MIB=${1:-1024}
ROUNDS=${2:-3}
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "needs root (loop devices)" >&2; exit 2; }
command -v fio >/dev/null || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fio >/dev/null; }
swift build -c release --product lethe >&2
LETHE=$(swift build -c release --show-bin-path)/lethe
if [ $SHM = 1 ]; then work=$(mktemp -d -p /dev/shm); else work=$(mktemp -d); fi
loops=()
daemon=""
cleanup() {
  [ -n "$daemon" ] && { kill -TERM "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null || true; }
  for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
for i in $(seq 1 "$DEVICES"); do
  fallocate -l "${SIZE_MIB}M" "$work/d$i.img"
  loops+=("$(losetup -f --show --direct-io=on "$work/d$i.img" 2>/dev/null || losetup -f --show "$work/d$i.img")")
done
mkdir -p "$work/profiles"
cat > "$work/profiles/bench.yaml" <<'YAML'
name: bench-loop
description: Loop drive for the bench benchmark (started only through --auto-start)
match: {transport: loop}
diagnostics: {smart: false}
erase: {method: zero, verification: off}
start: manual
YAML

fio_run() {
  local args=()
  for l in "${loops[@]}"; do args+=(--name="$(basename "$l")" --filename="$l"); done
  fio --rw=write --bs=4M --iodepth=8 --ioengine=libaio --direct=1 --group_reporting --output-format=json "${args[@]}" \
    | python3 -c "import json,sys; print(json.load(sys.stdin)['jobs'][0]['write']['bw_bytes'])"
}

lethe_run() { # round -> "bytes/s rss_idle_kib rss_peak_kib api_max_ms api_p99_ms page_max_ms"
  local state="$work/var$1" port=$((30000 + ($$ + $1) % 20000)) args=()
  "$LETHE" keys init --state-dir "$state" >/dev/null
  local token
  token=$("$LETHE" tokens add bench --role qa --state-dir "$state" 2>/dev/null)
  for l in "${loops[@]}"; do args+=(--auto-start "$l"); done
  "$LETHE" daemon --no-phones --state-dir "$state" --profiles "$work/profiles" --listen "127.0.0.1:$port" "${args[@]}" 2> "$work/daemon$1.log" &
  daemon=$!
  local watched
  watched=$(nice -n -10 python3 - "$port" "$token" "$daemon" "${loops[@]}" <<'PY'
import json, statistics, sys, time, urllib.request
port, token, pid, loops = sys.argv[1], sys.argv[2], sys.argv[3], set(sys.argv[4:])
def rss(field="RssAnon:"):
    # Anonymous memory: the daemon's own. File-backed pages (the binary, fonts mapped for
    # the PDFs) are shared and reclaimable, and are reported beside it.
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field): return int(line.split()[1])
    return 0
def get(path, auth=True):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"} if auth else {})
    start = time.monotonic()
    body = urllib.request.urlopen(req, timeout=10).read()
    return body, (time.monotonic() - start) * 1000
peak, api, page, first, worst = 0, [], [], None, (0, 0)
deadline = time.monotonic() + 900
while time.monotonic() < deadline:
    try:
        body, ms = get("/api/v1/jobs")
    except OSError:
        time.sleep(0.05); continue
    jobs = [j for j in json.loads(body) if j["device"] in loops]
    running = [j for j in jobs if j["state"] == "running"]
    if running:
        if first is None: first = time.monotonic()
        api.append(ms)
        page.append(get("/", auth=False)[1])
        if ms >= max(api): worst = (time.monotonic() - first, len(running))
        peak = max(peak, rss())
    if len(jobs) == len(loops) and all(j["step"] in ("grade", "done") for j in jobs):
        bad = [j for j in jobs if j["state"] != "erased"]
        if bad: sys.exit(f"not erased: {bad}")
        break
    time.sleep(0.05)
else:
    sys.exit("timed out")
# Settled: the jobs are done, their certificates written; what stays is the daemon's own.
time.sleep(1)
idle = rss()
files = rss("RssFile:")
api.sort()
p99 = api[min(len(api) - 1, int(len(api) * 0.99))] if api else 0
print(f"slowest API answer {max(api, default=0):.1f} ms at {worst[0]:.2f} s, {worst[1]} jobs running; {len(api)} samples", file=sys.stderr)
print(idle, peak, f"{max(api, default=0):.1f}", f"{p99:.1f}", f"{max(page, default=0):.1f}", files)
PY
)
  kill -TERM "$daemon"; wait "$daemon" || true; daemon=""
  local rate
  rate=$(python3 - "$state/lethe.sqlite" <<'PY'
import json, sqlite3, sys
from datetime import datetime
db = sqlite3.connect(sys.argv[1])
def t(s): return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
started = [t(r[0]) for r in db.execute("SELECT at FROM audit WHERE kind = 'job.started'")]
finished = [(t(r[0]), json.loads(r[1])) for r in db.execute("SELECT at, detail FROM audit WHERE kind = 'job.finished'")]
total = sum(int(d["bytesWritten"]) for _, d in finished)
print(total / (max(f for f, _ in finished) - min(started)))
PY
)
  echo "$rate $watched"
}

echo "$DEVICES devices x ${SIZE_MIB} MiB $( [ $SHM = 1 ] && echo "in /dev/shm" || echo "on disk" ), $ROUNDS rounds" >&2
fio_run >/dev/null  # warm-up: the first writes to fresh backing files allocate their extents
before=$(fio_run)
ratios=()
worst_api=0
for r in $(seq 1 "$ROUNDS"); do
  read -r lethe idle peak api_max api_p99 page_max files <<< "$(lethe_run "$r")"
  after=$(fio_run)
  ratio=$(python3 -c "print(f'{$lethe / (($before + $after) / 2):.3f}')")
  python3 -c "print(f'round $r: lethe {$lethe/1e6:.0f} MB/s, fio {$before/1e6:.0f} before / {$after/1e6:.0f} after, ratio $ratio;'
    f' daemon anonymous RSS {$peak/1024:.1f} MiB at the peak, {$idle/1024:.1f} MiB after ({$files/1024:.1f} MiB of mapped files): {($peak-$idle)/1024/$DEVICES:.1f} MiB per running job;'
    f' API max {$api_max} ms (p99 {$api_p99}), dashboard max {$page_max} ms')"
  ratios+=("$ratio")
  worst_api=$(python3 -c "print(max($worst_api, $api_max, $page_max))")
  before=$after
done
python3 - "$DEVICES" "$worst_api" "${ratios[@]}" <<'PY'
import statistics, sys
devices, worst, ratios = sys.argv[1], float(sys.argv[2]), [float(x) for x in sys.argv[3:]]
median = statistics.median(ratios)
print(f"{devices} concurrent wipes / fio numjobs={devices}: median ratio {median:.2f} (goal >= 0.90: {'met' if median >= 0.9 else 'NOT MET'});"
      f" slowest API or dashboard answer while they ran: {worst:.1f} ms (goal <= 100: {'met' if worst <= 100 else 'NOT MET'})")
sys.exit(0 if median >= 0.9 and worst <= 100 else 1)
PY
