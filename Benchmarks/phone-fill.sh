#!/usr/bin/env bash
# A phone's free-space fill against Debian's `adb push` of the same bytes, to the same
# simulated phone (its data partition in memory) through the same private adb server, in one
# run: the host's side of the fill (keystream made straight into the sync service's DATA
# chunks, four chunks per write) against the reference tool's. No USB link is involved: a real
# phone's USB 2 (about 40 MB/s for adb) or USB 3 link is far below both, so what this shows is
# that the host never is the limit, and what each costs in CPU per GiB.
#
# The simulated phone is test code, so the debug test build runs the harness; Lethe's side is
# the release `lethe phones erase --overwrite-free-space sample` (the whole erase: inspection,
# fill, sample, reset, certificate; its CPU is the whole process's), or with --in-process the
# fill in the test process (debug build, its thread's CPU). Goal: the fill's write rate
# >= 0.95x adb push's (median of the rounds).
#
#   Benchmarks/phone-fill.sh [--in-process] [MIB=1024] [ROUNDS=3]
set -euo pipefail
IN_PROCESS=0
if [ "${1:-}" = "--in-process" ]; then IN_PROCESS=1; shift; fi
MIB=${1:-1024}
ROUNDS=${2:-3}
cd "$(dirname "$0")/.."
command -v adb >/dev/null || { echo "needs adb (apt-get install adb)" >&2; exit 2; }
swift build --build-tests >&2
export LETHE_BENCH_LETHE=""
if [ "$IN_PROCESS" = 0 ]; then
  swift build -c release --product lethe >&2
  LETHE_BENCH_LETHE="$(swift build -c release --show-bin-path)/lethe"
else
  unset LETHE_BENCH_LETHE
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
LETHE_BENCH_FILL_MIB=$MIB LETHE_BENCH_ROUNDS=$ROUNDS "$(swift build --show-bin-path)/LethePackageTests.xctest" \
  --testing-library swift-testing --filter FreeSpaceBenchmark > "$out" 2>&1 || { cat "$out" >&2; exit 1; }
grep '^BENCH ' "$out" | sed 's/^BENCH //'
python3 - "$out" "$MIB" <<'PY'
import re, statistics, sys
text = open(sys.argv[1]).read()
ratios = [float(x) for x in re.findall(r"ratio ([0-9.]+)", text)]
lethe_cpu = [float(x) for x in re.findall(r"lethe fill .*?CPU ([0-9.]+) s/GiB", text)]
adb_cpu = [float(x) for x in re.findall(r"adb push .*?CPU ([0-9.]+) s/GiB", text)]
if not ratios:
    sys.exit("no rounds ran")
ratio = statistics.median(ratios)
print(f"{sys.argv[2]} MiB, {len(ratios)} rounds: fill / adb push median {ratio:.2f} (goal >= 0.95: {'met' if ratio >= 0.95 else 'NOT MET'}); "
      f"CPU s/GiB median: lethe {statistics.median(lethe_cpu):.3f}, adb {statistics.median(adb_cpu):.3f} (the adb client process)")
sys.exit(0 if ratio >= 0.95 else 1)
PY
