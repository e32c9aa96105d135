#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, `swiftc -sanitize=fuzzer`) of every parser of untrusted
# input: iPhone plists (usbmuxd, lockdownd, services), getprop, dumpsys battery, trade-in mode JSON, account dumps, the adb host protocol,
# smartctl JSON, drive answers (IDENTIFY, sense, sanitize log, DCO, namespace list), profile
# and station YAML, the daemon's JSON bodies and the catalog's answers.
#
#   scripts/fuzz.sh [--seconds N] [--update] [TARGET...]
#
# Each target runs N seconds (default 15) from its corpus in Fuzz/corpus/TARGET; what it finds
# new goes to a temporary folder, or, with --update, is merged into the corpus in the repo.
# A crash, trap, leak-free hang (over 10 s per input) or a parser using more than 2 GiB fails
# the run, and the input that did it is kept under .build-fuzz/crashes/ with the command to
# replay it. Run by Tests/LetheLinuxTests/FuzzTests.swift in the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=15
update=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --update) update=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=($(ls Fuzz/corpus))
log=$(mktemp)
if ! LETHE_FUZZ=1 swift build --scratch-path .build-fuzz --product lethe-fuzz -Xswiftc -sanitize=fuzzer > "$log" 2>&1; then
  grep -E 'error' "$log" >&2 || tail -20 "$log" >&2
  rm -f "$log"; exit 1
fi
rm -f "$log"
fuzzer=.build-fuzz/debug/lethe-fuzz
crashes=.build-fuzz/crashes
mkdir -p "$crashes"
failed=0
for target in "${targets[@]}"; do
  [ -d "Fuzz/corpus/$target" ] || { echo "fuzz: no corpus Fuzz/corpus/$target" >&2; failed=1; continue; }
  found=$(mktemp -d)
  out=$(mktemp)
  set +e
  SWIFT_BACKTRACE=enable=no LETHE_FUZZ_TARGET=$target "$fuzzer" "$found" "Fuzz/corpus/$target" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="$crashes/$target-" -print_final_stats=1 > "$out" 2>&1
  status=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out")
  coverage=$(grep -o 'cov: [0-9]*' "$out" | tail -1 | cut -d' ' -f2)
  if [ "$status" = 0 ]; then
    echo "fuzz: $target: ${runs:-?} inputs in ${seconds} s, ${coverage:-?} edges covered, $(ls "$found" | wc -l) new corpus entries"
  else
    failed=1
    echo "fuzz: $target FAILED (exit $status):" >&2
    grep -E 'ERROR|Fatal error|SUMMARY|Test unit written|==[0-9]+==' "$out" | head -20 >&2
    echo "fuzz: replay with: LETHE_FUZZ_TARGET=$target $fuzzer $crashes/$target-*" >&2
  fi
  if [ "$update" = 1 ] && [ "$status" = 0 ]; then
    mkdir -p "$found.merged"
    SWIFT_BACKTRACE=enable=no LETHE_FUZZ_TARGET=$target "$fuzzer" -merge=1 "Fuzz/corpus/$target" "$found" > /dev/null 2>&1 || true
  fi
  rm -rf "$found" "$found.merged" "$out"
done
exit "$failed"
