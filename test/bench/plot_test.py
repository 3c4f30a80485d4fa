#!/usr/bin/env python3
"""bench/plot.py on the small sample outputs in data/: every picture is drawn, is a PNG of the
size plot.py draws, and a bad input fails with a message naming the file. Exits 77 (CTest's
skip) when this Python has no matplotlib (scripts/setup.sh installs python3-matplotlib)."""
import os
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PLOT = os.path.join(ROOT, "bench", "plot.py")
DATA = os.path.join(HERE, "data")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) from the IHDR chunk, after checking the signature."""
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise AssertionError("%s is not a PNG" % path)
    return struct.unpack(">II", head[16:24])


def run_plot(*args):
    return subprocess.run([sys.executable, PLOT] + list(args), capture_output=True, text=True,
                          timeout=120)


class PlotTest(unittest.TestCase):
    def setUp(self):
        self.out = tempfile.TemporaryDirectory(prefix="pollux-plot-test-")

    def tearDown(self):
        self.out.cleanup()

    def check_png(self, name, min_width, min_height):
        path = os.path.join(self.out.name, name)
        self.assertTrue(os.path.isfile(path), "%s was not written" % name)
        width, height = png_size(path)
        self.assertGreaterEqual(width, min_width, name)
        self.assertGreaterEqual(height, min_height, name)
        # matplotlib has written the whole file: PNG's last chunk is IEND.
        with open(path, "rb") as f:
            self.assertTrue(f.read().endswith(b"IEND\xaeB`\x82"), "%s is truncated" % name)

    def test_draws_every_picture_from_the_samples(self):
        depth = sorted(os.path.join(DATA, f) for f in os.listdir(DATA) if f.startswith("perf_qd"))
        r = run_plot("--scheduler", os.path.join(DATA, "scheduler_bench.txt"),
                     "--engines", os.path.join(DATA, "file_bench.json"),
                     "--depth", *depth, "--out", self.out.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.check_png("cpu-vs-load.png", 500, 400)
        self.check_png("latency-percentiles.png", 1000, 600)
        self.check_png("iops-vs-depth.png", 600, 400)
        self.assertEqual(sorted(os.listdir(self.out.name)),
                         ["cpu-vs-load.png", "iops-vs-depth.png", "latency-percentiles.png"])

    def test_draws_only_what_it_is_given(self):
        r = run_plot("--depth", os.path.join(DATA, "perf_qd1.json"), "--out", self.out.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.listdir(self.out.name), ["iops-vs-depth.png"])

    def test_an_input_without_json_fails_naming_the_file(self):
        bad = os.path.join(self.out.name, "text-only.txt")
        with open(bad, "w") as f:
            f.write("round 1 null peak, poll mode\n")
        r = run_plot("--scheduler", bad, "--out", self.out.name)
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s: no JSON document in it" % bad, r.stderr)

    def test_an_input_of_another_bench_fails_naming_what_is_missing(self):
        r = run_plot("--scheduler", os.path.join(DATA, "perf_qd1.json"), "--out", self.out.name)
        self.assertEqual(r.returncode, 1)
        self.assertIn("perf_qd1.json: no results/cpu in it", r.stderr)

    def test_nothing_to_draw_is_a_usage_error(self):
        r = run_plot("--out", self.out.name)
        self.assertEqual(r.returncode, 2)
        self.assertIn("nothing to draw", r.stderr)


if __name__ == "__main__":
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("skipped: %s has no matplotlib (apt install python3-matplotlib)" % sys.executable)
        sys.exit(77)
    unittest.main()
