#!/usr/bin/env bash
# The CLI tour: build Lethe, make a small loop-backed "customer drive" with data on it, erase it
# with NIST 800-88 Clear (one pass + full verification), check it read-only, and remove it.
# Run as root on Debian 12; installs what it needs with apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (it creates a loop device)" >&2; exit 2; }
for p in util-linux e2fsprogs libudev-dev libssl-dev libusb-1.0-0-dev smartmontools libcairo2-dev libpango1.0-dev \
         libqrencode-dev libplist-dev fonts-noto-cjk zbar-tools poppler-utils libsqlite3-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || {
    apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null; }
done
swift build -c release --product lethe 2>&1 | tail -1
LETHE=$(swift build -c release --show-bin-path)/lethe

work=$(mktemp -d)
truncate -s 256M "$work/demo-drive.img"
LOOP=$(losetup -f --show --direct-io=on "$work/demo-drive.img")
trap 'losetup -d "$LOOP" 2>/dev/null; rm -rf "$work"' EXIT
printf 'customer data: IBAN DE89 3704 0044 0532 0130 00\n' | dd of="$LOOP" bs=512 seek=2048 conv=notrunc,fsync status=none
echo "== demo drive $LOOP (256 MiB) holds: $(dd if="$LOOP" bs=512 skip=2048 count=1 status=none | tr -d '\0')"
echo "== lethe devices   (what is docked; PROTECTED ones are refused)"
"$LETHE" devices 2>/dev/null
echo "== lethe diagnose $LOOP"
"$LETHE" diagnose "$LOOP" || true
if [ ! -e var/keys/station.jwk ]; then
  echo "== lethe keys init   (the station's signing key, once; kept in ./var/keys)"
  "$LETHE" keys init
fi
echo "== lethe wipe $LOOP --method nist-clear --yes --report-dir var/reports"
"$LETHE" wipe "$LOOP" --method nist-clear --yes --report-dir var/reports --operator "demo technician" | tee "$work/wipe.out"
cert=var/reports/$(awk '/^report:/ {print $2}' "$work/wipe.out").json
echo "== lethe report verify $cert"
"$LETHE" report verify "$cert"
pdf=${cert%.json}.pdf
pdftoppm -r 120 -png -f 1 -l 1 "$pdf" "$work/page"
echo "== the QR code on $pdf says: $(zbarimg -q --raw "$work"/page*.png 2>/dev/null)"
echo "== lethe audit verify   (jobs and reports are logged in var/lethe.sqlite, hash-chained)"
"$LETHE" audit verify
echo "== lethe verify $LOOP --expect zero"
"$LETHE" verify "$LOOP" --expect zero
echo "== the system disk is refused:"
root=$(findmnt -no SOURCE / 2>/dev/null || true)
if [ -b "$root" ]; then "$LETHE" wipe "$root" --method zero --yes --dry-run || true; else echo "(/ is not on a block device here)"; fi
