"""test_dio_race.py - direct-write ioctls racing ordinary buffered writes of the same file.

The race (issue 10, item 1): one thread does 1000-byte buffered pwrite()s at offset 0 of a
1 MiB file while four threads issue 1 MiB REFDIO_IOC_DIO_WRITEs at offset 0 of the same
file. A buffered write into a partial page holds the page locked until its FUSE_WRITE is
answered; the daemon invalidates the kernel's cache after each ioctl write, and that call
waits for the same page locks. If the invalidation ran on a thread that a FUSE_WRITE needs
(a dio worker), the mount would hang.

Two mounts race at once for RD_RACE_SECONDS (default 20): one with the default options and
one with `-o dio_workers=1,threads=1` (the fewest threads: one invalidation on the wrong
thread is enough to hang). Every 0.25 s the test reads the workers' counters: each mount's
buffered writes and its ioctl writes must both advance at least once every STALL seconds.
Then SIGTERM reaches each daemon while its race still runs: it must exit 0 within
STALL seconds, the racers must end (with errors once the mount is gone), and fsck must
find the image clean.

Negative control: the progress monitor must see a stall when there is one. After the
race, one daemon is SIGSTOPped for longer than STALL; the monitor must report that mount
as stalled, and progress must resume after SIGCONT.

The racers run in a child process (this script with --worker), so that a hang in the
kernel can never take the test itself down: on failure the daemons are SIGKILLed (which
aborts the FUSE connection and frees every waiter) and the workers are killed.
"""
import mmap
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from mountlib import Mount  # noqa: E402
import diolib  # noqa: E402
from diolib import MIB  # noqa: E402

SECONDS = float(os.environ.get("RD_RACE_SECONDS", "20"))
STALL = float(os.environ.get("RD_RACE_STALL", "5"))   # no progress this long = hung
NCOUNTERS = 3           # buffered writes, ioctl writes, errors
CONFIGS = [("default", None), ("minimal", "dio_workers=1,threads=1")]


def worker(path, counters_path):
    """Races until killed; counts into the shared file (u64 each)."""
    fd_cnt = os.open(counters_path, os.O_RDWR)
    cnt = mmap.mmap(fd_cnt, 8 * NCOUNTERS)
    lock = threading.Lock()

    def bump(i):
        with lock:
            v = struct.unpack_from("<Q", cnt, 8 * i)[0]
            struct.pack_into("<Q", cnt, 8 * i, v + 1)

    def buffered():
        fd = os.open(path, os.O_RDWR)
        data = os.urandom(1000)
        while True:
            try:
                os.pwrite(fd, data, 0)
                bump(0)
            except OSError:
                bump(2)
                time.sleep(0.01)

    def ioctls(seed):
        fd = os.open(path, os.O_RDWR)
        mem = diolib.Memory(diolib.pattern(seed, 0, MIB))
        while True:
            try:
                diolib.dio_write(fd, mem.addr, MIB, 0)
                bump(1)
            except OSError:
                bump(2)
                time.sleep(0.01)

    threads = [threading.Thread(target=buffered, daemon=True)]
    threads += [threading.Thread(target=ioctls, args=(s,), daemon=True) for s in range(4)]
    for t in threads:
        t.start()
    while True:
        time.sleep(3600)


class Racer:
    """One mount and its race."""

    def __init__(self, name, opts, work):
        self.name = name
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.m = Mount(size="256M", opts=opts, workdir=self.dir)
        self.counters = os.path.join(self.dir, "counters")
        with open(self.counters, "wb") as f:
            f.write(bytes(8 * NCOUNTERS))
        self.proc = None
        self.last = None
        self.last_change = [0.0, 0.0]
        self.max_gap = [0.0, 0.0]

    def start(self):
        self.m.start()
        path = self.m.path("f")
        with open(path, "wb") as f:
            f.write(os.urandom(MIB))
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", path,
                                      self.counters], start_new_session=True)
        now = time.monotonic()
        self.last_change = [now, now]

    def read(self):
        with open(self.counters, "rb") as f:
            return struct.unpack("<%dQ" % NCOUNTERS, f.read(8 * NCOUNTERS))

    def poll(self, now):
        """Updates the progress marks; returns the longest current gap."""
        c = self.read()
        for i in (0, 1):
            if self.last is None or c[i] != self.last[i]:
                self.last_change[i] = now
            self.max_gap[i] = max(self.max_gap[i], now - self.last_change[i])
        self.last = c
        return max(now - self.last_change[0], now - self.last_change[1])

    def kill_worker(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def cleanup(self):
        """Whatever state the mount is in, leave nothing behind (bounded waits only)."""
        proc = self.m.proc
        if proc is not None:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(proc.pid, sig)
                except ProcessLookupError:
                    pass
            # A daemon thread stuck in the kernel (a hung invalidation) survives SIGKILL
            # and keeps the connection open: a forced unmount aborts the connection,
            # which ends every request and lets the daemon die.
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                subprocess.run(["umount", "-f", self.m.mnt], capture_output=True)
                proc.wait(timeout=30)
            self.m.proc = None
            self.m.logf.close()
        self.m._cleanup_mount()
        self.kill_worker()


class Race(unittest.TestCase):
    def test_race_then_sigterm(self):
        work = tempfile.mkdtemp(prefix="refdio-race-", dir=diolib.test_dir())
        racers = [Racer(n, o, work) for n, o in CONFIGS]
        ok = False
        try:
            for r in racers:
                r.start()
            self.run_race(racers)
            self.negative_control(racers[0])
            for r in racers:
                self.sigterm(r)
            ok = True
        finally:
            for r in racers:
                r.cleanup()
            if ok:
                shutil.rmtree(work, ignore_errors=True)
            else:
                print("work directory kept: %s" % work, file=sys.stderr)

    def run_race(self, racers):
        t0 = time.monotonic()
        while time.monotonic() - t0 < SECONDS:
            now = time.monotonic()
            for r in racers:
                gap = r.poll(now)
                self.assertLessEqual(gap, STALL, "%s: no progress for %.1f s (counters %s)" %
                                     (r.name, gap, r.read()))
                self.assertIsNone(r.proc.poll(), "%s: the racers died" % r.name)
            time.sleep(0.25)
        for r in racers:
            c = r.read()
            print("%s: %.0f s: %d buffered writes, %d ioctl writes, %d errors; longest "
                  "pause %.2f s (buffered) / %.2f s (ioctl)" %
                  (r.name, SECONDS, c[0], c[1], c[2], r.max_gap[0], r.max_gap[1]),
                  file=sys.stderr)
            self.assertGreater(c[0], 0)
            self.assertGreater(c[1], 0)
            self.assertIsNone(diolib.sanitizer_report(r.m.read_log()))

    def negative_control(self, r):
        """The monitor must see a stall: the daemon SIGSTOPped for longer than STALL."""
        os.kill(r.m.proc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            seen = False
            while time.monotonic() - t0 < STALL + 1.5 and not seen:
                seen = r.poll(time.monotonic()) > STALL
                time.sleep(0.25)
        finally:
            os.kill(r.m.proc.pid, signal.SIGCONT)
        self.assertTrue(seen, "the monitor did not notice a stopped daemon")
        # And progress comes back once it runs again.
        before = r.read()
        t0 = time.monotonic()
        while time.monotonic() - t0 < STALL:
            c = r.read()
            if c[0] > before[0] and c[1] > before[1]:
                break
            time.sleep(0.1)
        else:
            self.fail("%s: no progress after SIGCONT" % r.name)
        print("%s: negative control: a SIGSTOP of %.1f s was seen as a stall; progress resumed "
              "%.2f s after SIGCONT" % (r.name, STALL + 1.5, time.monotonic() - t0), file=sys.stderr)

    def sigterm(self, r):
        """SIGTERM while the race runs: a clean stop within STALL seconds."""
        t = time.monotonic()
        os.kill(r.m.proc.pid, signal.SIGTERM)
        try:
            status = r.m.proc.wait(timeout=STALL)
        except subprocess.TimeoutExpired:
            self.fail("%s: the daemon did not exit within %.0f s of SIGTERM" % (r.name, STALL))
        took = time.monotonic() - t
        print("%s: SIGTERM during the race: daemon exited %d in %.2f s" % (r.name, status, took),
              file=sys.stderr)
        log = r.m.read_log()
        self.assertEqual(status, 0, log)
        self.assertIsNone(diolib.sanitizer_report(log))
        r.m.proc = None
        r.m.logf.close()
        r.m._cleanup_mount()
        r.kill_worker()
        r.m.check()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3])
    else:
        unittest.main(verbosity=2)
