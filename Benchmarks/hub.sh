#!/usr/bin/env bash
# The hub's speed, in one run on this machine:
#  1. ingest: the same signed records (20 simulated stations) posted once each, 32 at a time,
#     to the station's reference receiver (`lethe catalog serve`: SQLite, HMAC and Ed25519
#     checks) and to two lethe-hub instances on one private PostgreSQL cluster (HMAC per
#     station, Ed25519 against each station's registered keys, one transaction per record
#     with its outbox row). Goal: hub >= 3x the receiver.
#  2. lookups: wrk on GET /v1/reports/{id} (a buyer's verification: one query, the signature
#     checked again), random ids, both instances at once. Goal: >= 5,000/s with p99 < 20 ms.
#
#   Benchmarks/hub.sh [RECORDS=2000] [LOOKUP_SECONDS=20]
#   HUB_ARGS="--connections 8" Benchmarks/hub.sh     other options for both hub instances
# Each instance holds 2 connections by default here: 4 PostgreSQL backends for 2 cores (pool
# sizing's rule of thumb, about 2 per core for the whole cluster). With 16 each, 32 backends
# fought the hubs for 2 cores and lookups' p99 went from 14 ms to 600-900 ms.
# Needs root only to run PostgreSQL as the postgres user. Installs wrk (and, through
# scripts/pg-private.sh, postgresql) with apt-get when missing.
set -euo pipefail
RECORDS=${1:-2000}
LOOKUP_SECONDS=${2:-20}
cd "$(dirname "$0")/.."
for p in wrk curl python3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
        { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null; }
done
if [ -z "${LETHE_BIN:-}" ]; then
    swift build -c release --product lethe-hub >&2
    swift build -c release --product lethe >&2
    LETHE_BIN=$(swift build -c release --show-bin-path)
fi
LETHE_BIN=$(cd "$LETHE_BIN" && pwd)
work=$(mktemp -d /tmp/lethe-hub-bench.XXXXXX)
chmod 711 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    scripts/pg-private.sh stop "$work/pg"
    rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up() { for _ in $(seq 200); do curl -sf "$1/healthz" >/dev/null && return 0; sleep 0.05; done; echo "not up: $1" >&2; exit 1; }

"$LETHE_BIN/lethe-hub" bench make --stations 20 --records "$RECORDS" "$work/load" >&2

# 1a. The reference receiver (SQLite), every station's key trusted, one shared secret.
head -c 32 /dev/urandom | base64 >"$work/shared.secret"
trust=()
for jwk in "$work"/load/stations/*.jwk; do trust+=(--trust "$jwk"); done
rport=$(port)
"$LETHE_BIN/lethe" catalog serve --listen "127.0.0.1:$rport" --db "$work/receiver.sqlite" --secret-file "$work/shared.secret" "${trust[@]}" 2>"$work/receiver.log" &
receiver=$!
pids+=("$receiver")
up "http://127.0.0.1:$rport"
sqlite=$("$LETHE_BIN/lethe-hub" bench post --url "http://127.0.0.1:$rport/v1/records" --secret-file "$work/shared.secret" "$work/load")
kill -TERM "$receiver"; wait "$receiver" 2>/dev/null || true

# 1b. Two hub instances on one private cluster.
export LETHE_HUB_DATABASE=$(scripts/pg-private.sh start "$work/pg")
"$LETHE_BIN/lethe-hub" migrate >&2
for jwk in "$work"/load/stations/*.jwk; do
    id=$(basename "$jwk" .jwk)
    "$LETHE_BIN/lethe-hub" stations add "$id" --jwk "$jwk" --secret-file "$work/load/stations/$id.secret" >/dev/null
done
hports=($(port) $(port))
for n in 0 1; do
    "$LETHE_BIN/lethe-hub" serve --listen "127.0.0.1:${hports[$n]}" --instance "bench-$n" --log-level warning ${HUB_ARGS:---connections 2} 2>"$work/hub-$n.log" &
    pids+=($!)
done
up "http://127.0.0.1:${hports[0]}"
up "http://127.0.0.1:${hports[1]}"
hub=$("$LETHE_BIN/lethe-hub" bench post --url "http://127.0.0.1:${hports[0]}/v1/records" --url "http://127.0.0.1:${hports[1]}/v1/records" "$work/load")
stored=$(psql "${LETHE_HUB_DATABASE%%\?*}" -At -c "SELECT count(*) FROM record" 2>/dev/null || echo "?")

# 2. Lookups with wrk: random report ids, one wrk per instance, at the same time.
cat >"$work/lookup.lua" <<'EOF'
local ids = {}
for line in io.lines(os.getenv("IDS")) do ids[#ids + 1] = line end
math.randomseed(os.time() + tonumber(os.getenv("SEED") or "0"))
request = function() return wrk.format("GET", "/v1/reports/" .. ids[math.random(#ids)]) end
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %d, "seconds": %.3f, "p50ms": %.2f, "p99ms": %.2f, "errors": %d, "non2xx": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.errors.status))
end
EOF
IDS="$work/load/report-ids.txt" SEED=1 wrk -t1 -c16 -d"${LOOKUP_SECONDS}s" -s "$work/lookup.lua" "http://127.0.0.1:${hports[0]}" 2>&1 | tail -1 >"$work/wrk-0.json" &
w0=$!
IDS="$work/load/report-ids.txt" SEED=2 wrk -t1 -c16 -d"${LOOKUP_SECONDS}s" -s "$work/lookup.lua" "http://127.0.0.1:${hports[1]}" 2>&1 | tail -1 >"$work/wrk-1.json"
wait "$w0"

python3 - "$sqlite" "$hub" "$work/wrk-0.json" "$work/wrk-1.json" "$stored" "$RECORDS" <<'EOF'
import json, sys
sqlite, hub = json.loads(sys.argv[1]), json.loads(sys.argv[2])
w = [json.load(open(p)) for p in sys.argv[3:5]]
stored, records = sys.argv[5], int(sys.argv[6])
ratio = hub["perSecond"] / sqlite["perSecond"]
lookups = sum(x["requests"] / x["seconds"] for x in w)
p99 = max(x["p99ms"] for x in w)
bad = sum(x["errors"] + x["non2xx"] for x in w)
print(f"ingest, {records} signed records, 32 in flight:")
print(f"  reference receiver (SQLite):   {sqlite['perSecond']:8.0f} records/s")
print(f"  hub, 2 instances (PostgreSQL): {hub['perSecond']:8.0f} records/s   ratio {ratio:.2f}x (goal >= 3x); stored {stored}")
print(f"lookups, GET /v1/reports/{{id}}, wrk 2 x 16 connections:")
print(f"  {lookups:8.0f} lookups/s (goal >= 5000), p50 {max(x['p50ms'] for x in w):.2f} ms, p99 {p99:.2f} ms (goal < 20), errors {bad}")
ok = ratio >= 3 and lookups >= 5000 and p99 < 20 and bad == 0 and stored == str(records)
print("goals met" if ok else "GOALS NOT MET")
sys.exit(0 if ok else 1)
EOF
