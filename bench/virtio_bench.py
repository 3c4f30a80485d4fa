#!/usr/bin/env python3
"""The vhost-user initiator against qemu-storage-daemon.

pollux-perf drives a VirtioBlk bdev (bdev_virtio_attach_controller) through qemu-storage-daemon's
vhost-user-blk export, 4 KiB random reads at depth 1 and 32, with the initiator and the target
pinned to different cores. Back-ends: qsd's null-co driver, and a tmpfs file through qsd's
aio=io_uring. Rounds alternate between the cases; medians are printed. Per case: IOPS, p50 and
p99 latency, kicks per request (from bdev_virtio_get_controllers over the run), and the
initiator's CPU per request (its process time over the I/Os; in poll mode the reactor spins, so
this is one core divided by the rate). The last line says how much CPU other processes took
from the two cores over the measured windows (a contended run says little).

--callgrind: instructions per request of the pollux-perf reactor thread (callgrind, collection
toggled on pollux::Thread::Poll*) through the initiator to qsd's null-co, beside the same on
pollux's own null bdev; the difference is what the initiator adds per request. Each figure is
marginal: two runs of 2 s and 5 s, (instructions difference) / (requests difference), so that
start-up (mempools, rings, memset of DPDK memory) does not count.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile

from vhost_common import (ROOT, VALGRIND_SHARED_MEM_MB, binary, callgrind_total, cpu_seconds,
                          describe_contention, fail, initiator_config, initiator_counters,
                          make_tmpfs_image, marginal, medians, run_perf, start_qsd, stop,
                          write_json)


def run_case(args, backend, qd, tmp):
    socket = os.path.join(tmp, "vhost.sock")
    config = os.path.join(tmp, "virtio.json")
    rpc_socket = os.path.join(tmp, "perf.sock")
    image = os.path.join(tmp, "disk.img")
    if backend == "file":
        make_tmpfs_image(image)
    qsd = start_qsd(backend, socket, image, args.target_cpu, os.path.join(tmp, "qsd.log"))
    write_json(config, initiator_config([("VirtioBlk0", socket)]))

    def sample(perf_pid):
        counters = initiator_counters(rpc_socket)
        return counters + (cpu_seconds(perf_pid),) if counters else None

    try:
        total, window = run_perf(config, qd, args.time, args.initiator_cpu, rpc_socket, sample,
                                 measured_cpus=(args.initiator_cpu, args.target_cpu),
                                 other_pids=[qsd.pid], mode=args.mode, perf_bin=args.perf)
    finally:
        stop(qsd)
    row = {"iops": total["iops"], "p50": total["latency_us"]["p50"],
           "p99": total["latency_us"]["p99"], "contention": window["contention"]}
    start, end = window["start"], window["end"]
    if start and end and end[0] > start[0]:
        requests = end[0] - start[0]
        row["kicks_per_request"] = (end[1] - start[1]) / requests
        row["cpu_us_per_request"] = (end[2] - start[2]) * 1e6 / requests
    return row


def callgrind_run(args, tmp, config, seconds):
    out_file = os.path.join(tmp, "callgrind.out")
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out_file,
           "--collect-atstart=no", "--toggle-collect=pollux::Thread::Poll*",
           args.perf, "-c", config, "-q", "32", "-o", "4k", "-w", "randread", "-t",
           str(seconds), "-m", str(args.initiator_cpu), "--json",
           "--shared-mem-size", str(VALGRIND_SHARED_MEM_MB)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        fail("callgrind run failed: %s" % res.stderr[-2000:])
    return {"instructions": callgrind_total(out_file)}, json.loads(res.stdout)["total"]["ops"]


def callgrind_instructions(args, tmp, config):
    """Marginal instructions per request: start-up costs cancel between a short and a long run."""
    per_request, requests = marginal(lambda seconds: callgrind_run(args, tmp, config, seconds))
    return per_request["instructions"], requests


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--perf", default=binary("pollux-perf"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--time", type=int, default=4)
    p.add_argument("--cases", default="null-qd1,null-qd32,file-qd1,file-qd32")
    p.add_argument("--mode", choices=["poll", "interrupt"], default=None)
    p.add_argument("--initiator-cpu", type=int, default=0)
    p.add_argument("--target-cpu", type=int, default=1)
    p.add_argument("--callgrind", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if shutil.which("qemu-storage-daemon") is None:
        fail("qemu-storage-daemon is missing (scripts/setup.sh installs qemu-system-common)")
    tmp = tempfile.mkdtemp(prefix="pollux-virtio-bench-", dir="/dev/shm")
    results = {}
    try:
        if args.callgrind:
            socket = os.path.join(tmp, "vhost.sock")
            config = os.path.join(tmp, "virtio.json")
            qsd = start_qsd("null", socket, None, args.target_cpu, os.path.join(tmp, "qsd.log"))
            write_json(config, initiator_config([("VirtioBlk0", socket)]))
            try:
                virtio, n1 = callgrind_instructions(args, tmp, config)
            finally:
                stop(qsd)
            null, n2 = callgrind_instructions(args, tmp, os.path.join(ROOT, "etc/bdev-null.json"))
            print("instructions per request (pollux::Thread::Poll*): virtio to qsd null-co %.0f "
                  "(%d I/Os), pollux null bdev %.0f (%d I/Os); the initiator adds %.0f"
                  % (virtio, n1, null, n2, virtio - null))
            return
        cases = args.cases.split(",")
        for r in range(args.rounds):
            for case in cases:
                backend, qd = re.match(r"(null|file)-qd(\d+)", case).groups()
                row = run_case(args, backend, int(qd), tmp)
                results.setdefault(case, []).append(row)
                print("round %d %-10s %9.0f IOPS  p50 %7.2f us  p99 %7.2f us  kicks/req %s  "
                      "CPU us/req %s" % (r + 1, case, row["iops"], row["p50"], row["p99"],
                                         "%.4f" % row["kicks_per_request"]
                                         if "kicks_per_request" in row else "-",
                                         "%.2f" % row["cpu_us_per_request"]
                                         if "cpu_us_per_request" in row else "-"),
                      flush=True)
        print("\nmedians over %d rounds:" % args.rounds)
        summary = {}
        for case, rows in results.items():
            med = medians(rows)
            summary[case] = med
            print("%-10s %9.0f IOPS  p50 %7.2f us  p99 %7.2f us  kicks/req %.4f  CPU us/req %.2f"
                  % (case, med["iops"], med["p50"], med["p99"],
                     med.get("kicks_per_request", float("nan")),
                     med.get("cpu_us_per_request", float("nan"))))
        contention = describe_contention([row["contention"] for rows in results.values()
                                          for row in rows])
        print(contention)
        if args.json:
            summary["contention"] = contention
            print(json.dumps(summary))
    except RuntimeError as e:
        fail(str(e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
