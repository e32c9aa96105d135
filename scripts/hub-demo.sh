#!/usr/bin/env bash
# The fleet hub, end to end, on one machine: a private PostgreSQL cluster, two lethe-hub
# instances on it, a shop catalog (the reference receiver), and three station daemons, each
# erasing and certifying its own demo drive and delivering to the hub. One registry fills
# from three stations; the script prints it, a buyer's verify link and the QA dashboard link.
#
#   sudo scripts/hub-demo.sh                   runs until Ctrl-C
#   sudo DEMO_SECONDS=120 scripts/hub-demo.sh  stops by itself once the registry is full
#   LETHE_BIN=.build/debug scripts/hub-demo.sh use binaries already built
#
# Root: the stations' demo drives are loop devices. Nothing touches a system cluster or disk:
# everything lives in a temporary folder, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "hub-demo.sh: run as root (the stations' demo drives are loop devices)" >&2; exit 2; }
PKGS="util-linux libudev-dev libssl-dev libusb-1.0-0-dev smartmontools libcairo2-dev libpango1.0-dev libqrencode-dev libplist-dev
      fonts-noto-cjk libsqlite3-dev curl"
missing=""
for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"; done
if [ -n "$missing" ]; then
    echo "hub-demo.sh: installing$missing" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ -z "${LETHE_BIN:-}" ]; then
    swift build -c release --product lethe 2>&1 | tail -1
    swift build -c release --product lethe-hub 2>&1 | tail -1
    LETHE_BIN=$(swift build -c release --show-bin-path)
fi
LETHE_BIN=$(cd "$LETHE_BIN" && pwd)
LETHE=$LETHE_BIN/lethe
HUB=$LETHE_BIN/lethe-hub
HUB_PORTS=(${HUB_PORTS:-8801 8802})
SHOP_PORT=${SHOP_PORT:-8790}
STATION_PORTS=(${STATION_PORTS:-8811 8812 8813})

work=$(mktemp -d /tmp/lethe-hub-demo.XXXXXX)
chmod 711 "$work"  # the cluster runs as the postgres user
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    scripts/pg-private.sh stop "$work/pg"
    [ -n "${KEEP_DEMO:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

echo "== a private PostgreSQL cluster in $work/pg"
URL=$(scripts/pg-private.sh start "$work/pg")
export LETHE_HUB_DATABASE=$URL
"$HUB" migrate

echo "== three stations: keys, secrets, enrolment at the hub"
suppliers=("Acme Trade-ins" "Bolt Recyclers" "Acme Trade-ins")
trust=()
for i in 1 2 3; do
    state=$work/station-$i
    mkdir -p "$state"
    "$LETHE" keys init --state-dir "$state" >/dev/null
    "$LETHE" keys export --state-dir "$state" >"$state/station.jwk"
    head -c 32 /dev/urandom | base64 >"$state/catalog.secret"
    hub_port=${HUB_PORTS[$(((i - 1) % 2))]}
    cat >"$state/lethe.yaml" <<EOF
station:
  id: bench-$i
  name: Demo bench $i
  verifyBaseURL: http://127.0.0.1:${HUB_PORTS[0]}
catalog:
  url: http://127.0.0.1:$hub_port/v1/records
  secretFile: $state/catalog.secret
intake:
  lot: LOT-DEMO-$(((i + 1) / 2))
  supplier: ${suppliers[$((i - 1))]}
EOF
    "$HUB" stations add "bench-$i" --name "Demo bench $i" --jwk "$state/station.jwk" --secret-file "$state/catalog.secret"
    trust+=(--trust "$state/station.jwk")
done
head -c 32 /dev/urandom | base64 >"$work/shop.secret"
qa=$("$HUB" tokens add demo-qa --role qa)

echo "== the shop's catalog on :$SHOP_PORT, two hub instances on :${HUB_PORTS[0]} and :${HUB_PORTS[1]}"
"$LETHE" catalog serve --listen "127.0.0.1:$SHOP_PORT" --db "$work/shop.sqlite" --secret-file "$work/shop.secret" "${trust[@]}" 2>"$work/shop.log" &
pids+=($!)
for n in 0 1; do
    "$HUB" serve --listen "127.0.0.1:${HUB_PORTS[$n]}" --instance "hub-$((n + 1))" \
        --catalog-url "http://127.0.0.1:$SHOP_PORT/v1/records" --catalog-secret-file "$work/shop.secret" 2>"$work/hub-$n.log" &
    pids+=($!)
done
for port in "${HUB_PORTS[@]}"; do
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
done

echo "== three station daemons, each erasing its own demo drive"
for i in 1 2 3; do
    "$LETHE" daemon --demo --state-dir "$work/station-$i" --config "$work/station-$i/lethe.yaml" --profiles profiles \
        --listen "127.0.0.1:${STATION_PORTS[$((i - 1))]}" 2>"$work/station-$i/daemon.log" &
    pids+=($!)
done

echo "== waiting for the registry to fill (each drive erased, verified, certified, then graded B as a technician would)"
count=0
for _ in $(seq "${DEMO_SECONDS:-600}"); do
    for i in 1 2 3; do
        # The technician's cosmetic grade issues the refurb report and its catalog record.
        token=$(grep -o 'token=lethe_[A-Za-z0-9_-]*' "$work/station-$i/daemon.log" | head -1 | cut -d= -f2 || true)
        [ -n "$token" ] || continue
        for job in $(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:${STATION_PORTS[$((i - 1))]}/api/v1/jobs" |
            python3 -c 'import json,sys; print(" ".join(j["id"] for j in json.load(sys.stdin) if j.get("step") == "grade"))' 2>/dev/null); do
            curl -s -o /dev/null -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
                -d '{"grade": "B", "notes": "demo"}' "http://127.0.0.1:${STATION_PORTS[$((i - 1))]}/api/v1/jobs/$job/grade"
        done
    done
    count=$(curl -s -H "Authorization: Bearer $qa" "http://127.0.0.1:${HUB_PORTS[1]}/v1/records" | grep -o '"recordId"' | wc -l || true)
    [ "$count" -ge 3 ] && break
    sleep 1
done
echo "== the registry: $count records from three stations (CSV export)"
curl -s -H "Authorization: Bearer $qa" "http://127.0.0.1:${HUB_PORTS[1]}/v1/records?format=csv" | cut -d, -f1,2,8,9,10,11,12,19
certificate=$(curl -s -H "Authorization: Bearer $qa" "http://127.0.0.1:${HUB_PORTS[0]}/v1/records" | grep -o '"certificateId":"[^"]*"' | head -1 | cut -d'"' -f4)
echo "== a buyer's verify page (either instance answers): http://127.0.0.1:${HUB_PORTS[1]}/verify/$certificate"
curl -s "http://127.0.0.1:${HUB_PORTS[1]}/v1/reports/$certificate" | grep -o '"verdict":"[^"]*"' || true
echo "== forwarded to the shop's catalog: $(curl -s "http://127.0.0.1:$SHOP_PORT/v1/records" | grep -o '"id"' | wc -l) records"
echo "== supply scorecards by supplier"
curl -s -H "Authorization: Bearer $qa" "http://127.0.0.1:${HUB_PORTS[0]}/v1/scorecards?by=supplier"; echo
echo "== the QA dashboard: http://127.0.0.1:${HUB_PORTS[0]}/#token=$qa"
if [ -z "${DEMO_SECONDS:-}" ]; then
    echo "== Ctrl-C to stop (everything in $work is removed)"
    wait
fi
[ "$count" -ge 3 ]
