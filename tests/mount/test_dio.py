"""test_dio.py - direct writes through a real mount: the dio ioctls and ordinary writes.

- Bound: one 2 GiB ioctl write with refctx and W = 4 holds at most 4 chunks (the daemon's
  own figures, via `refdio stats`); with pin it can never fit the mount's budget and
  fails before writing anything, while a 192 MiB pin holds all of it.
- Equivalence: on mounts with every strategy and issue mode, the same random sequence of
  ioctl writes (from this process's memory, with per-call strategies, windows and chunk
  sizes), ordinary writes (through FUSE, hence through the mount's strategy), pattern
  writes by `refdio dio-write` and truncates gives exactly the bytes of a model, and the
  files, read back with O_DIRECT (from the daemon, not the page cache), hold the same bytes
  on every mount.
- Mutating caller: the caller rewrites its buffer all through the write; every byte reads
  back without EIO (each region's checksum is of the bytes stored).
- Interrupt: a caller in a synchronous 8 GiB write is SIGKILLed; it is gone within a
  second, the write stopped on a chunk boundary with a prefix stored, the daemon goes on.
- Errors and edges: EFAULT, EBADF, EINVAL, ENOTTY, ENOENT/EAGAIN of the wait, stats on the
  root; ENOSPC part-way (a short write on a chunk boundary); O_DSYNC and the DSYNC flag
  survive a daemon crash.
The daemon's log must hold no sanitizer report; each mount ends with a clean fsck.
"""
import ctypes
import errno
import mmap
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
from diolib import GIB, MIB, SCALE  # noqa: E402

SEED = int(os.environ.get("RD_TEST_SEED", str(int(time.time()))))


def new_workdir(tag):
    return tempfile.mkdtemp(prefix="refdio-dio-%s-" % tag, dir=diolib.test_dir())


class DioMount(unittest.TestCase):
    """One roomy sparse image for the big writes."""

    @classmethod
    def setUpClass(cls):
        print("seed %d (RD_TEST_SEED to replay)" % SEED, file=sys.stderr)
        cls.work = new_workdir("big")
        cls.m = Mount(size="10G", workdir=cls.work).start()

    @classmethod
    def tearDownClass(cls):
        try:
            status = cls.m.stop()
            log = cls.m.read_log()
            assert status == 0, "daemon exited %d:\n%s" % (status, log)
            assert diolib.sanitizer_report(log) is None, log
            cls.m.check()
        finally:
            cls.m.kill()
            shutil.rmtree(cls.work, ignore_errors=True)

    def setUp(self):
        report = diolib.sanitizer_report(self.m.read_log())
        self.assertIsNone(report)

    def drop(self, name):
        """Removes a file and makes the removal durable, so its space is reused at once."""
        path = self.m.path(name)
        if os.path.exists(path):
            os.unlink(path)
        fd = os.open(self.m.mnt, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)

    # -- the bound ------------------------------------------------------------------------
    def test_bound(self):
        st0 = diolib.stats(self.m.mnt, reset=True)
        self.assertEqual(st0["default_strategy"], "refctx")
        big = 2 * GIB // SCALE
        rc, r = diolib.dio_write_cli(self.m.path("bound"), "--size", str(big), "--strategy",
                                     "refctx", "--window", "4", "--pattern", "5")
        self.assertEqual(rc, 0)
        self.assertEqual(r["bytes"], big)
        st = diolib.stats(self.m.mnt)["strategies"]["refctx"]
        print("refctx W=4, %d MiB: %.0f MiB/s, held peak %d KiB (one write %d KiB), "
              "chunks in flight max %d" % (big >> 20, r["mib_per_s"], st["held_peak"] >> 10,
                                           st["write_held_peak"] >> 10, st["inflight_max"]),
              file=sys.stderr)
        self.assertEqual(st["chunks"], big // MIB)
        self.assertLessEqual(st["write_held_peak"], 4 * MIB)
        self.assertLessEqual(st["held_peak"], 4 * MIB)
        self.assertLessEqual(st["inflight_max"], 4)
        self.assertGreater(st["write_held_peak"], 0)
        self.assertEqual(st["held_now"], 0)
        self.assertEqual(os.stat(self.m.path("bound")).st_size, big)
        for off in (0, big // 2 - 3 * diolib.PERIOD // 2, big - diolib.PERIOD):
            self.assertTrue(diolib.check_pattern(self.m.path("bound"), 5, off, diolib.PERIOD))
        self.drop("bound")

        # pin holds the whole write: 2 GiB can never fit the default 256 MiB budget (it
        # fails before anything is written), 192 MiB can and holds all of it.
        rc, r = diolib.dio_write_cli(self.m.path("bound"), "--size", "2G", "--strategy", "pin",
                                     "--pattern", "6", check=False)
        self.assertEqual(rc, 1)
        self.assertEqual(os.stat(self.m.path("bound")).st_size, 0)
        self.drop("bound")
        rc, r = diolib.dio_write_cli(self.m.path("bound"), "--size", "192M", "--strategy", "pin",
                                     "--pattern", "6")
        self.assertEqual(rc, 0)
        full = diolib.stats(self.m.mnt)
        st = full["strategies"]["pin"]
        print("pin, 192 MiB: %.0f MiB/s, held peak %d MiB (one write %d MiB), daemon RSS now "
              "%d MiB" % (r["mib_per_s"], st["held_peak"] >> 20, st["write_held_peak"] >> 20,
                          full["rss_bytes"] >> 20), file=sys.stderr)
        self.assertGreaterEqual(st["write_held_peak"], 192 * MIB)
        self.assertLessEqual(st["write_held_peak"], 192 * MIB + 2 * MIB)
        self.assertEqual(st["held_now"], 0)
        self.assertTrue(diolib.check_pattern(self.m.path("bound"), 6, 192 * MIB - diolib.PERIOD,
                                             diolib.PERIOD))
        self.drop("bound")

    # -- the caller rewriting its buffer -----------------------------------------------------
    def test_mutating_caller(self):
        for s in diolib.STRATEGIES:
            size = 96 * MIB // SCALE
            rc, r = diolib.dio_write_cli(self.m.path("mut"), "--size", str(size), "--strategy",
                                         s, "--mutate", "--offset", "12345")
            self.assertEqual(rc, 0, s)
            self.assertEqual(r["bytes"], size)
            self.assertGreater(r["mutations"], 0)
            # Whatever mix of old and new bytes was stored, it reads back: no EIO.
            with open(self.m.path("mut"), "rb", buffering=0) as f:
                n = 0
                while True:
                    b = f.read(4 * MIB)
                    if not b:
                        break
                    n += len(b)
            self.assertEqual(n, size + 12345)
        self.drop("mut")

    # -- an interrupted synchronous write -----------------------------------------------------
    def test_interrupt(self):
        path = self.m.path("intr")
        before = diolib.stats(self.m.mnt)["strategies"]["refctx"]
        p = subprocess.Popen([diolib.REFDIO, "dio-write", "--size", "8G", "--pattern", "9",
                              "--strategy", "refctx", path],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            # Wait until the write is well under way, then kill the caller in the middle.
            deadline = time.time() + 30
            while time.time() < deadline:
                st = diolib.stats(self.m.mnt)["strategies"]["refctx"]
                if st["chunks"] - before["chunks"] >= 16 and st["inflight_now"] > 0:
                    break
                time.sleep(0.02)
            else:
                self.fail("the 8 GiB write did not get going")
            time.sleep(random.Random(SEED).uniform(0, 0.3))
            self.assertIsNone(p.poll(), "the 8 GiB write ended before the kill")
            t0 = time.monotonic()
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
            dt = time.monotonic() - t0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stderr.close()
        print("SIGKILL in an 8 GiB write: caller gone after %.3f s" % dt, file=sys.stderr)
        self.assertLess(dt, 1.0)
        after = diolib.stats(self.m.mnt)["strategies"]["refctx"]
        self.assertEqual(after["interrupts"] - before["interrupts"], 1)
        self.assertEqual(after["inflight_now"], 0)
        size = os.stat(path).st_size
        self.assertGreater(size, 0)
        self.assertLess(size, 8 * GIB)
        self.assertEqual(size % MIB, 0)
        self.assertTrue(diolib.check_pattern(path, 9, 0, size))
        self.drop("intr")

    # -- errors and small things --------------------------------------------------------------
    def test_errors(self):
        path = self.m.path("err")
        mem = diolib.Memory(os.urandom(2 * MIB))
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        rfd = os.open(path, os.O_RDONLY)
        try:
            with self.assertRaises(OSError) as cm:
                diolib.dio_write(fd, 0x1000, MIB, 0)
            self.assertEqual(cm.exception.errno, errno.EFAULT)
            # Readable only part of the way: the readable prefix, on a chunk boundary.
            libc = ctypes.CDLL(None, use_errno=True)
            libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
            self.assertEqual(libc.munmap(mem.addr + MIB + 256 * 1024, MIB - 256 * 1024), 0)
            res, _ = diolib.dio_write(fd, mem.addr, 2 * MIB, 0, chunk=256 * 1024)
            self.assertEqual(res, MIB + 256 * 1024)
            self.assertEqual(os.fstat(fd).st_size, MIB + 256 * 1024)
            mem.close()
            mem = diolib.Memory(os.urandom(2 * MIB))
            with self.assertRaises(OSError) as cm:
                diolib.dio_write(rfd, mem.addr, MIB, 0)
            self.assertEqual(cm.exception.errno, errno.EBADF)
            for bad in ({"strategy": 9}, {"issue": 7}, {"chunk": 1000}, {"flags": 0x80}):
                with self.assertRaises(OSError) as cm:
                    diolib.dio_write(fd, mem.addr, MIB, 0, **bad)
                self.assertEqual(cm.exception.errno, errno.EINVAL, bad)
            with self.assertRaises(OSError) as cm:
                diolib.dio_wait(fd, 1 << 60)
            self.assertEqual(cm.exception.errno, errno.ENOENT)
            # An asynchronous write: polled (maybe still running), then collected once.
            wid = diolib.dio_submit(fd, mem.addr, 2 * MIB, 4096, strategy=3)
            self.assertGreater(wid, 0)
            try:
                res, ln = diolib.dio_wait(fd, wid, nowait=True)
            except OSError as e:
                self.assertEqual(e.errno, errno.EAGAIN)
                res, ln = diolib.dio_wait(fd, wid)
            self.assertEqual((res, ln), (2 * MIB, 2 * MIB))
            with self.assertRaises(OSError) as cm:
                diolib.dio_wait(fd, wid)
            self.assertEqual(cm.exception.errno, errno.ENOENT)
            os.lseek(fd, 4096, os.SEEK_SET)
            self.assertEqual(os.read(fd, 2 * MIB), mem.mm[:2 * MIB])
            # A zero-length write writes nothing.
            self.assertEqual(diolib.dio_write(fd, mem.addr, 0, 0)[0], 0)
            # Not ours: ENOTTY.
            import fcntl
            with self.assertRaises(OSError) as cm:
                fcntl.ioctl(fd, diolib._iowr(99, 8), bytearray(8), True)
            self.assertEqual(cm.exception.errno, errno.ENOTTY)
        finally:
            os.close(rfd)
            os.close(fd)
            mem.close()
        # Stats on the root and on a file agree on what they are.
        self.assertEqual(diolib.stats(self.m.mnt)["version"], 2)
        self.assertEqual(diolib.stats(path)["version"], 2)
        p = subprocess.run([diolib.REFDIO, "stats", "--help"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertIn("--watch", p.stdout)
        self.drop("err")


def read_direct(path):
    """A file's bytes read with O_DIRECT (aligned buffer): the daemon's, not the cache's."""
    buf = mmap.mmap(-1, 4 * MIB)
    out = bytearray()
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        while True:
            n = os.preadv(fd, [buf], len(out))
            out += buf[:n]
            if n < len(buf):
                return bytes(out)
    finally:
        os.close(fd)
        buf.close()


class Equivalence(unittest.TestCase):
    """The same operations on mounts of every strategy and issue mode, against a model."""

    OPS = int(os.environ.get("RD_DIO_EQ_OPS", "18"))
    SPACE = 12 * MIB

    def run_one(self, strategy, issue, seed):
        rng = random.Random(seed)
        work = new_workdir("eq")
        model = bytearray()
        try:
            with Mount(size="256M", opts="strategy=%s,issue=%s" % (strategy, issue),
                       workdir=work) as m:
                path = m.path("f")
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    for i in range(self.OPS):
                        op = rng.random()
                        off = rng.randrange(0, 8 * MIB)
                        if rng.random() < 0.3:
                            off &= ~4095
                        n = rng.choice([rng.randrange(1, 5000), rng.randrange(1, 3 * MIB),
                                        MIB, 2 * MIB + 4096])
                        if op < 0.45:
                            data = rng.randbytes(n)
                            mem = diolib.Memory(data)
                            kw = {"strategy": rng.randrange(0, 5), "issue": rng.randrange(0, 3),
                                  "window": rng.randrange(0, 9),
                                  "chunk": rng.choice([0, 64 * 1024, 100 * 1024, 256 * 1024,
                                                       MIB]),
                                  "flags": diolib.DSYNC if rng.random() < 0.1 else 0}
                            try:
                                res, _ = diolib.dio_write(fd, mem.addr, n, off, **kw)
                            finally:
                                mem.close()
                            self.assertEqual(res, n, kw)
                        elif op < 0.8:
                            data = rng.randbytes(n)
                            self.assertEqual(os.pwrite(fd, data, off), n)
                        elif op < 0.9:
                            s = rng.randrange(1, 100)
                            data = diolib.pattern(s, off, n)
                            rc, r = diolib.dio_write_cli(path, "--pattern", str(s), "--offset",
                                                         str(off), "--size", str(n))
                            self.assertEqual((rc, r["bytes"]), (0, n))
                        else:
                            size = rng.randrange(0, len(model) + 1)
                            os.ftruncate(fd, size)
                            del model[size:]
                            continue
                        if len(model) < off + n:
                            model.extend(bytes(off + n - len(model)))
                        model[off:off + n] = data
                        self.assertEqual(os.fstat(fd).st_size, len(model))
                        got = os.pread(fd, len(model) + 1, 0)
                        if got != model:
                            bad = next(k for k in range(len(model)) if got[k] != model[k])
                            self.fail("%s/%s op %d: differs at %d" % (strategy, issue, i, bad))
                finally:
                    os.close(fd)
                st = diolib.stats(m.mnt)["strategies"][strategy]
                self.assertGreater(st["writes"], 0)
                if issue == "punt":
                    self.assertGreater(st["punted_submits"], 0)
                elif strategy != "bounce64":       # bounce64 is always punted
                    self.assertGreater(st["inline_submits"], 0)
                # What the daemon stored: read with O_DIRECT, past the page cache.
                stored = read_direct(path)
                self.assertIsNone(diolib.sanitizer_report(m.read_log()))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.assertEqual(len(stored), len(model), (strategy, issue))
        return stored

    def test_every_strategy_and_issue_mode(self):
        seed = SEED
        results = {}
        for s in diolib.STRATEGIES:
            for i in diolib.ISSUES:
                results[(s, i)] = self.run_one(s, i, seed)
        # The files themselves, not the models (one seed gives one model): every strategy
        # and issue mode stored the same bytes.
        first_key, first = next(iter(results.items()))
        for k, v in results.items():
            if v != first:
                bad = next(j for j in range(len(v)) if v[j] != first[j])
                self.fail("%s/%s and %s/%s differ at byte %d" % (k + first_key + (bad,)))


class SmallImage(unittest.TestCase):
    def test_enospc_part_way(self):
        work = new_workdir("nospc")
        try:
            with Mount(size="64M", workdir=work) as m:
                rc, r = diolib.dio_write_cli(m.path("big"), "--size", "256M", "--pattern", "3")
                print("ENOSPC part-way: %d MiB of 256 MiB" % (r["bytes"] >> 20), file=sys.stderr)
                self.assertEqual(rc, 3)
                self.assertTrue(r["short"])
                self.assertGreater(r["bytes"], 0)
                self.assertEqual(r["bytes"] % MIB, 0)
                self.assertEqual(os.stat(m.path("big")).st_size, r["bytes"])
                self.assertTrue(diolib.check_pattern(m.path("big"), 3, 0, r["bytes"]))
                st = diolib.stats(m.mnt)["strategies"]["refctx"]
                self.assertEqual(st["short_writes"], 1)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def test_dsync_survives_a_crash(self):
        work = new_workdir("dsync")
        try:
            m = Mount(size="256M", workdir=work).start()
            try:
                a = os.urandom(3 * MIB + 77)
                b = os.urandom(MIB + 5)
                mem = diolib.Memory(a)
                fd = os.open(m.path("a"), os.O_WRONLY | os.O_CREAT, 0o644)
                dfd = os.open(m.mnt, os.O_RDONLY)
                os.fsync(dfd)       # the names themselves
                try:
                    self.assertEqual(diolib.dio_write(fd, mem.addr, len(a), 100,
                                                      flags=diolib.DSYNC)[0], len(a))
                finally:
                    os.close(fd)
                    mem.close()
                fd = os.open(m.path("b"), os.O_WRONLY | os.O_CREAT | os.O_DSYNC, 0o644)
                os.fsync(dfd)
                os.close(dfd)
                try:
                    self.assertEqual(os.pwrite(fd, b, 4096), len(b))
                finally:
                    os.close(fd)
            finally:
                m.kill()    # a crash: nothing more is written
            with Mount(image=m.image, workdir=work) as m2:
                with open(m2.path("a"), "rb") as f:
                    self.assertEqual(f.read(), bytes(100) + a)
                with open(m2.path("b"), "rb") as f:
                    self.assertEqual(f.read(), bytes(4096) + b)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    mountlib.main()
