#!/usr/bin/env python3
"""Draws the pictures of docs/performance.md from the benchmarks' JSON output (Debian's
python3-matplotlib). Each input is optional; each given one becomes one PNG in --out:

  --scheduler FILE  bench/scheduler_bench.py --sections cpu --json > FILE (its JSON document is
                    the last line of the output; the text before it is skipped)
                    -> cpu-vs-load.png: CPU against load, poll mode (A) and interrupt mode with
                    the dynamic scheduler (B), per bdev, with issue 19's goal line
  --engines FILE    bench/file_bench.py --json FILE
                    -> latency-percentiles.png: p50, p99 and p99.9 per file engine beside fio,
                    one row per case
  --depth FILE...   pollux-perf --json outputs, one per run (any bdevs, any depths)
                    -> iops-vs-depth.png: IOPS against queue depth, one line per bdev

Regenerating the committed pictures (the commands and their durations are in
docs/performance.md, "Pictures"):

  bench/plot.py --scheduler sched.txt --engines engines.json --depth qd-*.json --out docs/images

Exits 1 with a message naming the file when an input lacks what its picture needs.
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only: no display on a build machine
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

# One colour per series, the same in every picture.
COLORS = {"poll": "#1f77b4", "interrupt": "#ff7f0e", "fio": "#2ca02c"}
DPI = 110


def fail(message):
    print("plot.py: " + message, file=sys.stderr)
    sys.exit(1)


def load_json(path):
    """The JSON document in `path`: the whole file, or else its last line that is one (a
    benchmark that prints a report before its --json document)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        fail("%s: %s" % (path, e.strerror))
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") or line.startswith("["):
            try:
                return json.loads(line)
            except ValueError:
                continue
    fail("%s: no JSON document in it (run the benchmark with --json)" % path)


def field(doc, path, keys):
    """doc[keys[0]][keys[1]]..., or a failure naming the file and the missing key."""
    value = doc
    for key in keys:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            fail("%s: no %s in it" % (path, "/".join(str(k) for k in keys)))
    return value


def save(fig, out_dir, name):
    path = os.path.join(out_dir, name)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    print(path)
    return path


def plot_cpu_vs_load(path, out_dir):
    """scheduler_bench.py's cpu section: CPU (% of one core) against the load (% of the poll-mode
    peak), mode A and mode B, one panel per bdev."""
    doc = load_json(path)
    kinds = field(doc, path, ["results", "cpu"])
    if not kinds:
        fail("%s: results/cpu is empty (run with --sections cpu)" % path)
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.2 * len(kinds), 4.2), squeeze=False)
    for ax, (kind, section) in zip(axes[0], sorted(kinds.items())):
        rows = field(section, path, ["rows"])
        loads = [row["fraction"] * 100 for row in rows]
        cpu_a = [row["A"].get("cpu_pct") for row in rows]
        cpu_b = [row["B"].get("cpu_pct") for row in rows]
        ax.plot(loads, cpu_a, "o-", color=COLORS["poll"], label="A: poll mode, static")
        ax.plot(loads, cpu_b, "s-", color=COLORS["interrupt"],
                label="B: interrupt mode, dynamic scheduler")
        # Issue 19's goal below full load (at full load it is about IOPS): B within f x A + 2 %
        # of a core.
        partial = [(load, row["fraction"] * (a or 0) + 2.0)
                   for load, row, a in zip(loads, rows, cpu_a) if row["fraction"] < 1]
        ax.plot([x for x, _ in partial], [y for _, y in partial], ":", color="grey",
                label="goal for B: load x A + 2 %")
        ax.set_xscale("log")
        ax.set_xticks(loads)
        ax.set_xticklabels(["%g %%" % x for x in loads])
        # Head room for the legend above the curves.
        top = max([v for v in cpu_a + cpu_b if v is not None] + [1.0])
        ax.set_ylim(0, top * 1.45)
        ax.set_xlabel("load (share of the poll-mode peak, %.0f IOPS)" % section["peak_iops"])
        ax.set_ylabel("CPU (% of one core)")
        ax.set_title("%s bdev, 4 KiB randread, depth 32" % kind)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", loc="upper left")
    # The bench's own verdict on how much of the measured cores other processes took: a
    # contended run's poll mode gets less than its full cores, and the picture must say so.
    contention = doc.get("contention")
    if contention:
        fig.text(0.01, 0.01, contention, fontsize="x-small", color="dimgrey")
        fig.tight_layout(rect=(0, 0.04, 1, 1))
    else:
        fig.tight_layout()
    return save(fig, out_dir, "cpu-vs-load.png")


PERCENTILES = (("p50_us", "p50"), ("p99_us", "p99"), ("p99_9_us", "p99.9"))
SIDES = (("interrupt", "pollux, interrupt mode"), ("poll", "pollux, poll mode"),
         ("fio", "fio"))


def plot_latency_percentiles(path, out_dir):
    """file_bench.py: for each case (a workload at a depth), the latency percentiles of each
    pollux engine in both modes beside fio with the matching ioengine."""
    entries = load_json(path)
    if not isinstance(entries, list) or not entries:
        fail("%s: expected file_bench.py's list of cases" % path)
    cases = []
    for entry in entries:
        key = (field(entry, path, ["case"]), entry.get("depth"))
        if key not in cases:
            cases.append(key)
    # The percentiles every entry has (p99.9 only from runs that recorded it).
    shown = [(k, label) for k, label in PERCENTILES
             if all(entry["median"][side].get(k) is not None
                    for entry in entries for side, _ in SIDES)]
    if not shown:
        fail("%s: no latency percentiles in its medians" % path)
    fig, axes = plt.subplots(len(cases), len(shown), figsize=(4.3 * len(shown), 3.4 * len(cases)),
                             squeeze=False)
    width = 0.8 / len(SIDES)
    for r, (case, depth) in enumerate(cases):
        rows = [e for e in entries if e["case"] == case and e.get("depth") == depth]
        # file_bench.py writes fio's extra arguments straight after the engine's name.
        labels = ["%s\nvs %s" % (e["engine"], e["fio_ioengine"].replace("--", " --"))
                  for e in rows]
        for c, (key, label) in enumerate(shown):
            ax = axes[r][c]
            for i, (side, side_label) in enumerate(SIDES):
                values = [field(e, path, ["median", side, key]) for e in rows]
                positions = [x + (i - (len(SIDES) - 1) / 2) * width for x in range(len(rows))]
                ax.bar(positions, values, width, color=COLORS[side], label=side_label)
            ax.set_xticks(range(len(rows)))
            ax.set_xticklabels(labels, fontsize="small")
            # Log scale: a tail can be a hundred times the median (a contended run's more).
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: "%g" % v))
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_ylabel("%s latency (us, log scale)" % label)
            ax.set_title("%s, %s %s, depth %s" % (label, rows[0]["workload"], rows[0]["io_size"],
                                                  depth))
            ax.grid(True, axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(SIDES))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    return save(fig, out_dir, "latency-percentiles.png")


def plot_iops_vs_depth(paths, out_dir):
    """pollux-perf --json runs: total IOPS of each bdev's jobs against the run's queue depth."""
    series = {}  # bdev -> {depth: iops}
    workload = set()
    for path in paths:
        doc = load_json(path)
        depth = field(doc, path, ["queue_depth"])
        workload.add("%s, %d-byte I/O" % (field(doc, path, ["workload"]),
                                          field(doc, path, ["io_size"])))
        by_bdev = {}
        for job in field(doc, path, ["jobs"]):
            if job.get("ran", True):
                by_bdev[job["bdev"]] = by_bdev.get(job["bdev"], 0) + job["iops"]
        for bdev, iops in by_bdev.items():
            series.setdefault(bdev, {})[depth] = iops
    if not series:
        fail("no job ran in %s" % ", ".join(paths))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for bdev, points in sorted(series.items()):
        depths = sorted(points)
        ax.plot(depths, [points[d] / 1e6 for d in depths], "o-", label=bdev)
    ax.set_xscale("log", base=2)
    all_depths = sorted({d for points in series.values() for d in points})
    ax.set_xticks(all_depths)
    ax.set_xticklabels([str(d) for d in all_depths])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("queue depth")
    ax.set_ylabel("million IOPS (one core)")
    ax.set_title("pollux-perf: %s" % "; ".join(sorted(workload)))
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save(fig, out_dir, "iops-vs-depth.png")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scheduler", metavar="FILE", help="scheduler_bench.py --json output")
    p.add_argument("--engines", metavar="FILE", help="file_bench.py --json file")
    p.add_argument("--depth", metavar="FILE", nargs="+", help="pollux-perf --json outputs")
    p.add_argument("--out", default=".", help="the folder the PNGs go to (default: .)")
    args = p.parse_args()
    if not (args.scheduler or args.engines or args.depth):
        p.error("nothing to draw: give --scheduler, --engines or --depth")
    os.makedirs(args.out, exist_ok=True)
    if args.scheduler:
        plot_cpu_vs_load(args.scheduler, args.out)
    if args.engines:
        plot_latency_percentiles(args.engines, args.out)
    if args.depth:
        plot_iops_vs_depth(args.depth, args.out)


if __name__ == "__main__":
    main()
