#!/usr/bin/env bash
# Lethe's wipe engine against fio (and nwipe and GNU shred) on the same loop device, in one run:
# throughput ratios, CPU seconds and instructions per GiB.
#
#   sudo Benchmarks/wipe-vs-fio.sh [--shm] [SIZE_GIB=2] [ROUNDS=5]
#
#   (default)  a loop device over a file on disk, with direct I/O: a disk-bound device.
#   --shm      a loop device over a file in /dev/shm: a device as fast as memory, the stand-in
#              for a PCIe 4/5 NVMe drive (7-14 GB/s), where CPU per byte decides.
#
# fio is the physical reference: libaio, direct=1, iodepth=8, bs=4M, one job, sequential write,
# then read. Each Lethe figure is divided by the mean of a fio run just before and just after
# it; the median of ROUNDS such ratios is printed (these machines are noisy: absolute numbers
# are not comparable between runs). The harness is Benchmarks/wipe_vs_fio.py; its goals:
# every pass and verification read >= 0.95x fio, counting both Lethe's own figure and its
# whole process; CPU per GiB for zero and verification <= 1.2x fio's, for the random pass
# <= fio's plus the keystream's own cost (`openssl speed -evp aes-128-ctr`, measured beside).
# It exits 1 when a goal is not met. nwipe and shred run once each, on the disk device only.
set -euo pipefail
cd "$(dirname "$0")/.."
SHM=0
if [ "${1:-}" = "--shm" ]; then SHM=1; shift; fi
SIZE_GIB=${1:-2}
ROUNDS=${2:-5}
[ "$(id -u)" = 0 ] || { echo "needs root (loop devices)" >&2; exit 2; }

need=""
for tool in fio nwipe shred losetup python3 perf openssl; do command -v $tool >/dev/null || need="$need $tool"; done
if [ -n "$need" ]; then
  echo "installing fio nwipe linux-perf openssl" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fio nwipe linux-perf openssl >/dev/null || true
fi
swift build -c release --product lethe >&2
LETHE=$(swift build -c release --show-bin-path)/lethe

if [ $SHM = 1 ]; then
  work=$(mktemp -d -p /dev/shm)
else
  work=$(mktemp -d)
fi
img=$work/bench.img
truncate -s "${SIZE_GIB}G" "$img"
fallocate -l "${SIZE_GIB}G" "$img" 2>/dev/null || true
LOOP=$(losetup -f --show --direct-io=on "$img" 2>/dev/null || losetup -f --show "$img")
cleanup() { losetup -d "$LOOP" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
label="loop device over $( [ $SHM = 1 ] && echo "/dev/shm (memory speed)" || echo "a file on disk" ), direct I/O $(cat /sys/block/$(basename "$LOOP")/loop/dio)"
alternatives=$( [ $SHM = 1 ] && echo "" || echo "--alternatives" )
python3 Benchmarks/wipe_vs_fio.py --lethe "$LETHE" --device "$LOOP" --rounds "$ROUNDS" --label "$label" $alternatives
