"""test_concurrency.py - four processes writing, reading and renaming in one tree.

Each process owns its files (names carry its number) but they all live in the same four
directories: a process writes, reads back, truncates and renames its own files between
the shared directories, lists the directories (no duplicates, its own files all there)
and stats the others' files (which may vanish under it: ENOENT is the only error
allowed). A fixed number of operations each; then every process's model must match the
disk, the daemon must stop cleanly and fsck must be clean.
"""
import errno
import multiprocessing
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import mountlib  # noqa: E402
from mountlib import Mount  # noqa: E402

DIRS = ["d0", "d1", "d2", "d3"]
OPS = int(os.environ.get("RD_CONC_OPS", "1500"))


def worker(root, me, seed, q):
    rng = random.Random(seed)
    files = {}            # name -> (dir, bytes)
    try:
        for i in range(OPS):
            op = rng.random()
            if not files or op < 0.15:
                name = "p%d-%d" % (me, i)
                d = rng.choice(DIRS)
                data = rng.randbytes(rng.randrange(0, 300000))
                with open(os.path.join(root, d, name), "wb") as f:
                    f.write(data)
                files[name] = (d, data)
                continue
            name = rng.choice(sorted(files))
            d, data = files[name]
            path = os.path.join(root, d, name)
            if op < 0.35:
                off = rng.randrange(0, len(data) + 1)
                chunk = rng.randbytes(rng.randrange(1, 100000))
                fd = os.open(path, os.O_WRONLY)
                os.pwrite(fd, chunk, off)
                os.close(fd)
                buf = bytearray(data)
                if off > len(buf):
                    buf.extend(b"\0" * (off - len(buf)))
                buf[off:off + len(chunk)] = chunk
                files[name] = (d, bytes(buf))
            elif op < 0.55:
                with open(path, "rb") as f:
                    got = f.read()
                if got != data:
                    raise AssertionError("process %d: %s differs (%d vs %d bytes)" % (me, name, len(got), len(data)))
            elif op < 0.70:
                nd = rng.choice(DIRS)
                os.rename(path, os.path.join(root, nd, name))
                files[name] = (nd, data)
            elif op < 0.75:
                new = rng.randrange(0, len(data) + 1)
                os.truncate(path, new)
                files[name] = (d, data[:new])
            elif op < 0.80:
                os.unlink(path)
                del files[name]
            else:
                ld = rng.choice(DIRS)
                names = os.listdir(os.path.join(root, ld))
                if len(names) != len(set(names)):
                    raise AssertionError("duplicate names in %s" % ld)
                mine = {n for n, (dd, _) in files.items() if dd == ld}
                missing = mine - set(names)
                if missing:
                    raise AssertionError("process %d: %s missing from %s" % (me, sorted(missing)[:3], ld))
                for n in names[:20]:
                    try:
                        os.stat(os.path.join(root, ld, n))
                    except OSError as e:
                        if e.errno != errno.ENOENT:
                            raise
        for name, (d, data) in files.items():
            with open(os.path.join(root, d, name), "rb") as f:
                if f.read() != data:
                    raise AssertionError("process %d: final %s differs" % (me, name))
        q.put((me, None))
    except BaseException as e:  # report every failure to the parent
        q.put((me, "%s: %s" % (type(e).__name__, e)))


class Concurrency(unittest.TestCase):
    def test_four_processes(self):
        seed = int(os.environ.get("RD_TEST_SEED", "0")) or random.randrange(1 << 30)
        print("seed %d (RD_TEST_SEED to replay)" % seed, file=sys.stderr)
        with Mount(size="2G") as m:
            root = m.path("shared")
            os.mkdir(root)
            for d in DIRS:
                os.mkdir(os.path.join(root, d))
            q = multiprocessing.Queue()
            procs = [multiprocessing.Process(target=worker, args=(root, i, seed + i, q)) for i in range(4)]
            for p in procs:
                p.start()
            results = [q.get(timeout=900) for _ in procs]
            for p in procs:
                p.join(timeout=60)
                if p.is_alive():
                    p.kill()
            errors = [r for r in results if r[1]]
            self.assertEqual(errors, [])


if __name__ == "__main__":
    mountlib.main()
