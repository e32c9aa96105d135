#!/usr/bin/env bash
# The whole test suite: unit tests on fakes, integration tests on real loop devices, the
# QEMU hardware lab (real kernel, real udev, faulty disks, the fault campaign) and bounded
# libFuzzer runs over every parser of untrusted input. Run as root on Debian 12.
# Installs what it needs with apt-get. LETHE_SKIP_LAB=1 skips the lab (about 5 min);
# LETHE_SKIP_FUZZ=1 skips fuzzing (about 2.5 min); LETHE_FUZZ_SECONDS sets seconds per parser;
# LETHE_SKIP_PACKAGE=1 skips building the Debian package (about 5 min), and so its install tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="util-linux fdisk e2fsprogs qemu-system-x86 qemu-utils busybox-static kmod cpio xz-utils udev
      smartmontools nvme-cli hdparm sg3-utils dmsetup libudev-dev libssl-dev libusb-1.0-0-dev umockdev
      libcairo2-dev libpango1.0-dev libqrencode-dev fonts-noto-cjk zbar-tools poppler-utils
      python3 python3-cryptography python3-jsonschema libsqlite3-dev sqlite3 chromium curl adb
      libimobiledevice-utils libusbmuxd-tools libplist-utils libplist-dev postgresql
      dpkg-dev lintian debootstrap man-db"
missing=""
for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"; done
if [ -n "$missing" ] && [ "$(id -u)" = 0 ]; then
  echo "test.sh: installing$missing" >&2
  # The hub's tests run their own private clusters (scripts/pg-private.sh): installing
  # PostgreSQL need not create and start a system cluster.
  if [[ "$missing" == *postgresql* ]]; then
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/lethe-no-main-cluster.conf
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# schemathesis (PyPI) fuzzes the daemon's OpenAPI document; its test skips if this fails.
command -v schemathesis >/dev/null || python3 -m pip install -q schemathesis >/dev/null 2>&1 || echo "test.sh: schemathesis not installed; its test will be skipped" >&2
python3 -c "import websocket, prometheus_client" 2>/dev/null || python3 -m pip install -q websocket-client prometheus-client >/dev/null 2>&1 \
  || echo "test.sh: websocket-client or prometheus-client not installed; the live-dashboard and /metrics checks will fail" >&2
[ "$(id -u)" = 0 ] || echo "test.sh: not root: loop-device and lab tests will be skipped" >&2
log=$(mktemp)
set +e
swift build --build-tests > "$log" 2>&1
status=$?
grep -Ev '^\[[0-9]+/[0-9]+\] ' "$log"
if [ "$status" = 0 ] && [ "$(id -u)" = 0 ] && [ "${LETHE_SKIP_PACKAGE:-0}" != 1 ]; then
  # The Debian package that Tests/LabTests/PackageTests installs (debug build, static runtime,
  # lintian must pass). It has to be built before `swift test` holds the .build folder.
  bash scripts/package.sh --configuration debug --out .build-package/test-dist > "$log" 2>&1
  status=$?
  [ "$status" = 0 ] || { tail -40 "$log"; echo "test.sh: scripts/package.sh failed" >&2; }
fi
if [ "$status" = 0 ]; then
  # The per-test lines are kept in the log; failures, skips and the closing counts are shown.
  swift test --skip-build > "$log" 2>&1
  status=$?
  awk '!/^(◇ |✔ Suite )/ && !(/^✔ Test / && !/^✔ Test run with/)' "$log"
fi
set -e
rm -f "$log"
leaked=$(losetup -a 2>/dev/null | grep -c lethe-test || true)
if [ "$leaked" != 0 ]; then echo "test.sh: $leaked loop device(s) left attached" >&2; status=1; fi
exit "$status"
