#!/usr/bin/env bash
# Time to sign one wipe certificate and to render its PDF (en and zh-CN), release build,
# median of 30. Target: each under 100 ms on the project's machine.
#   Benchmarks/report-speed.sh [ITERATIONS=30]
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product lethe >&2
LETHE=$(swift build -c release --show-bin-path)/lethe
out=$("$LETHE" bench report --iterations "${1:-30}" --json)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
python3 - "$out" <<'PY'
import json, sys
m = json.loads(sys.argv[1])
fail = 0
for key, label in [("signMs", "sign (RFC 8785 + Ed25519 JWS)"), ("renderEnMs", "render PDF (en)"), ("renderZhCNMs", "render PDF (zh-CN)")]:
    ok = m[key] < 100
    fail |= not ok
    print(f"{label:32} {m[key]:8.2f} ms   {'ok' if ok else 'ABOVE TARGET'} (target < 100 ms)")
print(f"{'first sign + render (fonts load)':32} {m['firstSignAndRenderMs']:8.1f} ms")
sys.exit(fail)
PY
