"""mountlib.py - format, mount and always unmount a refdio image for the mount tests.

A Mount is a context manager: it formats an image (unless given one), starts
`refdio mount -f` as a child process, waits until the mount is live, and on exit
unmounts, waits for the daemon to finish (it must exit 0: a clean stop flushes and marks
the image clean), kills it by PID only if it does not, checks the daemon's whole log for
sanitizer reports, and runs `refdio fsck -n`.
Whatever happens in the test, no mount and no daemon is left behind.

main() runs a test file with meson's exit codes: a skipped test makes the file exit 77
(meson counts it as skipped, never as passed).
"""
import glob
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

REFDIO = os.environ.get("REFDIO", "refdio")


def run(*args, check=True, **kw):
    p = subprocess.run(list(args), capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def is_mounted(path):
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == real for line in f)


def sanitizer_report(log_text):
    """The first line of a sanitizer report (ASan, LSan, UBSan, TSan) in a log, or None."""
    for line in log_text.splitlines():
        if ("AddressSanitizer" in line or "LeakSanitizer" in line or
                "runtime error:" in line or "ThreadSanitizer" in line):
            return line
    return None


SAN_VARS = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS")


def san_env(prefix):
    """Sanitizer options for daemons that detach (their stderr becomes /dev/null): each
    process writes its reports to a file PREFIX.PID instead (see san_reports). A dict of
    the variables to set in the environment."""
    env = {}
    for var in SAN_VARS:
        opts = os.environ.get(var, "")
        env[var] = (opts + ":" if opts else "") + "log_path=" + prefix
    return env


def san_reports(prefix):
    """The text of every sanitizer report written under san_env(prefix)."""
    out = []
    for path in sorted(glob.glob(prefix + ".*")):
        with open(path, errors="replace") as f:
            out.append("%s:\n%s" % (path, f.read()[-4000:]))
    return out


def main():
    """unittest.main with meson's exit codes: 1 if a test failed, else 77 if one was
    skipped (the skip is printed with its reason), else 0."""
    result = unittest.main(verbosity=2, exit=False).result
    if not result.wasSuccessful() or result.testsRun == 0:
        sys.exit(1)
    if result.skipped:
        for test, reason in result.skipped:
            print("SKIP %s: %s" % (test.id(), reason), file=sys.stderr)
        sys.exit(77)
    sys.exit(0)


def format_image(path, size="512M", extra=()):
    run(REFDIO, "format", path, "--size", size, "--force", *extra)


class Mount:
    def __init__(self, image=None, opts=None, size="512M", fmt_args=(), workdir=None, fsck=True):
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="refdio-mnt-")
        os.chmod(self.dir, 0o755)   # other users must reach the mount (permission tests)
        self.image = image or os.path.join(self.dir, "fs.img")
        self.mnt = os.path.join(self.dir, "mnt")
        self.opts = opts
        self.size = size
        self.fmt_args = fmt_args
        self.fsck = fsck
        self.proc = None
        self.log = os.path.join(self.dir, "daemon.log")
        os.makedirs(self.mnt, exist_ok=True)
        if image is None or not os.path.exists(self.image):
            format_image(self.image, size, fmt_args)

    # -- life cycle ----------------------------------------------------------------------
    def start(self):
        args = [REFDIO, "mount", "-f", self.image, self.mnt]
        if self.opts:
            args[2:2] = ["-o", self.opts]
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            if is_mounted(self.mnt):
                return self
            if self.proc.poll() is not None:
                raise AssertionError("daemon exited %d at start-up:\n%s" % (self.proc.returncode, self.read_log()))
            time.sleep(0.05)
        self.kill()
        raise AssertionError("mount did not appear within 20 s:\n" + self.read_log())

    def read_log(self, whole=False):
        """The daemon's log (every start of this Mount appends): its end, or all of it."""
        try:
            with open(self.log, errors="replace") as f:
                text = f.read()
        except OSError:
            return ""
        return text if whole else text[-4000:]

    def sanitizer_report(self):
        return sanitizer_report(self.read_log(whole=True))

    def stop(self, how="fusermount"):
        """Unmounts and waits for the daemon; returns its exit status."""
        if self.proc is None:
            return 0
        if how == "fusermount":
            for _ in range(50):
                p = run("fusermount3", "-u", self.mnt, check=False)
                if p.returncode == 0 or not is_mounted(self.mnt):
                    break
                time.sleep(0.1)   # busy: a test's file may still be closing
        elif how == "umount":
            run("umount", self.mnt, check=False)
        elif how in ("SIGTERM", "SIGINT"):
            os.kill(self.proc.pid, getattr(signal, how))
        try:
            status = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("daemon did not exit after unmount:\n" + self.read_log())
        self._cleanup_mount()
        self.proc = None
        self.logf.close()
        return status

    def kill(self):
        """SIGKILL the daemon (a crash) and clear the dead mount."""
        if self.proc is not None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None
            self.logf.close()
        self._cleanup_mount()

    def _cleanup_mount(self):
        for _ in range(50):
            if not is_mounted(self.mnt):
                return
            run("fusermount3", "-u", "-z", self.mnt, check=False)
            time.sleep(0.1)

    def check(self):
        p = run(REFDIO, "fsck", "-n", self.image, check=False)
        if p.returncode != 0:
            raise AssertionError("fsck -n exited %d:\n%s%s" % (p.returncode, p.stdout, p.stderr))

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        try:
            status = self.stop()
            if exc_type is None:
                assert status == 0, "daemon exited %d:\n%s" % (status, self.read_log())
                assert self.sanitizer_report() is None, self.read_log()
                if self.fsck:
                    self.check()
        finally:
            self.kill()
            if self.own_dir and exc_type is None:
                subprocess.run(["rm", "-rf", self.dir])
        return False

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)
