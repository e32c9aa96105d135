#!/bin/sh
# Runs inside the lab guest (lab/lab.sh). Lists the emulated drives, diagnoses them, then
# deletes the virtio-scsi disk while `lethe devices --watch` runs and probes the dead node.
# Results go to /lab/out for the host-side test (Tests/LabTests).
#   LETHE=/path/to/lethe lab/lab.sh "sh $PWD/lab/scenarios/discovery.sh"
set -u
LETHE=${LETHE:?set LETHE to the lethe binary}
out=/lab/out
mkdir -p $out
"$LETHE" devices --json > $out/devices.json 2> $out/devices.err
echo $? > $out/devices.rc
for pair in nvme:nvme-QEMU_NVMe_Ctrl_LABNVME0001 sata:ata-LAB_SATA_DISK_LABSATA0001 usb:usb-QEMU_QEMU_HARDDISK_LABUSB0001-0:0; do
  name=${pair%%:*}
  dev=/dev/disk/by-id/${pair#*:}
  "$LETHE" diagnose "$dev" --json > $out/diagnose-$name.json 2> $out/diagnose-$name.err
  echo $? > $out/diagnose-$name.rc
  echo "diagnose $name rc=$(cat $out/diagnose-$name.rc)"
done
[ -n "${LAB_NVME_OPTS:-}" ] && exit 0

# Unplug while watching: the watcher reports the removal; probing the dead node fails cleanly.
scsi=$(readlink -f /dev/disk/by-id/wwn-0x5000c500deadbeef)
host=$(basename "$(dirname "$(dirname "$(readlink -f /sys/block/$(basename $scsi)/device)")")")
"$LETHE" devices --watch --json > $out/watch.json 2> $out/watch.err &
watcher=$!
# The watcher lists what is docked (reading each drive's TCG discovery, slow under emulation)
# and then binds its socket, and says so: only then is no event missed. A fixed two seconds was
# not always enough.
for i in $(seq 1 120); do grep -q "watching" $out/watch.err && break; sleep 0.5; done
echo 1 > /sys/block/$(basename $scsi)/device/delete
for i in $(seq 1 60); do grep -q '"remove"' $out/watch.json && break; sleep 0.5; done
kill $watcher
"$LETHE" diagnose "$scsi" --json > $out/gone.json 2> $out/gone.err
echo $? > $out/gone.rc
echo "scsi=$scsi gone rc=$(cat $out/gone.rc)"

# Bay learning on a real hotplug: the disk comes back when its SCSI host is rescanned.
"$LETHE" bays learn --count 1 --labels "Bay 7" --timeout 30 --bays $out/bays.json > $out/learn.out 2> $out/learn.err &
learner=$!
sleep 2
echo "- - -" > /sys/class/scsi_host/$host/scan
wait $learner
echo $? > $out/learn.rc
udevadm settle
"$LETHE" devices --json --bays $out/bays.json > $out/devices-bays.json 2> $out/devices-bays.err
echo "learn rc=$(cat $out/learn.rc) host=$host"
