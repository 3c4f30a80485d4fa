#!/usr/bin/env python3
"""Issue 23's NBD benchmark: pollux-tgt's NBD export of a file (io_uring, O_DIRECT) beside
qemu-nbd exporting the same file with --cache=none --aio=native, the client fio's nbd engine
on the other core, 4 KiB random reads and writes at depth 1 and 32, run alternately, medians.

    bench/nbd_bench.py [--tgt build/apps/pollux-tgt/pollux-tgt] [--file /var/tmp/pollux-nbd.img]
                       [--size 256M] [--rounds 3] [--time 5] [--cases randread-qd32,...]
                       [--server-cpu 0] [--client-cpu 1] [--json OUT]

Both servers run pinned to --server-cpu, the client to --client-cpu, over a Unix socket. Per
case it prints IOPS, average and p99 latency (fio's completion latency), and the server's CPU
microseconds per I/O (its utime+stime over the run / I/O done), with pollux / qemu-nbd ratios;
beside them the disk itself (fio's io_uring engine with O_DIRECT on the file, on the server's
core): the bound both servers work under. pollux-tgt runs in interrupt mode unless --mode poll.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proc_cpu import RANDOM_4K_CASES as CASES, cpu_seconds  # noqa: E402


def wait_for_socket(path, proc, what):
    for _ in range(200):
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            sys.exit(f"{what} exited early: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.05)
    sys.exit(f"{what}: no socket at {path}")


def start_pollux(args, work, socket):
    config = {"subsystems": [
        {"subsystem": "bdev", "config": [
            {"method": "bdev_uring_create",
             "params": {"name": "File0", "filename": args.file, "direct": True}}]},
        {"subsystem": "nbd", "config": [
            {"method": "nbd_server_start", "params": {"socket": socket}},
            {"method": "nbd_export_add", "params": {"bdev_name": "File0", "name": "exp"}}]}]}
    path = os.path.join(work, "nbd.json")
    with open(path, "w") as f:
        json.dump(config, f)
    proc = subprocess.Popen(
        [args.tgt, "-c", path, "--cpus", str(args.server_cpu), "-r", os.path.join(work, "rpc.sock"),
         "--mode", args.mode],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_socket(socket, proc, "pollux-tgt")
    return proc


def start_qemu_nbd(args, socket):
    proc = subprocess.Popen(
        ["taskset", "-c", str(args.server_cpu), "qemu-nbd", "-f", "raw", "-x", "exp",
         f"--socket={socket}", "--persistent", "--shared=4", "--cache=none", "--aio=native",
         args.file],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_socket(socket, proc, "qemu-nbd")
    return proc


def run_fio(args, target, rw, depth, cpu=None):
    """fio against `target`: ["--ioengine=...", ...]."""
    cmd = ["taskset", "-c", str(args.client_cpu if cpu is None else cpu), "fio", "--name=nbd",
           *target, f"--rw={rw}", "--bs=4k", f"--iodepth={depth}", f"--size={args.size}",
           "--time_based", f"--runtime={args.time}", "--ramp_time=1", "--output-format=json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    job = json.loads(out[out.index("{"):])["jobs"][0]
    side = job["read" if rw == "randread" else "write"]
    clat = side["clat_ns"]
    return {"iops": side["iops"], "ios": side["total_ios"],
            "avg_us": clat["mean"] / 1000,
            "p99_us": clat["percentile"].get("99.000000", 0) / 1000}


def measure(args, server, rw, depth):
    if server == "disk":
        # The disk itself: fio's io_uring engine with O_DIRECT on the file, on the server's core.
        result = run_fio(args, ["--ioengine=io_uring", f"--filename={args.file}", "--direct=1"],
                         rw, depth, cpu=args.server_cpu)
        result["cpu_us_per_io"] = 0
        return result
    with tempfile.TemporaryDirectory(prefix="pollux-nbd-bench-") as work:
        socket = os.path.join(work, "nbd.sock")
        proc = start_pollux(args, work, socket) if server == "pollux" else start_qemu_nbd(args, socket)
        try:
            before = cpu_seconds(proc.pid)
            result = run_fio(args, ["--ioengine=nbd", f"--uri=nbd+unix:///exp?socket={socket}"],
                             rw, depth)
            used = cpu_seconds(proc.pid) - before
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    # The CPU window includes fio's ramp: count its I/O too (ios covers the measured part).
    total_ios = result["iops"] * (args.time + 1)
    result["cpu_us_per_io"] = used * 1e6 / total_ios if total_ios else 0
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tgt", default="build/apps/pollux-tgt/pollux-tgt")
    parser.add_argument("--file", default="/var/tmp/pollux-nbd.img")
    parser.add_argument("--size", default="256M")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--time", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--mode", default="interrupt", choices=["interrupt", "poll"],
                        help="pollux-tgt's reactor mode")
    parser.add_argument("--json")
    args = parser.parse_args()
    # An allocated file: reads of holes would measure the filesystem, not the servers.
    subprocess.run(["fio", "--name=fill", f"--filename={args.file}", f"--size={args.size}",
                    "--rw=write", "--bs=1M", "--direct=1", "--output=/dev/null"], check=True)
    results = {}
    for case in args.cases.split(","):
        rw, depth = CASES[case]
        runs = {"pollux": [], "qemu-nbd": [], "disk": []}
        for r in range(args.rounds):
            order = ["pollux", "qemu-nbd", "disk"] if r % 2 == 0 else ["disk", "qemu-nbd", "pollux"]
            for server in order:
                runs[server].append(measure(args, server, rw, depth))
        med = {s: {k: statistics.median(x[k] for x in v) for k in v[0]} for s, v in runs.items()}
        results[case] = {"median": med, "runs": runs}
        p, q, d = med["pollux"], med["qemu-nbd"], med["disk"]
        print(f"{case:15s} IOPS pollux {p['iops']:9.0f} qemu-nbd {q['iops']:9.0f} "
              f"ratio {p['iops'] / q['iops']:.2f} disk {d['iops']:9.0f} | avg us {p['avg_us']:7.1f} "
              f"{q['avg_us']:7.1f} ratio {p['avg_us'] / q['avg_us']:.2f} disk {d['avg_us']:7.1f} "
              f"| p99 us {p['p99_us']:7.1f} {q['p99_us']:7.1f} "
              f"| server CPU us/IO {p['cpu_us_per_io']:5.1f} {q['cpu_us_per_io']:5.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
