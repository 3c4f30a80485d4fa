#!/usr/bin/env python3
"""The soak (issue 22): a pollux-tgt with every kind of bdev, each exported over vhost-user,
driven by pollux-perf through the initiator with -w verify at request sizes from 512 B to
128 KiB and buffers at an odd offset, for MINUTES, while:
  - error injection on the error bdev is switched on and off every second (nomem: the layer
    retries; pending: requests held, then let go), which the verify job must not notice;
  - bdevs are created and deleted again (malloc, a passthru over it) while the I/O runs;
  - RPC clients connect and go (pollux-rpc calls, and raw clients that hang up mid-request);
  - the dynamic scheduler moves the target's threads between its two cores, and pollux-perf
    moves its job threads (--move-threads).
Pass: every verify round exits 0 (no mismatch, no I/O error), nothing hangs (each round and
each RPC call has a deadline), the target's RSS after warm-up grows by under 5 %, and its file
descriptors are as many at the end as after warm-up. Prints each check, a JSON summary with
--json, and exits 1 when any fails.

Usage: bench/soak.py MINUTES [--build DIR] [--json] [--keep]
"""
import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vhost_common as vc  # noqa: E402

ROUND_SECONDS = 20
FILE_BYTES = 64 << 20
# Exported over vhost and verified: (vhost controller, bdev).
EXPORTS = [("vhost.malloc", "Malloc0"), ("vhost.uring", "Uring0"), ("vhost.aio", "Aio0"),
           ("vhost.tpool", "Tpool0"), ("vhost.pt", "PT0"), ("vhost.ee", "EE_Malloc2"),
           ("vhost.delay", "Delay0")]


def target_config(files):
    bdev = [
        {"method": "bdev_malloc_create",
         "params": {"name": name, "num_blocks": 131072, "block_size": 512}}
        for name in ("Malloc0", "Malloc1", "Malloc2", "Malloc3")]
    bdev += [
        {"method": "bdev_null_create",
         "params": {"name": "Null0", "num_blocks": 131072, "block_size": 512}},
        {"method": "bdev_uring_create", "params": {"name": "Uring0", "filename": files[0]}},
        {"method": "bdev_aio_create", "params": {"name": "Aio0", "filename": files[1]}},
        {"method": "bdev_threadpool_create", "params": {"name": "Tpool0", "filename": files[2]}},
        {"method": "bdev_passthru_create", "params": {"base_bdev_name": "Malloc1", "name": "PT0"}},
        {"method": "bdev_error_create", "params": {"base_name": "Malloc2"}},
        {"method": "bdev_delay_create",
         "params": {"base_bdev_name": "Malloc3", "name": "Delay0", "avg_read_latency": 50,
                    "p99_read_latency": 200, "avg_write_latency": 50,
                    "p99_write_latency": 200}},
    ]
    vhost = [{"method": "vhost_create_blk_controller",
              "params": {"ctrlr": ctrlr, "dev_name": dev, "cpumask": "0x3"}}
             for ctrlr, dev in EXPORTS + [("vhost.null", "Null0")]]
    return {"subsystems": [
        {"subsystem": "scheduler", "config": [
            {"method": "framework_set_scheduler", "params": {"name": "dynamic", "period": 200000}}]},
        {"subsystem": "bdev", "config": bdev},
        {"subsystem": "vhost_blk", "config": vhost}]}


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Churn(threading.Thread):
    """Once a second: error injection flipped, a bdev pair made or deleted, RPC clients that
    come and go. Pausable, so that samples of fds see no client in the middle of a call."""

    def __init__(self, rpc_socket):
        super().__init__(daemon=True)
        self.rpc_socket = rpc_socket
        self.stop = threading.Event()
        self.paused = threading.Event()
        self.idle = threading.Event()
        self.failures = []
        self.counts = {"error_flips": 0, "bdevs_created": 0, "bdevs_deleted": 0,
                       "rpc_clients": 0}

    def call(self, method, params=None):
        result = vc.rpc(self.rpc_socket, method, params, timeout=30)
        if result is None:
            self.failures.append("%s %s: no answer or an error" % (method, json.dumps(params)))
        return result

    def delete_churn_bdevs(self):
        self.call("bdev_passthru_delete", {"name": "ChurnPT0"})
        self.call("bdev_malloc_delete", {"name": "Churn0"})
        self.counts["bdevs_deleted"] += 2

    def hang_up_mid_request(self):
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            client.connect(self.rpc_socket)
            client.sendall(b'{"jsonrpc":"2.0","id":1,"method":"bdev_get_')
        finally:
            client.close()

    def run(self):
        tick = 0
        made = False
        while not self.stop.is_set():
            if self.paused.is_set():
                if made:  # samples see the same bdevs every time (Churn0 is 32 MiB)
                    self.delete_churn_bdevs()
                    made = False
                self.idle.set()
                time.sleep(0.05)
                continue
            self.idle.clear()
            tick += 1
            # Error injection: on for one second, off for the next.
            if tick % 2:
                kind = "nomem" if tick % 4 == 1 else "pending"
                params = {"name": "EE_Malloc2", "io_type": "all", "error_type": kind}
                params.update({"always": True} if kind == "nomem" else {"num": 8})
                self.call("bdev_error_inject_error", params)
            else:
                self.call("bdev_error_inject_error", {"name": "EE_Malloc2", "io_type": "clear"})
            self.counts["error_flips"] += 1
            # A malloc and a passthru on it, made and deleted in turn, beside the I/O.
            if not made:
                self.call("bdev_malloc_create",
                          {"name": "Churn0", "num_blocks": 8192, "block_size": 4096})
                self.call("bdev_passthru_create",
                          {"base_bdev_name": "Churn0", "name": "ChurnPT0"})
                self.counts["bdevs_created"] += 2
            else:
                self.delete_churn_bdevs()
            made = not made
            # Clients: a listing, and one that hangs up in the middle of its request.
            self.call("vhost_get_controllers")
            self.hang_up_mid_request()
            self.counts["rpc_clients"] += 2
            self.stop.wait(1.0)
        if made:
            self.delete_churn_bdevs()
        self.idle.set()

    def quiesce(self):
        self.paused.set()
        self.idle.wait(timeout=60)
        time.sleep(0.5)  # the server closes what the last clients left

    def resume(self):
        self.paused.clear()


def perf_round(build, config, seconds, seed, log):
    """One verify round through every exported bdev; (exit code, report or None)."""
    names = ",".join("Virtio%d" % i for i in range(len(EXPORTS)))
    cmd = [os.path.join(build, "apps", "pollux-perf", "pollux-perf"), "-c", config, "-b", names,
           "-w", "verify", "-q", "8", "-o", "512-128k", "--buffer-offset", str(seed % 4000 + 7),
           "-t", str(seconds), "-m", "0-1", "--move-threads", "20000", "--json"]
    log.write("$ %s\n" % " ".join(cmd))
    log.flush()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 90)
    except subprocess.TimeoutExpired:
        return None, "hung: no exit within %d s" % (seconds + 90)
    log.write(out.stderr)
    try:
        report = json.loads(out.stdout)
    except ValueError:
        report = None
    return out.returncode, report if out.returncode == 0 else out.stderr[-2000:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("minutes", type=float)
    parser.add_argument("--build", default=os.path.join(vc.ROOT, "build"))
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    vc.BUILD = args.build
    work = tempfile.mkdtemp(prefix="pollux-soak-")
    log = open(os.path.join(work, "soak.log"), "w")
    target = None
    checks = []
    try:
        files = []
        for name in ("uring.img", "aio.img", "tpool.img"):
            path = os.path.join(work, name)
            with open(path, "wb") as f:
                f.truncate(FILE_BYTES)
            files.append(path)
        tgt_config = os.path.join(work, "tgt.json")
        vc.write_json(tgt_config, target_config(files))
        rpc_socket = os.path.join(work, "tgt.sock")
        target = subprocess.Popen(
            [vc.binary("pollux-tgt"), "-m", "0x3", "-S", work, "-r", rpc_socket, "-c", tgt_config,
             "--mode", "interrupt"], stdout=log, stderr=log)
        vc.wait_for_paths(target, [rpc_socket] + [os.path.join(work, c) for c, _ in EXPORTS],
                          "pollux-tgt's sockets", log=log)
        ini_config = os.path.join(work, "ini.json")
        # Two queues per bdev: pollux-perf's jobs on both cores each hold one.
        vc.write_json(ini_config, {"subsystems": [{"subsystem": "bdev", "config": [
            {"method": "bdev_virtio_attach_controller",
             "params": {"name": "Virtio%d" % i, "trtype": "user",
                        "traddr": os.path.join(work, ctrlr), "dev_type": "blk", "vq_count": 2,
                        "vq_size": 128}} for i, (ctrlr, _) in enumerate(EXPORTS)]}]})

        churn = Churn(rpc_socket)
        churn.start()
        total = args.minutes * 60
        warmup = max(30.0, total * 0.2)
        start = time.monotonic()
        rounds = []
        baseline = None
        seed = 0
        while time.monotonic() - start < total and target.poll() is None:
            left = total - (time.monotonic() - start)
            seconds = int(max(5, min(ROUND_SECONDS, left)))
            code, detail = perf_round(args.build, ini_config, seconds, seed, log)
            seed += 1
            rounds.append({"exit": code, "seconds": seconds,
                           "detail": None if code == 0 else detail})
            if code != 0:
                break
            if baseline is None and time.monotonic() - start >= warmup:
                churn.quiesce()
                baseline = {"rss_kb": rss_kb(target.pid), "fds": fd_count(target.pid)}
                churn.resume()
        churn.quiesce()
        churn.stop.set()
        alive = target.poll() is None
        end = {"rss_kb": rss_kb(target.pid), "fds": fd_count(target.pid)} if alive else None

        checks.append(("target alive", alive, "" if alive else vc.tail(log.name)))
        failed = [r for r in rounds if r["exit"] != 0]
        checks.append(("verify rounds clean (%d rounds)" % len(rounds), not failed and rounds,
                       json.dumps(failed[:1])))
        checks.append(("RPC calls answered", not churn.failures, "; ".join(churn.failures[:3])))
        if baseline and end:
            growth = (end["rss_kb"] - baseline["rss_kb"]) / baseline["rss_kb"]
            checks.append(("RSS growth after warm-up %.2f %% (%d -> %d kB) < 5 %%" % (
                growth * 100, baseline["rss_kb"], end["rss_kb"]), growth < 0.05, ""))
            checks.append(("file descriptors constant (%d -> %d)" % (baseline["fds"], end["fds"]),
                           baseline["fds"] == end["fds"], ""))
        else:
            checks.append(("RSS and fds sampled after warm-up", False,
                           "the run ended before the warm-up (%.0f s)" % warmup))
        summary = {"minutes": args.minutes, "rounds": len(rounds), "baseline": baseline,
                   "end": end, "churn": churn.counts,
                   "checks": [{"check": c, "ok": bool(ok)} for c, ok, _ in checks],
                   "passed": all(ok for _, ok, _ in checks), "work": work}
        for check, ok, why in checks:
            print("%s %s%s" % ("PASS" if ok else "FAIL", check, "" if ok or not why else ": " + why))
        if args.json:
            print(json.dumps(summary, indent=2))
        return 0 if summary["passed"] else 1
    finally:
        vc.stop(target)
        log.close()
        if not args.keep and all(ok for _, ok, _ in checks) and checks:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("soak: work folder kept: %s (soak.log)" % work)


if __name__ == "__main__":
    sys.exit(main())
