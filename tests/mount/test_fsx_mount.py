"""test_fsx_mount.py - the model-based random test, through a real mount.

Random writes (1 byte .. 2 MiB at unaligned offsets), reads, truncates, fallocate modes,
renames, unlinks and xattrs on a handful of files, compared byte for byte with an
in-memory model. Every few hundred operations the daemon is either unmounted cleanly
(everything must match exactly) or killed with SIGKILL and mounted again (the journal is
replayed): then every file that was fsynced after its last change must match exactly,
and files changed since are adopted from disk. fsck must be clean every time.

Runs once with buffered I/O and once with O_DIRECT. Environment: RD_FSX_MOUNT_OPS
(default 3000 per mode), RD_TEST_SEED.
"""
import errno
import mmap
import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from mountlib import Mount  # noqa: E402

FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 1, 2, 16
MAX_SIZE = 24 << 20
NAMES = ["f%d" % i for i in range(6)]


def fallocate(fd, mode, off, length):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    if libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class Model:
    """name -> {"data": bytearray, "xattrs": dict, "synced": bool}"""

    def __init__(self):
        self.files = {}


class FsxMount(unittest.TestCase):
    def run_mode(self, direct):
        seed = int(os.environ.get("RD_TEST_SEED", time.time()))
        ops = int(os.environ.get("RD_FSX_MOUNT_OPS", "3000"))
        print("seed %d (RD_TEST_SEED to replay), %d ops, %s" % (seed, ops, "O_DIRECT" if direct else "buffered"),
              file=sys.stderr)
        rng = random.Random(seed)
        model = Model()
        m = Mount(size="1G")
        m.start()
        stats = {"ops": 0, "unmounts": 0, "kills": 0, "adopted": 0}
        try:
            top = m.path("t")
            os.mkdir(top)
            for i in range(ops):
                self.step(rng, model, top, direct, stats)
                stats["ops"] += 1
                if i and i % 400 == 0:
                    if rng.random() < 0.5:
                        status = m.stop()
                        self.assertEqual(status, 0, m.read_log())
                        stats["unmounts"] += 1
                        m.check()
                        m.start()
                        self.verify_all(model, top, exact_all=True)
                    else:
                        m.kill()
                        stats["kills"] += 1
                        m.check()      # fsck replays the journal in memory: must be clean
                        m.start()
                        stats["adopted"] += self.verify_all(model, top, exact_all=False)
                        status = m.stop()
                        self.assertEqual(status, 0, m.read_log())
                        m.check()
                        m.start()
            self.verify_all(model, top, exact_all=True)
        finally:
            status = m.stop()
            m.kill()
        self.assertEqual(status, 0, m.read_log())
        m.check()
        print("fsx-mount %s: %s" % ("direct" if direct else "buffered", stats), file=sys.stderr)

    # -- one random operation ---------------------------------------------------------------
    def open_flags(self, direct):
        return os.O_RDWR | (os.O_DIRECT if direct else 0)

    def do_write(self, fd, data, off, direct):
        if not direct:
            return os.pwrite(fd, data, off)
        buf = mmap.mmap(-1, max(len(data), 1))
        buf[:len(data)] = data
        return os.pwritev(fd, [memoryview(buf)[:len(data)]], off)

    def do_read(self, fd, length, off, direct):
        if not direct:
            return os.pread(fd, length, off)
        buf = mmap.mmap(-1, max(length, 1))
        n = os.preadv(fd, [memoryview(buf)[:length]], off)
        return bytes(buf[:n])

    def step(self, rng, model, top, direct, stats):
        name = rng.choice(NAMES)
        path = os.path.join(top, name)
        f = model.files.get(name)
        op = rng.random()
        if f is None:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            os.close(fd)
            model.files[name] = {"data": bytearray(), "xattrs": {}, "synced": False}
            return
        if op < 0.40 or op >= 0.60 and op < 0.90:
            f["synced"] = False                         # every change but reads and fsync
        if op < 0.40:                                   # write
            size = len(f["data"])
            off = rng.randrange(0, min(MAX_SIZE, size + (1 << 20)) + 1)
            length = rng.choice([1, rng.randrange(1, 4096), rng.randrange(1, 1 << 20),
                                 rng.randrange(1, 2 << 20)])
            length = min(length, MAX_SIZE - off) or 1
            data = rng.randbytes(length)
            fd = os.open(path, self.open_flags(direct))
            try:
                self.assertEqual(self.do_write(fd, data, off, direct), length)
            finally:
                os.close(fd)
            d = f["data"]
            if off > len(d):
                d.extend(b"\0" * (off - len(d)))
            d[off:off + length] = data
        elif op < 0.60:                                 # read and compare
            d = f["data"]
            off = rng.randrange(0, len(d) + 1)
            length = rng.randrange(0, (2 << 20) + 1)
            fd = os.open(path, self.open_flags(direct) & ~os.O_RDWR | os.O_RDONLY)
            try:
                got = self.do_read(fd, length, off, direct)
            finally:
                os.close(fd)
            self.assertEqual(got, bytes(d[off:off + length]), "read %s [%d, +%d)" % (name, off, length))
        elif op < 0.68:                                 # truncate
            new = rng.randrange(0, min(MAX_SIZE, len(f["data"]) * 2 + 65536))
            os.truncate(path, new)
            d = f["data"]
            if new < len(d):
                del d[new:]
            else:
                d.extend(b"\0" * (new - len(d)))
        elif op < 0.76:                                 # fallocate
            d = f["data"]
            off = rng.randrange(0, len(d) + 65536)
            length = rng.randrange(1, 1 << 20)
            if off + length > MAX_SIZE:
                return
            mode = rng.choice([0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                               FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE])
            fd = os.open(path, os.O_RDWR)
            try:
                fallocate(fd, mode, off, length)
            finally:
                os.close(fd)
            end = off + length
            if mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE):
                lo, hi = min(off, len(d)), min(end, len(d))
                d[lo:hi] = b"\0" * (hi - lo)
            if not mode & FALLOC_FL_KEEP_SIZE and end > len(d):
                d.extend(b"\0" * (end - len(d)))
        elif op < 0.82:                                 # rename (maybe over another file)
            other = rng.choice(NAMES)
            if other == name:
                return
            os.rename(path, os.path.join(top, other))
            model.files[other] = model.files.pop(name)
            model.files[other]["synced"] = False
        elif op < 0.85:                                 # unlink
            os.unlink(path)
            del model.files[name]
        elif op < 0.90:                                 # xattrs
            key = "user.k%d" % rng.randrange(4)
            if rng.random() < 0.7:
                val = rng.randbytes(rng.randrange(0, 3000))
                os.setxattr(path, key, val)
                f["xattrs"][key] = val
            elif key in f["xattrs"]:
                os.removexattr(path, key)
                del f["xattrs"][key]
            else:
                with self.assertRaises(OSError) as cm:
                    os.removexattr(path, key)
                self.assertEqual(cm.exception.errno, errno.ENODATA)
        else:                                           # fsync
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            f["synced"] = True    # its data, attributes, xattrs and its name (a rename
                                  # changes the inode's ctime, so fsync covers it)

    # -- verification -----------------------------------------------------------------------
    def read_file(self, path):
        with open(path, "rb") as fh:
            return fh.read()

    def verify_all(self, model, top, exact_all):
        """Compares the model with the disk. With exact_all False (after a crash), files not
        synced since their last change are adopted from disk; returns how many."""
        on_disk = set(os.listdir(top))
        adopted = 0
        for name in list(model.files):
            f = model.files[name]
            if exact_all or f["synced"]:
                self.assertIn(name, on_disk, "synced file %s lost" % name)
                self.assertEqual(self.read_file(os.path.join(top, name)), bytes(f["data"]), name)
                xs = {k: os.getxattr(os.path.join(top, name), k) for k in os.listxattr(os.path.join(top, name))}
                self.assertEqual(xs, f["xattrs"], name)
        if exact_all:
            self.assertEqual(on_disk, set(model.files))
            return 0
        # adopt what the crash left for everything unsynced
        synced = {n for n, f in model.files.items() if f["synced"]}
        for name in on_disk - synced:
            p = os.path.join(top, name)
            model.files[name] = {"data": bytearray(self.read_file(p)),
                                 "xattrs": {k: os.getxattr(p, k) for k in os.listxattr(p)},
                                 "synced": True}
            adopted += 1
        for name in set(model.files) - on_disk:
            self.assertFalse(model.files[name]["synced"] and name in synced, name)
            del model.files[name]
        for f in model.files.values():
            f["synced"] = True   # everything now is what the disk has
        return adopted

    def test_buffered(self):
        self.run_mode(direct=False)

    def test_o_direct(self):
        self.run_mode(direct=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
