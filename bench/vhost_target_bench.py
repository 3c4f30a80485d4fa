#!/usr/bin/env python3
"""Issue 18's benchmark: pollux-tgt's vhost-user-blk target against qemu-storage-daemon.

The guest is pollux-perf through pollux's vhost-user initiator (a VirtioBlk bdev, one queue of
256), pinned to --initiator-cpu (0); the target is pinned to --target-cpu (1), taskset on the
whole process so that its helper threads stay off the initiator's core. Rounds alternate the
order of the targets; medians are printed.

Default (the comparison): 4 KiB random reads at depth 32 and 1 against pollux-tgt (poll mode)
serving a null bdev and a tmpfs file through io_uring (bdev_uring_create, direct: false: the
page cache is the medium, as for qsd), beside qsd's null-co and its file driver with
aio=io_uring on the same file. Per case: IOPS, p50 and p99 latency, the ratios pollux / qsd
(IOPS at depth 32, p50 at depth 1), kicks per request as the initiator counted them
(bdev_virtio_get_controllers) and, for pollux, as the target counted them
(vhost_get_controllers), interrupts per request (pollux's counter; qsd counts none, so its
write syscalls per request from /proc/PID/io stand for them: an upper bound, as the call fd is
written with write(2)), all over the steady middle of the run.

--callgrind: instructions per request in pollux-tgt's queue thread beyond the bdev. pollux-tgt
runs under callgrind with collection toggled on the queue's poller (the lambda that calls
VhostBlkQueueOn<...>::Poll) and on its completion callback (OnBdevDone, run by the bdev
layer's completion poller), null bdev, depth 32; the bdev's own share (pollux::BdevDesc::*
called from the poller, inclusive) is subtracted. Marginal: two runs of 2 s and 5 s,
(difference of instructions) / (difference of requests), so start-up does not count.

--idle: 16 controllers on 16 null bdevs, each connected to an idle initiator (one second
pollux-tgt on the initiator core attaching all 16, interrupt mode), pollux-tgt in interrupt
mode: the target's CPU over --idle-seconds in % of a core, beside the same target with
nothing connected.

--busy-beside-idle: one controller driven at depth 32 beside 63 connected idle ones (attached
by a second pollux-tgt as above) against the same target with only the busy one connected,
alternating; the ratio of IOPS.

--all runs the four. A summary table ends the output: each figure, its goal from issue 18, and
whether it was met; with --json, one JSON document follows it. Every run reports how much CPU
other processes took from the measured cores: on a shared 2-vCPU machine a contended figure
says little.
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time

from vhost_common import (NULL_BYTES, ROOT, VALGRIND_SHARED_MEM_MB, ContentionMeter, Report,
                          alternate, binary, callgrind_calls_into, callgrind_total, cpu_seconds,
                          fail, fmt, initiator_config, initiator_counters, make_tmpfs_image,
                          marginal, ratio, rpc, run_perf, start_qsd, stop, tail, unlink_quietly,
                          wait_for_paths, write_json)

COMPARE_CASES = ("null-qd32", "null-qd1", "file-qd32", "file-qd1")
# The queue's poller (Poll is inlined into the AnyInvocable invoker of the lambda that calls
# it) and the completion callback the bdev layer calls from its own poller.
POLLER_FUNCTION = "*LocalInvoker<false, pollux::PollResult, pollux::*VhostBlkQueueOn<*"
COMPLETION_FUNCTION = "pollux::*VhostBlkQueueOn<*>::OnBdevDone*"
BDEV_PREFIX = "pollux::BdevDesc::"
FLOOR_BENCH = os.path.join(ROOT, "build", "bench", "pollux-split-ring-floor-bench")
# Issue 18's goals.
GOAL_IOPS_RATIO = 2.0
GOAL_P50_RATIO = 0.5
SPDK_NULL_QD32_IOPS = 6.8e6
GOAL_KICKS = 0.01
GOAL_INSTRUCTIONS = 400
GOAL_IDLE_PCT = 1.0
GOAL_BUSY_RATIO = 0.95


class Workspace:
    """A private folder on tmpfs: sockets, configs, logs and the file image."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pollux-vhost-target-bench-", dir="/dev/shm")
        self.image = self.path("disk.img")

    def path(self, name):
        return os.path.join(self.dir, name)


def null_bdev(name):
    return "bdev_null_create", {"name": name, "num_blocks": NULL_BYTES // 512, "block_size": 512}


def uring_bdev(name, filename):
    return "bdev_uring_create", {"name": name, "filename": filename, "direct": False}


def target_config(entries, cpu):
    """pollux-tgt's config: per (ctrlr, (bdev method, params)) a bdev and its controller."""
    return {"subsystems": [
        {"subsystem": "bdev", "config": [{"method": method, "params": params}
                                         for _, (method, params) in entries]},
        {"subsystem": "vhost_blk", "config": [
            {"method": "vhost_create_blk_controller",
             "params": {"ctrlr": ctrlr, "dev_name": params["name"], "cpumask": str(cpu)}}
            for ctrlr, (_, params) in entries]}]}


def start_pollux_tgt(ws, name, config, cpu, mode, sockets, wrapper=(), extra=(), timeout=30.0):
    """pollux-tgt pinned to `cpu` (reactor and every other thread), its config written to
    NAME.json, RPC on NAME.rpc; returns (process, RPC socket) once every socket exists."""
    config_path, rpc_socket, log = ws.path(name + ".json"), ws.path(name + ".rpc"), \
        ws.path(name + ".log")
    write_json(config_path, config)
    for path in list(sockets) + [rpc_socket]:
        unlink_quietly(path)
    cmd = (["taskset", "-c", str(cpu)] + list(wrapper) +
           [binary("pollux-tgt"), "-c", config_path, "-m", str(cpu), "-S", ws.dir,
            "-r", rpc_socket, "--mode", mode] + list(extra))
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_paths(proc, list(sockets) + [rpc_socket], "pollux-tgt " + name, timeout, log)
    except BaseException:
        stop(proc)
        raise
    return proc, rpc_socket


def start_initiator_host(args, ws, sockets):
    """A second pollux-tgt on the initiator core, interrupt mode, attaching one idle VirtioBlk
    bdev to each socket: the connected idle guests."""
    config = initiator_config([("Idle%d" % i, s) for i, s in enumerate(sockets)])
    return start_pollux_tgt(ws, "host", config, args.initiator_cpu, "interrupt", [],
                            extra=["--shared-mem-size", str(VALGRIND_SHARED_MEM_MB)])


def controllers(rpc_socket, name=None):
    info = rpc(rpc_socket, "vhost_get_controllers", {"name": name} if name else None)
    if info is None:
        raise RuntimeError("vhost_get_controllers on %s did not answer" % rpc_socket)
    return info


def queue_totals(info):
    """Every queue counter summed over the controllers in `info`."""
    keys = ("requests", "kicks", "interrupts", "polls_busy", "polls_idle")
    return {k: sum(q[k] for c in info for q in c["queues"]) for k in keys}


def wait_connected(proc, rpc_socket, names, log, timeout=60.0):
    """Waits until every named controller has a started session."""
    deadline = time.monotonic() + timeout
    names = set(names)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("pollux-tgt exited (%d)%s" % (proc.returncode, tail(log)))
        started = {c["ctrlr"] for c in controllers(rpc_socket)
                   if any(s.get("started") for s in c.get("sessions", []))}
        if names <= started:
            return
        time.sleep(0.1)
    raise RuntimeError("only %d of %d controllers connected within %.0f s"
                       % (len(names & started), len(names), timeout))


def write_syscalls(pid):
    with open("/proc/%d/io" % pid) as f:
        return int(next(line for line in f if line.startswith("syscw:")).split()[1])


def thread_clock(pid):
    """(seconds on CPU of every thread, from schedstat in ns; voluntary context switches)."""
    ns = switches = 0
    task_dir = "/proc/%d/task" % pid
    for tid in os.listdir(task_dir):
        try:
            with open(os.path.join(task_dir, tid, "schedstat")) as f:
                ns += int(f.read().split()[0])
            with open(os.path.join(task_dir, tid, "status")) as f:
                switches += int(next(line for line in f
                                     if line.startswith("voluntary_ctxt_switches"))
                                .split()[1])
        except (OSError, StopIteration):
            pass  # a thread that ended meanwhile
    return ns / 1e9, switches


# ---- 1. pollux-tgt against qemu-storage-daemon ----

def run_floor(args, qd):
    """The split-ring protocol alone between the same two cores (split_ring_floor_bench.cc)."""
    out = subprocess.run([FLOOR_BENCH, "--depth", str(qd), "--seconds", str(args.seconds),
                          "--cpus", "%d,%d" % (args.initiator_cpu, args.target_cpu), "--json"],
                         capture_output=True, text=True, timeout=args.seconds + 30, check=True)
    r = json.loads(out.stdout)
    return {"iops": r["iops"], "p50": r["latency_us"]["p50"], "p99": r["latency_us"]["p99"]}


def run_compare(args, ws, target, backend, qd):
    if target == "floor":
        return run_floor(args, qd)
    socket = ws.path("vhost.0")
    tgt_rpc = None
    if target == "pollux":
        bdev = null_bdev("Null0") if backend == "null" else uring_bdev("File0", ws.image)
        tgt, tgt_rpc = start_pollux_tgt(ws, "tgt", target_config([("vhost.0", bdev)],
                                                                  args.target_cpu),
                                        args.target_cpu, args.target_mode, [socket])
    else:
        tgt = start_qsd(backend, socket, ws.image, args.target_cpu, ws.path("qsd.log"))
    config, perf_rpc = ws.path("initiator.json"), ws.path("perf.rpc")

    def sample(_perf_pid):
        return {"initiator": initiator_counters(perf_rpc),
                "target": queue_totals(controllers(tgt_rpc, "vhost.0")) if tgt_rpc else None,
                "syscw": write_syscalls(tgt.pid)}

    try:
        write_json(config, initiator_config([("VirtioBlk0", socket)]))
        total, window = run_perf(config, qd, args.seconds, args.initiator_cpu, perf_rpc, sample,
                                 measured_cpus=(args.initiator_cpu, args.target_cpu),
                                 other_pids=[tgt.pid])
    finally:
        stop(tgt)
    row = {"iops": total["iops"], "p50": total["latency_us"]["p50"],
           "p99": total["latency_us"]["p99"], "contention": window["contention"]}
    start, end = window["start"], window["end"]
    if start["initiator"] and end["initiator"] and end["initiator"][0] > start["initiator"][0]:
        requests = end["initiator"][0] - start["initiator"][0]
        row["kicks_per_request"] = (end["initiator"][1] - start["initiator"][1]) / requests
        row["writes_per_request"] = (end["syscw"] - start["syscw"]) / requests
    if tgt_rpc:
        d = {k: end["target"][k] - start["target"][k] for k in end["target"]}
        if d["requests"] > 0:
            row["target_kicks_per_request"] = d["kicks"] / d["requests"]
            row["interrupts_per_request"] = d["interrupts"] / d["requests"]
            row["interrupts_per_busy_poll"] = d["interrupts"] / max(1, d["polls_busy"])
            row["requests_per_busy_poll"] = d["requests"] / max(1, d["polls_busy"])
    return row


def compare(args, ws, report):
    cases = args.cases.split(",")
    if any(c.startswith("file") for c in cases):
        make_tmpfs_image(ws.image)

    def run(key):
        backend, qd = key[0].split("-qd")
        return run_compare(args, ws, key[1], backend, int(qd))

    def describe(r, key, row):
        return ("round %d %-9s %-6s %9.0f IOPS  p50 %7.2f us  p99 %7.2f us  kicks/req "
                "initiator %s target %s  intr/req %s  writes/req %s" % (
                    r, key[0], key[1], row["iops"], row["p50"], row["p99"],
                    fmt(row.get("kicks_per_request"), "%.4f"),
                    fmt(row.get("target_kicks_per_request"), "%.4f"),
                    fmt(row.get("interrupts_per_request"), "%.4f"),
                    fmt(row.get("writes_per_request"), "%.4f")))

    # A null back-end's figures beside the floor of the same run: the two vCPUs of these VMs
    # sit near each other (a shared cache) at some times and far apart at others, which moves
    # every cross-core figure by 3-5x within minutes; the floor says which it was.
    groups = [[(c, "pollux"), (c, "qsd")] + ([(c, "floor")] if c.startswith("null") else [])
              for c in cases]
    med_by_key = alternate(args, report, groups, run, describe)
    print("\nmedians over %d rounds (pollux-tgt in %s mode):" % (args.rounds, args.target_mode))
    print("%-9s %-6s %10s %9s %9s %10s %10s %9s %10s" % (
        "case", "target", "IOPS", "p50 us", "p99 us", "kicks/req", "(target)", "intr/req",
        "writes/req"))
    result = {}
    for case in cases:
        med = {t: med_by_key[(case, t)] for t in ("pollux", "qsd", "floor")
               if (case, t) in med_by_key}
        result[case] = med
        for target, m in med.items():
            print("%-9s %-6s %10.0f %9.2f %9.2f %10s %10s %9s %10s" % (
                case, target, m["iops"], m["p50"], m["p99"],
                fmt(m.get("kicks_per_request"), "%.4f"),
                fmt(m.get("target_kicks_per_request"), "%.4f"),
                fmt(m.get("interrupts_per_request"), "%.4f"),
                fmt(m.get("writes_per_request"), "%.4f")))
        p, q = med["pollux"], med["qsd"]
        iops_ratio, p50_ratio = ratio(p["iops"], q["iops"]), ratio(p["p50"], q["p50"])
        print("%-9s pollux / qsd: IOPS %.2fx, p50 %.2fx, p99 %.2fx"
              % (case, iops_ratio, p50_ratio, ratio(p["p99"], q["p99"])))
        med["ratio"] = {"iops": iops_ratio, "p50": p50_ratio}
        if "floor" in med:
            f = med["floor"]
            print("%-9s pollux / floor: IOPS %.2fx, p50 %.2fx (floor: %.0f IOPS, p50 %.2f us)"
                  % (case, ratio(p["iops"], f["iops"]), ratio(p["p50"], f["p50"]), f["iops"],
                     f["p50"]))
            med["ratio"]["floor_iops"] = ratio(p["iops"], f["iops"])
            med["ratio"]["floor_p50"] = ratio(p["p50"], f["p50"])
        if case.endswith("qd32"):
            report.add("%s IOPS pollux / qsd" % case, iops_ratio, "%.2fx",
                       ">= %.1fx" % GOAL_IOPS_RATIO, iops_ratio >= GOAL_IOPS_RATIO)
            if case == "null-qd32":
                report.add("null-qd32 pollux IOPS (SPDK's pair: 6.3-6.8 M)", p["iops"], "%.0f",
                           "> %.1f M" % (SPDK_NULL_QD32_IOPS / 1e6),
                           p["iops"] > SPDK_NULL_QD32_IOPS)
            # The goal is for a polling target; in interrupt mode the figure is printed only.
            kicks = p.get("kicks_per_request")
            polling = args.target_mode == "poll"
            report.add("%s kicks / request (pollux-tgt %s mode)" % (case, args.target_mode),
                       kicks, "%.4f", "< %.2f" % GOAL_KICKS,
                       None if kicks is None or not polling else kicks < GOAL_KICKS)
            per_poll = p.get("interrupts_per_busy_poll")
            # A batch is published by a busy poll: more interrupts than busy polls would be
            # more than one per batch.
            report.add("%s interrupts / request (per busy poll %s)"
                       % (case, fmt(per_poll, "%.3f")), p.get("interrupts_per_request"), "%.4f",
                       "<= 1 per batch", None if per_poll is None else per_poll <= 1.0)
        else:
            report.add("%s p50 latency pollux / qsd" % case, p50_ratio, "%.2fx",
                       "<= %.1fx" % GOAL_P50_RATIO, p50_ratio <= GOAL_P50_RATIO)
    report.results["compare"] = result


# ---- 2. instructions per request (callgrind) ----

def callgrind_run(args, ws, seconds):
    out_file = ws.path("callgrind.out")
    unlink_quietly(out_file)
    socket = ws.path("vhost.0")
    wrapper = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out_file,
               "--collect-atstart=no", "--toggle-collect=" + POLLER_FUNCTION,
               "--toggle-collect=" + COMPLETION_FUNCTION, "--log-file=" + ws.path("valgrind.log")]
    tgt, _ = start_pollux_tgt(
        ws, "tgt", target_config([("vhost.0", null_bdev("Null0"))], args.target_cpu),
        args.target_cpu, args.target_mode, [socket], wrapper=wrapper,
        extra=["--shared-mem-size", str(VALGRIND_SHARED_MEM_MB)], timeout=600)
    try:
        config = ws.path("initiator.json")
        write_json(config, initiator_config([("VirtioBlk0", socket)]))
        # The requests as the initiator counted them: under valgrind 3.19 the target's RPC
        # does not answer (its reactor's epoll_pwait2 is a syscall valgrind does not know).
        total, _ = run_perf(config, 32, seconds, args.initiator_cpu,
                            extra=["--shared-mem-size", str(VALGRIND_SHARED_MEM_MB)])
    finally:
        stop(tgt, timeout=600)
    if tgt.returncode != 0:
        raise RuntimeError("pollux-tgt under callgrind exited %d%s"
                           % (tgt.returncode, tail(ws.path("valgrind.log"))))
    return {"collected": callgrind_total(out_file),
            "bdev": callgrind_calls_into(out_file, BDEV_PREFIX)}, total["ops"]


def instructions(args, ws, report):
    per_request, requests = marginal(lambda seconds: callgrind_run(args, ws, seconds))
    beyond = per_request["collected"] - per_request["bdev"]
    print("instructions per request in pollux-tgt's queue thread (callgrind, marginal 2 s / 5 s,"
          " null bdev, depth 32, %d requests in the long run): poller + completion callback "
          "%.0f, of which the bdev's submission %.0f; beyond the bdev %.0f"
          % (requests, per_request["collected"], per_request["bdev"], beyond), flush=True)
    report.results["callgrind"] = dict(per_request, beyond_bdev=beyond, requests=requests)
    report.add("instructions / request beyond the bdev", beyond, "%.0f",
               "< %d" % GOAL_INSTRUCTIONS, beyond < GOAL_INSTRUCTIONS)


# ---- 3. idle: 16 connected controllers, interrupt mode ----

def run_idle(args, ws, connected):
    entries = [("idle.%d" % i, null_bdev("Null%d" % i)) for i in range(args.idle_controllers)]
    sockets = [ws.path(c) for c, _ in entries]
    tgt, tgt_rpc = start_pollux_tgt(ws, "tgt", target_config(entries, args.target_cpu),
                                    args.target_cpu, "interrupt", sockets)
    host = None
    try:
        if connected:
            host, _ = start_initiator_host(args, ws, sockets)
            wait_connected(tgt, tgt_rpc, [c for c, _ in entries], ws.path("tgt.log"))
        time.sleep(1.0)  # settle: the reactor's spin window, the queues' first polls
        q0 = queue_totals(controllers(tgt_rpc))
        time.sleep(0.2)  # the RPC above woke the reactor: let it fall asleep again
        t0 = time.monotonic()
        c0, w0 = thread_clock(tgt.pid)
        h0 = cpu_seconds(host.pid) if host else None
        meter = ContentionMeter((args.initiator_cpu, args.target_cpu),
                                [tgt.pid] + ([host.pid] if host else []))
        time.sleep(args.idle_seconds)
        c1, w1 = thread_clock(tgt.pid)
        h1 = cpu_seconds(host.pid) if host else None
        wall = time.monotonic() - t0
        contention = meter.finish()
        q1 = queue_totals(controllers(tgt_rpc))
        # Reading the counters wakes the reactor, which polls every queue while the reply
        # gathers: a second read right away says how many polls one read makes.
        q2 = queue_totals(controllers(tgt_rpc))
    finally:
        stop(host)
        stop(tgt)

    def polls(a, b):
        return b["polls_busy"] + b["polls_idle"] - a["polls_busy"] - a["polls_idle"]

    return {"cpu_pct": (c1 - c0) / wall * 100, "wakeups_per_s": (w1 - w0) / wall,
            "polls_per_s": max(0, polls(q0, q1) - polls(q1, q2)) / wall,
            "polls_per_read": polls(q1, q2),
            "kicks": q1["kicks"] - q0["kicks"], "interrupts": q1["interrupts"] - q0["interrupts"],
            "host_cpu_pct": (h1 - h0) / wall * 100 if host else None, "contention": contention}


def idle(args, ws, report):
    med = alternate(
        args, report, [["connected", "unconnected"]],
        lambda which: run_idle(args, ws, which == "connected"),
        lambda r, which, row: (
            "round %d idle, %d controllers %-11s target %.2f%% of a core, %.1f wake-ups/s, %.0f "
            "queue polls/s (%d more in a counter read), kicks %d, interrupts %d; initiator host "
            "%s%% of a core" % (r, args.idle_controllers, which, row["cpu_pct"],
                                row["wakeups_per_s"], row["polls_per_s"], row["polls_per_read"],
                                row["kicks"], row["interrupts"],
                                fmt(row.get("host_cpu_pct"), "%.2f"))))
    print("idle, medians over %d rounds of %.0f s: %d connected controllers %.2f%% of a core "
          "(%.0f wake-ups/s), none connected %.2f%%" % (
              args.rounds, args.idle_seconds, args.idle_controllers, med["connected"]["cpu_pct"],
              med["connected"]["wakeups_per_s"], med["unconnected"]["cpu_pct"]))
    report.results["idle"] = med
    report.add("idle: %d connected controllers, %% of a core" % args.idle_controllers,
               med["connected"]["cpu_pct"], "%.2f%%", "< %.0f%%" % GOAL_IDLE_PCT,
               med["connected"]["cpu_pct"] < GOAL_IDLE_PCT)


# ---- 4. one busy controller beside 63 connected idle ones ----

def run_busy(args, ws, beside):
    n = args.busy_idle_controllers
    entries = [("vhost.%d" % i, null_bdev("Null%d" % i)) for i in range(n + 1)]
    sockets = [ws.path(c) for c, _ in entries]
    tgt, tgt_rpc = start_pollux_tgt(ws, "tgt", target_config(entries, args.target_cpu),
                                    args.target_cpu, args.target_mode, sockets)
    host = None
    try:
        if beside:
            host, _ = start_initiator_host(args, ws, sockets[1:])
            wait_connected(tgt, tgt_rpc, [c for c, _ in entries[1:]], ws.path("tgt.log"))
        config, perf_rpc = ws.path("initiator.json"), ws.path("perf.rpc")
        write_json(config, initiator_config([("VirtioBlk0", sockets[0])]))

        def sample(_perf_pid):
            info = controllers(tgt_rpc)
            return {"busy": queue_totals([c for c in info if c["ctrlr"] == "vhost.0"]),
                    "idle": queue_totals([c for c in info if c["ctrlr"] != "vhost.0"]),
                    "host": cpu_seconds(host.pid) if host else None}

        total, window = run_perf(config, 32, args.seconds, args.initiator_cpu, perf_rpc, sample,
                                 measured_cpus=(args.initiator_cpu, args.target_cpu),
                                 other_pids=[tgt.pid] + ([host.pid] if host else []))
    finally:
        stop(host)
        stop(tgt)
    start, end, wall = window["start"], window["end"], window["seconds"]
    polls = {k: (end[k]["polls_busy"] + end[k]["polls_idle"] - start[k]["polls_busy"] -
                 start[k]["polls_idle"]) / wall for k in ("busy", "idle")}
    return {"iops": total["iops"], "p50": total["latency_us"]["p50"],
            "p99": total["latency_us"]["p99"], "busy_queue_polls_per_s": polls["busy"],
            "idle_queue_polls_per_s": polls["idle"],
            "host_cpu_pct": (end["host"] - start["host"]) / wall * 100 if host else None,
            "contention": window["contention"]}


def busy_beside_idle(args, ws, report):
    n = args.busy_idle_controllers
    med = alternate(
        args, report, [["alone", "beside"]], lambda which: run_busy(args, ws, which == "beside"),
        lambda r, which, row: (
            "round %d busy controller %-6s %9.0f IOPS  p50 %7.2f us  p99 %7.2f us  busy queue "
            "%.0f polls/s, idle queues %.0f polls/s; initiator host %s%% of a core"
            % (r, which, row["iops"], row["p50"], row["p99"], row["busy_queue_polls_per_s"],
               row["idle_queue_polls_per_s"], fmt(row.get("host_cpu_pct"), "%.2f"))))
    busy_ratio = ratio(med["beside"]["iops"], med["alone"]["iops"])
    print("busy controller, medians over %d rounds: alone %.0f IOPS, beside %d connected idle "
          "ones %.0f IOPS: %.2fx" % (args.rounds, med["alone"]["iops"], n,
                                     med["beside"]["iops"], busy_ratio))
    med["ratio"] = busy_ratio
    report.results["busy_beside_idle"] = med
    report.add("busy beside %d idle / alone, IOPS" % n, busy_ratio, "%.2fx",
               ">= %.2fx" % GOAL_BUSY_RATIO, busy_ratio >= GOAL_BUSY_RATIO)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--callgrind", action="store_true", help="instructions per request only")
    p.add_argument("--idle", action="store_true", help="idle connected controllers only")
    p.add_argument("--busy-beside-idle", action="store_true",
                   help="one busy controller beside idle ones only")
    p.add_argument("--all", action="store_true", help="the comparison and the three above")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=int, default=5,
                   help="pollux-perf's run time per case (--callgrind: 2 s and 5 s always)")
    p.add_argument("--idle-seconds", type=float, default=10.0, help="--idle's window")
    p.add_argument("--cases", default=",".join(COMPARE_CASES))
    p.add_argument("--target-mode", choices=["poll", "interrupt"], default="poll",
                   help="pollux-tgt's mode but in --idle (always interrupt)")
    p.add_argument("--idle-controllers", type=int, default=16)
    p.add_argument("--busy-idle-controllers", type=int, default=63)
    p.add_argument("--initiator-cpu", type=int, default=0)
    p.add_argument("--target-cpu", type=int, default=1)
    p.add_argument("--json", action="store_true", help="also print every figure as JSON")
    args = p.parse_args()
    if args.seconds < 2:
        fail("--seconds must be at least 2 (counters are read from 1 s to 0.5 s before the end)")
    for program in ("pollux-tgt", "pollux-perf", "pollux-rpc"):
        if not os.access(binary(program), os.X_OK):
            fail("%s is missing: ninja -C build %s" % (binary(program), program))
    if not os.access(FLOOR_BENCH, os.X_OK):
        fail("%s is missing: ninja -C build pollux-split-ring-floor-bench" % FLOOR_BENCH)
    if shutil.which("qemu-storage-daemon") is None:
        fail("qemu-storage-daemon is missing (scripts/setup.sh installs qemu-system-common)")
    picked = args.callgrind or args.idle or args.busy_beside_idle
    if (args.callgrind or args.all) and shutil.which("valgrind") is None:
        fail("valgrind is missing (scripts/setup.sh installs it)")
    ws = Workspace()
    report = Report("issue 18's goals")
    try:
        if args.all or not picked:
            compare(args, ws, report)
        if args.all or args.callgrind:
            instructions(args, ws, report)
        if args.all or args.idle:
            idle(args, ws, report)
        if args.all or args.busy_beside_idle:
            busy_beside_idle(args, ws, report)
    except RuntimeError as e:
        fail(str(e))
    finally:
        shutil.rmtree(ws.dir, ignore_errors=True)
    report.print_summary()
    if args.json:
        print(json.dumps({"results": report.results, "summary": report.rows,
                          "contention": report.contention}))


if __name__ == "__main__":
    main()
