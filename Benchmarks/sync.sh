#!/usr/bin/env bash
# Catalog sync throughput: 10,000 queued records drained into the reference receiver
# (`lethe catalog serve`, SQLite, HMAC and Ed25519 signature checks on every record) by
# `lethe sync --once` over real HTTP on 127.0.0.1. Prints records per second. Target: > 500/s.
#   Benchmarks/sync.sh [RECORDS=10000] [DEVICES=100]
set -euo pipefail
RECORDS=${1:-10000}
DEVICES=${2:-100}
cd "$(dirname "$0")/.."
swift build -c release --product lethe >&2
LETHE=$(swift build -c release --show-bin-path)/lethe
work=$(mktemp -d)
port=$((30000 + $$ % 20000))
receiver=""
trap '[ -n "$receiver" ] && kill $receiver 2>/dev/null; rm -rf "$work"' EXIT
head -c 32 /dev/urandom | base64 > "$work/secret"
"$LETHE" bench outbox --records "$RECORDS" --devices "$DEVICES" --state-dir "$work/var" >&2
"$LETHE" catalog serve --listen "127.0.0.1:$port" --db "$work/catalog.sqlite" --secret-file "$work/secret" \
  --trust "$work/var/test-key.jwk" 2> "$work/receiver.log" &
receiver=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.05; done
start=$(date +%s.%N)
"$LETHE" sync --once --url "http://127.0.0.1:$port/v1/records" --secret-file "$work/secret" --state-dir "$work/var" >&2
end=$(date +%s.%N)
got=$(curl -s "http://127.0.0.1:$port/v1/records" | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")
python3 -c "
records, got, seconds = $RECORDS, $got, $end - $start
print(f'{records} records, {got} received, {seconds:.1f} s: {records / seconds:.0f} records/s (target > 500/s)')
"
[ "$got" = "$RECORDS" ] || { echo "lost records: $got of $RECORDS" >&2; exit 1; }
