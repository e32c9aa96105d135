#!/usr/bin/env python3
"""Lethe's wipe engine against fio on one loop device, in one run: throughput ratios, CPU
seconds per GiB and instructions per GiB. Called by Benchmarks/wipe-vs-fio.sh (which installs
fio, builds the release binary and passes its path); see that script for the arguments.

Each Lethe figure is divided by the mean of a fio run just before and just after it (these
machines change speed by 2x from one minute to the next); the median of the rounds' ratios is
printed. fio is the reference: libaio, direct=1, iodepth=8, bs=4M, one job.

Two throughput ratios are given for Lethe: its own figure for the pass (bytes / seconds of the
pass, as the certificate records it) and the whole process (bytes / wall time from exec to
exit: start-up, planning, flushes and verification set-up counted). CPU is the whole process,
user and system (perf stat's task-clock, else getrusage), for fio too; instructions come from
perf stat where the machine's PMU counts them. The kernel's loop worker is nobody's.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import resource

GIB = 1 << 30


def perf_works():
    if not shutil.which("perf"):
        return False
    probe = subprocess.run(["perf", "stat", "-x,", "-e", "instructions", "--", "true"], capture_output=True, text=True)
    return probe.returncode == 0 and re.search(r"^\d+,", probe.stderr, re.M) is not None


PERF = perf_works()


def measured(cmd):
    """Runs cmd; returns (wall seconds, cpu seconds, instructions or None, stdout)."""
    prefix = ["perf", "stat", "-x,", "-e", "instructions,task-clock", "--"] if PERF else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run(prefix + cmd, capture_output=True, text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0,):
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    instructions = None
    if PERF:
        for line in done.stderr.splitlines():
            fields = line.split(",")
            if len(fields) > 2 and fields[2] == "instructions" and fields[0].isdigit():
                instructions = int(fields[0])
            if len(fields) > 2 and fields[2] == "task-clock":
                try:
                    cpu = float(fields[0]) / 1000  # msec
                except ValueError:
                    pass
    return wall, cpu, instructions, done.stdout


def last_json(text):
    lines = [l for l in text.splitlines() if l.startswith("{")]
    return json.loads(lines[-1])


class Bench:
    def __init__(self, lethe, device, size):
        self.lethe, self.device, self.size = lethe, device, size
        self.samples = {}

    def add(self, key, value):
        self.samples.setdefault(key, []).append(value)

    def fio(self, rw):
        wall, cpu, instr, out = measured([
            "fio", "--name=ref", f"--filename={self.device}", f"--rw={rw}", "--bs=4M", "--iodepth=8", "--ioengine=libaio",
            "--direct=1", "--size=100%", "--output-format=json"])
        job = json.loads(out[out.index("{"):])["jobs"][0]
        bw = job["write" if rw == "write" else "read"]["bw_bytes"]
        return {"rate": bw, "process": self.size / wall, "cpu": cpu, "instr": instr}

    def lethe_run(self, args, rate_of):
        wall, cpu, instr, out = measured([self.lethe] + args)
        return {"rate": rate_of(last_json(out)), "process": self.size / wall, "cpu": cpu, "instr": instr, "json": last_json(out)}

    def wipe(self, method, verify="off"):
        return self.lethe_run(["wipe", self.device, "--method", method, "--verify", verify, "--yes", "--json"],
                              lambda d: d["passes"][0]["throughputBytesPerSecond"])

    def bracket(self, name, rw, run):
        before = self.fio(rw)
        mine = run()
        after = self.fio(rw)
        for key in ("rate", "process"):
            self.add(f"{name}.{key}", mine[key])
            self.add(f"{name}.{key}_ratio", mine[key] / ((before["rate"] + after["rate"]) / 2))
        self.add(f"{name}.cpu", mine["cpu"] / (self.size / GIB))
        self.add(f"fio_{rw}.cpu", before["cpu"] / (self.size / GIB))
        self.add(f"fio_{rw}.cpu", after["cpu"] / (self.size / GIB))
        self.add(f"fio_{rw}.rate", before["rate"])
        self.add(f"fio_{rw}.rate", after["rate"])
        if mine["instr"] is not None and before["instr"] is not None:
            self.add(f"{name}.instr", mine["instr"] / (self.size / GIB))
            self.add(f"fio_{rw}.instr", before["instr"] / (self.size / GIB))
        return mine

    def median(self, key):
        values = self.samples.get(key)
        return statistics.median(values) if values else None


def openssl_ctr_bytes_per_second():
    """`openssl speed -evp aes-128-ctr` on 16 KiB blocks, one core: bytes per second."""
    out = subprocess.run(["openssl", "speed", "-seconds", "2", "-bytes", "16384", "-evp", "aes-128-ctr"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.lower().startswith("aes-128-ctr"):
            return float(line.split()[-1].rstrip("k")) * 1000
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lethe", required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--label", default="")
    parser.add_argument("--alternatives", action="store_true", help="also time nwipe and shred (slow)")
    args = parser.parse_args()
    size = int(subprocess.run(["blockdev", "--getsize64", args.device], capture_output=True, text=True).stdout)
    bench = Bench(args.lethe, args.device, size)

    for round_ in range(1, args.rounds + 1):
        print(f"round {round_}/{args.rounds}", file=sys.stderr)
        bench.bracket("zero", "write", lambda: bench.wipe("zero"))
        bench.bracket("random", "write", lambda: bench.wipe("random"))
        measured([args.lethe, "wipe", args.device, "--method", "zero", "--verify", "off", "--yes"])
        bench.bracket("verify_zero", "read", lambda: bench.lethe_run(
            ["verify", args.device, "--expect", "zero", "--json"], lambda d: d["bytesVerified"] / d["seconds"]))
        # The random pass's verification alone: its own figure for the rate, and for CPU the
        # process with verification less the same pass without it, run just before.
        plain = bench.wipe("random")
        checked = bench.bracket("verify_random", "read", lambda: bench.lethe_run(
            ["wipe", args.device, "--method", "random", "--verify", "last", "--yes", "--json"],
            lambda d: d["verification"]["bytesVerified"] / d["verification"]["seconds"]))
        bench.samples["verify_random.cpu"][-1] = max(0.0, checked["cpu"] - plain["cpu"]) / (size / GIB)
        if checked["instr"] is not None and plain["instr"] is not None:
            bench.samples["verify_random.instr"][-1] = max(0, checked["instr"] - plain["instr"]) / (size / GIB)
        # The process ratio of a write+verify run is not a verification figure.
        bench.samples["verify_random.process_ratio"].pop()

    keystream = openssl_ctr_bytes_per_second()
    prng = json.loads(subprocess.run([args.lethe, "bench", "prng", "--seconds", "2", "--json"], capture_output=True, text=True).stdout)
    alternatives = {}
    if args.alternatives:
        for name, cmd in [
            ("nwipe zero", ["nwipe", "--autonuke", "--nogui", "--nowait", "--noblank", "--verify=off", "--method=zero", args.device]),
            ("nwipe random", ["nwipe", "--autonuke", "--nogui", "--nowait", "--noblank", "--verify=off", "--method=random", args.device]),
            ("shred -z", ["shred", "-n", "0", "-z", args.device]),
            ("shred -n1", ["shred", "-n", "1", args.device]),
        ]:
            wall, _, _, _ = measured(cmd)
            alternatives[name] = size / wall

    m = bench.median
    cores = os.cpu_count()
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print()
    print(f"Lethe wipe benchmark{(' (' + args.label + ')') if args.label else ''}: {size / GIB:.1f} GiB, {args.rounds} rounds, medians;"
          f" ratios to the mean of the fio runs just before and after")
    print(f"machine: {cores} cores, {model}, kernel {os.uname().release}; instructions: {'perf stat' if PERF else 'not counted (no PMU)'}")
    print(f"{'measure':<22} {'MB/s':>8} {'÷fio pass':>10} {'÷fio proc':>10} {'CPU s/GiB':>10} {'fio CPU':>8} {'CPU ÷fio':>9} {'Ginstr/GiB':>11} {'fio Gi/GiB':>11}")
    rows = [("zero pass", "zero", "write"), ("random pass", "random", "write"),
            ("verify (zero)", "verify_zero", "read"), ("verify (random)", "verify_random", "read")]
    results = {}
    for label, key, rw in rows:
        cpu, fio_cpu = m(f"{key}.cpu"), m(f"fio_{rw}.cpu")
        instr, fio_instr = m(f"{key}.instr"), m(f"fio_{rw}.instr")
        results[key] = {"pass": m(f"{key}.rate_ratio"), "process": m(f"{key}.process_ratio"), "cpu": cpu, "fio_cpu": fio_cpu}
        print(f"{label:<22} {m(f'{key}.rate') / 1e6:>8.0f} {m(f'{key}.rate_ratio'):>10.2f} "
              f"{(m(f'{key}.process_ratio') or float('nan')):>10.2f} {cpu:>10.3f} {fio_cpu:>8.3f} {cpu / fio_cpu:>9.2f} "
              f"{(instr or float('nan')) / 1e9:>11.2f} {(fio_instr or float('nan')) / 1e9:>11.2f}")
    print(f"{'fio write':<22} {m('fio_write.rate') / 1e6:>8.0f}")
    print(f"{'fio read':<22} {m('fio_read.rate') / 1e6:>8.0f}")
    keystream_cpu = GIB / keystream if keystream else None
    if keystream:
        print(f"openssl speed -evp aes-128-ctr (16 KiB, one core): {keystream / 1e9:.2f} GB/s = {keystream_cpu:.3f} CPU s/GiB")
    print(f"lethe bench prng (AES-128-CTR keystream, one core): {prng['prngGBPerSecondPerCore']:.2f} GB/s")
    for name, rate in alternatives.items():
        lethe_rate = m("zero.rate") if "zero" in name or "-z" in name else m("random.rate")
        print(f"lethe ÷ {name}: {lethe_rate / rate:.1f}x ({name} {rate / 1e6:.0f} MB/s)")

    goals = [
        ("zero pass ≥ 0.95× fio (pass and process)", min(results["zero"]["pass"], results["zero"]["process"]) >= 0.95),
        ("random pass ≥ 0.95× fio (pass and process)", min(results["random"]["pass"], results["random"]["process"]) >= 0.95),
        ("verify (zero) ≥ 0.95× fio (pass and process)", min(results["verify_zero"]["pass"], results["verify_zero"]["process"]) >= 0.95),
        ("verify (random) ≥ 0.95× fio (pass)", results["verify_random"]["pass"] >= 0.95),
        ("zero CPU ≤ 1.2× fio", results["zero"]["cpu"] <= 1.2 * results["zero"]["fio_cpu"]),
        ("verify (zero) CPU ≤ 1.2× fio", results["verify_zero"]["cpu"] <= 1.2 * results["verify_zero"]["fio_cpu"]),
        ("verify (random) CPU ≤ 1.2× fio + keystream", keystream_cpu is not None
         and results["verify_random"]["cpu"] <= 1.2 * results["verify_random"]["fio_cpu"] + keystream_cpu),
        ("random CPU ≤ fio + keystream", keystream_cpu is not None and results["random"]["cpu"] <= results["random"]["fio_cpu"] + keystream_cpu),
    ]
    failed = [name for name, ok in goals if not ok]
    for name, ok in goals:
        print(f"{'met    ' if ok else 'NOT MET'} {name}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
