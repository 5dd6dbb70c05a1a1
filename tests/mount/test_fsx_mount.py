"""test_fsx_mount.py - the model-based random test, through a real mount.

Random writes (1 byte .. 2 MiB at unaligned offsets), reads, truncates, fallocate modes,
renames, unlinks and xattrs on a handful of files, compared byte for byte with an
in-memory model. Every 400 operations the daemon is either unmounted cleanly (everything
must match exactly) or killed with SIGKILL and mounted again (the journal is replayed);
the first such stop is a kill and the second an unmount, so every mode does both. After a
kill, every file fsynced after its last change must match exactly; every other name must
hold a state one of the files that had the name since the last check went through (as
the C fsx checks: its state at its last fsync or after one of its later changes, or
part-way through one of them, each byte from the state before or after that change), and
its xattrs one of its xattr sets; the model then takes the disk's. fsck must be clean
every time, the daemon's log must hold no sanitizer report, and the test's directory is
removed at the end. test_crash_check runs the crash check on states it must refuse.

Runs once with buffered I/O and once with O_DIRECT. Environment: RD_FSX_MOUNT_OPS
(default 3000 per mode, at least 801), RD_TEST_SEED.
"""
import errno
import mmap
import os
import random
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import mountlib  # noqa: E402
from mountlib import Mount  # noqa: E402

FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 1, 2, 16
MAX_SIZE = 24 << 20
NAMES = ["f%d" % i for i in range(6)]
STOP_EVERY = 400


def fallocate(fd, mode, off, length):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    if libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def apply(d, change):
    """Applies one logged data change to the bytearray d (the model's only way to change
    a file's bytes, so the crash check replays exactly what the model did)."""
    kind = change[0]
    if kind == "write":
        _, off, data = change
        if off > len(d):
            d.extend(bytes(off - len(d)))
        d[off:off + len(data)] = data
    elif kind == "truncate":
        _, new = change
        if new < len(d):
            del d[new:]
        else:
            d.extend(bytes(new - len(d)))
    elif kind == "fallocate":
        _, mode, off, length = change
        end = off + length
        if mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE):
            lo, hi = min(off, len(d)), min(end, len(d))
            d[lo:hi] = bytes(hi - lo)
        if not mode & FALLOC_FL_KEEP_SIZE and end > len(d):
            d.extend(bytes(end - len(d)))
    else:
        raise ValueError(kind)


def between(a, b, got):
    """Whether got is part-way from state a to state b: its size between theirs, every byte
    from one of them (zeros past a state's end)."""
    lo, hi = sorted((len(a), len(b)))
    if not lo <= len(got) <= hi:
        return False
    pad = lambda x: x + bytes(hi - len(x))  # noqa: E731
    a, b, got = pad(a), pad(b), pad(got)
    step = 1 << 16
    for s in range(0, hi, step):
        g = got[s:s + step]
        if g == a[s:s + step] or g == b[s:s + step]:
            continue
        if any(x != y and x != z for x, y, z in zip(g, a[s:s + step], b[s:s + step])):
            return False
    return True


class Inode:
    """One file of the model: its bytes and xattrs now, and since its last fsync (or the
    last check) the state then (base) and every change after it."""

    def __init__(self, data=b"", xattrs=None):
        self.data = bytearray(data)
        self.xattrs = dict(xattrs or {})
        self.mark_synced()

    def mark_synced(self):
        self.synced = True
        self.base = bytes(self.data)
        self.log = []
        self.xstates = [dict(self.xattrs)]

    def change(self, c):
        apply(self.data, c)
        self.log.append(c)
        self.synced = False

    def set_xattrs(self):
        self.xstates.append(dict(self.xattrs))
        self.synced = False

    def legal(self, got, got_x):
        """Whether (got, got_x) is a state this file may hold after a crash: returns
        "exact", "part-way" or None."""
        if got_x not in self.xstates:
            return None
        cur = bytearray(self.base)
        if got == cur:
            return "exact"
        for c in self.log:
            apply(cur, c)
            if got == cur:
                return "exact"
        cur = bytearray(self.base)
        for c in self.log:
            prev = bytes(cur)
            apply(cur, c)
            if between(prev, cur, got):
                return "part-way"
        return None


class Model:
    """name -> Inode; seen: name -> every Inode that had the name since the last check."""

    def __init__(self):
        self.files = {}
        self.seen = {}

    def checked(self):
        for ino in self.files.values():
            ino.mark_synced()
        self.seen = {name: [ino] for name, ino in self.files.items()}

    def bind(self, name, ino):
        self.files[name] = ino
        if not any(x is ino for x in self.seen.setdefault(name, [])):
            self.seen[name].append(ino)


class FsxMount(unittest.TestCase):
    def run_mode(self, direct):
        seed = int(os.environ.get("RD_TEST_SEED", time.time()))
        ops = int(os.environ.get("RD_FSX_MOUNT_OPS", "3000"))
        print("seed %d (RD_TEST_SEED to replay), %d ops, %s" % (seed, ops, "O_DIRECT" if direct else "buffered"),
              file=sys.stderr)
        rng = random.Random(seed)
        model = Model()
        m = Mount(size="1G")
        stats = {"ops": 0, "unmounts": 0, "kills": 0, "adopted": 0, "part-way": 0}
        try:
            m.start()
            top = m.path("t")
            os.mkdir(top)
            for i in range(ops):
                self.step(rng, model, top, direct)
                stats["ops"] += 1
                if i and i % STOP_EVERY == 0:
                    n = i // STOP_EVERY
                    kill = n == 1 or (n > 2 and rng.random() < 0.5)
                    if not kill:
                        status = m.stop()
                        self.assertEqual(status, 0, m.read_log())
                        stats["unmounts"] += 1
                        m.check()
                        m.start()
                        self.verify_all(model, top, exact_all=True, stats=stats)
                    else:
                        m.kill()
                        stats["kills"] += 1
                        self.assertIsNone(m.sanitizer_report(), m.read_log())
                        m.check()      # fsck replays the journal in memory: must be clean
                        m.start()
                        self.verify_all(model, top, exact_all=False, stats=stats)
                        status = m.stop()
                        self.assertEqual(status, 0, m.read_log())
                        m.check()
                        m.start()
            self.verify_all(model, top, exact_all=True, stats=stats)
            status = m.stop()
            self.assertEqual(status, 0, m.read_log())
            m.check()
            self.assertIsNone(m.sanitizer_report(), m.read_log())
        finally:
            m.kill()
            shutil.rmtree(m.dir, ignore_errors=True)
        print("fsx-mount %s: %s" % ("direct" if direct else "buffered", stats), file=sys.stderr)
        # Both ways of stopping really happened in this mode.
        self.assertGreaterEqual(stats["kills"], 1, stats)
        self.assertGreaterEqual(stats["unmounts"], 1, stats)

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

    def step(self, rng, model, top, direct):
        name = rng.choice(NAMES)
        path = os.path.join(top, name)
        f = model.files.get(name)
        op = rng.random()
        if f is None:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            os.close(fd)
            ino = Inode()
            ino.synced = False
            model.bind(name, ino)
            return
        d = f.data
        if op < 0.40:                                   # write
            size = len(d)
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
            f.change(("write", off, data))
        elif op < 0.60:                                 # read and compare
            off = rng.randrange(0, len(d) + 1)
            length = rng.randrange(0, (2 << 20) + 1)
            fd = os.open(path, self.open_flags(direct) & ~os.O_RDWR | os.O_RDONLY)
            try:
                got = self.do_read(fd, length, off, direct)
            finally:
                os.close(fd)
            self.assertEqual(got, bytes(d[off:off + length]), "read %s [%d, +%d)" % (name, off, length))
        elif op < 0.68:                                 # truncate
            new = rng.randrange(0, min(MAX_SIZE, len(d) * 2 + 65536))
            os.truncate(path, new)
            f.change(("truncate", new))
        elif op < 0.76:                                 # fallocate
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
            f.change(("fallocate", mode, off, length))
        elif op < 0.82:                                 # rename (maybe over another file)
            other = rng.choice(NAMES)
            if other == name:
                return
            os.rename(path, os.path.join(top, other))
            del model.files[name]
            model.bind(other, f)
            f.synced = False
        elif op < 0.85:                                 # unlink
            os.unlink(path)
            del model.files[name]
        elif op < 0.90:                                 # xattrs
            key = "user.k%d" % rng.randrange(4)
            if rng.random() < 0.7:
                val = rng.randbytes(rng.randrange(0, 3000))
                os.setxattr(path, key, val)
                f.xattrs[key] = val
                f.set_xattrs()
            elif key in f.xattrs:
                os.removexattr(path, key)
                del f.xattrs[key]
                f.set_xattrs()
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
            f.mark_synced()       # its data, attributes, xattrs and its name (a rename
                                  # changes the inode's ctime, so fsync covers it)

    # -- verification -----------------------------------------------------------------------
    def read_file(self, path):
        with open(path, "rb") as fh:
            return fh.read()

    def read_xattrs(self, path):
        return {k: os.getxattr(path, k) for k in os.listxattr(path)}

    def verify_all(self, model, top, exact_all, stats):
        """Compares the model with the disk. With exact_all False (after a crash), a name
        not synced since its last change must hold a legal state of a file that had the
        name (Inode.legal); the model then takes what the disk has."""
        on_disk = set(os.listdir(top))
        synced = {name for name, f in model.files.items() if exact_all or f.synced}
        for name in synced:
            f = model.files[name]
            path = os.path.join(top, name)
            self.assertIn(name, on_disk, "synced file %s lost" % name)
            self.assertEqual(self.read_file(path), bytes(f.data), name)
            self.assertEqual(self.read_xattrs(path), f.xattrs, name)
        if exact_all:
            self.assertEqual(on_disk, set(model.files))
        # The model takes the disk's state: the names checked exactly keep their files...
        files = {name: model.files[name] for name in synced}
        # ...and every other name holds a legal state of a file that had it (a file synced
        # at one name is nowhere else), which the model adopts.
        placed = list(files.values())
        for name in sorted(on_disk - synced):
            path = os.path.join(top, name)
            got, got_x = self.read_file(path), self.read_xattrs(path)
            verdicts = [ino.legal(got, got_x) for ino in model.seen.get(name, [])
                        if not any(ino is p for p in placed)]
            found = [v for v in verdicts if v]
            self.assertTrue(found, "after a crash %s holds %d bytes that none of the %d files "
                            "that had the name held since the last check" %
                            (name, len(got), len(verdicts)))
            if "exact" not in found:
                stats["part-way"] += 1
            stats["adopted"] += 1
            files[name] = Inode(got, got_x)
        model.files = files
        model.checked()

    def test_crash_check(self):
        """The negative control: Inode.legal refuses what no crash can leave."""
        rng = random.Random(1)
        ino = Inode(rng.randbytes(100000), {"user.a": b"1"})
        ino.change(("write", 5000, rng.randbytes(70000)))
        ino.change(("truncate", 60000))
        ino.change(("fallocate", FALLOC_FL_ZERO_RANGE, 1000, 3000))
        ino.xattrs["user.a"] = b"2"
        ino.set_xattrs()
        base, x1, x2 = ino.base, {"user.a": b"1"}, {"user.a": b"2"}
        states = [bytearray(base)]
        for c in ino.log:
            states.append(bytearray(states[-1]))
            apply(states[-1], c)
        self.assertEqual(states[-1], ino.data)
        for st in states:
            self.assertEqual(ino.legal(bytes(st), x1), "exact")
            self.assertEqual(ino.legal(bytes(st), x2), "exact")
        half = bytearray(states[0])
        half[5000:40000] = states[1][5000:40000]          # the write, half committed
        self.assertEqual(ino.legal(bytes(half), x1), "part-way")
        self.assertIsNone(ino.legal(bytes(states[-1]), {}))           # xattrs never held
        self.assertIsNone(ino.legal(bytes(states[0]) + b"\0", x1))    # longer than any
        bad = bytearray(states[0])
        bad[99999] ^= 0xFF                                 # a byte no state had
        self.assertIsNone(ino.legal(bytes(bad), x1))
        mixed = bytearray(states[1][:60000])               # part of the write and the
        mixed[1000:4000] = bytes(3000)                     # zeroing, the truncate in
        mixed[20000:30000] = states[0][20000:30000]        # between: two changes part-way
        self.assertIsNone(ino.legal(bytes(mixed), x1))

    def test_buffered(self):
        self.run_mode(direct=False)

    def test_o_direct(self):
        self.run_mode(direct=True)


if __name__ == "__main__":
    mountlib.main()
