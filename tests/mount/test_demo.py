"""test_demo.py - `refdio demo all --fast` end to end, and `refdio stats --watch`.

The demo: every scenario's verdict line says PASS (read from the lines a program reads,
"verdict NAME: PASS|FAIL ...", not from the prose), the mounted scenarios say fsck clean,
the exit status is 0, the summary table lists all four, and afterwards nothing is mounted
below the demo's directory and nothing is left in it. Negative controls: the verdict
checker rejects a transcript with a FAIL or a missing verdict, and a real run with
REFDIO_DEMO_FAULT=verify (the byte check compares with the wrong pattern) must end with
"verdict caller-exit: FAIL", exit 1, and clean up all the same.

SIGINT in the middle of a scenario: exit 130, a FAIL verdict, nothing mounted or left.

stats --watch: on a pipe it prints one plain line per interval (no terminal escapes) with
the live figures, and SIGINT ends it with status 0; a bad --interval is refused.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import mountlib  # noqa: E402
from mountlib import Mount  # noqa: E402

REFDIO = mountlib.REFDIO
SCENARIOS = ("caller-exit", "huge-write", "strategies", "interrupt")
MOUNTED = ("caller-exit", "huge-write", "interrupt")
VERDICT = re.compile(r"^verdict ([a-z-]+): (PASS|FAIL) (.*)$")


def verdicts(text):
    """{scenario: (PASS|FAIL, detail)} from the verdict lines of a transcript."""
    out = {}
    for line in text.splitlines():
        m = VERDICT.match(line)
        if m:
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


def check_all(text):
    """None when every scenario passed (fsck clean where it mounts), else why not."""
    v = verdicts(text)
    for s in SCENARIOS:
        if s not in v:
            return "no verdict for %s" % s
        if v[s][0] != "PASS":
            return "%s: %s %s" % (s, v[s][0], v[s][1])
        if s in MOUNTED and "fsck clean" not in v[s][1]:
            return "%s: no 'fsck clean' in %r" % (s, v[s][1])
    return None


def mounts_below(path):
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(real + "/")]


class Demo(unittest.TestCase):
    def setUp(self):
        # The raw-disk row and the bench's baseline need a disk filesystem (not tmpfs).
        self.dir = tempfile.mkdtemp(prefix="refdio-test-demo-", dir="/var/tmp")

    def tearDown(self):
        left = mounts_below(self.dir)
        for mp in left:      # only mounts below our own directory
            subprocess.run(["fusermount3", "-u", "-z", mp])
        shutil.rmtree(self.dir, ignore_errors=True)
        self.assertEqual(left, [], "left mounted")

    def demo(self, *args, env=None):
        t0 = time.monotonic()
        p = subprocess.run([REFDIO, "demo", *args, "--fast", "--dir", self.dir],
                           capture_output=True, text=True, timeout=900, env=env)
        sys.stderr.write(p.stdout[-6000:] + p.stderr[-3000:])
        sys.stderr.write("\n(%s took %.1f s)\n" % (" ".join(args), time.monotonic() - t0))
        self.assertIsNone(mountlib.sanitizer_report(p.stdout + p.stderr))
        self.assertEqual(mounts_below(self.dir), [], "left mounted")
        self.assertEqual(os.listdir(self.dir), [], "scratch files left")
        return p

    def test_checker_negative_control(self):
        good = "\n".join("verdict %s: PASS x, fsck clean (1.0 s)" % s for s in SCENARIOS)
        self.assertIsNone(check_all(good))
        self.assertIsNotNone(check_all(good.replace("caller-exit: PASS", "caller-exit: FAIL")))
        self.assertIsNotNone(check_all(good.replace("verdict interrupt", "interrupt")))
        self.assertIsNotNone(check_all(good.replace("fsck clean", "fsck NOT CLEAN")))

    def test_all_fast(self):
        p = self.demo("all")
        self.assertIsNone(check_all(p.stdout), p.stdout[-3000:])
        self.assertEqual(p.returncode, 0)
        summary = p.stdout[p.stdout.index("== summary"):]
        for s in SCENARIOS:
            self.assertRegex(summary, r"(?m)^%s +PASS " % re.escape(s))

    def test_fault_is_seen(self):
        env = dict(os.environ, REFDIO_DEMO_FAULT="verify")
        p = self.demo("caller-exit", env=env)
        v = verdicts(p.stdout)
        self.assertEqual(v.get("caller-exit", ("none",))[0], "FAIL", p.stdout[-2000:])
        self.assertIn("differ", v["caller-exit"][1])
        self.assertEqual(p.returncode, 1)

    def test_sigint_cleans_up(self):
        # SIGINT to the demo alone, in the middle of huge-write's write: it ends the write,
        # unmounts, removes its scratch and exits 130.
        p = subprocess.Popen([REFDIO, "demo", "huge-write", "--fast", "--dir", self.dir],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out = ""
        try:
            # The first live line: the write is being submitted or runs.
            while "chunks in flight" not in out:
                line = p.stdout.readline()
                if not line:
                    break
                out += line
            self.assertIn("chunks in flight", out,
                          p.stderr.read() if p.poll() is not None else "")
            p.send_signal(signal.SIGINT)
            rest, err = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        out += rest
        sys.stderr.write(out[-3000:] + err[-2000:])
        self.assertEqual(p.returncode, 130, err)
        self.assertRegex(out, r"(?m)^verdict huge-write: FAIL interrupted")
        # It stopped after the write (cut short at a chunk boundary when the interrupt came
        # in time), without the steps after it.
        self.assertIn("Interrupted: the write ended after", out)
        self.assertNotIn("-- the raw disk", out)
        self.assertIn("interrupted", err)
        self.assertIsNone(mountlib.sanitizer_report(out + err))
        self.assertEqual(mounts_below(self.dir), [], "left mounted")
        self.assertEqual(os.listdir(self.dir), [], "scratch files left")

    def test_bad_usage(self):
        p = subprocess.run([REFDIO, "demo", "no-such-scenario"], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown scenario", p.stderr)


class StatsWatch(unittest.TestCase):
    def test_watch_plain_lines_and_sigint(self):
        with Mount(size="256M") as m:
            p = subprocess.Popen([REFDIO, "stats", "--watch", "--interval", "0.2", m.mnt],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                time.sleep(1.5)
                w = subprocess.run([REFDIO, "dio-write", "--size", "8M",
                                    os.path.join(m.mnt, "f")], capture_output=True, text=True)
                self.assertEqual(w.returncode, 0, w.stderr)
                time.sleep(1.0)
                p.send_signal(signal.SIGINT)
                out, err = p.communicate(timeout=10)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            self.assertEqual(p.returncode, 0, err)
            lines = out.splitlines()
            self.assertGreaterEqual(len(lines), 5, out)
            self.assertNotIn("\033", out)
            for ln in lines:
                self.assertRegex(ln, r"^\d\d:\d\d:\d\d  (-|[\d.]+ MiB/s)  in flight \d+ "
                                 r"chunks  held \S+ of budget \S+  written \S+  callers gone "
                                 r"\d+  interrupts \d+  RSS \S+$")
            self.assertIn("written 8.0M", lines[-1])
            # A rate was measured over the write (a non-zero one on some line).
            self.assertTrue(any(re.search(r"  [1-9][\d.]* MiB/s|  0\.[0-9]*[1-9]", ln)
                                for ln in lines), out)
            for bad in ("0", "x", "-1", "99999"):
                r = subprocess.run([REFDIO, "stats", "--watch", "--interval", bad, m.mnt],
                                   capture_output=True, text=True, timeout=10)
                self.assertEqual(r.returncode, 2, bad)
                self.assertIn("--interval", r.stderr)


if __name__ == "__main__":
    mountlib.main()
