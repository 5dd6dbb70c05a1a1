"""test_dio_teardown.py - stopping the daemon cuts synchronous ioctl writes too (issue 10,
item 5).

A caller runs one synchronous 8 GiB REFDIO_IOC_DIO_WRITE (`refdio dio-write`, a pattern);
once it is under way (a chunk committed, by the daemon's figures) the daemon gets SIGTERM. It must exit 0 within 2 s; the caller must exit too, reporting a short write
(exit 3) of N bytes, N a multiple of the chunk (256 KiB) and less than 8 GiB (the write was
really cut, not finished: the check that makes this test able to fail); fsck must find
the image clean (its structure at once; the data after the next mount); mounted again, the file must hold exactly N bytes, the pattern's prefix.
Before this work the daemon stopped only asynchronous writes and waited for this one to
run to its end. Then the same with an asynchronous write, whose waiting caller gets the
cut write's result before the daemon goes.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from mountlib import Mount  # noqa: E402
import diolib  # noqa: E402
from diolib import GIB  # noqa: E402

CHUNK = 256 * 1024


class Teardown(unittest.TestCase):
    def run_one(self, asyn):
        work = tempfile.mkdtemp(prefix="refdio-teardown-", dir=diolib.test_dir())
        m = Mount(size="4G", workdir=work)
        try:
            m.start()
            path = m.path("big")
            before = diolib.committed_chunks(m.mnt)
            # Small chunks and a small window: the write goes slower, so that little is
            # written between the signal's decision and its effect (fsck reads it all).
            args = [diolib.REFDIO, "dio-write", "--json", "--size", "8G", "--pattern", "12",
                    "--strategy", "refctx", "--chunk", "256K", "--window", "2"] + \
                (["--async"] if asyn else []) + [path]
            p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                deadline = time.time() + 60
                while time.time() < deadline:
                    if diolib.committed_chunks(m.mnt) > before:
                        break
                    self.assertIsNone(p.poll(), p.stderr.read() if p.poll() is not None else "")
                    time.sleep(0.001)
                else:
                    self.fail("the 8 GiB write did not get going")
                t0 = time.monotonic()
                os.kill(m.proc.pid, signal.SIGTERM)
                status = m.proc.wait(timeout=30)
                t_daemon = time.monotonic() - t0
                out, err = p.communicate(timeout=30)
                t_caller = time.monotonic() - t0
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            log = m.read_log()
            m.proc = None
            m.logf.close()
            m._cleanup_mount()
            what = "async" if asyn else "sync"
            print("%s: SIGTERM in an 8 GiB write: daemon exited %d after %.3f s, caller %d "
                  "after %.3f s: %s" % (what, status, t_daemon, p.returncode, t_caller,
                                        (out.strip().splitlines() or [err.strip()])[-1][:120]),
                  file=sys.stderr)
            self.assertEqual(status, 0, log)
            self.assertIsNone(diolib.sanitizer_report(log))
            self.assertLess(t_daemon, 2.0)
            self.assertLess(t_caller, 5.0)     # its own exit unmaps 8 GiB of mappings
            p2 = subprocess.run([diolib.REFDIO, "fsck", "-n", "--no-data", m.image],
                                capture_output=True, text=True)
            self.assertEqual(p2.returncode, 0, p2.stdout + p2.stderr)
            # Answered before the daemon went: a short write on a chunk boundary (an
            # asynchronous caller's DIO_WAIT gets the cut write's result).
            self.assertEqual(p.returncode, 3, err)
            r = json.loads([x for x in out.splitlines() if '"bytes"' in x][-1])
            n = r["bytes"]
            self.assertTrue(r["short"])
            self.assertGreater(n, 0)
            self.assertLess(n, 8 * GIB)
            self.assertEqual(n % CHUNK, 0)
            m.start()
            size = os.stat(path).st_size
            self.assertEqual(size, n)
            self.assertGreater(size, 0)
            self.assertLess(size, 8 * GIB)
            self.assertEqual(size % CHUNK, 0)
            self.assertTrue(diolib.check_pattern(path, 12, 0, size))
            status = m.stop()
            self.assertEqual(status, 0, m.read_log())
            m.check()
        finally:
            m.kill()
        shutil.rmtree(work, ignore_errors=True)

    def test_sync_write(self):
        self.run_one(False)

    def test_async_write(self):
        self.run_one(True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
