"""test_lifecycle.py - how `refdio mount` starts, detaches, and stops.

Start-up errors come back with a message and a non-zero exit before the daemon detaches;
the forms `refdio mount` (detached and -f), `refdio IMAGE MNT -o ...` and
`mount -t fuse.refdio` all work; fusermount3 -u, umount, SIGTERM and SIGINT all stop the
daemon cleanly (the image is marked clean); after kill -9 the next mount replays the
journal and fsynced data is there; every mount option is accepted and unknown ones are
refused. Every daemon started here is stopped by its PID whatever happens.
"""
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import mountlib  # noqa: E402
from mountlib import REFDIO, Mount, format_image, is_mounted, run  # noqa: E402


def shq(s):
    return shlex.quote(s)


def image_state(image):
    return json.loads(run(REFDIO, "show", "--json", image).stdout)


def daemon_pids(mnt):
    """PIDs of refdio daemons serving mnt (found by their command line)."""
    real = os.path.realpath(mnt)
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if args and os.path.basename(args[0]) == b"refdio" and (
                mnt.encode() in args or real.encode() in args):
            try:
                with open("/proc/%s/stat" % d) as f:
                    if f.read().split()[2] == "Z":
                        continue
            except OSError:
                continue
            pids.append(int(d))
    return pids


class Lifecycle(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="refdio-life-")
        self.image = os.path.join(self.dir, "fs.img")
        self.mnt = os.path.join(self.dir, "mnt")
        os.mkdir(self.mnt)
        # Detached daemons write to /dev/null: every process started here writes its
        # sanitizer reports to files in the test's directory instead, checked at the end.
        self.san = os.path.join(self.dir, "sanitizer")
        self.saved_env = {v: os.environ.get(v) for v in mountlib.SAN_VARS}
        os.environ.update(mountlib.san_env(self.san))
        format_image(self.image, "256M")

    def tearDown(self):
        # Whatever happened: no mount, no daemon of ours left.
        for _ in range(50):
            if not is_mounted(self.mnt):
                break
            run("fusermount3", "-u", "-z", self.mnt, check=False)
            time.sleep(0.1)
        for pid in daemon_pids(self.mnt):
            os.kill(pid, signal.SIGKILL)
        for var, val in self.saved_env.items():
            if val is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = val
        reports = mountlib.san_reports(self.san)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.assertEqual(reports, [], "sanitizer reports:\n" + "\n".join(reports))

    def wait_gone(self, pids, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not any(os.path.exists("/proc/%d" % p) and p in daemon_pids(self.mnt) for p in pids):
                return True
            time.sleep(0.05)
        return False

    def detached_mount(self, *extra):
        p = run(REFDIO, "mount", *extra, self.image, self.mnt, check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(is_mounted(self.mnt))
        pids = daemon_pids(self.mnt)
        self.assertEqual(len(pids), 1, pids)
        return pids[0]

    # -- start-up errors -------------------------------------------------------------------
    def expect_refused(self, args, pattern):
        p = run(REFDIO, *args, check=False)
        self.assertNotEqual(p.returncode, 0, "accepted: %s" % (args,))
        self.assertRegex((p.stdout + p.stderr).lower(), pattern)
        self.assertFalse(is_mounted(self.mnt))
        self.assertEqual(daemon_pids(self.mnt), [])

    def test_startup_errors(self):
        bad = os.path.join(self.dir, "bad.img")
        with open(bad, "wb") as f:
            f.write(os.urandom(1 << 20))
        self.expect_refused(["mount", bad, self.mnt], "not a refdio image")
        self.expect_refused(["mount", os.path.join(self.dir, "none.img"), self.mnt], "no such file")
        self.expect_refused(["mount", self.image, os.path.join(self.dir, "nomnt")], "no such file")
        self.expect_refused(["mount", self.image, self.image], "not a directory")
        self.expect_refused(["mount", "-o", "frobnicate", self.image, self.mnt], "unknown option")
        self.expect_refused(["mount", "-o", "threads=0", self.image, self.mnt], "threads")
        self.expect_refused(["mount", "-o", "max_background=x", self.image, self.mnt], "max_background")
        self.expect_refused(["mount", self.image], "mountpoint")
        # busy: something is mounted there already
        pid = self.detached_mount()
        p = run(REFDIO, "mount", self.image, self.mnt, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr.lower(), "busy")
        self.assertEqual(daemon_pids(self.mnt), [pid])
        run("fusermount3", "-u", self.mnt)
        self.assertTrue(self.wait_gone([pid]))

    # -- forms and stops -------------------------------------------------------------------
    def test_detached_then_fusermount(self):
        pid = self.detached_mount()
        with open(os.path.join(self.mnt, "f"), "w") as f:
            f.write("data")
        self.assertFalse(image_state(self.image)["clean"])
        run("fusermount3", "-u", self.mnt)
        self.assertTrue(self.wait_gone([pid]), "daemon still running after unmount")
        self.assertTrue(image_state(self.image)["clean"])
        run(REFDIO, "fsck", "-n", self.image)

    def test_umount(self):
        pid = self.detached_mount()
        run("umount", self.mnt)
        self.assertTrue(self.wait_gone([pid]))
        self.assertTrue(image_state(self.image)["clean"])

    def test_signals(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            pid = self.detached_mount()
            with open(os.path.join(self.mnt, "f%d" % sig), "w") as f:
                f.write("x" * 100000)
            # A file still open when the signal comes: its RELEASE never reaches the
            # daemon, which must free its handle itself (the sanitizer's leak check).
            held = open(os.path.join(self.mnt, "held%d" % sig), "w")
            try:
                os.kill(pid, sig)
                self.assertTrue(self.wait_gone([pid]), "daemon ignored signal %d" % sig)
            finally:
                try:
                    held.close()
                except OSError:
                    pass
            self.assertFalse(is_mounted(self.mnt))
            self.assertTrue(image_state(self.image)["clean"])
            run(REFDIO, "fsck", "-n", self.image)
        with Mount(image=self.image, workdir=self.dir) as m:
            self.assertEqual(sorted(os.listdir(m.mnt)),
                             ["f15", "f2", "held15", "held2", "lost+found"])

    def test_kill9_replays(self):
        pid = self.detached_mount()
        path = os.path.join(self.mnt, "synced")
        data = os.urandom(3 << 20)
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.kill(pid, signal.SIGKILL)
        self.assertTrue(self.wait_gone([pid]))
        run("fusermount3", "-u", "-z", self.mnt, check=False)
        st = image_state(self.image)
        self.assertFalse(st["clean"])
        self.assertGreater(st["replayed_entries"], 0)
        run(REFDIO, "fsck", "-n", self.image)
        with Mount(image=self.image, workdir=self.dir) as m:
            with open(m.path("synced"), "rb") as f:
                self.assertEqual(f.read(), data)

    def test_helper_form_and_mount_t(self):
        # refdio IMAGE MOUNTPOINT -o OPTIONS, as mount.fuse3 runs it
        p = run(REFDIO, self.image, self.mnt, "-o", "rw,nosuid,nodev", check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        pids = daemon_pids(self.mnt)
        self.assertEqual(len(pids), 1)
        run("fusermount3", "-u", self.mnt)
        self.assertTrue(self.wait_gone(pids))
        # mount -t fuse "PROGRAM#IMAGE": the helper runs our binary by its path
        p = run("mount", "-t", "fuse", "%s#%s" % (os.path.realpath(REFDIO), self.image), self.mnt,
                "-o", "noatime", check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        pids = daemon_pids(self.mnt)
        self.assertEqual(len(pids), 1)
        run("umount", self.mnt)
        self.assertTrue(self.wait_gone(pids))
        # mount -t fuse.refdio: the helper looks "refdio" up on a PATH that mount(8) resets to
        # the system directories (/usr/local/bin is one: where `meson install` puts it). The
        # test puts the built binary there in a mount namespace of its own (unshare), so no
        # refdio installed on the machine, and no other test run, sees it or is in the way:
        # bound over an installed refdio, or alone on a tmpfs over /usr/local/sbin. The
        # daemon stays in that namespace; the test reaches its mount by /proc/PID/root and
        # unmounts it there (nsenter).
        std = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        found = shutil.which("refdio", path=std)
        if found is not None:
            place = "mount --bind %s %s" % (shq(os.path.realpath(REFDIO)), shq(found))
        else:
            place = ("mount -t tmpfs -o mode=755 refdio-test /usr/local/sbin && "
                     "ln -s %s /usr/local/sbin/refdio" % shq(os.path.realpath(REFDIO)))
        script = "set -e; %s; exec mount -t fuse.refdio %s %s -o noatime" % (
            place, shq(self.image), shq(self.mnt))
        p = run("unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertFalse(is_mounted(self.mnt))      # not in the test's own namespace
        pids = daemon_pids(self.mnt)
        self.assertEqual(len(pids), 1, pids)
        pid = pids[0]
        with open("/proc/%d/mountinfo" % pid) as f:
            self.assertTrue(any(line.split()[4] == os.path.realpath(self.mnt) and
                                "fuse.refdio" in line for line in f))
        # The daemon got the sanitizer settings through mount(8) and its helper.
        with open("/proc/%d/environ" % pid, "rb") as f:
            self.assertIn(("log_path=" + self.san).encode(), f.read())
        inside = "/proc/%d/root%s" % (pid, os.path.realpath(self.mnt))
        with open(os.path.join(inside, "via-mount-t"), "w") as f:
            f.write("ok")
        run("nsenter", "--target", str(pid), "--mount", "umount", os.path.realpath(self.mnt))
        self.assertTrue(self.wait_gone(pids))
        self.assertTrue(image_state(self.image)["clean"])
        with Mount(image=self.image, workdir=self.dir) as m:
            with open(m.path("via-mount-t")) as f:
                self.assertEqual(f.read(), "ok")

    # -- options ----------------------------------------------------------------------------
    def test_options(self):
        for opts in ["threads=1", "threads=8,max_background=128", "direct_io", "writeback_cache",
                     "attr_timeout=0,entry_timeout=0", "sync", "noatime,nodev,nosuid,noexec",
                     "allow_other,nodefault_permissions", "fsname=demo,subtype=refdio"]:
            with Mount(image=self.image, workdir=self.dir, opts=opts) as m:
                p = m.path("file-" + opts.split(",")[0].split("=")[0])
                data = os.urandom(1 << 20) + b"tail"
                with open(p, "wb") as f:
                    f.write(data)
                with open(p, "rb") as f:
                    self.assertEqual(f.read(), data, opts)
                if opts.startswith("fsname"):
                    with open("/proc/self/mountinfo") as f:
                        line = [ln for ln in f if " %s " % os.path.realpath(m.mnt) in ln][0]
                    self.assertIn("fuse.refdio demo", line)


if __name__ == "__main__":
    mountlib.main()
