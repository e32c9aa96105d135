#!/usr/bin/env bash
# Eight erases at once in the daemon against fio with eight jobs, on the same eight loop
# devices in one run (root): Benchmarks/bench-16.sh with eight bays.
#   Benchmarks/concurrent.sh [SIZE_MIB=1024] [ROUNDS=5]
exec "$(dirname "$0")/bench-16.sh" --devices 8 "${1:-1024}" "${2:-5}"
