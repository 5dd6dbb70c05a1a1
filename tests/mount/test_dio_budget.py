"""test_dio_budget.py - what one caller can make the daemon hold (issue 10, item 2).

- The requests of the issue on a default mount (budget -o max_held = 256 MiB): a refctx
  write asking for a window of 65536 chunks of 64 MiB (320 MiB here instead of 6 GiB: the
  bound is reached in its first 200 MiB, and fsck reads all that is written), then a
  6 GiB pin. The first completes, holding at most the budget
  (the daemon's figures); the pin fails at once with ENOBUFS, nothing written, and
  `refdio dio-write` says why. The daemon's peak RSS (VmHWM from /proc) stays under its
  RSS before them + the budget + a fixed overhead. Negative control: on a mount whose
  budget allows it, a 640 MiB pin raises VmHWM by at least 512 MiB (the measure sees held
  memory).
- Waiting: on a mount with an 8 MiB budget, four writes of 64 MiB with W = 8 and a pin of
  the whole share (6 MiB) at once all complete with the right bytes; the budget's peak
  stays within it and writes waited for it.
- Fairness between users (mount with allow_other): root submits an asynchronous write and
  leaves its result uncollected; user 65534 then floods: 1500 quick asynchronous writes it
  never collects, then writes from a buffer registered with userfaultfd that nobody
  resolves (they stay running). The flooder gets EAGAIN once 64 of its writes run; root's
  old result is still there to collect; root's new submit succeeds and completes at once.
  On the daemon before this work the flood pushed root's result out (and 1024 running
  writes would have made root's submit fail).
The daemon's log must hold no sanitizer report; each mount ends with a clean fsck.
"""
import errno
import json
import mmap
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from mountlib import Mount  # noqa: E402
import diolib  # noqa: E402
from diolib import MIB  # noqa: E402

SLACK = 96 * MIB        # fixed overhead beyond the budget (allocator caches, ASan quarantine)
NOBODY = 65534


def workdir(tag):
    return tempfile.mkdtemp(prefix="refdio-budget-%s-" % tag, dir=diolib.test_dir())


def flood(path, out_fd):
    """As user 65534: quick writes never collected, then writes that stay running."""
    quick = diolib.Memory(os.urandom(4096))
    stall = mmap.mmap(-1, 8 * MIB)
    import ctypes
    addr = ctypes.addressof(ctypes.c_char.from_buffer(stall))
    ufd = diolib.userfaultfd_stall(addr, 8 * MIB)    # root only: made before setuid
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    fd = os.open(path, os.O_WRONLY)
    res = {"quick_ok": 0, "quick_eagain": 0, "stall_ok": 0, "stall_eagain": 0}
    for i in range(1500):
        try:
            diolib.dio_submit(fd, quick.addr, 4096, (i % 64) * 4096)
            res["quick_ok"] += 1
        except OSError as e:
            if e.errno != errno.EAGAIN:
                raise
            res["quick_eagain"] += 1
    for i in range(100):
        try:
            diolib.dio_submit(fd, addr, MIB, (64 + i) * MIB)
            res["stall_ok"] += 1
        except OSError as e:
            if e.errno != errno.EAGAIN:
                raise
            res["stall_eagain"] += 1
    os.write(out_fd, (json.dumps(res) + "\n").encode())
    while True:
        time.sleep(3600)
    os.close(ufd)


class Budget(unittest.TestCase):
    def check_log(self, m):
        self.assertIsNone(diolib.sanitizer_report(m.read_log()))

    def test_the_issue_requests(self):
        work = workdir("hwm")
        try:
            with Mount(size="1G", workdir=work) as m:
                pid = m.proc.pid
                st = diolib.stats(m.mnt)
                self.assertEqual(st["pid"], pid)
                budget = st["budget_max"]
                self.assertEqual(budget, 256 * MIB)
                # Warm: the daemon's ordinary working set (a plain write) before.
                rc, _ = diolib.dio_write_cli(m.path("warm"), "--size", "64M")
                self.assertEqual(rc, 0)
                base = diolib.vm_hwm(pid)

                t0 = time.monotonic()
                rc, r = diolib.dio_write_cli(m.path("big"), "--window", "65536", "--chunk",
                                             "64M", "--size", "320M", "--pattern", "4")
                took = time.monotonic() - t0
                self.assertEqual(rc, 0)
                self.assertEqual(r["bytes"], 320 * MIB)
                st = diolib.stats(m.mnt)
                self.assertLessEqual(st["budget_peak"], budget)
                self.assertLessEqual(st["strategies"]["refctx"]["write_held_peak"], budget)
                self.assertEqual(st["budget_held"], 0)
                self.assertTrue(diolib.check_pattern(m.path("big"), 4, 320 * MIB - diolib.PERIOD,
                                                     diolib.PERIOD))

                p = subprocess.run([diolib.REFDIO, "dio-write", "--strategy", "pin", "--size",
                                    "6G", m.path("pin")], capture_output=True, text=True)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn("No buffer space available", p.stderr)
                self.assertIn("never fit", p.stderr)
                self.assertIn("max_held", p.stderr)
                self.assertEqual(os.stat(m.path("pin")).st_size, 0)
                hwm = diolib.vm_hwm(pid)
                print("window 65536 x 64M, 320 MiB: %.1f s, budget peak %d MiB; pin 6G: %s; "
                      "daemon VmHWM %d MiB before, %d MiB after (budget %d MiB)" %
                      (took, st["budget_peak"] >> 20, p.stderr.strip().split(": ", 2)[-1][:60],
                       base >> 20, hwm >> 20, budget >> 20), file=sys.stderr)
                self.assertLessEqual(hwm, base + budget + SLACK)
                self.check_log(m)
        finally:
            shutil.rmtree(work, ignore_errors=True)

        # Negative control: a budget that allows a 640 MiB pin, and VmHWM shows it.
        work = workdir("hwm-ctl")
        try:
            with Mount(size="1G", workdir=work, opts="max_held=384M,max_held_user=384M") as m:
                pid = m.proc.pid
                rc, _ = diolib.dio_write_cli(m.path("warm"), "--size", "64M")
                base = diolib.vm_hwm(pid)
                rc, r = diolib.dio_write_cli(m.path("pin"), "--strategy", "pin", "--size",
                                             "256M", "--pattern", "5")
                self.assertEqual(rc, 0)
                hwm = diolib.vm_hwm(pid)
                print("negative control: a 256 MiB pin under a 384 MiB budget: VmHWM %d -> "
                      "%d MiB" % (base >> 20, hwm >> 20), file=sys.stderr)
                self.assertGreaterEqual(hwm - base, 200 * MIB)
                self.check_log(m)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def test_waiting_for_the_budget(self):
        work = workdir("wait")
        try:
            with Mount(size="1G", workdir=work, opts="max_held=8M,max_held_user=6M,max_chunk=1M") as m:
                procs = []
                for i in range(4):
                    procs.append(subprocess.Popen(
                        [diolib.REFDIO, "dio-write", "--json", "--size", "64M", "--window", "8",
                         "--pattern", str(10 + i), m.path("w%d" % i)],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
                procs.append(subprocess.Popen(
                    [diolib.REFDIO, "dio-write", "--json", "--size", "6M", "--strategy", "pin",
                     "--pattern", "20", m.path("pin")],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
                for p in procs:
                    out, err = p.communicate(timeout=120)
                    self.assertEqual(p.returncode, 0, err)
                for i in range(4):
                    self.assertTrue(diolib.check_pattern(m.path("w%d" % i), 10 + i, 0, 64 * MIB))
                self.assertTrue(diolib.check_pattern(m.path("pin"), 20, 0, 6 * MIB))
                st = diolib.stats(m.mnt)
                print("budget 8 MiB, a user's 6 MiB: peak %d KiB, %d writes waited" %
                      (st["budget_peak"] >> 10, st["budget_waits"]), file=sys.stderr)
                self.assertLessEqual(st["budget_peak"], 6 * MIB)
                self.assertGreater(st["budget_waits"], 0)
                self.assertEqual(st["budget_held"], 0)
                # A pin above a user's share can never fit.
                p = subprocess.run([diolib.REFDIO, "dio-write", "--strategy", "pin", "--size",
                                    "7M", m.path("pin2")], capture_output=True, text=True)
                self.assertEqual(p.returncode, 1)
                self.assertIn("max_held_user", p.stderr)
                self.check_log(m)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def test_one_user_flooding(self):
        work = workdir("uid")
        try:
            with Mount(size="1G", workdir=work, opts="allow_other,source_timeout=60") as m:
                path = m.path("f")
                with open(path, "wb") as f:
                    f.write(bytes(4096))
                os.chmod(path, 0o666)
                fd = os.open(path, os.O_RDWR)
                mine = diolib.Memory(diolib.pattern(30, 0, 4096))
                old_id = diolib.dio_submit(fd, mine.addr, 4096, 0)
                time.sleep(0.2)     # done, not collected
                rfd, wfd = os.pipe()
                p = subprocess.Popen([sys.executable, __file__, "--flood", path, str(wfd)],
                                     pass_fds=(wfd,), start_new_session=True)
                os.close(wfd)
                try:
                    with os.fdopen(rfd) as r:
                        line = r.readline()
                    self.assertTrue(line, "the flooder died")
                    res = json.loads(line)
                    st = diolib.stats(m.mnt)
                    print("user 65534: %s; daemon: %d async writes running, %d uncollected, %d "
                          "dropped" % (res, st["async_running"], st["async_done"],
                                       st["async_expired"]), file=sys.stderr)
                    # Its quota: 64 entries of which, at the end, all run.
                    self.assertGreater(res["stall_eagain"], 0)
                    self.assertLessEqual(res["stall_ok"], 64)
                    self.assertLessEqual(st["async_running"] + st["async_done"], 64 + 1)
                    # Root's old result is still there; root's new write goes through.
                    self.assertEqual(diolib.dio_wait(fd, old_id), (4096, 4096))
                    t0 = time.monotonic()
                    new_id = diolib.dio_submit(fd, mine.addr, 4096, 4096)
                    self.assertEqual(diolib.dio_wait(fd, new_id), (4096, 4096))
                    took = time.monotonic() - t0
                    print("root's write during the flood: %.3f s" % took, file=sys.stderr)
                    self.assertLess(took, 5.0)
                finally:
                    os.killpg(p.pid, 9)
                    p.wait()
                os.close(fd)
                mine.close()
                # The flooder's writes end once it is gone (its stalled reads return).
                deadline = time.time() + 20
                while diolib.stats(m.mnt)["async_running"] and time.time() < deadline:
                    time.sleep(0.1)
                self.assertEqual(diolib.stats(m.mnt)["async_running"], 0)
                self.check_log(m)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--flood":
        flood(sys.argv[2], int(sys.argv[3]))
    else:
        unittest.main(verbosity=2)
