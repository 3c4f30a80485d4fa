#!/usr/bin/env python3
"""The RAID0 example module (examples/raid0) against one null bdev, and loaded as a plugin
against linked in. Same run, alternating, medians of several rounds:

  null     pollux-perf on Null0 (one null bdev)
  plugin   pollux-perf --plugin pollux_raid0.so on Raid0 over two null bdevs (64 KiB strips)
  linked   pollux-perf-raid0-linked (the same sources linked into the program) on that Raid0

4 KiB randread at depth 32 on one core, poll mode. --callgrind adds instructions per I/O
(callgrind on the reactor's Thread::Poll, marginal between a 2 s and a 5 s run), a figure the
VM's speed does not move.

Usage: bench/raid0_bench.py [--build build] [--rounds 5] [--time 3] [--callgrind]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vhost_common  # noqa: E402
from vhost_common import ROOT, VALGRIND_SHARED_MEM_MB, callgrind_total, fail, marginal  # noqa: E402

BLOCKS = 1 << 21  # 1 GiB of 512-byte blocks per null bdev

CONFIG = {"subsystems": [{"subsystem": "bdev", "config": [
    {"method": "bdev_null_create",
     "params": {"name": "Null0", "num_blocks": BLOCKS, "block_size": 512}},
    {"method": "bdev_null_create",
     "params": {"name": "Null1", "num_blocks": BLOCKS, "block_size": 512}},
    {"method": "bdev_null_create",
     "params": {"name": "Null2", "num_blocks": BLOCKS, "block_size": 512}},
    {"method": "bdev_raid_create",
     "params": {"name": "Raid0", "raid_level": "raid0", "strip_size_kb": 64,
                "base_bdevs": ["Null1", "Null2"]}}]}]}
NULL_ONLY = {"subsystems": [{"subsystem": "bdev", "config": CONFIG["subsystems"][0]["config"][:1]}]}


def cases(build):
    perf = os.path.join(build, "apps", "pollux-perf", "pollux-perf")
    linked = os.path.join(build, "bench", "pollux-perf-raid0-linked")
    plugin = os.path.join(build, "test", "integration", "plugins", "pollux_raid0.so")
    for path in (perf, linked, plugin):
        if not os.path.exists(path):
            fail("%s is missing: build %s first" % (path, build))
    return {"null": ([perf], "null", "Null0"),
            "plugin": ([perf, "--plugin", plugin], "raid", "Raid0"),
            "linked": ([linked], "raid", "Raid0")}


def perf_args(command, config, bdev, seconds):
    return command + ["-c", config, "-b", bdev, "-q", "32", "-o", "4k", "-w", "randread",
                      "-t", str(seconds), "-m", "1", "--json"]


def run(command, config, bdev, seconds):
    res = subprocess.run(perf_args(command, config, bdev, seconds), capture_output=True, text=True)
    if res.returncode != 0:
        fail("pollux-perf failed: %s" % res.stderr[-2000:])
    return json.loads(res.stdout)["total"]


def instructions(command, config, bdev, tmp):
    def one(seconds):
        out = os.path.join(tmp, "callgrind.out")
        res = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                              "--collect-atstart=no", "--toggle-collect=pollux::Thread::Poll*"] +
                             perf_args(command, config, bdev, seconds) +
                             ["--shared-mem-size", str(VALGRIND_SHARED_MEM_MB)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            fail("callgrind run failed: %s" % res.stderr[-2000:])
        return {"i": callgrind_total(out)}, json.loads(res.stdout)["total"]["ops"]
    per_io, _ = marginal(one)
    return per_io["i"]


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--time", type=int, default=3)
    p.add_argument("--callgrind", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    all_cases = cases(os.path.abspath(args.build))
    with tempfile.TemporaryDirectory() as tmp:
        configs = {"raid": os.path.join(tmp, "raid.json"), "null": os.path.join(tmp, "null.json")}
        vhost_common.write_json(configs["raid"], CONFIG)
        vhost_common.write_json(configs["null"], NULL_ONLY)
        iops = {name: [] for name in all_cases}
        for rnd in range(args.rounds):
            for name, (command, config, bdev) in all_cases.items():
                iops[name].append(run(command, configs[config], bdev, args.time)["iops"])
            print("round %d: %s" % (rnd + 1, ", ".join("%s %.2f M" % (n, v[-1] / 1e6)
                                                      for n, v in iops.items())), flush=True)
        result = {name: {"iops_median": statistics.median(v), "iops": v} for name, v in iops.items()}
        raid_null = [p / n for p, n in zip(iops["plugin"], iops["null"])]
        plugin_linked = [p / l for p, l in zip(iops["plugin"], iops["linked"])]
        result["raid0_over_null"] = statistics.median(raid_null)
        result["plugin_over_linked"] = statistics.median(plugin_linked)
        if args.callgrind:
            for name, (command, config, bdev) in all_cases.items():
                result[name]["instructions_per_io"] = instructions(command, configs[config],
                                                                   bdev, tmp)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print("median IOPS: " + ", ".join("%s %.2f M" % (n, result[n]["iops_median"] / 1e6)
                                      for n in all_cases))
    print("RAID0 (plugin) / null: %.3f (per round %s)" % (
        result["raid0_over_null"], " ".join("%.3f" % r for r in raid_null)))
    print("plugin / linked: %.3f (per round %s)" % (
        result["plugin_over_linked"], " ".join("%.3f" % r for r in plugin_linked)))
    if args.callgrind:
        print("instructions per I/O: " + ", ".join(
            "%s %.1f" % (n, result[n]["instructions_per_io"]) for n in all_cases))


if __name__ == "__main__":
    main()
