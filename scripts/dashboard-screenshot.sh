#!/usr/bin/env bash
# Saves a screenshot of the dashboard with a bay mid-erase, from headless Chromium.
#   scripts/dashboard-screenshot.sh OUT.png [LETHE]     (root; Debian packages chromium, curl)
# It starts a daemon on a private state directory and port, docks a 1 GiB loop drive, starts
# a Gutmann erase through the API, takes the screenshot while it runs, reads the live dashboard
# twice through Chromium's DevTools protocol (scripts/dashboard-live.py), aborts, and cleans up.
set -euo pipefail
out=${1:?usage: dashboard-screenshot.sh OUT.png [LETHE]}
cd "$(dirname "$0")/.."
LETHE=${2:-$(swift build --show-bin-path)/lethe}
work=$(mktemp -d)
port=$((30000 + $$ % 20000))
mkdir -p "$work/profiles"
cat > "$work/profiles/slow.yaml" <<'YAML'
name: slow-loop
description: Loop drive, Gutmann (35 passes), for the screenshot
match: {transport: loop}
diagnostics: {smart: false}
erase: {method: gutmann, verification: last}
YAML
"$LETHE" keys init --state-dir "$work/var" >/dev/null
token=$("$LETHE" tokens add screenshot --role technician --state-dir "$work/var" 2>/dev/null)
auth="Authorization: Bearer $token"
"$LETHE" daemon --no-phones --state-dir "$work/var" --profiles "$work/profiles" --listen "127.0.0.1:$port" 2> "$work/daemon.log" &
daemon=$!
truncate -s 1G "$work/drive.img"
loop=""
cleanup() {
  kill -TERM $daemon 2>/dev/null || true
  wait $daemon 2>/dev/null || true
  [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
loop=$(losetup -f --show "$work/drive.img")
id=""
for _ in $(seq 50); do
  id=$(curl -s -H "$auth" "http://127.0.0.1:$port/api/v1/jobs" | python3 -c "import sys,json; print(next((j['id'] for j in json.load(sys.stdin) if j['device']=='$loop'), ''))")
  [ -n "$id" ] && break
  sleep 0.2
done
[ -n "$id" ] || { echo "no job for $loop" >&2; cat "$work/daemon.log" >&2; exit 1; }
curl -s -H "$auth" -X POST "http://127.0.0.1:$port/api/v1/jobs/$id/start" >/dev/null
sleep 3
# By default the page polls (live=poll): Chromium's virtual clock stands still while a request
# is open, and the event stream never closes. LIVE=sse shows the event-stream dashboard,
# waiting 4 real seconds instead.
if [ "${LIVE:-poll}" = sse ]; then
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1100,620 \
    --timeout=4000 --screenshot="$out" "http://127.0.0.1:$port/#token=$token" 2>/dev/null
else
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1100,620 \
    --virtual-time-budget=4000 --screenshot="$out" "http://127.0.0.1:$port/#token=$token&live=poll" 2>/dev/null
fi
curl -s -H "$auth" "http://127.0.0.1:$port/api/v1/jobs/$id"; echo
# The live (event-stream) dashboard, read twice a second apart: its JSON goes to stdout too.
if python3 -c "import websocket" 2>/dev/null; then
  python3 scripts/dashboard-live.py "http://127.0.0.1:$port/#token=$token" 2
fi
curl -s -H "$auth" -X POST "http://127.0.0.1:$port/api/v1/jobs/$id/abort" >/dev/null
for _ in $(seq 100); do curl -s -H "$auth" "http://127.0.0.1:$port/api/v1/jobs/$id" | grep -q '"step":"done"' && break; sleep 0.1; done
echo "screenshot: $out"
