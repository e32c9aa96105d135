#!/bin/bash
# Lethe's copy of the shared hardware-lab harness (../shared/lab/lab.sh), carried in the
# repo so the lab tests run on any Debian machine. Keep it in step with the shared one.
# lab.sh - boot a throw-away QEMU "hardware lab" guest (Debian 6.1 kernel, host
# root filesystem shared read-only over virtio-9p with a tmpfs overlay on top,
# real systemd-udevd) with emulated NVMe + USB mass-storage (xHCI) + SATA/AHCI
# + virtio-scsi disks and the scsi_debug module, run ONE shell command in it,
# print the command's output and exit with the command's exit status.
#
#   lab.sh [--timeout SEC] [--] 'shell command run as root inside the guest'
#   lab.sh --prepare          # only install packages + build kernel/initramfs
#
# Environment knobs (all optional):
#   LAB_DIR=$TMPDIR/lethe-lab work/cache dir (kernel, initramfs, per-run dirs)
#   LAB_ACCEL=tcg             tcg | kvm  (kvm does NOT work on PVM hosts, see report)
#   LAB_SMP=2 LAB_MEM=2048    guest vCPUs / MiB
#   LAB_DISK_SIZE=1G          size of each sparse raw disk image
#   LAB_SCSI_DEBUG="dev_size_mb=64"  scsi_debug module params ("" = don't load)
#   LAB_NO_SCSI_DEBUG=1       don't load scsi_debug
#   LAB_QEMU_EXTRA="..."      extra qemu args (word-split), e.g. more -device's
#   LAB_KEEP=1                keep the per-run dir (disk images, console.log)
#   LAB_ARTIFACTS=DIR         copy what the guest wrote to /lab/out/ (+ console.log) here
#   LAB_BAD_LBA=4096          add faulty twins (NVMe/SATA/USB) failing I/O at that sector
#   LAB_NVME_OPTS/LAB_SATA_OPTS/LAB_USB_OPTS/LAB_SCSI_OPTS  extra -device properties,
#                             e.g. LAB_NVME_OPTS=smart_critical_warning=4
#   LAB_KPKG=linux-image-6.1.0-NN-amd64   pin the kernel package
#   LAB_INIT=systemd          boot the host's systemd as PID 1 (command runs in
#                             lab.service); default: a shell + standalone udevd
#   LAB_CPU=qemu64,-svm       guest CPU model (max,-svm,-vmx,-la57 for SSE4.2/AVX2)
# Inside the guest: /lab is a writable 9p share of the per-run dir on the host
# (files written there survive the guest), LAB_* variables are exported.
set -euo pipefail

LAB_DIR=${LAB_DIR:-$(dirname "$(mktemp -u)")/lethe-lab}
LAB_ACCEL=${LAB_ACCEL:-tcg}
LAB_SMP=${LAB_SMP:-2}
LAB_MEM=${LAB_MEM:-2048}
LAB_DISK_SIZE=${LAB_DISK_SIZE:-1G}
LAB_SCSI_DEBUG=${LAB_SCSI_DEBUG-dev_size_mb=64}
[ "${LAB_NO_SCSI_DEBUG:-0}" = 1 ] && LAB_SCSI_DEBUG=""
TIMEOUT=600
PREPARE_ONLY=0

while [ $# -gt 0 ]; do
  case "$1" in
    --timeout) TIMEOUT=$2; shift 2 ;;
    --prepare) PREPARE_ONLY=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 0 ;;
    *) break ;;
  esac
done
CMD="${*:-true}"

log() { echo "[lab $(date +%T)] $*" >&2; }
[ "$(id -u)" = 0 ] || { echo "lab.sh must run as root" >&2; exit 2; }
mkdir -p "$LAB_DIR/cache"
T0=$(date +%s.%N)

# ---------------------------------------------------------------- 1. packages
# qemu + helpers for building the guest, plus the tools the tests use in the
# guest (they run from the shared host root, so they must be on the host).
PKGS="qemu-system-x86 qemu-utils busybox-static kmod cpio xz-utils udev
      smartmontools nvme-cli hdparm sg3-utils dmsetup util-linux"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  log "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# ------------------------------------------------------------ 2. guest kernel
# the versioned package linux-image-amd64 points to; reuse the last good one
KPKG=${LAB_KPKG:-$(cat "$LAB_DIR/cache/kpkg" 2>/dev/null || true)}
if [ -z "$KPKG" ] || [ ! -f "$LAB_DIR/cache/${KPKG#linux-image-}/.done" ] && [ -z "${LAB_KPKG:-}" ]; then
  KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  if [ -z "$KPKG" ]; then apt-get update -qq >/dev/null
    KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}'); fi
fi
[ -n "$KPKG" ] || { log "cannot resolve linux-image-amd64"; exit 2; }
KV=${KPKG#linux-image-}
KDIR=$LAB_DIR/cache/$KV
if [ ! -f "$KDIR/.done" ]; then
  log "fetching kernel package $KPKG"
  rm -rf "$KDIR"; mkdir -p "$KDIR"
  (cd "$KDIR" && apt-get download -q "$KPKG" >/dev/null 2>&1 && dpkg-deb -x ./*.deb root && rm -f ./*.deb) \
    || { log "download/extract of $KPKG failed"; exit 2; }
  depmod -b "$KDIR/root" "$KV"
  # PVH boot of the uncompressed ELF skips the bzImage decompressor, which is
  # slow under TCG (~4 s vs ~11 s to reach init).
  vmlinuz=$KDIR/root/boot/vmlinuz-$KV
  off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -1 | cut -d: -f1 || true)
  if [ -n "$off" ]; then
    { tail -c +$((off + 1)) "$vmlinuz" | xz -dc --single-stream > "$KDIR/vmlinux"; } 2>/dev/null || true
  fi
  head -c4 "$KDIR/vmlinux" 2>/dev/null | grep -qa ELF || cp "$vmlinuz" "$KDIR/vmlinux"
  touch "$KDIR/.done"
fi
echo "$KPKG" > "$LAB_DIR/cache/kpkg"

# --------------------------------------------------------------- 3. initramfs
INITRD=$KDIR/initrd.cpio
if [ ! -f "$INITRD" ] || [ "$0" -nt "$INITRD" ]; then
  log "building initramfs"
  W=$(mktemp -d "$LAB_DIR/initrd.XXXX")
  mkdir -p "$W"/{bin,mods,proc,sys,dev,newroot,lower,upper}
  cp /bin/busybox "$W/bin/busybox"
  : > "$W/mods/order"
  for f in $(for m in virtio_pci 9pnet_virtio 9p overlay; do
               modprobe -d "$KDIR/root" -S "$KV" --show-depends "$m" | awk '$1=="insmod"{print $2}'
             done | awk '!seen[$0]++'); do
    cp "$f" "$W/mods/"; basename "$f" >> "$W/mods/order"
  done
  cat > "$W/init" <<'INIT'
#!/bin/busybox sh
B=/bin/busybox
die() { $B echo "LAB-INIT-FAIL: $*"; $B poweroff -f; }
$B mount -t proc proc /proc; $B mount -t sysfs sys /sys; $B mount -t devtmpfs dev /dev
for m in $($B cat /mods/order); do $B insmod /mods/$m || die "insmod $m"; done
O=trans=virtio,version=9p2000.L,msize=262144
$B mount -t 9p -o $O,ro,cache=loose hostroot /lower || die "9p hostroot"
$B mount -t tmpfs -o mode=755 upper /upper; $B mkdir -p /upper/u /upper/w
$B mount -t overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w overlay /newroot || die overlay
$B mkdir -p /newroot/usr/lib/modules /newroot/lab /newroot/.labbin
$B cp /bin/busybox /newroot/.labbin/busybox
$B rm -f /newroot/.dockerenv /newroot/run/.containerenv  # host markers: systemd would think "container"
$B mount -t 9p -o $O,ro,cache=loose kmods /newroot/usr/lib/modules || die "9p kmods"
$B mount -t 9p -o $O lab /newroot/lab || die "9p lab"
if $B grep -q 'lab.init=systemd' /proc/cmdline; then
  # real systemd as PID 1 (host's units; lab.target pulls sysinit + lab.service)
  $B cp /newroot/lab/lab.target /newroot/lab/lab.service /newroot/etc/systemd/system/
  # tmpfiles-setup would walk (and "D /tmp"-empty) the host's /tmp over 9p: minutes
  for u in systemd-tmpfiles-setup.service systemd-tmpfiles-clean.timer; do
    $B ln -sf /dev/null /newroot/etc/systemd/system/$u; done
  $B umount /proc /sys; $B umount /dev
  exec $B switch_root /newroot /lib/systemd/systemd systemd.unit=lab.target
fi
$B umount /proc /sys; $B umount /dev
exec $B switch_root /newroot /bin/sh /lab/guest.sh
INIT
  chmod +x "$W/init"
  (cd "$W" && find . | cpio -o -H newc --quiet) > "$INITRD.tmp" && mv "$INITRD.tmp" "$INITRD"
  rm -rf "$W"
fi
el() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
log "prepared in $(el "$T0") s (kernel $KV)"
[ "$PREPARE_ONLY" = 1 ] && exit 0

# --------------------------------------------------------------- 4. run dir
RUN=$(mktemp -d "$LAB_DIR/run.XXXXXX")
cleanup() {
  [ -n "${QPID:-}" ] && kill "$QPID" 2>/dev/null || true
  [ -n "${TPID:-}" ] && kill "$TPID" 2>/dev/null || true
  if [ "${LAB_KEEP:-0}" = 1 ]; then log "kept $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
for d in nvme usb sata scsi; do truncate -s "$LAB_DISK_SIZE" "$RUN/$d.img"; done
printf '%s\n' "$CMD" > "$RUN/cmd.sh"
: > "$RUN/output"; mkdir -p "$RUN/out"
for v in $(compgen -v | grep '^LAB_' || true); do
  val=${!v}; printf "export %s='%s'\n" "$v" "${val//\'/\'\\\'\'}"
done > "$RUN/env.sh"
printf "export LAB_SCSI_DEBUG='%s'\n" "$LAB_SCSI_DEBUG" >> "$RUN/env.sh"
cat > "$RUN/guest.sh" <<'GUEST'
# PID 1 in the guest after switch_root (host's /bin/sh on the overlay root)
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb
BB=/.labbin/busybox
if [ -z "$LAB_SYSTEMD" ]; then
  mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
  mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /dev/shm
  mount -t tmpfs -o mode=755 tmpfs /run; mkdir -p /run/udev /run/lock  # /tmp stays the (overlaid) host /tmp
  mount -t configfs configfs /sys/kernel/config 2>/dev/null
fi
. /lab/env.sh
hostname lab-guest 2>/dev/null; $BB ip link set lo up   # no NIC; loopback only
echo "LAB: guest up at $(cut -d' ' -f1 /proc/uptime)s" > /dev/console
if [ -z "$LAB_SYSTEMD" ]; then
  /lib/systemd/systemd-udevd --daemon --resolve-names=never
  udevadm trigger --type=subsystems --action=add
  udevadm trigger --type=devices --action=add
fi
udevadm settle --timeout=120
if [ -n "$LAB_SCSI_DEBUG" ]; then modprobe scsi_debug $LAB_SCSI_DEBUG; udevadm settle --timeout=60; fi
echo "LAB: udev settled at $(cut -d' ' -f1 /proc/uptime)s" > /dev/console
cd /lab
sh /lab/cmd.sh > /lab/output 2>&1 < /dev/null
echo $? > /lab/rc
sync
$BB poweroff -f
GUEST

# optional: systemd as PID 1 (LAB_INIT=systemd); the command runs in lab.service
cat > "$RUN/lab.target" <<'UNIT'
[Unit]
Description=lab test target
Wants=sysinit.target
Requires=lab.service
After=sysinit.target lab.service
AllowIsolate=yes
UNIT
cat > "$RUN/lab.service" <<'UNIT'
[Unit]
Description=lab test command
DefaultDependencies=no
Wants=sysinit.target systemd-udevd.service
After=sysinit.target systemd-udevd.service systemd-udev-trigger.service
[Service]
Type=oneshot
Environment=LAB_SYSTEMD=1
ExecStart=/bin/sh /lab/guest.sh
StandardOutput=journal+console
UNIT
INITARG=""
[ "${LAB_INIT:-sh}" = systemd ] && INITARG="lab.init=systemd systemd.unit=lab.target"

# ------------------------------------------------------------------ 5. boot
FW=()
[ "${LAB_FW:-seabios}" = qboot ] && FW=(-bios /usr/share/qemu/qboot.rom)
# modules udev would autoload for q35 chipset bits we don't care about (saves TCG time)
BLACKLIST=kvm,kvm_amd,kvm_intel,iTCO_wdt,iTCO_vendor_support,lpc_ich,i2c_i801,i2c_smbus,pcspkr,parport_pc,ppdev,powernow_k8,acpi_cpufreq,psmouse,serio_raw,evdev,joydev,button,bochs,drm
# discard=unmap: TRIM/UNMAP/DSM-deallocate really punch holes (reads return zeroes);
# rerror/werror=report: host I/O errors reach the guest instead of pausing the VM
DOPTS="format=raw,discard=unmap,detect-zeroes=unmap,rerror=report,werror=report"
QARGS=(
  -M q35 -accel "$LAB_ACCEL" -cpu "${LAB_CPU:-qemu64,-svm}" -smp "$LAB_SMP" -m "$LAB_MEM" "${FW[@]}"
  -nodefaults -vga none -display none -no-reboot -serial "file:$RUN/console.log" -monitor none
  -kernel "$KDIR/vmlinux" -initrd "$INITRD"
  -append "console=ttyS0 panic=-1 quiet loglevel=4 modprobe.blacklist=$BLACKLIST $INITARG ${LAB_APPEND:-}"
  -fsdev "local,id=fsroot,path=/,security_model=none,readonly=on,multidevs=remap"
  -device virtio-9p-pci,fsdev=fsroot,mount_tag=hostroot
  -fsdev "local,id=fsmods,path=$KDIR/root/lib/modules,security_model=none,readonly=on"
  -device virtio-9p-pci,fsdev=fsmods,mount_tag=kmods
  -fsdev "local,id=fslab,path=$RUN,security_model=none"
  -device virtio-9p-pci,fsdev=fslab,mount_tag=lab
  # NVMe (1 controller, namespace 1)
  -drive "if=none,id=nvm0,$DOPTS,file=$RUN/nvme.img"
  -device "nvme,id=nvme0,serial=LABNVME0001,drive=nvm0${LAB_NVME_OPTS:+,$LAB_NVME_OPTS}"
  # USB mass storage (BOT) on an xHCI controller
  -device qemu-xhci,id=xhci
  -drive "if=none,id=usb0,$DOPTS,file=$RUN/usb.img"
  -device "usb-storage,bus=xhci.0,drive=usb0,serial=LABUSB0001,removable=on${LAB_USB_OPTS:+,$LAB_USB_OPTS}"
  # SATA disk on the q35 built-in AHCI (ich9) controller
  -drive "if=none,id=sata0,$DOPTS,file=$RUN/sata.img"
  -device "ide-hd,bus=ide.0,drive=sata0,serial=LABSATA0001,model=LAB SATA DISK,wwn=0x5000c500a1b2c3d4,rotation_rate=1${LAB_SATA_OPTS:+,$LAB_SATA_OPTS}"
  # SCSI disk on virtio-scsi
  -device virtio-scsi-pci,id=vscsi
  -drive "if=none,id=scsi0,$DOPTS,file=$RUN/scsi.img"
  -device "scsi-hd,bus=vscsi.0,drive=scsi0,serial=LABSCSI0001,vendor=LABVEND,product=LAB SCSI DISK,wwn=0x5000c500deadbeef${LAB_SCSI_OPTS:+,$LAB_SCSI_OPTS}"
)
# Optional faulty twins (QEMU blkdebug): every read or write touching 512-byte
# sector $LAB_BAD_LBA fails with EIO on the host side, which the guest sees as
# NVMe "Unrecovered Read Error"/write fault, ATA ABRT (+ libata EH reset) or
# SCSI sense ABORTED COMMAND on USB.
if [ -n "${LAB_BAD_LBA:-}" ]; then
  cat > "$RUN/blkdebug.conf" <<EOF
[inject-error]
event = "read_aio"
iotype = "read"
errno = "5"
sector = "$LAB_BAD_LBA"
once = "off"

[inject-error]
event = "write_aio"
iotype = "write"
errno = "5"
sector = "$LAB_BAD_LBA"
once = "off"
EOF
  for d in nvmebad satabad usbbad; do truncate -s 256M "$RUN/$d.img"; done
  B="format=raw,rerror=report,werror=report,file=blkdebug:$RUN/blkdebug.conf:$RUN"
  QARGS+=(
    -drive "if=none,id=bad0,$B/nvmebad.img" -device nvme,id=nvme1,serial=LABNVMEBAD1,drive=bad0
    -drive "if=none,id=bad1,$B/satabad.img" -device "ide-hd,bus=ide.1,drive=bad1,serial=LABSATABAD1,model=LAB BAD SATA"
    -drive "if=none,id=bad2,$B/usbbad.img" -device usb-storage,bus=xhci.0,drive=bad2,serial=LABUSBBAD1
  )
fi
# shellcheck disable=SC2206
[ -n "${LAB_QEMU_EXTRA:-}" ] && QARGS+=($LAB_QEMU_EXTRA)

log "booting guest (accel=$LAB_ACCEL smp=$LAB_SMP timeout=${TIMEOUT}s)"
T1=$(date +%s.%N)
timeout -k 5 "$TIMEOUT" qemu-system-x86_64 "${QARGS[@]}" > "$RUN/qemu.log" 2>&1 &
QPID=$!
tail -n +1 -f --pid="$QPID" "$RUN/output" & TPID=$!
set +e; wait "$QPID"; QRC=$?; set -e
QPID=""
wait "$TPID" 2>/dev/null || true; TPID=""
if [ -s "$RUN/rc" ]; then RC=$(cat "$RUN/rc")
else
  RC=125; [ "$QRC" = 124 ] && RC=124
  log "guest did not finish (qemu rc=$QRC); console tail:"
  tail -n 40 "$RUN/console.log" >&2 || true; cat "$RUN/qemu.log" >&2 || true
fi
if [ -n "${LAB_ARTIFACTS:-}" ] && [ -d "$RUN/out" ]; then
  mkdir -p "$LAB_ARTIFACTS"; cp -a "$RUN/out/." "$LAB_ARTIFACTS/"; cp "$RUN/console.log" "$LAB_ARTIFACTS/console.log"
fi
log "guest wall time $(el "$T1") s, total $(el "$T0") s, command rc=$RC"
exit "$RC"
