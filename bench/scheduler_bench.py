#!/usr/bin/env python3
"""Issue 19's benchmark: what interrupt mode with the dynamic scheduler saves in CPU and costs in
IOPS and latency, against poll mode, through pollux-perf. Four measurements (--sections):

cpu: CPU against load. A null bdev and a uring file bdev (a 1 GiB file of zeroes, O_DIRECT),
two reactors (--cpus 0-1, one job per core), 4 KiB randread at depth 32. First the peak in poll
mode (no --rate, median over the rounds); then for each load f of 1 %, 10 %, 50 % and 100 % of
it, mode A (--mode poll --scheduler static) and mode B (--mode interrupt --scheduler dynamic),
with --rate f x peak per job (100 %: no --rate), alternating A and B run by run, medians over
--rounds. The CPU is pollux-perf's own figure (cpu_percent: the process's utime + stime over
the measured window, in % of one core), after --ramp seconds (the dynamic scheduler sees a
thread's load from its second period on, 1 s by default). Goal: CPU B <= f x CPU A + 2 % of a
core; at 100 %: IOPS B >= 0.97 x IOPS A.

latency: the price of sleeping. The same bdevs and cores at depth 1, paced at 10 % of the
depth-1 peak (poll mode, no --rate): p50 and p99 of A and B. Goal: p50 B <= 1.2 x p50 A.

idle: one busy bdev beside 99 idle ones with channels on the same thread. 100 uring bdevs on
64 MiB sparse files; one job on the first (-b), one core (--cpu), depth 32, interrupt mode,
without and with --idle-channels (the job thread then holds a channel, and its poller with its
wake fd, on each of the 99 others), alternating. After --ramp-time 9 the idle pollers are
parked (7 s without work): goal IOPS with / without >= 0.95. The same ratio with no ramp time
(the idle pollers still polled) is printed for information.

stall: two threads on one reactor (--thread-per-job, one core): a depth-1 job on a malloc bdev
alone, then beside a depth-1 job on the uring file (whose depth-1 inline path must not block
the reactor while the malloc job has work), in poll and interrupt mode; the malloc job's p50
and p99. Both jobs run at depth 1 (pollux-perf gives every job the same depth). No goal:
information.

Every command is printed the first time it runs, and every config it writes is described where
it is written (the workspace on /dev/shm goes at the end), so that docs can quote them; each
run reports how much CPU other processes
took from the measured cores (flagged CONTENDED above 10 % of a core). A summary of issue 19's
goals ends the output; with --json, one JSON document follows it.
"""
import argparse
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile

import vhost_common
from vhost_common import (ROOT, Report, alternate, binary, fail, fmt, make_tmpfs_image, ratio,
                          run_perf, write_json)

SECTIONS = ("cpu", "latency", "idle", "stall")
FRACTIONS = (0.01, 0.10, 0.50, 1.00)
MODES = {"A": ["--mode", "poll", "--scheduler", "static"],
         "B": ["--mode", "interrupt", "--scheduler", "dynamic"]}
# Issue 19's goals.
GOAL_CPU_SLACK_PCT = 2.0
GOAL_FULL_LOAD_IOPS = 0.97
GOAL_P50_RATIO = 1.2
GOAL_BUSY_RATIO = 0.95
LATENCY_FRACTION = 0.10
# Pollers idle this long are parked (ReactorRuntimeOptions::park_after is 7 s): the busy/idle
# case measures after it.
PARK_RAMP_S = 9
IDLE_BDEVS = 99
SMALL_FILE_BYTES = 64 << 20
BIG_FILE_BYTES = 1 << 30


class Bench:
    """The run's workspace, its configs, and every pollux-perf run, its command printed once."""

    def __init__(self, args):
        self.args = args
        self.ws = tempfile.mkdtemp(prefix="pollux-scheduler-bench-", dir="/dev/shm")
        self.printed = set()
        self.report = Report("issue 19's goals")
        self.commands = []

    def path(self, name):
        return os.path.join(self.ws, name)

    def config(self, name, bdevs, describe):
        """Writes NAME.json creating `bdevs` [(method, params)]; prints what it holds."""
        path = self.path(name + ".json")
        write_json(path, {"subsystems": [{"subsystem": "bdev", "config": [
            {"method": m, "params": p} for m, p in bdevs]}]})
        print("config %s: %s" % (path, describe), flush=True)
        return path

    def show(self, cmd):
        text = shlex.join(cmd)
        if text not in self.printed:
            self.printed.add(text)
            self.commands.append(text)
            print("$ " + text, flush=True)

    def perf(self, config, qd, cpus, extra, whole_report=False):
        """One run: (report total or whole report, contention window)."""
        cores = cpu_list(cpus)
        total, window = run_perf(config, qd, self.args.time, cpus, self.path("perf.rpc"),
                                 measured_cpus=cores, extra=extra, perf_bin=self.args.perf,
                                 on_command=self.show, whole_report=whole_report)
        return total, window["contention"]


def cpu_list(text):
    """"0-1" / "0,2" / "1" -> [0, 1] / [0, 2] / [1]."""
    cores = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cores += list(range(int(lo), int(hi or lo) + 1))
    return cores


def figures(total, contention):
    return {"iops": total["iops"], "p50": total["latency_us"]["p50"],
            "p99": total["latency_us"]["p99"], "cpu_pct": total.get("cpu_percent"),
            "contention": contention}


def uring(name, filename):
    return "bdev_uring_create", {"name": name, "filename": filename, "direct": True}


def make_sparse(path, size):
    with open(path, "ab") as f:
        f.truncate(size)


# ---- cpu and latency: mode A against mode B at a share of the peak ----

def run_mode(bench, config, qd, mode, rate):
    args = bench.args
    extra = MODES[mode] + ["--ramp-time", str(args.ramp)]
    if rate is not None:
        extra += ["--rate", str(rate)]
    return figures(*bench.perf(config, qd, args.cpus, extra))


def peak_per_job(bench, config, qd, what):
    """The peak of mode A without --rate, median over the rounds, per job (one per core)."""
    rows = []
    for r in range(bench.args.rounds):
        row = run_mode(bench, config, qd, "A", None)
        bench.report.windows.append(row["contention"])
        rows.append(row)
        print("round %d %s peak, poll mode, depth %d: %.0f IOPS, CPU %s%%"
              % (r + 1, what, qd, row["iops"], fmt(row["cpu_pct"], "%.1f")), flush=True)
    peak = statistics.median(row["iops"] for row in rows)
    return peak / len(cpu_list(bench.args.cpus)), peak


def describe_mode(what):
    return lambda r, mode, row: (
        "round %d %s mode %s: %10.0f IOPS  p50 %8.2f us  p99 %8.2f us  CPU %s%% of a core"
        % (r, what, mode, row["iops"], row["p50"], row["p99"], fmt(row["cpu_pct"], "%.1f")))


def cpu_against_load(bench, kind, config):
    per_job, peak = peak_per_job(bench, config, 32, kind)
    print("%s peak (poll mode, depth 32, %d jobs): %.0f IOPS, %.0f per job"
          % (kind, len(cpu_list(bench.args.cpus)), peak, per_job), flush=True)
    rows = []
    for f in FRACTIONS:
        rate = None if f >= 1 else max(1, round(f * per_job))
        med = alternate(bench.args, bench.report, [["A", "B"]],
                        lambda mode: run_mode(bench, config, 32, mode, rate),
                        describe_mode("%s %3.0f%%" % (kind, f * 100)))
        a, b = med["A"], med["B"]
        if f < 1:
            limit = f * a.get("cpu_pct", 0) + GOAL_CPU_SLACK_PCT
            met = b.get("cpu_pct") is not None and b["cpu_pct"] <= limit
            goal = "CPU B <= %.1f%%" % limit
            value, spec = b.get("cpu_pct"), "%.1f%%"
        else:
            met = b["iops"] >= GOAL_FULL_LOAD_IOPS * a["iops"]
            goal = "IOPS B >= %.2fx A" % GOAL_FULL_LOAD_IOPS
            value, spec = ratio(b["iops"], a["iops"]), "%.2fx"
        rows.append({"fraction": f, "rate_per_job": rate, "A": a, "B": b, "goal": goal,
                     "met": met})
        bench.report.add("%s, %3.0f%% of peak: %s" % (kind, f * 100,
                                                      "CPU B" if f < 1 else "IOPS B / A"),
                         value, spec, goal, met)
    print("\n%s, CPU against load (depth 32, --cpus %s; A: poll, static; B: interrupt, dynamic; "
          "medians over %d rounds)" % (kind, bench.args.cpus, bench.args.rounds))
    print("  %-6s %10s %12s %12s %8s %8s  %-18s %s" % ("load", "rate/job", "IOPS A", "IOPS B",
                                                      "CPU A", "CPU B", "goal", "met"))
    for row in rows:
        print("  %5.0f%% %10s %12.0f %12.0f %7s%% %7s%%  %-18s %s"
              % (row["fraction"] * 100, row["rate_per_job"] or "none", row["A"]["iops"],
                 row["B"]["iops"], fmt(row["A"].get("cpu_pct"), "%.1f"),
                 fmt(row["B"].get("cpu_pct"), "%.1f"), row["goal"],
                 "met" if row["met"] else "NOT MET"))
    print(flush=True)
    bench.report.results.setdefault("cpu", {})[kind] = {"peak_iops": peak, "rows": rows}


def latency_price(bench, kind, config):
    per_job, peak = peak_per_job(bench, config, 1, kind + " depth-1")
    rate = max(1, round(LATENCY_FRACTION * per_job))
    med = alternate(bench.args, bench.report, [["A", "B"]],
                    lambda mode: run_mode(bench, config, 1, mode, rate),
                    describe_mode("%s depth 1 at %.0f%%" % (kind, LATENCY_FRACTION * 100)))
    a, b = med["A"], med["B"]
    p50_ratio = ratio(b["p50"], a["p50"])
    print("\n%s, depth 1 at %.0f%% of its %.0f IOPS peak (%d per job): p50 A %.2f us, B %.2f us "
          "(%.2fx); p99 A %.2f us, B %.2f us; CPU A %s%%, B %s%%\n"
          % (kind, LATENCY_FRACTION * 100, peak, rate, a["p50"], b["p50"], p50_ratio, a["p99"],
             b["p99"], fmt(a.get("cpu_pct"), "%.1f"), fmt(b.get("cpu_pct"), "%.1f")),
          flush=True)
    bench.report.results.setdefault("latency", {})[kind] = {
        "peak_iops": peak, "rate_per_job": rate, "A": a, "B": b, "p50_ratio": p50_ratio}
    bench.report.add("%s depth 1 at 10%%: p50 B / A" % kind, p50_ratio, "%.2fx",
                     "<= %.1fx" % GOAL_P50_RATIO, p50_ratio is not None and
                     p50_ratio <= GOAL_P50_RATIO)


# ---- idle: one busy bdev beside 99 idle ones ----

def busy_beside_idle(bench):
    args = bench.args
    os.makedirs(args.files_dir, exist_ok=True)
    bdevs = []
    for i in range(IDLE_BDEVS + 1):
        path = os.path.join(args.files_dir, "file%02d.img" % i)
        make_sparse(path, SMALL_FILE_BYTES)
        bdevs.append(uring("File%02d" % i, path))
    config = bench.config("idle", bdevs, "%d x bdev_uring_create (direct) on %d MiB sparse files "
                          "in %s" % (len(bdevs), SMALL_FILE_BYTES >> 20, args.files_dir))

    def run(key):
        variant, ramp = key.split("/")
        extra = ["--mode", "interrupt", "-b", "File00", "--ramp-time", ramp]
        if variant == "beside":
            extra.append("--idle-channels")
        total, contention = bench.perf(config, 32, str(args.cpu), extra, whole_report=True)
        row = figures(total["total"], contention)
        row["idle_channels"] = total.get("idle_channels", 0)
        return row

    parked, polled = "%d" % PARK_RAMP_S, "0"
    med = alternate(args, bench.report, [["alone/" + parked, "beside/" + parked],
                                         ["alone/" + polled, "beside/" + polled]], run,
                    lambda r, key, row: "round %d busy bdev %-8s (ramp %s s) %10.0f IOPS  p50 "
                    "%7.2f us  p99 %7.2f us  CPU %s%%  idle channels %d"
                    % (r, key.split("/")[0], key.split("/")[1], row["iops"], row["p50"],
                       row["p99"], fmt(row["cpu_pct"], "%.1f"), row["idle_channels"]))
    after = ratio(med["beside/" + parked]["iops"], med["alone/" + parked]["iops"])
    before = ratio(med["beside/" + polled]["iops"], med["alone/" + polled]["iops"])
    print("\nbusy bdev beside %d idle channels / alone (depth 32, core %d, interrupt mode, "
          "medians over %d rounds): %.3fx after a %s s ramp (idle pollers parked), %.3fx with no "
          "ramp (still polled)\n" % (IDLE_BDEVS, args.cpu, args.rounds, after, parked, before),
          flush=True)
    bench.report.results["idle"] = {"medians": med, "ratio_parked": after,
                                    "ratio_unparked": before}
    bench.report.add("busy beside %d idle / alone, IOPS (parked)" % IDLE_BDEVS, after, "%.3fx",
                     ">= %.2fx" % GOAL_BUSY_RATIO, after is not None and after >= GOAL_BUSY_RATIO)
    bench.report.add("  the same with no ramp (not parked)", before, "%.3fx", "information",
                     None)


# ---- stall: a malloc job beside a depth-1 file job on one reactor ----

def inline_stall(bench, file_path):
    args = bench.args
    config = bench.config("stall", [uring("File0", file_path),
                                    ("bdev_malloc_create",
                                     {"name": "Malloc0", "num_blocks": 131072,
                                      "block_size": 512})],
                          "File0 (bdev_uring_create, direct, on %s) and Malloc0 (64 MiB)"
                          % file_path)

    def run(key):
        variant, mode = key.split("/")
        targets = "Malloc0" if variant == "alone" else "File0,Malloc0"
        report, contention = bench.perf(config, 1, str(args.cpu),
                                        ["--mode", mode, "--thread-per-job", "-b", targets],
                                        whole_report=True)
        malloc = next(j for j in report["jobs"] if j["bdev"] == "Malloc0")
        row = {"malloc_iops": malloc["iops"], "malloc_p50": malloc["latency_us"]["p50"],
               "malloc_p99": malloc["latency_us"]["p99"], "contention": contention}
        for job in report["jobs"]:
            if job["bdev"] == "File0":
                row.update({"file_iops": job["iops"], "file_p50": job["latency_us"]["p50"]})
        return row

    groups = [["alone/" + m, "beside/" + m] for m in ("poll", "interrupt")]
    med = alternate(args, bench.report, groups, run,
                    lambda r, key, row: "round %d malloc job %-6s (%s mode): %10.0f IOPS  p50 "
                    "%7.2f us  p99 %7.2f us%s"
                    % (r, key.split("/")[0], key.split("/")[1], row["malloc_iops"],
                       row["malloc_p50"], row["malloc_p99"],
                       "; file job %.0f IOPS p50 %.2f us" % (row["file_iops"], row["file_p50"])
                       if "file_iops" in row else ""))
    print("\nmalloc job at depth 1 on core %d, alone and beside a depth-1 uring file job "
          "(--thread-per-job; medians over %d rounds):" % (args.cpu, args.rounds))
    for mode in ("poll", "interrupt"):
        a, b = med["alone/" + mode], med["beside/" + mode]
        print("  %-9s p50 %7.2f -> %7.2f us, p99 %7.2f -> %7.2f us, IOPS %.0f -> %.0f"
              % (mode, a["malloc_p50"], b["malloc_p50"], a["malloc_p99"], b["malloc_p99"],
                 a["malloc_iops"], b["malloc_iops"]))
        bench.report.add("malloc p99 beside the file job / alone, %s" % mode,
                         ratio(b["malloc_p99"], a["malloc_p99"]), "%.2fx", "information", None)
    print(flush=True)
    bench.report.results["stall"] = med


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help="which measurements, of %s (default: all)" % ", ".join(SECTIONS))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--time", type=int, default=5, help="pollux-perf's -t (the measured window)")
    p.add_argument("--ramp", type=int, default=3,
                   help="--ramp-time of the cpu and latency runs (the scheduler settles)")
    p.add_argument("--cpus", default="0-1", help="the cores of the cpu and latency runs")
    p.add_argument("--cpu", type=int, default=1, help="the core of the idle and stall runs")
    p.add_argument("--build", default=os.path.join(ROOT, "build"),
                   help="the build directory holding pollux-perf and pollux-rpc")
    p.add_argument("--perf", help="pollux-perf (default: BUILD/apps/pollux-perf/pollux-perf)")
    p.add_argument("--file", default="/var/tmp/pollux-sched-bench.img",
                   help="the uring bdev's 1 GiB file (written with zeroes once)")
    p.add_argument("--files-dir", default="/var/tmp/pollux-sched-bench-files",
                   help="the 100 sparse 64 MiB files of the idle measurement")
    p.add_argument("--json", action="store_true", help="also print every figure as JSON")
    args = p.parse_args()
    sections = args.sections.split(",")
    for s in sections:
        if s not in SECTIONS:
            fail("--sections: unknown section %r (known: %s)" % (s, ", ".join(SECTIONS)))
    if args.rounds < 1 or args.time < 2:
        fail("--rounds must be at least 1 and --time at least 2 (contention is measured from "
             "0.5 s to 1 s before the end)")
    vhost_common.BUILD = args.build
    args.perf = args.perf or binary("pollux-perf")
    for program in (args.perf, binary("pollux-rpc")):
        if not os.access(program, os.X_OK):
            fail("%s is missing: ninja -C %s pollux-perf pollux-rpc" % (program, args.build))

    bench = Bench(args)
    print("workspace %s; pollux-perf %s" % (bench.ws, args.perf), flush=True)
    try:
        if "cpu" in sections or "latency" in sections or "stall" in sections:
            make_tmpfs_image(args.file, BIG_FILE_BYTES)
        configs = {}
        if "cpu" in sections or "latency" in sections:
            configs["null"] = bench.config("null", [("bdev_null_create", {
                "name": "Null0", "num_blocks": 8 << 20, "block_size": 512})], "Null0 (4 GiB)")
            configs["uring"] = bench.config("uring", [uring("File0", args.file)],
                                            "File0 (bdev_uring_create, direct, on %s)" % args.file)
        if "cpu" in sections:
            for kind in ("null", "uring"):
                cpu_against_load(bench, kind, configs[kind])
        if "latency" in sections:
            for kind in ("null", "uring"):
                latency_price(bench, kind, configs[kind])
        if "idle" in sections:
            busy_beside_idle(bench)
        if "stall" in sections:
            inline_stall(bench, args.file)
    except (RuntimeError, KeyError) as e:
        fail(str(e))
    finally:
        shutil.rmtree(bench.ws, ignore_errors=True)
    bench.report.print_summary()
    if args.json:
        print(json.dumps({"results": bench.report.results, "summary": bench.report.rows,
                          "commands": bench.commands, "contention": bench.report.contention}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
