"""A one-node Ceph cluster on loopback for the benchmarks (the recipe of shared/ceph-one-node.md,
with the tests' config, test/support/ceph/ceph.conf.in): a mon and a memstore OSD in a
temporary directory, pool "rbd", no authentication, the RBD cache off. Started and torn down by
a `with`.

    with CephCluster(cpus="0") as cluster:
        cluster.create_image("img", "1G")
        ... cluster.conf (the ceph.conf path), cluster.env (CEPH_CONF set) ...
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

# The tests' config (test/support/ceph/ceph.conf.in), its @NAME@s filled in.
CONF_TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "support",
                             "ceph", "ceph.conf.in")


def _free_port():
    # A mon port whose next 99 (the daemons' range) are free too, as far as a bind tells.
    for base in range(41000, 60000, 100):
        try:
            for port in (base, base + 1):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no free port range for the mon")


class CephCluster:
    def __init__(self, cpus=None):
        self.cpus = cpus  # taskset list for the daemons, or None
        self.dir = None
        self.pids = []

    @property
    def conf(self):
        return os.path.join(self.dir, "ceph.conf")

    @property
    def env(self):
        return dict(os.environ, CEPH_CONF=self.conf)

    def _run(self, *argv, timeout=60):
        subprocess.run(list(argv), env=self.env, check=True, timeout=timeout,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def _daemon(self, *argv):
        prefix = ["taskset", "-c", self.cpus] if self.cpus is not None else []
        log = open(os.path.join(self.dir, "log", argv[0] + ".out"), "ab")
        proc = subprocess.Popen(prefix + list(argv) + ["-f"], env=self.env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.pids.append(proc)

    def __enter__(self):
        for program in ("ceph-mon", "ceph-osd", "ceph", "rbd", "monmaptool"):
            if shutil.which(program) is None:
                raise RuntimeError(f"{program} is not installed (scripts/setup.sh installs it)")
        self.dir = tempfile.mkdtemp(prefix="pollux-ceph-bench-")
        for sub in ("mon", "osd", "run", "log", "crash"):
            os.mkdir(os.path.join(self.dir, sub))
        port = _free_port()
        fsid = str(uuid.uuid4())
        with open(CONF_TEMPLATE) as f:
            conf = f.read()
        for name, value in (("FSID", fsid), ("PORT_MIN", port + 1), ("PORT_MAX", port + 99),
                            ("PORT", port), ("DIR", self.dir)):
            conf = conf.replace(f"@{name}@", str(value))
        with open(self.conf, "w") as f:
            f.write(conf)
        open(os.path.join(self.dir, "keyring"), "w").close()
        try:
            monmap = os.path.join(self.dir, "monmap")
            self._run("monmaptool", "--create", "--fsid", fsid, "--addv", "a",
                      f"[v2:127.0.0.1:{port}]", monmap)
            self._run("ceph-mon", "-i", "a", "--mkfs", "--monmap", monmap)
            self._daemon("ceph-mon", "-i", "a")
            osd_uuid = str(uuid.uuid4())
            self._run("ceph", "osd", "new", osd_uuid, "0")
            self._run("ceph-osd", "-i", "0", "--mkfs", "--osd-uuid", osd_uuid)
            self._daemon("ceph-osd", "-i", "0")
            self._run("ceph", "osd", "pool", "create", "rbd", "8", "8")
            self._run("rbd", "pool", "init", "rbd")  # returns once the PGs are active
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def create_image(self, name, size):
        self._run("rbd", "create", "--size", size, f"rbd/{name}")

    def daemon_pids(self):
        return [p.pid for p in self.pids]

    def __exit__(self, *exc):
        # One at a time, the OSD first: it would otherwise wait 5 s for the dead mon.
        for proc in reversed(self.pids):
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.pids = []
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
