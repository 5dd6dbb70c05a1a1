"""test_gc_mount.py - copying GC on a mount (REFDIO_IOC_GC through `refdio gc MOUNTPOINT`),
its counters in `refdio stats`, and `refdio gc IMAGE` / `refdio show` offline.

Files are written and then overwritten in scattered 4 KiB blocks (fsynced), which leaves
buckets partly dead; a forced pass must then free buckets and move bytes, the files must
read back exactly as written, `refdio stats --json` must show the pass, and the daemon's
fsck at unmount must be clean. Controls: `refdio gc` on a directory that is not a refdio
mount fails with a message; on a freshly formatted image nothing is moved.
"""
import hashlib
import json
import os
import random
import re
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import mountlib  # noqa: E402
from mountlib import REFDIO, Mount, format_image, run  # noqa: E402

MIB = 1 << 20


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def fragment(m, rng, files=3, size=8 * MIB, overwrites=300):
    want = {}
    for i in range(files):
        p = m.path("f%d" % i)
        with open(p, "wb") as f:
            f.write(rng.randbytes(size))
            f.flush()
            os.fsync(f.fileno())
    for _ in range(overwrites):
        p = m.path("f%d" % rng.randrange(files))
        with open(p, "r+b") as f:
            f.seek(rng.randrange(size // 4096) * 4096)
            f.write(rng.randbytes(4096))
    for i in range(files):
        p = m.path("f%d" % i)
        with open(p, "rb+") as f:
            os.fsync(f.fileno())
        want[p] = digest(p)
    return want


def moved(out):
    g = re.search(r"(\d+) buckets freed, (\d+) extents moved \((\d+) bytes written", out)
    assert g, out
    return int(g.group(1)), int(g.group(2)), int(g.group(3))


class GcMount(unittest.TestCase):
    def test_forced_pass_on_mount(self):
        rng = random.Random(int(os.environ.get("RD_TEST_SEED", "15")))
        with Mount(size="96M") as m:
            want = fragment(m, rng)
            out = run(REFDIO, "gc", m.mnt).stdout
            freed, extents, written = moved(out)
            self.assertGreater(freed, 0, out)
            self.assertGreater(extents, 0, out)
            self.assertGreater(written, 0, out)
            for p, d in want.items():
                self.assertEqual(digest(p), d, p)
            st = json.loads(run(REFDIO, "stats", "--json", m.mnt).stdout)
            self.assertIn("gc", st)
            self.assertGreaterEqual(st["gc"]["buckets_freed"], freed)
            self.assertGreaterEqual(st["gc"]["bytes_moved"], written)
            text = run(REFDIO, "stats", m.mnt).stdout
            self.assertIn("copying gc:", text)

    def test_offline_and_controls(self):
        d = tempfile.mkdtemp(prefix="refdio-gc-")
        try:
            # Control: not a refdio mount.
            p = run(REFDIO, "gc", d, check=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("not a refdio mount", p.stderr)
            # Control: a fresh image has nothing to move.
            img = os.path.join(d, "fresh.img")
            format_image(img, "64M")
            self.assertEqual(moved(run(REFDIO, "gc", img).stdout), (0, 0, 0))
            # Offline on a fragmented image: show names the dead space, gc wins it.
            rng = random.Random(7)
            with Mount(size="96M", workdir=d) as m:
                want = {os.path.basename(k): v for k, v in fragment(m, rng).items()}
                image = m.image
            show = run(REFDIO, "show", image).stdout
            self.assertIn("partly dead:", show)
            freed, extents, written = moved(run(REFDIO, "gc", image).stdout)
            self.assertGreater(freed, 0)
            self.assertGreater(written, 0)
            run(REFDIO, "fsck", "-n", image)
            with Mount(image=image, workdir=d) as m:
                for name, dg in want.items():
                    self.assertEqual(digest(m.path(name)), dg, name)
        finally:
            run("rm", "-rf", d, check=False)


if __name__ == "__main__":
    mountlib.main()
