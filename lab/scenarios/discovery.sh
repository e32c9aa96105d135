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
"$LETHE" devices --watch --json > $out/watch.json 2> $out/watch.err &
watcher=$!
sleep 2
echo 1 > /sys/block/$(basename $scsi)/device/delete
sleep 2
kill $watcher
"$LETHE" diagnose "$scsi" --json > $out/gone.json 2> $out/gone.err
echo $? > $out/gone.rc
echo "scsi=$scsi gone rc=$(cat $out/gone.rc)"
