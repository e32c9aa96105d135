#!/usr/bin/env bash
# Builds the Debian package dist/lethe_VERSION-1_amd64.deb and checks it with lintian.
#
#   bash scripts/package.sh                       # release build (about 30 min cold on 2 cores)
#   bash scripts/package.sh --configuration debug # what the tests use: reuses the debug build
#   sudo apt install ./dist/lethe_*.deb && sudo systemctl enable --now lethe
#
# The package is made by dpkg-deb from a staged tree, not by dpkg-buildpackage: the build needs
# the Swift toolchain in /opt/swift and SwiftPM's package mirror, neither of which Debian's
# build-dependency machinery knows; a staged tree keeps the build one SwiftPM command, and
# lintian checks the result the same way. The executables link the Swift runtime statically
# (--static-swift-stdlib), so the package needs only Debian's own libraries, which
# dpkg-shlibdeps computes from the binaries.
#
# Options: --configuration release|debug, --out DIR (default dist), --no-lintian.
# Run as root on Debian 12 (it installs dpkg-dev and lintian with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIGURATION=release
OUT=dist
LINTIAN=1
while [ $# -gt 0 ]; do
  case "$1" in
    --configuration) CONFIGURATION=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-lintian) LINTIAN=0; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "package.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$CONFIGURATION" in release|debug) ;; *) echo "package.sh: --configuration is release or debug" >&2; exit 2 ;; esac

PKGS="dpkg-dev binutils lintian libudev-dev libssl-dev libusb-1.0-0-dev libcairo2-dev libpango1.0-dev libqrencode-dev libplist-dev libsqlite3-dev"
missing=""
for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"; done
if [ -n "$missing" ]; then
  [ "$(id -u)" = 0 ] || { echo "package.sh: needs$missing (run as root to install them)" >&2; exit 2; }
  echo "package.sh: installing$missing" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

step() { echo "== package.sh: $*" >&2; }
STAGE=$(mktemp -d)
WORK=$(mktemp -d)
trap 'rm -rf "$STAGE" "$WORK"' EXIT
# Its own scratch folder: objects built for a static runtime must not mix with the dynamic
# ones in .build (a later dynamic link there fails for want of -lCoreFoundation).
build=(swift build -c "$CONFIGURATION" --static-swift-stdlib --scratch-path .build-package)
step "swift build -c $CONFIGURATION --static-swift-stdlib (lethe, lethe-hub)"
for product in lethe lethe-hub; do
  if ! "${build[@]}" --product "$product" > "$WORK/build.log" 2>&1; then
    grep -E 'error:' -A3 "$WORK/build.log" | head -40 >&2
    echo "package.sh: the build of $product failed (swift build -c $CONFIGURATION --static-swift-stdlib --scratch-path .build-package --product $product)" >&2
    exit 1
  fi
done
BIN=$("${build[@]}" --show-bin-path)
[ -x "$BIN/lethe" ] && [ -x "$BIN/lethe-hub" ] || { echo "package.sh: no lethe or lethe-hub in $BIN" >&2; exit 1; }
# A static runtime: nothing of the toolchain may be needed at run time.
if ldd "$BIN/lethe" | grep -q '/opt/swift\|libswiftCore\|libFoundation'; then
  echo "package.sh: $BIN/lethe still links the Swift runtime dynamically" >&2; exit 1
fi
VERSION="$("$BIN/lethe" --version)-1" || { echo "package.sh: $BIN/lethe --version failed" >&2; exit 1; }
chmod 0755 "$STAGE"

step "staging lethe $VERSION"
for exe in lethe lethe-hub; do
  install -D -m 0755 "$BIN/$exe" "$STAGE/usr/bin/$exe"
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$STAGE/usr/bin/$exe"
done
install -D -m 0644 deploy/lethe.service "$STAGE/lib/systemd/system/lethe.service"
install -D -m 0644 deploy/debian/lethe.yaml "$STAGE/etc/lethe/lethe.yaml"
install -d -m 0755 "$STAGE/usr/share/lethe/profiles"
install -m 0644 profiles/*.yaml "$STAGE/usr/share/lethe/profiles/"
DOC="$STAGE/usr/share/doc/lethe"
install -D -m 0644 deploy/debian/copyright "$DOC/copyright"
gzip -9n -c deploy/debian/changelog > "$WORK/changelog.Debian.gz"
install -m 0644 "$WORK/changelog.Debian.gz" "$DOC/changelog.Debian.gz"
install -D -m 0644 deploy/lethe.yaml "$DOC/examples/lethe.yaml"
install -m 0644 catalog-api.yaml hub-api.yaml "$DOC/"
[ -d docs ] && { install -d -m 0755 "$DOC/docs"; install -m 0644 docs/*.md "$DOC/docs/"; }

# Shell completions, from ArgumentParser.
for exe in lethe lethe-hub; do
  install -d -m 0755 "$STAGE/usr/share/bash-completion/completions" "$STAGE/usr/share/zsh/vendor-completions" \
    "$STAGE/usr/share/fish/vendor_completions.d"
  # bash-completion sources the file: no #! line.
  "$BIN/$exe" --generate-completion-script bash | sed '1{/^#!/d}' > "$STAGE/usr/share/bash-completion/completions/$exe"
  "$BIN/$exe" --generate-completion-script zsh > "$STAGE/usr/share/zsh/vendor-completions/_$exe"
  "$BIN/$exe" --generate-completion-script fish > "$STAGE/usr/share/fish/vendor_completions.d/$exe.fish"
done

# Man pages from swift-argument-parser's generate-manual plugin, one page per command, named
# the git way (lethe-wipe.1) so that both `man lethe-wipe` and `man lethe wipe` find them.
# The plugin builds in .build with the dynamic runtime (as the tests and demo.sh do, so it
# reuses their build); the pages are the same whichever runtime the tool links.
step "man pages (swift package plugin generate-manual)"
MANDATE=$(dpkg-parsechangelog -l deploy/debian/changelog -S Date | xargs -I{} date -u -d {} +%Y-%m-%d)
MANSRC=.build/plugins/GenerateManual/outputs
rm -rf "$MANSRC"
swift package plugin generate-manual --configuration "$CONFIGURATION" --multi-page --date "$MANDATE" \
  --authors "Lethe maintainers<maintainers@lethe.example>" > "$WORK/manual.log" 2>&1 \
  || { cat "$WORK/manual.log" >&2; echo "package.sh: generate-manual failed" >&2; exit 1; }

install -d -m 0755 "$STAGE/usr/share/man/man1"
for page in "$MANSRC"/lethe/*.1 "$MANSRC"/lethe-hub/*.1; do
  name=$(basename "$page" .1)
  dashed=${name//./-}
  spaced=${name//./ }
  # NAME says lethe-wipe (what whatis and apropos index) and SYNOPSIS says "lethe wipe" (what
  # is typed), as git's pages do; the title and the cross references follow the file names;
  # blank lines in the discussion become paragraph breaks.
  cat -s "$page" | sed -e "s/^\.Dt ${name^^} /.Dt ${dashed^^} /" \
    -e "0,/^\.Nm \"\?${spaced}\"\?\$/s//.Nm ${dashed}/" \
    -e "/^\.Sh SYNOPSIS/,/^\.Sh [^S]/s/^\.Nm\$/.Nm \"${spaced}\"/" \
    -e '/^\.Xr /s/\([a-z-]\)\.\([a-z]\)/\1-\2/g' -e 's/^$/.Pp/' | gzip -9n > "$STAGE/usr/share/man/man1/$dashed.1.gz"
  chmod 0644 "$STAGE/usr/share/man/man1/$dashed.1.gz"
done

# DEBIAN/: control with the libraries dpkg-shlibdeps finds in the binaries, the maintainer
# scripts, and the conffile list.
install -D -m 0644 deploy/debian/lintian-overrides "$STAGE/usr/share/lintian/overrides/lethe"
mkdir -p "$WORK/debian" "$STAGE/DEBIAN"
printf 'Source: lethe\n\nPackage: lethe\nArchitecture: amd64\n' > "$WORK/debian/control"
SHLIBS=$(cd "$WORK" && dpkg-shlibdeps -O -e"$STAGE/usr/bin/lethe" -e"$STAGE/usr/bin/lethe-hub" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$SHLIBS" ] || { echo "package.sh: dpkg-shlibdeps found no libraries" >&2; exit 1; }
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@SIZE@/$SIZE/" -e "s/@SHLIBS@/$SHLIBS/" deploy/debian/control > "$STAGE/DEBIAN/control"
for script in postinst prerm postrm; do install -m 0755 "deploy/debian/$script" "$STAGE/DEBIAN/$script"; done
echo /etc/lethe/lethe.yaml > "$STAGE/DEBIAN/conffiles"
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort | xargs md5sum) > "$STAGE/DEBIAN/md5sums"
chmod 0644 "$STAGE/DEBIAN/control" "$STAGE/DEBIAN/conffiles" "$STAGE/DEBIAN/md5sums"

mkdir -p "$OUT"
DEB="$OUT/lethe_${VERSION}_amd64.deb"
step "dpkg-deb --build $DEB"
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l deploy/debian/changelog -S Timestamp) \
  dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >/dev/null
if [ "$LINTIAN" = 1 ]; then
  step "lintian $DEB"
  # An error or a warning fails the build. The overrides shipped in the package
  # (deploy/debian/lintian-overrides) and deploy/debian/lintian-suppress (tags about the
  # upload to Debian's archive, which this package never goes to) say why each is accepted.
  lintian --fail-on error,warning --suppress-tags-from-file deploy/debian/lintian-suppress "$DEB" >&2
fi
echo "$DEB"
