#!/bin/sh
# Runs inside the lab guest (lab/lab.sh): the fault campaign of issue 15. Each fault is made on
# a real kernel (dm-error, dm-flakey, a SCSI disk set offline, an NVMe controller with two
# namespaces, a partitioned disk with one partition mounted, a loop device over a disk that
# holds a mounted file system, a drive swapped at the same node) and Lethe is run against it.
# Every step records its exit status, its JSON result, its certificate if any, and checksums
# of what lies outside its target before and after. Results go to /lab/out for Tests/LabTests.
#   LETHE=/path/to/lethe LAB_QEMU_EXTRA=... lab/lab.sh "sh $PWD/lab/scenarios/faults.sh"
# The two-namespace controller (serial LABNVMENS02) comes from LAB_QEMU_EXTRA (see LabTests).
set -u
LETHE=${LETHE:?set LETHE to the lethe binary}
out=/lab/out
mkdir -p $out
state=/tmp/lethe-faults
"$LETHE" keys init --state-dir $state > /dev/null
reports=$state/reports
scsi=/dev/disk/by-id/wwn-0x5000c500deadbeef
sata=/dev/disk/by-id/ata-LAB_SATA_DISK_LABSATA0001
usb=/dev/disk/by-id/usb-QEMU_QEMU_HARDDISK_LABUSB0001-0:0
nvme=/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVME0001
ns1=/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVMENS02_1
ns2=/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVMENS02_2

run() {  # run NAME lethe-args...: stdout, stderr, exit status and seconds into $out/NAME.*
  name=$1; shift
  start=$(date +%s.%N)
  "$LETHE" "$@" > $out/$name.json 2> $out/$name.err
  echo $? > $out/$name.rc
  echo "$(date +%s.%N) $start" | awk '{printf "%.1f\n", $1 - $2}' > $out/$name.seconds
  echo "$name: rc=$(cat $out/$name.rc) in $(cat $out/$name.seconds) s: $(tail -c 300 $out/$name.err | tr '\n' ' ')"
}
report() {  # report NAME: copy the certificate (or record) the result line names
  id=$(sed -n 's/.*"reportId":"\([^"]*\)".*/\1/p' $out/$1.json | tail -1)
  [ -n "$id" ] && cp $reports/$id.json $out/$1-certificate.json
}
region() {  # region DEVICE SKIP_MIB COUNT_MIB: sha256 of that stretch
  dd if="$1" bs=1M skip="$2" count="$3" iflag=direct 2>/dev/null | sha256sum | cut -c1-64
}
# The disks no step writes to hold random data at both ends; their checksums are taken now and
# again at the end: not one byte may change.
untouched() {
  for d in $nvme $usb; do
    echo "$d $(region $d 0 32) $(region $d 992 32)"
  done
}
for d in $nvme $usb; do
  dd if=/dev/urandom of=$d bs=1M count=32 oflag=direct 2>/dev/null
  dd if=/dev/urandom of=$d bs=1M seek=992 count=32 oflag=direct 2>/dev/null
done
untouched > $out/untouched.before

# --- 1. dm-error over part of a disk: at its start, its middle and its end ---------------------
# Three 64 MiB stretches of the SCSI disk, each behind a device-mapper table with an error
# target in it. The erase lists exactly the failing sectors, is never certified, and stays
# fast (no sector-by-sector bisect of a whole failing region).
dd if=/dev/urandom of=$scsi bs=1M count=320 oflag=direct 2>/dev/null
region $scsi 256 64 > $out/scsi-rest.before
printf '0 2048 error\n2048 129024 linear %s 2048\n' $scsi | dmsetup create lab-err-start
printf '0 65536 linear %s 131072\n65536 2048 error\n67584 63488 linear %s 198656\n' $scsi $scsi | dmsetup create lab-err-middle
printf '0 117760 linear %s 262144\n117760 13312 error\n' $scsi | dmsetup create lab-err-end
for where in start middle end; do
  run dm-error-$where wipe /dev/mapper/lab-err-$where --method zero --verify last --yes --json --report-dir $reports --state-dir $state
  report dm-error-$where
done
for where in start middle end; do dmsetup remove lab-err-$where; done

# --- 2. dm-flakey: writes silently dropped, reads corrupted -------------------------------------
modprobe dm-flakey 2>/dev/null
printf '0 131072 flakey %s 393216 0 3600 1 drop_writes\n' $scsi | dmsetup create lab-drop
run flakey-drop wipe /dev/mapper/lab-drop --method zero --verify last --yes --json --report-dir $reports --state-dir $state
report flakey-drop
dmsetup remove lab-drop
# (Kernel 6.1 cannot corrupt reads with corrupt_bio_byte: its read path corrupts nothing. Writes
# corrupted on the way to the disk are the same lie told the other way round.)
printf '0 131072 flakey %s 393216 0 3600 5 corrupt_bio_byte 224 w 1 0\n' $scsi | dmsetup create lab-corrupt
run flakey-corrupt wipe /dev/mapper/lab-corrupt --method zero --verify last --yes --json --report-dir $reports --state-dir $state
report flakey-corrupt
dmsetup remove lab-corrupt
region $scsi 256 64 > $out/scsi-rest.after

# --- 3. an NVMe controller with two namespaces, one of them mounted ----------------------------
# A file system with a file, checksummed unmounted, then mounted read-only without journal
# replay (so the kernel itself writes nothing to it): any change is Lethe's.
filesystem() {  # filesystem DEVICE MOUNTPOINT CHECKSUM-FILE
  mkfs.ext4 -q -F "$1" && mkdir -p "$2" && mount "$1" "$2" && head -c 1M /dev/urandom > "$2/data" && umount "$2"
  region "$1" 0 64 > "$3"
  mount -o ro,noload "$1" "$2"
}
filesystem $ns2 /mnt/ns2 $out/ns2.before
# A sanitize reaches every namespace: refused, naming the mounted one, before anything is sent.
run ns-sanitize wipe $ns1 --method nvme-sanitize-block --ignore-capabilities --yes --json --report-dir $reports --state-dir $state
# Format NVM with FNA 0 reaches its own namespace only: allowed, and certified.
run ns-format wipe $ns1 --method nvme-format-user-data --yes --json --report-dir $reports --state-dir $state
report ns-format
umount /mnt/ns2
region $ns2 0 64 > $out/ns2.after
# Unmounted, the sanitize passes the guard (the controller then rejects it: QEMU has none); the
# record names both namespaces it was sent for.
run ns-sanitize-free wipe $ns1 --method nvme-sanitize-block --ignore-capabilities --yes --json --report-dir $reports --state-dir $state
report ns-sanitize-free

# --- 4. a partitioned disk: a firmware method asked on one partition while another is mounted --
printf 'label: gpt\n,100M\n,100M\n' | sfdisk -q $sata > $out/sfdisk.txt 2>&1
udevadm settle; sleep 1
filesystem $sata-part2 /mnt/p2 $out/part2.before
run part-sanitize wipe $sata-part1 --method ata-sanitize-block --ignore-capabilities --yes --json --state-dir $state
run part-hidden wipe $sata-part1 --method zero --open-hidden-areas --yes --json --report-dir $reports --state-dir $state
report part-hidden
run part-purge wipe $sata-part1 --method nist-purge --yes --json --report-dir $reports --state-dir $state
report part-purge
# A loop device over the whole disk, whose second partition is mounted: the guard follows the
# loop device to the disk and refuses.
modprobe loop 2>/dev/null
loop=$(losetup -f --show $sata)
run loop-over-mounted wipe $loop --method zero --yes --json --state-dir $state
losetup -d $loop
# Issue 15, item 7, on this kernel: a second O_EXCL open by the process holding the first.
python3 -c '
import errno, os, sys
first = os.open(sys.argv[1], os.O_RDWR | os.O_EXCL)
try:
    os.open(sys.argv[1], os.O_RDWR | os.O_EXCL)
    print("opened")
except OSError as e:
    print(errno.errorcode[e.errno])
' $sata-part1 > $out/oexcl.txt 2>&1
umount /mnt/p2
region $sata-part2 0 64 > $out/part2.after
wipefs -q -a $sata

# --- 5. a SATA disk set offline two seconds into a pass ----------------------------------------
node=$(basename "$(readlink -f $sata)")
"$LETHE" wipe $sata --method random --verify last --yes --json > $out/offline.json 2> $out/offline.err &
pid=$!
for _ in $(seq 300); do grep -q '"type":"progress"' $out/offline.json 2>/dev/null && break; sleep 0.1; done
sleep 2
echo offline > /sys/block/$node/device/state
start=$(date +%s.%N)
wait $pid
echo $? > $out/offline.rc
echo "$(date +%s.%N) $start" | awk '{printf "%.1f\n", $1 - $2}' > $out/offline.seconds
echo running > /sys/block/$node/device/state
echo "offline: rc=$(cat $out/offline.rc), $(cat $out/offline.seconds) s after the disk went offline"

untouched > $out/untouched.after

# --- 6. a drive swapped at the same node between dock and start -------------------------------
# The daemon docks the USB disk (its job waits for the technician) and is frozen; the disk is
# deleted and another (scsi_debug) takes its node; the daemon thaws and is asked at once to
# start the job. Whether the remove event or the start request comes first (409, or the job
# refused by the identity check at start), not a byte may reach the disk that took the place.
# (BenchTests shows the start-time check alone, with the events lost for certain.)
swap=/tmp/lethe-swap
mkdir -p $swap/profiles
cat > $swap/profiles/usb.yaml <<'YAML'
name: lab-usb
match: {transport: usb}
diagnostics: {smart: false}
erase: {method: zero, verification: last}
start: manual
YAML
cat > $swap/profiles/scsi.yaml <<'YAML'
name: lab-scsi
match: {transport: scsi}
diagnostics: {smart: false}
erase: {method: zero, verification: last}
start: manual
YAML
"$LETHE" keys init --state-dir $swap > /dev/null
token=$("$LETHE" tokens add lab --role technician --state-dir $swap | grep -o 'lethe_[A-Za-z0-9_-]*' | head -1)
"$LETHE" daemon --no-phones --state-dir $swap --profiles $swap/profiles --listen 127.0.0.1:8766 > /dev/null 2> $out/swap-daemon.err &
dpid=$!
usbnode=$(readlink -f $usb)
api() { curl -s -H "Authorization: Bearer $token" "$@"; }
job=""
for _ in $(seq 300); do
  job=$(api 127.0.0.1:8766/api/v1/jobs | python3 -c '
import json, sys
jobs = [j for j in json.load(sys.stdin) if j["device"] == sys.argv[1] and j["state"] == "waiting"]
print(jobs[0]["id"] if jobs else "")' $usbnode 2>/dev/null)
  [ -n "$job" ] && break
  sleep 0.2
done
echo "$job" > $out/swap-job.txt
kill -STOP $dpid
echo 1 > /sys/block/$(basename $usbnode)/device/delete
modprobe scsi_debug dev_size_mb=64
udevadm settle
newnode=/dev/$(ls /sys/bus/pseudo/drivers/scsi_debug/adapter0/host*/target*/*/block/ 2>/dev/null | head -1)
echo "$usbnode $newnode" > $out/swap-nodes.txt
dd if=/dev/urandom of=$newnode bs=1M count=64 oflag=direct 2>/dev/null
region $newnode 0 64 > $out/swap-other.before
kill -CONT $dpid
api -X POST -o $out/swap-start.json -w '%{http_code}\n' 127.0.0.1:8766/api/v1/jobs/$job/start > $out/swap-start.status
for _ in $(seq 100); do
  api 127.0.0.1:8766/api/v1/jobs/$job > $out/swap-job.json
  grep -q '"state":"running"' $out/swap-job.json || break
  sleep 0.2
done
sleep 1
api 127.0.0.1:8766/api/v1/jobs > $out/swap-jobs.json
region $newnode 0 64 > $out/swap-other.after
kill -TERM $dpid; wait $dpid
echo "swap: start HTTP $(cat $out/swap-start.status), job $(cat $out/swap-job.json | head -c 300)"
echo "faults: done"
