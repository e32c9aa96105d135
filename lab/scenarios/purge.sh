#!/bin/sh
# Runs inside the lab guest (lab/lab.sh). Firmware erases on the emulated drives, each proven
# (or disproven) by Lethe's read-back. Results go to /lab/out for Tests/LabTests.
#   LETHE=/path/to/lethe lab/lab.sh "sh $PWD/lab/scenarios/purge.sh"
set -u
LETHE=${LETHE:?set LETHE to the lethe binary}
out=/lab/out
mkdir -p $out
state=/tmp/lethe-purge
"$LETHE" keys init --state-dir $state > /dev/null
nvme=/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVME0001
sata=/dev/disk/by-id/ata-LAB_SATA_DISK_LABSATA0001
usb=/dev/disk/by-id/usb-QEMU_QEMU_HARDDISK_LABUSB0001-0:0
run() {  # run NAME lethe-args...: stdout, stderr and exit status into $out/NAME.*
  name=$1; shift
  "$LETHE" "$@" > $out/$name.json 2> $out/$name.err
  echo $? > $out/$name.rc
  echo "$name: rc=$(cat $out/$name.rc) $(tail -c 300 $out/$name.err | tr '\n' ' ')"
}
report() {  # report NAME: copy the certificate the result line names
  id=$(sed -n 's/.*"reportId":"\([^"]*\)".*/\1/p' $out/$1.json | tail -1)
  [ -n "$id" ] && cp $state/reports/$id.json $out/$1-certificate.json && pdftotext $state/reports/$id.pdf $out/$1-certificate.txt 2>/dev/null
}

# NVMe Format NVM with SES=1: the controller zero-fills; Lethe proves it and certifies Purge.
run nvme-format wipe $nvme --method nvme-format-user-data --yes --json --report-dir $state/reports --state-dir $state
report nvme-format
# Sanitize is not implemented (SANICAP 0): named, refused before anything is sent...
run nvme-sanitize wipe $nvme --method nvme-sanitize-crypto --yes --json --state-dir $state
# ...sent anyway on request: the controller answers Invalid Command Opcode; not erased.
run nvme-sanitize-forced wipe $nvme --method nvme-sanitize-crypto --ignore-capabilities --yes --json --report-dir $state/reports --state-dir $state
report nvme-sanitize-forced
# A TCG revert on a drive without TCG (QEMU refuses Security Receive): refused by Level 0
# Discovery before a PSID is asked for or anything is sent.
run nvme-psid wipe $nvme --method tcg-psid-revert --yes --json --state-dir $state
# nist-purge passes over sanitize (and says why) and takes Format NVM.
run nvme-nist-purge wipe $nvme --method nist-purge --yes --json --report-dir $state/reports --state-dir $state
report nvme-nist-purge

# SATA: no Security feature set. Refused with the IDENTIFY bit; forced, the device aborts the
# first security command and Lethe reports it failed...
run sata-secure-erase wipe $sata --method ata-secure-erase --yes --json --state-dir $state
run sata-secure-erase-forced wipe $sata --method ata-secure-erase --ignore-capabilities --yes --json --report-dir $state/reports --state-dir $state
report sata-secure-erase-forced
# ...where hdparm exits 0 for the same commands.
hdparm --user-master u --security-set-pass Lethe $sata > $out/hdparm-set.txt 2>&1; echo $? > $out/hdparm-set.rc
hdparm --user-master u --security-erase Lethe $sata > $out/hdparm-erase.txt 2>&1; echo $? > $out/hdparm-erase.rc
echo "hdparm: set rc=$(cat $out/hdparm-set.rc) erase rc=$(cat $out/hdparm-erase.rc)"
# nist-purge on it falls back to Clear (overwrite), with the reason on the certificate.
run sata-nist-purge wipe $sata --method nist-purge --yes --json --report-dir $state/reports --state-dir $state
report sata-nist-purge

# USB: FORMAT UNIT answers good and leaves the data; the read-back catches it.
run usb-format wipe $usb --method scsi-format-unit --yes --json --report-dir $state/reports --state-dir $state
report usb-format
"$LETHE" audit verify --state-dir $state > $out/audit.txt 2>&1; echo $? > $out/audit.rc
