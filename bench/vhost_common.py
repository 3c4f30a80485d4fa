"""What the vhost-user benchmarks share (virtio_bench.py: pollux's initiator against
qemu-storage-daemon; vhost_target_bench.py: pollux-tgt's target against it): the programs'
paths, starting and stopping the processes, their configs, RPC counters, CPU clocks, one
pollux-perf run sampled over its steady middle, callgrind's totals, the marginal cost per
request, and how much CPU other processes took from the measured cores. scheduler_bench.py
uses the pollux-perf run, the alternation of variants over rounds and the summary of goals.

Every process started here belongs to the caller, who stops it (stop()) in a finally block.
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
# pollux's null bdev and qsd's null-co: the same 4 GiB of 512-byte blocks.
NULL_BYTES = 4 << 30
# --shared-mem-size for processes whose memory a peer under valgrind maps (or that run under
# valgrind): valgrind cannot map the default 64 GiB of address space.
VALGRIND_SHARED_MEM_MB = 1024


# The build directory the programs come from; a benchmark with a --build option sets it.
BUILD = os.path.join(ROOT, "build")


def binary(name):
    """BUILD/apps/NAME/NAME: pollux-tgt, pollux-perf, pollux-rpc."""
    return os.path.join(BUILD, "apps", name, name)


def stop(proc, timeout=10):
    """SIGTERM, then SIGKILL after `timeout` seconds; nothing if it has already exited."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def unlink_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def wait_for_paths(proc, paths, what, timeout=30.0, log=None):
    """Waits until every path exists; exits the benchmark if `proc` dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(os.path.exists(p) for p in paths):
            return
        if proc.poll() is not None:
            raise RuntimeError("%s exited (%d) during start-up%s"
                               % (what, proc.returncode, tail(log)))
        time.sleep(0.01)
    missing = [p for p in paths if not os.path.exists(p)]
    raise RuntimeError("%s did not create %s%s within %.0f s%s"
                       % (what, missing[0], " (and %d more)" % (len(missing) - 1)
                          if len(missing) > 1 else "", timeout, tail(log)))


def tail(log, n=2000):
    if not log or not os.path.exists(log):
        return ""
    with open(log, errors="replace") as f:
        return ":\n" + f.read()[-n:]


def start_qsd(backend, socket, image, cpu, log):
    """qemu-storage-daemon exporting null-co or a tmpfs file (aio=io_uring) on `socket`,
    pinned to `cpu`, one queue."""
    unlink_quietly(socket)
    if backend == "null":
        blockdev = "driver=null-co,node-name=disk0,size=%d" % NULL_BYTES
    else:
        # No cache.direct: the page cache is the medium on tmpfs.
        blockdev = "driver=file,node-name=disk0,filename=%s,aio=io_uring" % image
    cmd = ["taskset", "-c", str(cpu), "qemu-storage-daemon", "--blockdev", blockdev,
           "--export", "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,"
           "addr.path=%s,writable=on,num-queues=1" % socket]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=out)
    try:
        wait_for_paths(proc, [socket], "qemu-storage-daemon", log=log)
    except BaseException:
        stop(proc)
        raise
    return proc


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f)


def initiator_config(controllers, vq_size=256):
    """A bdev config attaching one VirtioBlk bdev (one queue) per (name, socket)."""
    return {"subsystems": [{"subsystem": "bdev", "config": [
        {"method": "bdev_virtio_attach_controller",
         "params": {"name": name, "trtype": "user", "traddr": socket, "dev_type": "blk",
                    "vq_count": 1, "vq_size": vq_size}} for name, socket in controllers]}]}


def rpc(socket, method, params=None, timeout=60):
    """The method's result, or None when the process does not answer (gone, or not yet up)."""
    cmd = [binary("pollux-rpc"), "-s", socket, "-t", str(timeout), method]
    if params:
        cmd += ["-j", json.dumps(params)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else None


def initiator_counters(rpc_socket):
    """(requests, kicks) of the first VirtioBlk controller's first queue, or None."""
    info = rpc(rpc_socket, "bdev_virtio_get_controllers")
    if not info:
        return None
    q = info[0]["virtio"]["queues"][0]
    return q["requests"], q["kicks"]


def cpu_seconds(pid):
    """utime + stime of every thread of pid, in seconds (10 ms resolution)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def make_tmpfs_image(path, size=1 << 30):
    """A file of `size` bytes written with zeroes (reads of holes would not copy pages)."""
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    subprocess.run(["dd", "if=/dev/zero", "of=" + path, "bs=1M", "count=%d" % (size >> 20)],
                   check=True, capture_output=True)


class ContentionMeter:
    """How much CPU other processes took from the measured cores over a window, and how much
    the hypervisor stole (bench_common.h's ContentionMeter, for the Python benchmarks): busy
    time of those cores minus the CPU of the benchmark's own processes, in % of one core."""

    def __init__(self, cpus, pids):
        self.cpus, self.pids = set(cpus), list(pids)
        self.start = self._sample()

    def _sample(self):
        busy = steal = 0
        with open("/proc/stat") as f:
            for line in f:
                if not line.startswith("cpu") or line[3] == " ":
                    continue
                name, *v = line.split()
                if int(name[3:]) not in self.cpus:
                    continue
                user, nice, system, _idle, _iowait, irq, softirq, st = (int(x) for x in v[:8])
                busy += user + nice + system + irq + softirq
                steal += st
        ours = 0.0
        for pid in self.pids:
            try:
                ours += cpu_seconds(pid)
            except OSError:
                pass
        return time.monotonic(), busy / CLK_TCK, steal / CLK_TCK, ours

    def finish(self):
        """{"others_pct", "steal_pct"} since construction, or None under 0.5 s (ticks are 10 ms)."""
        t1, busy1, steal1, ours1 = self._sample()
        t0, busy0, steal0, ours0 = self.start
        wall = t1 - t0
        if wall < 0.5:
            return None
        return {"others_pct": max(0.0, (busy1 - busy0 - (ours1 - ours0)) / wall * 100),
                "steal_pct": (steal1 - steal0) / wall * 100}


def describe_contention(windows):
    """One line over every measured window: median and worst, flagged above 10% of a core."""
    windows = [w for w in windows if w]
    if not windows:
        return "contention not measured (no window of 0.5 s or more)"
    load = [w["others_pct"] + w["steal_pct"] for w in windows]
    worst = max(windows, key=lambda w: w["others_pct"] + w["steal_pct"])
    return ("other processes and steal took %.0f%% of a core on the measured cores (median of "
            "%d windows; worst %.0f%% + steal %.0f%%)%s"
            % (statistics.median(load), len(load), worst["others_pct"], worst["steal_pct"],
               " -- CONTENDED: rerun on a quiet machine" if statistics.median(load) > 10 else ""))


def wait_running(perf, rpc_socket, timeout=60.0):
    """Returns once pollux-perf has replayed its config (its RPC lists the bdevs: the jobs
    start right after), or at once if it has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and perf.poll() is None:
        if os.path.exists(rpc_socket) and rpc(rpc_socket, "bdev_get_bdevs", timeout=2):
            return
        time.sleep(0.05)


def run_perf(config, qd, seconds, cpu, rpc_socket=None, sample=None, measured_cpus=(),
             other_pids=(), mode=None, extra=(), perf_bin=None, on_command=None,
             whole_report=False):
    """pollux-perf, 4 KiB random reads at depth `qd` for `seconds` on core(s) `cpu` ("1",
    "0-1"). With `rpc_socket`, `sample(perf_pid)` (cumulative counters of the caller's choice)
    is read over the steady middle of the run, from 0.5 s after the jobs started to 0.5 s
    before they end, and the contention of `measured_cpus` over the same window.
    `on_command(argv)` is called before the run (to print it). Returns (pollux-perf's "total",
    or its whole report with `whole_report`; {"start", "end", "seconds", "contention"} or None
    without `rpc_socket`)."""
    cmd = [perf_bin or binary("pollux-perf"), "-c", config, "-q", str(qd), "-o", "4k",
           "-w", "randread", "-t", str(seconds), "-m", str(cpu), "--json"]
    if rpc_socket:
        unlink_quietly(rpc_socket)
        cmd += ["-r", rpc_socket]
    if mode:
        cmd += ["--mode", mode]
    cmd += list(extra)
    if on_command:
        on_command(cmd)
    perf = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    window = None
    try:
        if rpc_socket:
            wait_running(perf, rpc_socket)
            time.sleep(0.5)
            meter = ContentionMeter(measured_cpus, [perf.pid] + list(other_pids))
            t0 = time.monotonic()
            start = sample(perf.pid) if sample else None
            time.sleep(max(0.5, seconds - 1.0))
            end = sample(perf.pid) if sample else None
            window = {"start": start, "end": end, "seconds": time.monotonic() - t0,
                      "contention": meter.finish()}
        out, err = perf.communicate(timeout=seconds + 120)
    finally:
        if perf.poll() is None:
            perf.kill()
            perf.wait()
    if perf.returncode != 0:
        raise RuntimeError("pollux-perf failed (%d): %s" % (perf.returncode, err[-2000:]))
    report = json.loads(out)
    return (report if whole_report else report["total"]), window


def callgrind_total(out_file):
    """Instructions collected in a callgrind output file (its summary or totals line)."""
    events = None
    with open(out_file) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                events = int(line.split()[1])
    if events is None:
        raise RuntimeError("%s has no summary line" % out_file)
    return events


def callgrind_calls_into(out_file, prefix):
    """Instructions spent in calls into functions whose name starts with `prefix` (inclusive of
    what they call), from functions that do not: read from the call records of a callgrind
    output file (format: valgrind's docs/callgrind-format)."""
    names = {}  # "(id)" -> name: the file names each function once, then by id

    def resolve(spec):
        spec = spec.strip()
        if spec.startswith("("):
            ident, _, name = spec.partition(")")
            if name.strip():
                names[ident] = name.strip()
            return names.get(ident, "")
        return spec

    total = 0
    caller = callee = ""
    cost_line_next = False
    with open(out_file) as f:
        for line in f:
            if cost_line_next:
                cost_line_next = False
                if callee.startswith(prefix) and not caller.startswith(prefix):
                    total += int(line.split()[-1])
            elif line.startswith("fn="):
                caller = resolve(line[3:])
            elif line.startswith("cfn="):
                callee = resolve(line[4:])
            elif line.startswith("calls="):
                cost_line_next = True  # the next line: the call's position and inclusive cost
    return total


def marginal(run, short=2, long=5):
    """Per-request cost with start-up cancelled: run(seconds) returns (figures, requests) with
    figures a dict of instruction counts; each figure becomes (long - short) / (requests
    difference). Returns (per-request dict, requests of the long run)."""
    f1, n1 = run(short)
    f2, n2 = run(long)
    if n2 <= n1:
        raise RuntimeError("the %d s run made no more requests (%d) than the %d s run (%d)"
                           % (long, n2, short, n1))
    return {k: (f2[k] - f1[k]) / (n2 - n1) for k in f1}, n2


def medians(rows):
    """{figure: median over the rows that have it}, figures named by the first row."""
    keys = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    out = {}
    for k in keys:
        values = [row[k] for row in rows
                  if row.get(k) is not None and not isinstance(row[k], dict)]
        if values:
            out[k] = statistics.median(values)
    return out


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(value, spec):
    return "-" if value is None else spec % value


def alternate(args, report, groups, run, describe):
    """--rounds rounds, each running every group's variants (keys), the order within a group
    reversed every other round; prints describe(round, key, row) after each run. Returns
    {key: medians of its rows}."""
    rows = {}
    for r in range(args.rounds):
        for group in groups:
            for key in (group if r % 2 == 0 else group[::-1]):
                row = run(key)
                rows.setdefault(key, []).append(row)
                report.windows.append(row.get("contention"))
                print(describe(r + 1, key, row), flush=True)
    return {key: medians(v) for key, v in rows.items()}


class Report:
    """The figures against their goals, printed as a summary table, and every run's contention
    window (alternate() adds them)."""

    def __init__(self, title):
        self.title = title
        self.rows, self.results, self.windows = [], {}, []
        self.contention = None

    def add(self, figure, value, spec, goal, met):
        self.rows.append({"figure": figure, "value": value, "text": fmt(value, spec),
                          "goal": goal, "met": met})

    def print_summary(self):
        print("\nsummary (%s):" % self.title)
        width = max([len(r["figure"]) for r in self.rows] + [6])
        print("  %-*s %12s  %-16s %s" % (width, "figure", "value", "goal", "met"))
        for r in self.rows:
            met = "-" if r["met"] is None else ("met" if r["met"] else "NOT MET")
            print("  %-*s %12s  %-16s %s" % (width, r["figure"], r["text"], r["goal"], met))
        self.contention = describe_contention(self.windows)
        print(self.contention)


def fail(message):
    sys.exit("%s: %s" % (os.path.basename(sys.argv[0]), message))
