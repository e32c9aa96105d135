#!/bin/sh
# Runs inside the lab guest (lab/lab.sh with LAB_BAD_LBA set). Erases each faulty twin, checks
# it read-only, and unplugs a healthy SATA disk in the middle of a wipe. Results go to /lab/out
# as JSON for the host-side test (Tests/LabTests) to assert on.
#   LETHE=/path/to/lethe LAB_BAD_LBA=4096 lab/lab.sh "sh $PWD/lab/scenarios/bad-sectors.sh"
set -u
LETHE=${LETHE:?set LETHE to the lethe binary}
out=/lab/out
mkdir -p $out
# The surface scan reads the NVMe twin end to end and must name its bad sector.
"$LETHE" diagnose /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVMEBAD1 --surface full --json > $out/surface-nvme.json 2> $out/surface-nvme.err
echo $? > $out/surface-nvme.rc
echo "surface nvme rc=$(cat $out/surface-nvme.rc)"

# The NVMe twin's wipe also reads its surface first and writes a signed refurb report, which
# must carry the bad sector and grade the drive for parts.
reports=/tmp/lethe-reports
"$LETHE" keys init --state-dir $reports > /dev/null
for twin in nvme-QEMU_NVMe_Ctrl_LABNVMEBAD1 ata-LAB_BAD_SATA_LABSATABAD1 usb-QEMU_QEMU_HARDDISK_LABUSBBAD1-0:0; do
  name=${twin%%-*}
  dev=/dev/disk/by-id/$twin
  [ -e "$dev" ] || { echo "missing $dev"; continue; }
  extra=""
  [ "$name" = nvme ] && extra="--surface full --report-dir $out/reports --state-dir $reports"
  # shellcheck disable=SC2086
  "$LETHE" wipe "$dev" --method zero --verify last --yes --json $extra > $out/wipe-$name.json 2> $out/wipe-$name.err
  echo $? > $out/wipe-$name.rc
  "$LETHE" verify "$dev" --expect zero --json > $out/verify-$name.json 2> $out/verify-$name.err
  echo $? > $out/verify-$name.rc
  echo "$twin: wipe rc=$(cat $out/wipe-$name.rc) verify rc=$(cat $out/verify-$name.rc)"
done

# Unplug: delete the healthy SATA disk from the SCSI layer two seconds into a wipe's writing. (A random
# pass: QEMU turns zero writes into cheap unmaps, and the pass would be over before the unplug.)
sata=/dev/disk/by-id/ata-LAB_SATA_DISK_LABSATA0001
node=$(readlink -f $sata)
"$LETHE" wipe "$sata" --method random --yes --json > $out/unplug.json 2> $out/unplug.err &
pid=$!
# Wait until it is writing (lethe starts slowly under emulation), then two more seconds.
for _ in $(seq 300); do grep -q '"type":"progress"' $out/unplug.json 2>/dev/null && break; sleep 0.1; done
sleep 2
echo 1 > /sys/block/$(basename $node)/device/delete
wait $pid
echo $? > $out/unplug.rc
echo "unplug: wipe rc=$(cat $out/unplug.rc)"

# The daemon: a job on the healthy USB disk, unplugged (deleted from the SCSI layer) mid-erase,
# ends `interrupted` and resumable, without a certificate; the audit chain stays intact.
usb=$(readlink -f /dev/disk/by-id/usb-QEMU_QEMU_HARDDISK_LABUSB0001-0:0)
state=/tmp/lethe-daemon
mkdir -p $state/profiles
cat > $state/profiles/usb.yaml <<'YAML'
name: lab-usb
match: {transport: usb}
diagnostics: {smart: false}
erase: {method: random, verification: last}
start: manual
YAML
"$LETHE" keys init --state-dir $state > /dev/null
"$LETHE" daemon --no-phones --state-dir $state --profiles $state/profiles --listen 127.0.0.1:8765 \
  --auto-start "$usb" --checkpoint-seconds 0.5 > /dev/null 2> $out/daemon.err &
dpid=$!
for _ in $(seq 200); do grep -q "erasing with" $out/daemon.err && break; sleep 0.1; done
sleep 2
echo 1 > /sys/block/$(basename "$usb")/device/delete
for _ in $(seq 200); do grep -q "interrupted\|notErased\|aborted" $out/daemon.err && break; sleep 0.1; done
sleep 1
kill -TERM $dpid
wait $dpid
echo $? > $out/daemon.rc
"$LETHE" audit log --state-dir $state > $out/daemon-audit.txt 2>&1
"$LETHE" audit verify --state-dir $state > /dev/null 2>&1
echo $? > $out/daemon-audit.rc
echo "daemon unplug: rc=$(cat $out/daemon.rc) audit rc=$(cat $out/daemon-audit.rc)"
