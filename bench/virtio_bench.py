#!/usr/bin/env python3
"""The vhost-user initiator against qemu-storage-daemon.

pollux-perf drives a VirtioBlk bdev (bdev_virtio_attach_controller) through qemu-storage-daemon's
vhost-user-blk export, 4 KiB random reads at depth 1 and 32, with the initiator and the target
pinned to different cores. Back-ends: qsd's null-co driver, and a tmpfs file through qsd's
aio=io_uring. Rounds alternate between the cases; medians are printed. Per case: IOPS, p50 and
p99 latency, kicks per request (from bdev_virtio_get_controllers over the run), and the
initiator's CPU per request (its process time over the I/Os; in poll mode the reactor spins, so
this is one core divided by the rate).

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
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_qsd(backend, socket, image, cpu):
    if os.path.exists(socket):
        os.unlink(socket)
    if backend == "null":
        blockdev = "driver=null-co,node-name=disk0,size=%d" % (4 << 30)
    else:
        # tmpfs takes no O_DIRECT: the page cache is the medium.
        blockdev = "driver=file,node-name=disk0,filename=%s,aio=io_uring" % image
    cmd = ["taskset", "-c", str(cpu), "qemu-storage-daemon", "--blockdev", blockdev,
           "--export", "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,"
           "addr.path=%s,writable=on,num-queues=1" % socket]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(2000):
        if os.path.exists(socket):
            return proc
        if proc.poll() is not None:
            sys.exit("qemu-storage-daemon failed: %s" % proc.stderr.read().decode())
        time.sleep(0.01)
    proc.kill()
    sys.exit("qemu-storage-daemon did not create %s" % socket)


def write_config(path, socket):
    config = {"subsystems": [{"subsystem": "bdev", "config": [
        {"method": "bdev_virtio_attach_controller",
         "params": {"name": "VirtioBlk0", "trtype": "user", "traddr": socket,
                    "dev_type": "blk", "vq_count": 1, "vq_size": 256}}]}]}
    with open(path, "w") as f:
        json.dump(config, f)


def rpc(perf, socket, method):
    rpc_bin = os.path.join(os.path.dirname(os.path.dirname(perf)), "pollux-rpc", "pollux-rpc")
    out = subprocess.run([rpc_bin, "-s", socket, method], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else None


def counters(perf, rpc_socket):
    info = rpc(perf, rpc_socket, "bdev_virtio_get_controllers")
    if not info:
        return None
    q = info[0]["virtio"]["queues"][0]
    return q["requests"], q["kicks"]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_case(args, backend, qd, tmp):
    socket = os.path.join(tmp, "vhost.sock")
    config = os.path.join(tmp, "virtio.json")
    rpc_socket = os.path.join(tmp, "perf.sock")
    image = os.path.join(tmp, "disk.img")
    if backend == "file" and not os.path.exists(image):
        with open(image, "wb") as f:
            f.truncate(1 << 30)
        subprocess.run(["dd", "if=/dev/zero", "of=" + image, "bs=1M", "count=1024",
                        "conv=notrunc"], capture_output=True)
    qsd = start_qsd(backend, socket, image, args.target_cpu)
    write_config(config, socket)
    try:
        cmd = [args.perf, "-c", config, "-q", str(qd), "-o", "4k", "-w", "randread",
               "-t", str(args.time), "-m", str(args.initiator_cpu), "--json", "-r", rpc_socket]
        if args.mode:
            cmd += ["--mode", args.mode]
        perf = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Counters and CPU over the middle of the run (after start-up, before the end).
        time.sleep(1.0)
        start = counters(args.perf, rpc_socket)
        cpu0 = cpu_seconds(perf.pid)
        time.sleep(max(0.5, args.time - 1.5))
        end = counters(args.perf, rpc_socket)
        cpu1 = cpu_seconds(perf.pid)
        out, err = perf.communicate(timeout=args.time + 60)
        if perf.returncode != 0:
            sys.exit("pollux-perf failed: %s" % err)
        total = json.loads(out)["total"]
        row = {"iops": total["iops"], "p50": total["latency_us"]["p50"],
               "p99": total["latency_us"]["p99"]}
        if start and end and end[0] > start[0]:
            requests = end[0] - start[0]
            row["kicks_per_request"] = (end[1] - start[1]) / requests
            row["cpu_us_per_request"] = (cpu1 - cpu0) * 1e6 / requests
        return row
    finally:
        qsd.send_signal(signal.SIGTERM)
        try:
            qsd.wait(timeout=10)
        except subprocess.TimeoutExpired:
            qsd.kill()


def callgrind_run(args, tmp, config, seconds):
    out_file = os.path.join(tmp, "callgrind.out")
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out_file,
           "--collect-atstart=no", "--toggle-collect=pollux::Thread::Poll*",
           args.perf, "-c", config, "-q", "32", "-o", "4k", "-w", "randread", "-t",
           str(seconds), "-m", str(args.initiator_cpu), "--json",
           # valgrind cannot map the default 64 GiB of address space
           "--shared-mem-size", "1024"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit("callgrind run failed: %s" % res.stderr[-2000:])
    ios = json.loads(res.stdout)["total"]["ops"]
    events = None
    with open(out_file) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                events = int(line.split()[1])
    return events, ios


def callgrind_instructions(args, tmp, config):
    """Marginal instructions per request: start-up costs cancel between a short and a long run."""
    i1, n1 = callgrind_run(args, tmp, config, 2)
    i2, n2 = callgrind_run(args, tmp, config, 5)
    return (i2 - i1) / (n2 - n1), n2


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--perf", default=os.path.join(ROOT, "build/apps/pollux-perf/pollux-perf"))
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
        sys.exit("qemu-storage-daemon is missing (scripts/setup.sh installs qemu-system-common)")
    tmp = tempfile.mkdtemp(prefix="pollux-virtio-bench-", dir="/dev/shm")
    results = {}
    try:
        if args.callgrind:
            socket = os.path.join(tmp, "vhost.sock")
            config = os.path.join(tmp, "virtio.json")
            qsd = start_qsd("null", socket, None, args.target_cpu)
            write_config(config, socket)
            try:
                virtio, n1 = callgrind_instructions(args, tmp, config)
            finally:
                qsd.kill()
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
            med = {k: statistics.median([row[k] for row in rows if k in row])
                   for k in rows[0]}
            summary[case] = med
            print("%-10s %9.0f IOPS  p50 %7.2f us  p99 %7.2f us  kicks/req %.4f  CPU us/req %.2f"
                  % (case, med["iops"], med["p50"], med["p99"],
                     med.get("kicks_per_request", float("nan")),
                     med.get("cpu_us_per_request", float("nan"))))
        if args.json:
            print(json.dumps(summary))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
