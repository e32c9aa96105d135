#!/usr/bin/env bash
# Eight erases at once in the daemon against fio with eight jobs, on the same eight loop
# devices in one run (root):
#   Benchmarks/concurrent.sh [SIZE_MIB=1024] [ROUNDS=5]
# fio: one job per device, libaio, direct=1, iodepth=8, bs=4M, sequential write; aggregate
# bandwidth from its group report. Lethe: `lethe daemon` with the eight devices named by
# --auto-start (nothing else on the machine is touched; the profile is `zero`, verification
# off, so both sides only write), aggregate = bytes written / (last job.finished - first
# job.started) from the audit log, so the certificates' signing and rendering count against
# Lethe. Each Lethe round is divided by the mean of the fio runs just before and after it;
# the median ratio is printed. Target: >= 0.90.
set -euo pipefail
SIZE_MIB=${1:-1024}
ROUNDS=${2:-5}
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "needs root (loop devices)" >&2; exit 2; }
command -v fio >/dev/null || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fio >/dev/null; }
swift build -c release --product lethe >&2
LETHE=$(swift build -c release --show-bin-path)/lethe
work=$(mktemp -d)
loops=()
daemon=""
cleanup() {
  [ -n "$daemon" ] && { kill -TERM "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null || true; }
  for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
for i in $(seq 0 7); do
  fallocate -l "${SIZE_MIB}M" "$work/d$i.img"
  loops+=("$(losetup -f --show --direct-io=on "$work/d$i.img")")
done
mkdir -p "$work/profiles"
cat > "$work/profiles/bench.yaml" <<'YAML'
name: bench-loop
description: Loop drive for the concurrency benchmark (started only through --auto-start)
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

lethe_run() { # round
  local state="$work/var$1" port=$((30000 + ($$ + $1) % 20000)) args=()
  "$LETHE" keys init --state-dir "$state" >/dev/null
  local token
  token=$("$LETHE" tokens add bench --role qa --state-dir "$state" 2>/dev/null)
  for l in "${loops[@]}"; do args+=(--auto-start "$l"); done
  "$LETHE" daemon --no-phones --state-dir "$state" --profiles "$work/profiles" --listen "127.0.0.1:$port" "${args[@]}" 2> "$work/daemon$1.log" &
  daemon=$!
  python3 - "$port" "$token" "${loops[@]}" <<'PY'
import json, sys, time, urllib.request
port, token, loops = sys.argv[1], sys.argv[2], set(sys.argv[3:])
deadline = time.monotonic() + 600
while time.monotonic() < deadline:
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/jobs", headers={"Authorization": f"Bearer {token}"})
        jobs = [j for j in json.load(urllib.request.urlopen(req)) if j["device"] in loops]
        if len(jobs) == len(loops) and all(j["step"] in ("grade", "done") for j in jobs):
            bad = [j for j in jobs if j["state"] != "erased"]
            if bad: sys.exit(f"not erased: {bad}")
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit("timed out")
PY
  kill -TERM "$daemon"; wait "$daemon" || true; daemon=""
  python3 - "$state/lethe.sqlite" <<'PY'
import json, sqlite3, sys
from datetime import datetime
db = sqlite3.connect(sys.argv[1])
def t(s): return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
started = [t(r[0]) for r in db.execute("SELECT at FROM audit WHERE kind = 'job.started'")]
finished = [(t(r[0]), json.loads(r[1])) for r in db.execute("SELECT at, detail FROM audit WHERE kind = 'job.finished'")]
total = sum(int(d["bytesWritten"]) for _, d in finished)
print(total / (max(f for f, _ in finished) - min(started)))
PY
}

echo "8 devices x ${SIZE_MIB} MiB, $ROUNDS rounds" >&2
fio_run >/dev/null  # warm-up: the first writes to fresh backing files allocate their extents
before=$(fio_run)
ratios=()
for r in $(seq 1 "$ROUNDS"); do
  lethe=$(lethe_run "$r")
  after=$(fio_run)
  ratio=$(python3 -c "print(f'{$lethe / (($before + $after) / 2):.3f}')")
  python3 -c "print(f'round $r: lethe {$lethe/1e6:.0f} MB/s, fio {$before/1e6:.0f} before / {$after/1e6:.0f} after, ratio $ratio')"
  ratios+=("$ratio")
  before=$after
done
python3 -c "import statistics,sys; print(f'8 concurrent wipes / fio numjobs=8: median ratio {statistics.median(map(float, sys.argv[1:])):.2f}')" "${ratios[@]}"
