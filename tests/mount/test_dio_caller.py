"""test_dio_caller.py - a caller's memory as the daemon meets it (issue 10, items 3, 4, 6).

- PROT_NONE (item 3): a 4 MiB buffer whose third MiB the caller made PROT_NONE. With every
  strategy, synchronous and asynchronous, the write ends with the prefix before it (2 MiB,
  on a chunk boundary), the file holds exactly that, and a buffer starting inside it gives
  EFAULT, as a kernel direct write from that buffer would. Negative control: the same
  buffer made readable again is written whole.
- A stalled buffer (item 4): the second MiB of the caller's buffer is registered with
  userfaultfd and never resolved. With -o source_timeout=2 the synchronous write ends with
  the first MiB after about 2 s (not before: the stall is real). On a mount with a 60 s
  limit, a caller stuck in such a write is SIGKILLed: it is gone at once; its stalled read
  is written off (counted in reads_stalled) while another process keeps the userfaultfd
  open, and unmounting the daemon with that read still stuck takes under 2 s.
- Who the caller is (item 6): started in a new pid namespace whose /proc is the old one,
  the daemon refuses to start; in a new pid namespace with its own /proc it starts (the
  negative control).
The daemon's log must hold no sanitizer report; each mount ends with a clean fsck.
"""
import ctypes
import errno
import mmap
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from mountlib import Mount, is_mounted  # noqa: E402
import diolib  # noqa: E402
from diolib import MIB  # noqa: E402


def workdir(tag):
    return tempfile.mkdtemp(prefix="refdio-caller-%s-" % tag, dir=diolib.test_dir())


def stalled_caller(path, timeout_s, out_fd, hold_fd):
    """A process whose buffer's second MiB stalls: one DIO_WRITE of 4 MiB; prints the result.
    hold_fd >= 0: first forks a child that keeps the userfaultfd open and writes its pid."""
    buf = mmap.mmap(-1, 4 * MIB)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    buf[:MIB] = diolib.pattern(40, 0, MIB)
    ufd = diolib.userfaultfd_stall(addr + MIB, 3 * MIB)
    if hold_fd >= 0:
        pid = os.fork()
        if pid == 0:
            while True:
                time.sleep(3600)
        os.write(hold_fd, b"%d\n" % pid)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.write(out_fd, b"started\n")
    t0 = time.monotonic()
    try:
        res, _ = diolib.dio_write(fd, addr, 4 * MIB, 0)
        msg = "%d %.3f\n" % (res, time.monotonic() - t0)
    except OSError as e:
        msg = "-%d %.3f\n" % (e.errno, time.monotonic() - t0)
    os.write(out_fd, msg.encode())
    os.close(ufd)


class ProtNone(unittest.TestCase):
    def test_prot_none_in_the_middle(self):
        work = workdir("prot")
        try:
            with Mount(size="256M", workdir=work) as m:
                mem = diolib.Memory(diolib.pattern(41, 0, 4 * MIB))
                diolib.mprotect(mem.addr + 2 * MIB, MIB, diolib.PROT_NONE)
                try:
                    for strategy in range(1, 5):
                        for asyn in (False, True):
                            self.one(m, mem, strategy, asyn)
                    # Starting inside it: nothing.
                    fd = os.open(m.path("p"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
                    with self.assertRaises(OSError) as cm:
                        diolib.dio_write(fd, mem.addr + 2 * MIB + 4096, MIB, 0)
                    self.assertEqual(cm.exception.errno, errno.EFAULT)
                    os.close(fd)
                finally:
                    diolib.mprotect(mem.addr + 2 * MIB, MIB, diolib.PROT_READ | diolib.PROT_WRITE)
                # The negative control: readable again, written whole.
                fd = os.open(m.path("p"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
                self.assertEqual(diolib.dio_write(fd, mem.addr, 4 * MIB, 0)[0], 4 * MIB)
                os.close(fd)
                self.assertTrue(diolib.check_pattern(m.path("p"), 41, 0, 4 * MIB))
                mem.close()
                self.assertIsNone(diolib.sanitizer_report(m.read_log()))
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def one(self, m, mem, strategy, asyn):
        path = m.path("p")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            if asyn:
                wid = diolib.dio_submit(fd, mem.addr, 4 * MIB, 0, strategy=strategy)
                res, _ = diolib.dio_wait(fd, wid)
            else:
                res, _ = diolib.dio_write(fd, mem.addr, 4 * MIB, 0, strategy=strategy)
        finally:
            os.close(fd)
        what = "%s %s" % (diolib.STRATEGIES[strategy - 1], "async" if asyn else "sync")
        self.assertEqual(res, 2 * MIB, what)
        self.assertEqual(os.stat(path).st_size, 2 * MIB, what)
        self.assertTrue(diolib.check_pattern(path, 41, 0, 2 * MIB), what)


class Stalled(unittest.TestCase):
    def spawn(self, path, hold):
        rfd, wfd = os.pipe()
        hrfd, hwfd = os.pipe() if hold else (-1, -1)
        fds = (wfd,) + ((hwfd,) if hold else ())
        p = subprocess.Popen([sys.executable, __file__, "--stalled", path, "0", str(wfd),
                              str(hwfd)], pass_fds=fds, start_new_session=True)
        os.close(wfd)
        holder = None
        if hold:
            os.close(hwfd)
            with os.fdopen(hrfd) as h:
                holder = int(h.readline())
        r = os.fdopen(rfd)
        self.assertEqual(r.readline().strip(), "started")
        return p, r, holder

    def test_deadline(self):
        work = workdir("deadline")
        try:
            with Mount(size="256M", workdir=work, opts="source_timeout=2") as m:
                p, r, _ = self.spawn(m.path("s"), False)
                try:
                    line = r.readline().split()
                    p.wait(timeout=10)
                finally:
                    if p.poll() is None:
                        os.killpg(p.pid, signal.SIGKILL)
                        p.wait()
                    r.close()
                res, took = int(line[0]), float(line[1])
                print("a caller whose second MiB stalls (source_timeout=2): %d bytes after "
                      "%.2f s" % (res, took), file=sys.stderr)
                self.assertEqual(res, MIB)
                self.assertGreaterEqual(took, 1.8)   # the stall held it: not an EFAULT
                self.assertLess(took, 3.5)
                self.assertEqual(os.stat(m.path("s")).st_size, MIB)
                self.assertTrue(diolib.check_pattern(m.path("s"), 40, 0, MIB))
                st = diolib.stats(m.mnt)
                self.assertGreaterEqual(st["reads_timed_out"], 1)
                self.assertIsNone(diolib.sanitizer_report(m.read_log()))
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def test_sigkill_and_unmount(self):
        work = workdir("kill")
        m = Mount(size="256M", workdir=work, opts="source_timeout=60")
        holder = None
        try:
            m.start()
            p, r, holder = self.spawn(m.path("s"), True)
            try:
                time.sleep(1.0)
                self.assertIsNone(p.poll(), "the write did not stall")
                t0 = time.monotonic()
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
                dt = time.monotonic() - t0
            finally:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
                r.close()
            print("SIGKILL of a caller stuck on a stalled page: gone after %.3f s" % dt,
                  file=sys.stderr)
            self.assertLess(dt, 1.0)
            st = diolib.stats(m.mnt)
            self.assertGreaterEqual(st["reads_stalled"], 1)   # still stuck: the holder lives
            # Unmount with that read stuck.
            t0 = time.monotonic()
            status = m.stop()
            dt = time.monotonic() - t0
            print("unmount with a read stuck in a caller's memory: daemon gone after %.3f s" % dt,
                  file=sys.stderr)
            self.assertEqual(status, 0, m.read_log())
            self.assertLess(dt, 2.0)
            self.assertIsNone(diolib.sanitizer_report(m.read_log()))
            m.check()
        finally:
            if holder:
                try:
                    os.kill(holder, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            m.kill()
        shutil.rmtree(work, ignore_errors=True)


class PidNamespace(unittest.TestCase):
    def test_proc_of_another_namespace(self):
        work = workdir("ns")
        try:
            img, mnt = os.path.join(work, "fs.img"), os.path.join(work, "mnt")
            os.makedirs(mnt)
            subprocess.run([diolib.REFDIO, "format", img, "--size", "64M"], check=True,
                           capture_output=True)
            p = subprocess.Popen(["unshare", "--pid", "--fork", diolib.REFDIO, "mount", "-f",
                                  img, mnt], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, start_new_session=True)
            try:
                _, err = p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                # It started (the daemon before this check did): stop it, leave nothing.
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True)
                self.fail("the daemon started with a /proc of another pid namespace")
            print("in a new pid namespace with the old /proc: exit %d: %s" %
                  (p.returncode, err.strip()), file=sys.stderr)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("pid namespace", err)
            self.assertFalse(is_mounted(mnt))
            # The negative control: with its own /proc it starts. It is pid 1 of its
            # namespace (SIGTERM does not reach it) and its mount is in its own mount
            # namespace: it is stopped by unmounting there.
            q = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", diolib.REFDIO,
                                  "mount", "-f", img, mnt], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, start_new_session=True)
            try:
                daemon = None
                for _ in range(100):
                    with open("/proc/%d/task/%d/children" % (q.pid, q.pid)) as f:
                        kids = f.read().split()
                    if kids:
                        daemon = int(kids[0])
                        with open("/proc/%d/mountinfo" % daemon) as f:
                            if any(line.split()[4] == mnt for line in f):
                                break
                    self.assertIsNone(q.poll())
                    time.sleep(0.1)
                else:
                    self.fail("the daemon in its own namespaces did not mount")
                subprocess.run(["nsenter", "-t", str(daemon), "-m", "fusermount3", "-u", mnt],
                               check=True, capture_output=True)
                out, err = q.communicate(timeout=30)
            finally:
                if q.poll() is None:
                    os.killpg(q.pid, signal.SIGKILL)
                    q.wait()
            print("in a new pid namespace with its own /proc: mounted, then exit %d" %
                  q.returncode, file=sys.stderr)
            self.assertEqual(q.returncode, 0, err)
            self.assertIsNone(diolib.sanitizer_report(err))
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--stalled":
        stalled_caller(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        unittest.main(verbosity=2)
