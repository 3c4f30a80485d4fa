"""CPU time of processes from /proc, for the benchmarks' CPU-per-I/O figures, and the four
4 KiB random cases the peer benchmarks share."""
import os

CLK_TCK = os.sysconf("SC_CLK_TCK")

# name: (fio/pollux-perf workload, queue depth)
RANDOM_4K_CASES = {
    "randread-qd1": ("randread", 1),
    "randread-qd32": ("randread", 32),
    "randwrite-qd1": ("randwrite", 1),
    "randwrite-qd32": ("randwrite", 32),
}


def cpu_seconds(pid):
    """utime+stime of process `pid`, every thread of it."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree_cpu_seconds(pid):
    """cpu_seconds of `pid` and its descendants; what has gone counts 0."""
    total = 0.0
    pending = [pid]
    while pending:
        p = pending.pop()
        try:
            total += cpu_seconds(p)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    pending.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total
