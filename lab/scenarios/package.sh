#!/bin/sh
# Runs inside the lab guest booted with systemd as PID 1 (LAB_INIT=systemd): installs the
# Debian package with apt, runs lethe.service under the real systemd with the demo drive, stops
# it, breaks the config, and purges. Results go to /lab/out for Tests/LabTests/PackageTests.
#   LAB_DEB=/path/to/lethe_*.deb LAB_INIT=systemd lab/lab.sh "sh $PWD/lab/scenarios/package.sh"
set -u
DEB=${LAB_DEB:?set LAB_DEB to the package}
out=/lab/out
mkdir -p $out
step() { echo "== $*"; }
record() { name=$1; shift; "$@" > $out/$name.out 2> $out/$name.err; echo $? > $out/$name.rc; }

step "systemd: $(systemctl is-system-running 2>&1); pid 1 is $(cat /proc/1/comm)"
cat /proc/1/comm > $out/pid1
# Every dependency is already on this machine (the guest's root is the host's), so apt
# installs from the file alone, with no network.
record install env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$DEB"
record version lethe --version
record man env MANWIDTH=80 man -P cat lethe-wipe
mkdir -p /etc/lethe/profiles
sed 's/^name: hdd$/name: hdd-site/; s/^priority: .*/priority: 5/' \
  /usr/share/lethe/profiles/hdd.yaml > /etc/lethe/profiles/hdd-site.yaml
record profiles lethe profiles list
record enabled-before systemctl is-enabled lethe
ls -l /var/lib/lethe/keys > $out/keys-after-install 2>&1

# The NVMe drive's socket labelled "Bay 7" in the station config, for the journal's BAY field.
port=$(lethe devices --json 2>/dev/null | python3 -c '
import json, sys
text = sys.stdin.read().strip()
try: items = json.loads(text)
except ValueError: items = [json.loads(l) for l in text.splitlines() if l.strip()]
if isinstance(items, dict): items = items.get("devices", [items])
print(next((d.get("portPath") or "" for d in items if d.get("serial") == "LABNVME0001"), ""))')
echo "$port" > $out/nvme-port
printf 'bays:\n  "%s": Bay 7\n' "$port" >> /etc/lethe/lethe.yaml

# The unit as shipped, with one drop-in that adds the demo drive.
mkdir -p /etc/systemd/system/lethe.service.d
printf '[Service]\nExecStart=\nExecStart=/usr/bin/lethe daemon --config /etc/lethe/lethe.yaml --demo\n' \
  > /etc/systemd/system/lethe.service.d/demo.conf
systemctl daemon-reload
start=$(cut -d' ' -f1 /proc/uptime)
record enable timeout 180 systemctl enable --now lethe
step "enable --now returned after $(awk -v s="$start" '{print $1 - s}' /proc/uptime) s: $(systemctl is-active lethe)"
systemctl show lethe -p ActiveState -p SubState -p Type -p NotifyAccess -p WatchdogUSec -p MainPID > $out/show-started
token=$(lethe tokens add lab --role qa --state-dir /var/lib/lethe 2>/dev/null)
i=0
while [ $i -lt 240 ]; do
  curl -s -H "Authorization: Bearer $token" http://127.0.0.1:8765/api/v1/jobs > $out/jobs.json
  grep -q '"certified":true' $out/jobs.json && break
  i=$((i + 1)); sleep 1
done
step "certified after $i s"
curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:8765/ > $out/dashboard.code
record stop timeout 120 systemctl stop lethe
systemctl show lethe -p ActiveState -p Result -p ExecMainStatus -p ExecMainCode > $out/show-stopped
journalctl -u lethe -o json --no-pager > $out/journal.json 2>&1
journalctl -u lethe --no-pager > $out/journal.txt 2>&1
# systemd's own messages carry a JOB_ID too (its job number); Lethe's are 26-character ULIDs.
job=$(grep -o '"JOB_ID":"[0-9A-Z]\{26\}"' $out/journal.json | head -1 | cut -d'"' -f4)
echo "$job" > $out/job-id
[ -n "$job" ] && journalctl -u lethe JOB_ID="$job" -o cat --no-pager > $out/journal-job.txt 2>&1
journalctl -u lethe SERIAL=LABNVME0001 -o json --no-pager > $out/journal-serial.json 2>&1
losetup -a > $out/loops-after-stop

# A bad config: the unit does not start, and the journal names file:line:column: field.
cp /etc/lethe/lethe.yaml /tmp/lethe.yaml.good
sed -i 's/^listen: 127.0.0.1:8765/listen: 127.0.0.1:http/' /etc/lethe/lethe.yaml
grep -n '^listen' /etc/lethe/lethe.yaml > $out/bad-line
record badstart timeout 120 systemctl start lethe
sleep 1
systemctl show lethe -p ActiveState -p Result > $out/show-bad
journalctl -u lethe --no-pager -o cat > $out/journal-bad.txt 2>&1
cp /tmp/lethe.yaml.good /etc/lethe/lethe.yaml
systemctl stop lethe 2>/dev/null
systemctl reset-failed lethe 2>/dev/null

# The unit exactly as shipped (no drop-in): it starts, answers, and stops cleanly.
rm -rf /etc/systemd/system/lethe.service.d
systemctl daemon-reload
record plainstart timeout 120 systemctl start lethe
curl -s http://127.0.0.1:8765/healthz > $out/plain-healthz
systemctl show lethe -p ActiveState -p SubState > $out/show-plain
record plainstop timeout 120 systemctl stop lethe
systemctl show lethe -p Result -p ExecMainStatus > $out/show-plain-stopped

# Purge: what the install added goes; the state directory stays.
rm -rf /etc/lethe/profiles
systemctl disable lethe > /dev/null 2>&1
record purge env DEBIAN_FRONTEND=noninteractive apt-get purge -y lethe
for path in /usr/bin/lethe /usr/bin/lethe-hub /lib/systemd/system/lethe.service /etc/lethe \
  /usr/share/lethe /usr/share/man/man1/lethe-wipe.1.gz /var/lib/lethe/keys/station.jwk \
  /etc/systemd/system/multi-user.target.wants/lethe.service; do
  [ -e "$path" ] && echo "present $path" || echo "absent $path"
done > $out/after-purge
dpkg-query -W -f='${Status}\n' lethe > $out/dpkg-status 2>&1
step "done"
