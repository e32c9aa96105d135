#!/usr/bin/env bash
# The daemon's footprint and reaction time (root):
#   - resident memory (VmRSS) when idle, 3 s after start, split into anonymous memory (the
#     daemon's own) and mapped files (program text: clean, shared and reclaimable; the kernel
#     maps up to 16 neighbouring page-cache pages on every read fault, "fault-around", so this
#     part is mostly pages the daemon never touched; see docs/speed.md for how that was counted);
#   - hotplug to visible in the API: a loop device bound with losetup, until /api/v1/devices
#     lists it (polled every 5 ms), median of ROUNDS.
#   Benchmarks/daemon.sh [ROUNDS=10]
set -euo pipefail
ROUNDS=${1:-10}
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "needs root (loop devices)" >&2; exit 2; }
swift build -c release --product lethe >&2
LETHE=$(swift build -c release --show-bin-path)/lethe
work=$(mktemp -d)
port=$((30000 + $$ % 20000))
"$LETHE" keys init --state-dir "$work/var" >/dev/null
token=$("$LETHE" tokens add bench --role qa --state-dir "$work/var" 2>/dev/null)
"$LETHE" daemon --no-phones --state-dir "$work/var" --listen "127.0.0.1:$port" 2> "$work/daemon.log" &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.05; done
sleep 3
rss=$(awk '/VmRSS/ {print $2}' /proc/$daemon/status)
anon=$(awk '/RssAnon/ {print $2}' /proc/$daemon/status)
files=$(awk '/RssFile/ {print $2}' /proc/$daemon/status)
truncate -s 64M "$work/drive.img"
python3 - "$port" "$token" "$work/drive.img" "$ROUNDS" "$rss" "$anon" "$files" <<'PY'
import json, statistics, subprocess, sys, time, urllib.request
port, token, image, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rss, anon, files = (int(v) for v in sys.argv[5:8])
def devices():
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/devices", headers={"Authorization": f"Bearer {token}"})
    return [d["path"] for d in json.load(urllib.request.urlopen(req))]
times = []
for _ in range(rounds):
    t0 = time.monotonic()
    loop = subprocess.check_output(["losetup", "-f", "--show", image], text=True).strip()
    while loop not in devices():
        time.sleep(0.005)
    times.append(time.monotonic() - t0)
    subprocess.check_call(["losetup", "-d", loop])
    while loop in devices():
        time.sleep(0.005)
print(f"daemon RSS when idle:            {rss / 1024:.1f} MiB ({anon / 1024:.1f} MiB anonymous, {files / 1024:.1f} MiB mapped files)")
print(f"hotplug to visible in the API:   median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms ({rounds} rounds)")
PY
