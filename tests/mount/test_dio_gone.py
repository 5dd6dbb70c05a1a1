"""test_dio_gone.py - callers that die in the middle of their asynchronous 4 GiB writes.

RD_DIO_GONE_ITERS times (default 50): a child (`refdio dio-write --async`) submits a 4 GiB
write of a pattern from its own memory and, at a random moment after the submission, is
SIGKILLed. Each time: the daemon ends the write at a chunk boundary (the daemon's own
account of the write, via `refdio stats`, says how many bytes), the file holds exactly that
byte-exact prefix of the child's data and nothing more (read back whole every
RD_DIO_GONE_FULL_EVERY-th time, default 8; else around every chunk boundary and at one random
place in each chunk; a stale page is planted once to see both checks fail), and the daemon
is still serving.
At the end: every caller gone was counted, a file nobody wrote to is unchanged, the
directory holds nothing unexpected, the daemon's log has no sanitizer report, it stops
cleanly, and fsck finds the image clean.
"""
import errno
import os
import random
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
import diolib  # noqa: E402
from diolib import MIB  # noqa: E402

SEED = int(os.environ.get("RD_TEST_SEED", str(int(time.time()))))
ITERS = int(os.environ.get("RD_DIO_GONE_ITERS", "50"))
CHUNK = {"refctx": MIB, "chunk": MIB, "bounce64": 256 * 1024}
FULL_EVERY = int(os.environ.get("RD_DIO_GONE_FULL_EVERY", "8"))


def gone_total(st):
    return sum(v["callers_gone"] for v in st["strategies"].values())


class CallerGone(unittest.TestCase):
    def test_sigkill_during_async_writes(self):
        print("seed %d (RD_TEST_SEED to replay)" % SEED, file=sys.stderr)
        rng = random.Random(SEED)
        work = tempfile.mkdtemp(prefix="refdio-dio-gone-", dir=diolib.test_dir())
        try:
            with Mount(size="6G", workdir=work) as m:
                self.run_all(m, rng)
                self.assertIsNone(diolib.sanitizer_report(m.read_log()))
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def run_all(self, m, rng):
        keep = os.urandom(3 * MIB + 1234)
        with open(m.path("keep"), "wb") as f:
            f.write(keep)
            os.fsync(f.fileno())
        target = m.path("t")
        before = gone_total(diolib.stats(m.mnt))
        cut_sizes = []
        full_checks = 0
        controls = 0
        t_start = time.monotonic()
        for it in range(ITERS):
            fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
            os.ftruncate(fd, 0)
            os.fsync(fd)            # the space it held is reusable at once
            os.close(fd)
            strategy = rng.choice(["refctx", "refctx", "chunk", "bounce64"])
            seed = 1000 + it
            p = subprocess.Popen([diolib.REFDIO, "dio-write", "--async", "--size", "4G",
                                  "--pattern", str(seed), "--strategy", strategy, target],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                line = p.stdout.readline()
                self.assertTrue(line.startswith("submitted "), "iteration %d: %r %s" %
                                (it, line, p.stderr.read() if p.poll() is not None else ""))
                wid = int(line.split()[1])
                time.sleep(rng.uniform(0, 0.15))
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=10)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                p.stdout.close()
                p.stderr.close()
            self.assertEqual(p.returncode, -signal.SIGKILL)

            # The daemon finishes the write on its own, at the next chunk boundary.
            deadline = time.time() + 20
            while True:
                st = diolib.stats(m.mnt)
                entry = next((a for a in st["async"] if a["id"] == wid), None)
                self.assertIsNotNone(entry, "iteration %d: write %d unknown" % (it, wid))
                if entry["state"] == "done":
                    break
                self.assertLess(time.time(), deadline, "iteration %d: write never ended" % it)
                time.sleep(0.02)
            self.assertEqual(entry["pid"], p.pid)
            res = entry["result"]
            size = os.stat(target).st_size
            if res < 0:
                self.assertEqual(res, -errno.ESRCH, "iteration %d" % it)
                self.assertEqual(size, 0)
            else:
                self.assertLess(res, 4 << 30, "iteration %d: finished before the kill" % it)
                self.assertEqual(res % CHUNK[strategy], 0, "iteration %d: %d" % (it, res))
                self.assertEqual(size, res, "iteration %d" % it)
                # Every byte on the first and every FULL_EVERY-th iteration; at every
                # chunk's edges and one place inside it on the others (the read-back of
                # every prefix was most of this test's time).
                if it % FULL_EVERY == 0:
                    self.assertTrue(diolib.check_pattern(target, seed, 0, size),
                                    "iteration %d: not the caller's bytes" % it)
                    full_checks += 1
                else:
                    self.assertTrue(diolib.check_pattern_chunks(target, seed, size,
                                                                CHUNK[strategy], rng),
                                    "iteration %d: not the caller's bytes" % it)
                if not controls and size >= 2 * CHUNK[strategy]:
                    # The negative control: both checks see one stale page at a chunk
                    # boundary (the file is truncated before the next write anyway).
                    with open(target, "r+b") as f:
                        os.pwrite(f.fileno(), bytes(4096), CHUNK[strategy])
                    self.assertFalse(diolib.check_pattern(target, seed, 0, size))
                    self.assertFalse(diolib.check_pattern_chunks(target, seed, size,
                                                                 CHUNK[strategy], rng))
                    controls += 1
            cut_sizes.append(max(res, 0))
        took = time.monotonic() - t_start

        after = diolib.stats(m.mnt)
        print("%d callers killed mid-write in %.1f s; prefixes kept: min %d MiB, median %d MiB, "
              "max %d MiB (%d read back whole, the others at each chunk); daemon RSS %d MiB" %
              (ITERS, took, min(cut_sizes) >> 20, sorted(cut_sizes)[len(cut_sizes) // 2] >> 20,
               max(cut_sizes) >> 20, full_checks, after["rss_bytes"] >> 20), file=sys.stderr)
        self.assertEqual(controls, 1, "no prefix of two chunks to run the control on")
        self.assertEqual(gone_total(after) - before, ITERS)
        self.assertEqual(after["async_running"], 0)
        for v in after["strategies"].values():
            self.assertEqual(v["held_now"], 0)
            self.assertEqual(v["inflight_now"], 0)
        # Nothing else changed.
        self.assertEqual(sorted(os.listdir(m.mnt)), ["keep", "lost+found", "t"])
        with open(m.path("keep"), "rb") as f:
            self.assertEqual(f.read(), keep)


if __name__ == "__main__":
    mountlib.main()
