#!/usr/bin/env python3
"""Issue 4's benchmark: pollux's file engines (uring, aio, threadpool) beside fio, same file,
same core, same workload, run alternately, medians over rounds.

    bench/file_bench.py [--perf build/apps/pollux-perf/pollux-perf] [--file /var/tmp/pollux-bench.img]
                        [--size 2G] [--rounds 3] [--time 5] [--cases qd32,qd1,...]
                        [--engines uring,aio,threadpool] [--json OUT] [--buffered]

For every case and round it runs pollux-perf (one reactor on --cpu, O_DIRECT) and the fio peer
(pinned to the same core: pollux runs every thread there, the thread pool's workers included,
since they inherit the reactors' cores), alternating which goes first, and prints per case:
IOPS, p50 and p99 latency, and CPU microseconds per I/O for both, with pollux / fio ratios.

CPU per I/O is measured the same way for both, by a sampler that reads every 100 ms, while the
run goes on: the process's utime+stime (every thread; fio runs with --thread so its jobs are
threads of one process), the machine's busy time (all cores, wall time minus idle, iowait and
steal: this counts interrupts and kernel threads wherever they ran, which the process's own
figure misses when an interrupt lands on an idle core) and the bytes the file's block device has
moved (/sys/dev/block/M:m/stat). The window is steady state on the device's own counters: from
1 s after the device first moved to 0.3 s before it last moved, so start-up, ramp and exit are
out of it for both. I/O in the window = bytes moved / I/O size (the block layer may merge or
split requests, so its request count is not the application's). "proc" and "machine" columns
are both printed. pollux runs in both modes: interrupt (pollux-tgt's default; idle with I/O in
flight, the reactor spins or sleeps at once by what it measured to be faster, see
reactor/device_wait_policy.h) and poll (always spinning); both are printed, each with its ratio
to fio.

--buffered runs both sides without O_DIRECT. On a tmpfs file (`--file /dev/shm/x --size 256M
--buffered --cases qd1,qd8,qd32`) every read is a ~1.4 us page copy, so the figures are the
software's own cost per request with the disk out of the picture: the depth-1 inline path
against psync (the synchronous floor), the engines at depth 8 and 32 against fio's. A file on
no block device has no device counters, so the CPU columns print "-" there.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")

# name: (pollux-perf workload, io size, depth, [(engine, fio ioengine, fio extra args)])
CASES = {
    "qd32": ("randread", "4k", 32,
             [("uring", "io_uring", []), ("aio", "libaio", []), ("threadpool", "psync", ["--numjobs=4"])]),
    "qd1": ("randread", "4k", 1,
            [("uring", "psync", []), ("aio", "psync", []), ("threadpool", "psync", []),
             ("uring", "io_uring", [])]),
    "adaptive": ("randread", "4k", None, [("uring", "io_uring", [])]),  # depth 1, 2, 4, 32
    "randwrite": ("randwrite", "4k", 8,
                  [("uring", "io_uring", []), ("aio", "libaio", []), ("threadpool", "psync", ["--numjobs=4"])]),
    "qd8": ("randread", "4k", 8,
            [("uring", "io_uring", []), ("aio", "libaio", []), ("threadpool", "psync", ["--numjobs=4"])]),
    "seqread128k": ("read", "128k", 8,
                    [("uring", "io_uring", []), ("aio", "libaio", []), ("threadpool", "psync", ["--numjobs=4"])]),
}


def parse_size(text):
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(text[:-1]) * units[text[-1].lower()] if text[-1].lower() in units else int(text)


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (all threads)


def machine_busy_seconds():
    """All cores' time not idle, in iowait or stolen by the host, since boot."""
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
    return (sum(cpu[:8]) - cpu[3] - cpu[4] - cpu[7]) / CLK_TCK


def device_stat_path(path):
    """The block device's counters, or None for a file on no block device (tmpfs)."""
    dev = os.stat(path).st_dev
    stat_path = f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}/stat"
    return stat_path if os.path.exists(stat_path) else None


def device_bytes(stat_path):
    if stat_path is None:
        return 0
    with open(stat_path) as f:
        fields = [int(x) for x in f.read().split()]
    return (fields[2] + fields[6]) * 512  # sectors read + sectors written


class CpuSampler:
    """Samples (time, process CPU, machine busy, device bytes) every 100 ms while pid lives."""

    def __init__(self, pid, stat_path):
        self.pid, self.stat_path, self.samples = pid, stat_path, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                self.samples.append((time.monotonic(), proc_cpu_seconds(self.pid),
                                     machine_busy_seconds(), device_bytes(self.stat_path)))
            except OSError:
                return  # the process has gone
            self.stop.wait(0.1)

    def finish(self, io_bytes):
        """CPU us per I/O (process, machine) over the steady window, and the window's IOPS."""
        self.stop.set()
        self.thread.join()
        s = self.samples
        moved = [i for i in range(1, len(s)) if s[i][3] > s[i - 1][3]]
        if not moved:
            return None, None, None
        t_first, t_last = s[moved[0] - 1][0], s[moved[-1]][0]
        window = [x for x in s if t_first + 1.0 <= x[0] <= t_last - 0.3]
        if len(window) < 2:
            return None, None, None
        a, b = window[0], window[-1]
        ios = (b[3] - a[3]) / io_bytes
        if ios <= 0:
            return None, None, None
        return ((b[1] - a[1]) * 1e6 / ios, (b[2] - a[2]) * 1e6 / ios, ios / (b[0] - a[0]))


def ensure_file(path, size, direct):
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    print(f"writing {size >> 20} MiB of data to {path} (reads of unwritten extents would not "
          "touch the disk)", file=sys.stderr)
    subprocess.run(["fio", "--name=fill", f"--filename={path}", f"--size={size}", "--rw=write",
                    "--bs=1M", f"--direct={int(direct)}", "--ioengine=psync", "--output-format=terse"],
                   check=True, stdout=subprocess.DEVNULL)


def measured(result, sampler, io_size):
    proc_us, machine_us, window_iops = sampler.finish(parse_size(io_size))
    result.update({"cpu_us_per_io": proc_us, "machine_us_per_io": machine_us,
                   "window_iops": window_iops})
    return result


def run_pollux(args, engine, workload, io_size, depth, mode):
    config = {"subsystems": [{"subsystem": "bdev", "config": [{
        "method": f"bdev_{engine}_create",
        "params": {"name": "File0", "filename": args.file, "direct": not args.buffered}}]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
        config_path = f.name
    cmd = [args.perf, "-c", config_path, "-q", str(depth), "-o", io_size, "-w", workload,
           "-t", str(args.time), "--cpus", str(args.cpu), "--json", "--mode", mode]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    sampler = CpuSampler(proc.pid, args.device_stat)
    out = proc.stdout.read()
    proc.wait()
    os.unlink(config_path)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode})")
    total = json.loads(out)["total"]
    return measured({"iops": total["iops"], "p50_us": total["latency_us"]["p50"],
                     "p99_us": total["latency_us"]["p99"],
                     "p99_9_us": total["latency_us"]["p99_9"]}, sampler, io_size)


def run_fio(args, ioengine, extra, workload, io_size, depth):
    # --thread: the jobs are threads of one process, so the sampler sees all of their CPU.
    cmd = ["fio", "--name=peer", f"--filename={args.file}", f"--size={args.size}",
           f"--rw={workload}", f"--bs={io_size}", f"--iodepth={depth}", f"--ioengine={ioengine}",
           f"--direct={int(not args.buffered)}", "--time_based", f"--runtime={args.time}", "--ramp_time=1", "--thread",
           "--lat_percentiles=1", "--group_reporting", "--output-format=json"] + extra
    cmd.append(f"--cpus_allowed={args.cpu}")
    if ioengine == "psync":
        cmd = [c for c in cmd if not c.startswith("--iodepth")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    sampler = CpuSampler(proc.pid, args.device_stat)
    out = proc.stdout.read()
    proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode})")
    job = json.loads(out[out.index("{"):])["jobs"][0]
    side = job["write"] if workload in ("randwrite", "write") else job["read"]
    pct = side["lat_ns"].get("percentile", {})
    return measured({"iops": side["iops"], "p50_us": pct.get("50.000000", 0) / 1000.0,
                     "p99_us": pct.get("99.000000", 0) / 1000.0,
                     "p99_9_us": pct.get("99.900000", 0) / 1000.0}, sampler, io_size)


FIGURES = ("iops", "p50_us", "p99_us", "p99_9_us", "cpu_us_per_io", "machine_us_per_io",
           "window_iops")


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec="%.1f"):
    return "-" if v is None else spec % v


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--perf", default="build/apps/pollux-perf/pollux-perf")
    p.add_argument("--file", default="/var/tmp/pollux-bench.img")
    p.add_argument("--size", default="2G")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--time", type=int, default=5)
    p.add_argument("--cpu", type=int, default=1)
    # qd8 (randread at depth 8) is for --buffered runs; the O_DIRECT goals do not name it.
    p.add_argument("--cases", default=",".join(c for c in CASES if c != "qd8"))
    p.add_argument("--engines", default="uring,aio,threadpool",
                   help="only the pairs of these pollux engines")
    p.add_argument("--json", help="also write every figure to this file")
    p.add_argument("--buffered", action="store_true",
                   help="buffered I/O (pollux direct: false, fio --direct=0) instead of O_DIRECT")
    args = p.parse_args()
    ensure_file(args.file, parse_size(args.size), direct=not args.buffered)
    args.device_stat = device_stat_path(args.file)

    results = []
    for case in args.cases.split(","):
        workload, io_size, depth, pairs = CASES[case]
        depths = [1, 2, 4, 32] if depth is None else [depth]
        for d in depths:
            for engine, ioengine, extra in pairs:
                if engine not in args.engines.split(","):
                    continue
                rows = {"poll": [], "interrupt": [], "fio": []}
                for r in range(args.rounds):
                    order = ["pollux", "fio"] if r % 2 == 0 else ["fio", "pollux"]
                    for who in order:
                        if who == "fio":
                            rows["fio"].append(run_fio(args, ioengine, extra, workload, io_size,
                                                       d))
                        else:
                            rows["poll"].append(run_pollux(args, engine, workload, io_size, d, "poll"))
                            rows["interrupt"].append(
                                run_pollux(args, engine, workload, io_size, d, "interrupt"))
                m = {k: {f: median([x[f] for x in v]) for f in FIGURES}
                     for k, v in rows.items()}
                entry = {"case": case, "workload": workload, "io_size": io_size, "depth": d,
                         "engine": engine, "fio_ioengine": ioengine + "".join(extra),
                         "median": m, "rounds": rows}
                results.append(entry)
                def cpu(mode, field):
                    ours, theirs = m[mode][field], m["fio"][field]
                    ratio = f" ({ours / theirs:.2f}x)" if ours and theirs else ""
                    return fmt(ours, "%.2f") + ratio

                def ratio(mode):
                    fio_iops = m["fio"]["iops"]
                    return m[mode]["iops"] / fio_iops if fio_iops and m[mode]["iops"] else None
                print(f"{case:11s} {workload:9s} {io_size:>4s} qd{d:<3d} {engine:10s} vs fio "
                      f"{ioengine + ''.join(extra):18s} IOPS intr {fmt(m['interrupt']['iops'], '%.0f')} "
                      f"poll {fmt(m['poll']['iops'], '%.0f')} vs {fmt(m['fio']['iops'], '%.0f')}"
                      f" = {fmt(ratio('interrupt'), '%.2f')} / {fmt(ratio('poll'), '%.2f')}; "
                      f"p50 {fmt(m['interrupt']['p50_us'])} / {fmt(m['poll']['p50_us'])} vs "
                      f"{fmt(m['fio']['p50_us'])} us; p99 {fmt(m['interrupt']['p99_us'])} / "
                      f"{fmt(m['poll']['p99_us'])} vs {fmt(m['fio']['p99_us'])} us; "
                      f"CPU us/IO proc intr {cpu('interrupt', 'cpu_us_per_io')}"
                      f" poll {cpu('poll', 'cpu_us_per_io')} vs fio "
                      f"{fmt(m['fio']['cpu_us_per_io'], '%.2f')}; machine intr "
                      f"{cpu('interrupt', 'machine_us_per_io')} poll "
                      f"{cpu('poll', 'machine_us_per_io')} vs fio "
                      f"{fmt(m['fio']['machine_us_per_io'], '%.2f')}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
