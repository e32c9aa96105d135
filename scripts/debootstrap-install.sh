#!/usr/bin/env bash
# Installs a Lethe package into a fresh Debian 12 root made by debootstrap (minbase, from the
# machine's own Debian mirror) and tries it there as a new user would: apt pulls in every
# dependency the package names, then lethe --version, man lethe-wipe, lethe profiles list,
# lethe daemon --demo until its drive is certified, and apt purge. The root shares this
# machine's kernel (/dev, /proc and /sys are bound in), so the demo drive is a real loop device.
#
#   sudo bash scripts/debootstrap-install.sh dist/lethe_0.1.0-1_amd64.deb [OUT_DIR]
#
# Each step's output, error and exit status go to OUT_DIR (default: a new temporary folder,
# printed at the end). The root is removed at the end; LETHE_KEEP_ROOT=1 keeps it.
set -euo pipefail
DEB=$(readlink -f "${1:?usage: debootstrap-install.sh PACKAGE.deb [OUT_DIR]}")
OUT=${2:-$(mktemp -d /tmp/lethe-install.XXXXXX)}
mkdir -p "$OUT"
OUT=$(readlink -f "$OUT")
[ "$(id -u)" = 0 ] || { echo "debootstrap-install.sh: run as root" >&2; exit 2; }
command -v debootstrap >/dev/null || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
# The mirror this machine's apt uses (deb822 or one-line sources).
MIRROR=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[ -n "$MIRROR" ] || MIRROR=$(sed -n 's/^deb \(http[^ ]*debian\)\/* bookworm .*/\1/p' /etc/apt/sources.list 2>/dev/null | head -1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ROOT=$(mktemp -d /tmp/lethe-root.XXXXXX)
chmod 0755 "$ROOT"   # mktemp's 0700 would lock the root's own service users (_apt, man) out
PORT=${LETHE_TEST_PORT:-18765}
cleanup() {
  # The demo daemon, if a step left it running, then the mounts (deepest first), then the root.
  pkill -TERM -f "^/usr/bin/lethe daemon --demo --listen 127.0.0.1:$PORT" 2>/dev/null || true
  sleep 1
  for m in dev/pts dev proc sys; do umount -l "$ROOT/$m" 2>/dev/null || true; done
  [ "${LETHE_KEEP_ROOT:-0}" = 1 ] && echo "kept $ROOT" >&2 || rm -rf --one-file-system "$ROOT"
}
trap cleanup EXIT
step() { echo "== debootstrap-install: $*" >&2; }
record() { local name=$1; shift; set +e; "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"; echo $? > "$OUT/$name.rc"; set -e; }
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

step "debootstrap bookworm from $MIRROR"
record debootstrap debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR"
[ "$(cat "$OUT/debootstrap.rc")" = 0 ] || { tail -20 "$OUT/debootstrap.out" "$OUT/debootstrap.err" >&2; exit 1; }
mount --bind /dev "$ROOT/dev"; mount --bind /dev/pts "$ROOT/dev/pts"
mount -t proc proc "$ROOT/proc"; mount -t sysfs sysfs "$ROOT/sys"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
cp "$DEB" "$ROOT/tmp/"
NAME=$(basename "$DEB")

step "apt install ./$NAME (and man-db and curl, to read the page and ask the API)"
record apt-update in_root apt-get update
record install in_root apt-get install -y --no-install-recommends "/tmp/$NAME" man-db curl
in_root dpkg-query -W -f='${Depends}\n' lethe > "$OUT/depends" 2>&1 || true
record version in_root lethe --version
record man in_root env MANWIDTH=80 man -P cat lethe-wipe
mkdir -p "$ROOT/etc/lethe/profiles"
sed 's/^name: hdd$/name: hdd-site/; s/^priority: .*/priority: 5/' "$ROOT/usr/share/lethe/profiles/hdd.yaml" > "$ROOT/etc/lethe/profiles/hdd-site.yaml"
record profiles in_root lethe profiles list
record config in_root lethe config check /etc/lethe/lethe.yaml
ls -l "$ROOT/var/lib/lethe/keys" > "$OUT/keys" 2>&1 || true

step "lethe daemon --demo (no systemd here: the state goes to ./var under /root)"
token=$(in_root sh -c 'cd /root && lethe tokens add install-test --role qa' 2>/dev/null)
# Started straight from chroot (not through a function, which would run in a subshell), so
# that $pid is the daemon itself and its exit status is the daemon's.
chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  /bin/sh -c "cd /root && exec /usr/bin/lethe daemon --demo --listen 127.0.0.1:$PORT" > "$OUT/daemon.out" 2> "$OUT/daemon.err" &
pid=$!
certified=0
for _ in $(seq 180); do
  sleep 1
  curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$PORT/api/v1/jobs" > "$OUT/jobs.json" || true
  if grep -q '"certified":true' "$OUT/jobs.json"; then certified=1; break; fi
  kill -0 $pid 2>/dev/null || break
done
echo $certified > "$OUT/certified"
kill -TERM $pid 2>/dev/null || true
set +e; wait $pid; echo $? > "$OUT/daemon.rc"; set -e
ls "$ROOT/root/var/reports" > "$OUT/reports" 2>&1 || true

step "apt purge lethe"
rm -rf "$ROOT/etc/lethe/profiles"   # the site's own file: dpkg would rightly leave it and /etc/lethe
record purge in_root apt-get purge -y lethe
for path in /usr/bin/lethe /usr/bin/lethe-hub /lib/systemd/system/lethe.service /etc/lethe/lethe.yaml /etc/lethe \
  /usr/share/lethe /usr/share/man/man1/lethe-wipe.1.gz /var/lib/lethe/keys/station.jwk; do
  [ -e "$ROOT$path" ] && echo "present $path" || echo "absent $path"
done > "$OUT/after-purge"
step "results in $OUT"
echo "$OUT"
