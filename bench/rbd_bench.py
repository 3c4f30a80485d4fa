#!/usr/bin/env python3
"""Issue 23's RBD benchmark: pollux-perf through bdev_rbd beside fio's rbd engine on the same
image of a one-node Ceph cluster (bench/ceph_one_node.py: a mon and a memstore OSD on
loopback), 4 KiB random reads and writes at depth 1 and 32, run alternately, medians.

    bench/rbd_bench.py [--perf build/apps/pollux-perf/pollux-perf] [--size 1G] [--rounds 3]
                       [--time 10] [--ramp 2] [--cases randread-qd1,...] [--client-cpu 1]
                       [--cluster-cpus 0] [--mode interrupt] [--json OUT]

The cluster's daemons run on --cluster-cpus, each client (with librbd's threads) on
--client-cpu. The image is filled before the reads (reads of never-written objects are
answered by librbd without I/O). Per case it prints IOPS, average and p99 latency and the
client's CPU microseconds per I/O: its utime+stime, every thread of its process tree (librbd's
included; fio's own figure counts its job thread only), sampled from /proc inside the measured
window, divided by the IOPS times that window.
pollux-perf runs in interrupt mode unless --mode poll (a polling core costs a whole core
whatever the I/O rate).
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ceph_one_node import CephCluster  # noqa: E402
from proc_cpu import RANDOM_4K_CASES as CASES, tree_cpu_seconds  # noqa: E402


def run_sampled(cmd, env, runtime):
    """Runs cmd; returns its output and its tree's CPU seconds and wall seconds over a window
    inside its measured run: sampled from /proc every 50 ms, the window ends 0.3 s before the
    last sample (the tool's teardown) and spans runtime - 1 s."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    samples = []

    def sample():
        while proc.poll() is None:
            cpu = tree_cpu_seconds(proc.pid)
            if proc.poll() is not None:
                break  # gone meanwhile: the reading may have missed threads
            samples.append((time.monotonic(), cpu))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = proc.communicate()
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}): {err[-2000:]}")
    end = samples[-1][0] - 0.3
    start = end - (runtime - 1)

    def at(t):
        return min(samples, key=lambda s: abs(s[0] - t))

    (t0, c0), (t1, c1) = at(start), at(end)
    return out, c1 - c0, t1 - t0


def run_pollux(args, cluster, rw, depth):
    config = {"subsystems": [{"subsystem": "bdev", "config": [
        {"method": "bdev_rbd_create",
         "params": {"name": "Rbd0", "pool_name": "rbd", "rbd_name": "img", "block_size": 4096,
                    "user_id": "admin"}}]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
        path = f.name
    try:
        cmd = ["taskset", "-c", str(args.client_cpu), args.perf, "-c", path, "-q", str(depth),
               "-o", "4k", "-w", rw, "-t", str(args.time), "--ramp-time", str(args.ramp),
               "-m", str(args.client_cpu), "--mode", args.mode, "--json"]
        out, cpu, wall = run_sampled(cmd, cluster.env, args.time)
    finally:
        os.unlink(path)
    total = json.loads(out)["total"]
    lat = total["latency_us"]
    return {"iops": total["iops"], "avg_us": lat["avg"], "p99_us": lat["p99"],
            "cpu_us_per_io": cpu * 1e6 / (total["iops"] * wall)}


def run_fio(args, cluster, rw, depth):
    cmd = ["taskset", "-c", str(args.client_cpu), "fio", "--name=rbd", "--ioengine=rbd",
           "--clientname=admin", "--pool=rbd", "--rbdname=img", f"--rw={rw}", "--bs=4k",
           f"--iodepth={depth}", "--time_based", f"--runtime={args.time}",
           f"--ramp_time={args.ramp}", "--output-format=json"]
    out, cpu, wall = run_sampled(cmd, cluster.env, args.time)
    job = json.loads(out[out.index("{"):])["jobs"][0]
    side = job["read" if rw == "randread" else "write"]
    clat = side["clat_ns"]
    return {"iops": side["iops"], "avg_us": clat["mean"] / 1000,
            "p99_us": clat["percentile"].get("99.000000", 0) / 1000,
            "cpu_us_per_io": cpu * 1e6 / (side["iops"] * wall)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--perf", default="build/apps/pollux-perf/pollux-perf")
    parser.add_argument("--size", default="1G")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--time", type=int, default=10)
    parser.add_argument("--ramp", type=int, default=2)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--cluster-cpus", default="0")
    parser.add_argument("--mode", default="interrupt", choices=["interrupt", "poll"])
    parser.add_argument("--json")
    args = parser.parse_args()
    results = {}
    with CephCluster(cpus=args.cluster_cpus) as cluster:
        cluster.create_image("img", args.size)
        # Every object written: a read of a never-written one is answered without I/O.
        subprocess.run(["fio", "--name=fill", "--ioengine=rbd", "--clientname=admin",
                        "--pool=rbd", "--rbdname=img", "--rw=write", "--bs=4M", "--iodepth=8",
                        "--output=/dev/null"], env=cluster.env, check=True)
        for case in args.cases.split(","):
            rw, depth = CASES[case]
            runs = {"pollux": [], "fio": []}
            for r in range(args.rounds):
                order = ["pollux", "fio"] if r % 2 == 0 else ["fio", "pollux"]
                for client in order:
                    run = run_pollux if client == "pollux" else run_fio
                    runs[client].append(run(args, cluster, rw, depth))
            med = {c: {k: statistics.median(x[k] for x in v) for k in v[0]}
                   for c, v in runs.items()}
            results[case] = {"median": med, "runs": runs}
            p, q = med["pollux"], med["fio"]
            print(f"{case:15s} IOPS pollux {p['iops']:8.0f} fio {q['iops']:8.0f} "
                  f"ratio {p['iops'] / q['iops']:.2f} | avg us {p['avg_us']:7.1f} "
                  f"{q['avg_us']:7.1f} | p99 us {p['p99_us']:7.1f} {q['p99_us']:7.1f} "
                  f"| client CPU us/IO {p['cpu_us_per_io']:5.1f} {q['cpu_us_per_io']:5.1f} "
                  f"ratio {p['cpu_us_per_io'] / q['cpu_us_per_io']:.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
