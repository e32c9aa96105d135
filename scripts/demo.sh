#!/usr/bin/env bash
# The main job: install what Lethe needs, build it, and run the daemon with its embedded
# defaults and a loop-backed demo drive. The daemon detects the drive, erases it (NIST Clear,
# full verification), and issues a signed certificate; watch it on the dashboard at
# http://127.0.0.1:8765/ (the certificate PDF is linked from the drive's card). Ctrl-C stops
# the daemon and removes the demo drive. Run as root on Debian 12.
#   DEMO_SECONDS=N bash scripts/demo.sh    stop by itself after N seconds (smoke test)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (it creates a loop device)" >&2; exit 2; }
PKGS="util-linux e2fsprogs libudev-dev libssl-dev libusb-1.0-0-dev smartmontools libcairo2-dev libpango1.0-dev
      libqrencode-dev libplist-dev fonts-noto-cjk libsqlite3-dev curl adb"
missing=""
for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "demo.sh: installing$missing" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
swift build -c release --product lethe 2>&1 | tail -1
LETHE=$(swift build -c release --show-bin-path)/lethe
echo "== lethe daemon --demo   (open the dashboard link it prints; Ctrl-C to stop)"
if [ -n "${DEMO_SECONDS:-}" ]; then
  token=$("$LETHE" tokens add demo-script --role qa 2>/dev/null)
  "$LETHE" daemon --demo &
  pid=$!
  trap 'kill -TERM $pid 2>/dev/null || true' EXIT
  for _ in $(seq "$DEMO_SECONDS"); do
    sleep 1
    jobs_json=$(curl -s -H "Authorization: Bearer $token" http://127.0.0.1:8765/api/v1/jobs || true)
    case "$jobs_json" in *'"certified":true'*) echo "== certified: $jobs_json"; break ;; esac
  done
  kill -TERM $pid; wait $pid
  trap - EXIT
else
  exec "$LETHE" daemon --demo
fi
