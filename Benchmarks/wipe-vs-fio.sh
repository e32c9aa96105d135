#!/usr/bin/env bash
# Lethe's wipe engine against fio, nwipe and GNU shred, on the same loop device in one run.
#
#   sudo Benchmarks/wipe-vs-fio.sh [SIZE_GIB=2] [ROUNDS=5]
#
# fio is the physical reference: libaio, direct=1, iodepth=8, bs=4M, sequential write, then
# read. Each Lethe figure is divided by the mean of a fio run just before and just after it;
# the median of ROUNDS such ratios is printed (these machines are noisy, absolute numbers are
# not comparable between runs). nwipe and shred run once each (they are slow).
# Targets: lethe zero pass, random pass and verification read >= 0.90 of fio.
set -euo pipefail
SIZE_GIB=${1:-2}
ROUNDS=${2:-5}
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "needs root (loop devices)" >&2; exit 2; }

need=""
for tool in fio nwipe shred losetup python3; do command -v $tool >/dev/null || need="$need $tool"; done
if [ -n "$need" ]; then
  echo "installing fio nwipe" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fio nwipe >/dev/null
fi
swift build -c release --product lethe >&2
LETHE=$(swift build -c release --show-bin-path)/lethe

work=$(mktemp -d)
img=$work/bench.img
truncate -s "${SIZE_GIB}G" "$img"
fallocate -l "${SIZE_GIB}G" "$img" 2>/dev/null || true
LOOP=$(losetup -f --show --direct-io=on "$img")
cleanup() { losetup -d "$LOOP" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
BYTES=$(blockdev --getsize64 "$LOOP")

now() { date +%s.%N; }
# rate START END -> bytes/s for the whole device
rate() { python3 -c "import sys; print(int($BYTES / ($2 - $1)))"; }
median() { python3 -c "import sys,statistics; print(int(statistics.median([float(x) for x in sys.argv[1:]])))" "$@"; }
json() { python3 -c "import sys,json; d=[json.loads(l) for l in sys.stdin if l.startswith('{')][-1]; print(int(eval(sys.argv[1])))" "$1"; }

fio_run() { # rw
  fio --name=ref --filename="$LOOP" --rw="$1" --bs=4M --iodepth=8 --ioengine=libaio --direct=1 \
      --size=100% --output-format=json 2>/dev/null \
    | python3 -c "import sys,json; j=json.load(sys.stdin)['jobs'][0]; print(int(j['$( [ "$1" = write ] && echo write || echo read )']['bw_bytes']))"
}

declare -A R
declare -A M
# Each Lethe run is bracketed by fio runs right before and after it, and compared with their
# mean: the virtual disks here change speed by 2x from one minute to the next.
bracket() { # NAME FIO_RW LETHE_VALUE_COMMAND...
  local name=$1 rw=$2; shift 2
  local before value after
  before=$(fio_run "$rw"); value=$("$@"); after=$(fio_run "$rw")
  R[$name]+=" $value"
  R[${name}_ratio]+=" $(python3 -c "print($value / (($before + $after) / 2))")"
  R[fio_$rw]+=" $before $after"
}
lethe_zero() { "$LETHE" wipe "$LOOP" --method zero --verify off --yes --json | json 'd["passes"][0]["throughputBytesPerSecond"]'; }
lethe_random() { "$LETHE" wipe "$LOOP" --method random --verify off --yes --json | json 'd["passes"][0]["throughputBytesPerSecond"]'; }
lethe_verify_zero() { "$LETHE" verify "$LOOP" --expect zero --json | json 'd["bytesVerified"]/d["seconds"]'; }
lethe_verify_random() { # times only the verification read of a random pass
  "$LETHE" wipe "$LOOP" --method random --verify last --yes --json | json 'd["verification"]["bytesVerified"]/d["verification"]["seconds"]'; }
for round in $(seq "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  bracket lethe_zero write lethe_zero
  bracket lethe_random write lethe_random
  "$LETHE" wipe "$LOOP" --method zero --verify off --yes >/dev/null 2>&1
  bracket lethe_verify_zero read lethe_verify_zero
  bracket lethe_verify_random read lethe_verify_random
done
# The alternatives are slow (nwipe ~40 MB/s here): one bracketed run each.
other() { # NAME COMMAND...  (bytes/s over the whole device)
  local name=$1; shift
  local t0 t1; t0=$(now); "$@" >/dev/null 2>&1; t1=$(now)
  R[$name]+=" $(rate "$t0" "$t1")"
}
lz=$(lethe_zero); other nwipe_zero nwipe --autonuke --nogui --nowait --noblank --verify=off --method=zero "$LOOP"
lr=$(lethe_random); other nwipe_random nwipe --autonuke --nogui --nowait --noblank --verify=off --method=random "$LOOP"
other shred_zero shred -n 0 -z "$LOOP"
other shred_random shred -n 1 "$LOOP"
R[lethe_zero_alt]=" $lz $(lethe_zero)"
R[lethe_random_alt]=" $lr $(lethe_random)"
for key in "${!R[@]}"; do M[$key]=$(python3 -c "import sys,statistics; print(statistics.median([float(x) for x in sys.argv[1:]]))" ${R[$key]}); done
PRNG=$("$LETHE" bench prng --seconds 2 --json | python3 -c "import sys,json; print(json.load(sys.stdin)['prngGBPerSecondPerCore'])")

ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
r2() { python3 -c "print(f'{$1:.2f}')"; }
mbs() { python3 -c "print(f'{$1/1e6:.0f} MB/s')"; }
echo
echo "Lethe wipe benchmark: ${SIZE_GIB} GiB loop device (direct I/O), $ROUNDS rounds, median of per-round ratios to the fio runs just before and after"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"
printf '%-36s %12s %8s\n' "measure" "median" "ratio"
printf '%-36s %12s %8s\n' "fio write (libaio, qd8, 4M)" "$(mbs ${M[fio_write]})" "1.00"
printf '%-36s %12s %8s\n' "lethe zero pass / fio write" "$(mbs ${M[lethe_zero]})" "$(r2 ${M[lethe_zero_ratio]})"
printf '%-36s %12s %8s\n' "lethe random pass / fio write" "$(mbs ${M[lethe_random]})" "$(r2 ${M[lethe_random_ratio]})"
printf '%-36s %12s %8s\n' "fio read (libaio, qd8, 4M)" "$(mbs ${M[fio_read]})" "1.00"
printf '%-36s %12s %8s\n' "lethe verify (zero) / fio read" "$(mbs ${M[lethe_verify_zero]})" "$(r2 ${M[lethe_verify_zero_ratio]})"
printf '%-36s %12s %8s\n' "lethe verify (random) / fio read" "$(mbs ${M[lethe_verify_random]})" "$(r2 ${M[lethe_verify_random_ratio]})"
printf '%-36s %12s %8s\n' "lethe zero / nwipe zero" "$(mbs ${M[nwipe_zero]})" "$(ratio ${M[lethe_zero_alt]} ${M[nwipe_zero]})"
printf '%-36s %12s %8s\n' "lethe random / nwipe random" "$(mbs ${M[nwipe_random]})" "$(ratio ${M[lethe_random_alt]} ${M[nwipe_random]})"
printf '%-36s %12s %8s\n' "lethe zero / shred -z" "$(mbs ${M[shred_zero]})" "$(ratio ${M[lethe_zero_alt]} ${M[shred_zero]})"
printf '%-36s %12s %8s\n' "lethe random / shred -n1" "$(mbs ${M[shred_random]})" "$(ratio ${M[lethe_random_alt]} ${M[shred_random]})"
echo "PRNG (AES-128-CTR keystream): $PRNG GB/s per core (target >= 4)"
fail=0
for k in lethe_zero lethe_random lethe_verify_zero lethe_verify_random; do
  python3 -c "import sys; sys.exit(0 if ${M[${k}_ratio]} >= 0.90 else 1)" || { echo "BELOW TARGET (0.90): $k"; fail=1; }
done
python3 -c "import sys; sys.exit(0 if $PRNG >= 4 else 1)" || { echo "BELOW TARGET: prng"; fail=1; }
exit $fail
