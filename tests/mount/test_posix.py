"""test_posix.py - POSIX behaviour through a real refdio mount.

Every operation the daemon serves, with its error cases, checked the way a program sees
them. One mount serves the suite (plus one read-only mount); each test works in its own
directory. Run by meson with REFDIO pointing at the built tool; needs root and /dev/fuse.
"""
import ctypes
import errno
import mmap
import os
import socket
import stat
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import mountlib  # noqa: E402
from mountlib import Mount  # noqa: E402

libc = ctypes.CDLL(None, use_errno=True)
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 1, 2, 16
AT_FDCWD = -100
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2


def renameat2(old, new, flags):
    libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if libc.renameat2(AT_FDCWD, old.encode(), AT_FDCWD, new.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old)


def fallocate(fd, mode, off, length):
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    if libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def utimensat(path, atime, mtime):
    ts = (Timespec * 2)(Timespec(*atime), Timespec(*mtime))
    libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    if libc.utimensat(AT_FDCWD, path.encode(), ts, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)


def as_user(uid, fn):
    """Runs fn() in a child with uid/gid set; returns the errno it raised (0 if none)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            fn()
        except OSError as e:
            code = e.errno
        except BaseException:
            code = 255
        os.write(w, bytes([code]))
        os._exit(0)
    os.close(w)
    data = os.read(r, 1)
    os.close(r)
    os.waitpid(pid, 0)
    return data[0] if data else 254


class PosixSuite(unittest.TestCase):
    m = None

    @classmethod
    def setUpClass(cls):
        # allow_other: the permission tests run as another user
        cls.m = Mount(size="2G", opts="allow_other").start()

    @classmethod
    def tearDownClass(cls):
        m, cls.m = cls.m, None
        status = m.stop()
        try:
            assert status == 0, "daemon exited %d:\n%s" % (status, m.read_log())
            m.check()
        finally:
            m.kill()

    def setUp(self):
        self.d = self.m.path(self.id().split(".")[-1])
        os.mkdir(self.d)

    def p(self, *parts):
        return os.path.join(self.d, *parts)

    def assertErrno(self, code, fn, *args, **kw):
        with self.assertRaises(OSError) as cm:
            fn(*args, **kw)
        self.assertEqual(cm.exception.errno, code, "%s: %s" % (errno.errorcode.get(code), cm.exception))

    # -- files --------------------------------------------------------------------------
    def test_write_read_stat(self):
        data = os.urandom(300000)
        with open(self.p("f"), "wb") as f:
            f.write(data)
        with open(self.p("f"), "rb") as f:
            self.assertEqual(f.read(), data)
        st = os.stat(self.p("f"))
        self.assertEqual(st.st_size, len(data))
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertGreaterEqual(st.st_blocks * 512, len(data))

    def test_overwrite_middle_unaligned(self):
        with open(self.p("f"), "wb") as f:
            f.write(b"a" * 10000)
        with open(self.p("f"), "r+b") as f:
            f.seek(4093)
            f.write(b"XYZ" * 3)
        with open(self.p("f"), "rb") as f:
            got = f.read()
        self.assertEqual(got, b"a" * 4093 + b"XYZ" * 3 + b"a" * (10000 - 4102))

    def test_o_append(self):
        with open(self.p("f"), "wb") as f:
            f.write(b"123")
        fd = os.open(self.p("f"), os.O_WRONLY | os.O_APPEND)
        os.write(fd, b"456")
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b"789")
        os.close(fd)
        with open(self.p("f"), "rb") as f:
            self.assertEqual(f.read(), b"123456789")

    def test_o_trunc(self):
        with open(self.p("f"), "wb") as f:
            f.write(b"x" * 50000)
        fd = os.open(self.p("f"), os.O_WRONLY | os.O_TRUNC)
        os.close(fd)
        self.assertEqual(os.stat(self.p("f")).st_size, 0)

    def test_o_excl(self):
        fd = os.open(self.p("f"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        os.close(fd)
        self.assertErrno(errno.EEXIST, os.open, self.p("f"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)

    def test_o_direct_aligned_and_unaligned(self):
        size = 1 << 20
        buf = mmap.mmap(-1, size)
        pattern = os.urandom(size)
        buf[:] = pattern
        fd = os.open(self.p("f"), os.O_CREAT | os.O_RDWR | os.O_DIRECT, 0o644)
        try:
            self.assertEqual(os.pwritev(fd, [buf], 0), size)
            out = mmap.mmap(-1, size)
            self.assertEqual(os.preadv(fd, [out], 0), size)
            self.assertEqual(out[:], pattern)
            # unaligned offset and length
            small = mmap.mmap(-1, 4096)
            small[:1000] = b"Q" * 1000
            self.assertEqual(os.pwritev(fd, [memoryview(small)[:1000]], 12345), 1000)
            self.assertEqual(os.preadv(fd, [out], 0), size)
            expect = bytearray(pattern)
            expect[12345:13345] = b"Q" * 1000
            self.assertEqual(out[:], bytes(expect))
        finally:
            os.close(fd)

    def test_sparse_and_seek(self):
        with open(self.p("f"), "wb") as f:
            f.seek(1 << 30)
            f.write(b"end")
        st = os.stat(self.p("f"))
        self.assertEqual(st.st_size, (1 << 30) + 3)
        self.assertLess(st.st_blocks, 1024)
        fd = os.open(self.p("f"), os.O_RDONLY)
        try:
            self.assertEqual(os.pread(fd, 4096, 1 << 20), b"\0" * 4096)
            self.assertEqual(os.lseek(fd, 0, os.SEEK_HOLE), 0)
            data = os.lseek(fd, 0, os.SEEK_DATA)
            self.assertLessEqual(data, 1 << 30)
            self.assertGreater(data, (1 << 30) - (1 << 20))
            self.assertErrno(errno.ENXIO, os.lseek, fd, (1 << 30) + 10, os.SEEK_DATA)
        finally:
            os.close(fd)

    def test_truncate_grow_shrink(self):
        with open(self.p("f"), "wb") as f:
            f.write(b"z" * 10000)
        os.truncate(self.p("f"), 5000)
        os.truncate(self.p("f"), 20000)
        with open(self.p("f"), "rb") as f:
            self.assertEqual(f.read(), b"z" * 5000 + b"\0" * 15000)

    def test_fallocate_modes(self):
        fd = os.open(self.p("f"), os.O_CREAT | os.O_RDWR, 0o644)
        try:
            os.posix_fallocate(fd, 0, 1 << 20)
            self.assertEqual(os.fstat(fd).st_size, 1 << 20)
            self.assertEqual(os.pread(fd, 100, 5000), b"\0" * 100)
            os.pwrite(fd, b"y" * 65536, 0)
            fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192)
            got = os.pread(fd, 65536, 0)
            self.assertEqual(got, b"y" * 4096 + b"\0" * 8192 + b"y" * (65536 - 12288))
            fallocate(fd, FALLOC_FL_ZERO_RANGE, 100, 200)
            self.assertEqual(os.pread(fd, 300, 0), b"y" * 100 + b"\0" * 200)
            fallocate(fd, FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20)
            self.assertEqual(os.fstat(fd).st_size, 1 << 20)
        finally:
            os.close(fd)

    def test_fsync_and_fdatasync(self):
        fd = os.open(self.p("f"), os.O_CREAT | os.O_RDWR | os.O_DSYNC, 0o644)
        os.write(fd, b"durable")
        os.fsync(fd)
        os.fdatasync(fd)
        os.close(fd)
        dfd = os.open(self.d, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)

    # -- names --------------------------------------------------------------------------
    def test_errors(self):
        self.assertErrno(errno.ENOENT, os.open, self.p("missing"), os.O_RDONLY)
        os.mkdir(self.p("dir"))
        self.assertErrno(errno.EEXIST, os.mkdir, self.p("dir"))
        open(self.p("dir", "x"), "w").close()
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, self.p("dir"))
        self.assertErrno(errno.EISDIR, os.open, self.p("dir"), os.O_WRONLY)
        self.assertErrno(errno.ENOTDIR, os.mkdir, self.p("dir", "x", "y"))
        self.assertErrno(errno.ENOTDIR, os.rmdir, self.p("dir", "x"))
        self.assertErrno(errno.ENAMETOOLONG, os.open, self.p("n" * 256), os.O_CREAT | os.O_WRONLY)
        fd = os.open(self.p("n" * 255), os.O_CREAT | os.O_WRONLY)
        os.close(fd)
        self.assertErrno(errno.EISDIR, os.rename, self.p("n" * 255), self.p("dir"))
        os.mkdir(self.p("dir2"))
        self.assertErrno(errno.ENOTDIR, os.rename, self.p("dir2"), self.p("n" * 255))
        self.assertErrno(errno.EINVAL, os.rename, self.p("dir"), self.p("dir", "sub"))

    def test_eacces_as_other_user(self):
        os.chmod(self.d, 0o755)
        with open(self.p("secret"), "w") as f:
            f.write("x")
        os.chmod(self.p("secret"), 0o600)
        self.assertEqual(as_user(65534, lambda: open(self.p("new"), "w")), errno.EACCES)
        self.assertEqual(as_user(65534, lambda: open(self.p("secret"))), errno.EACCES)
        self.assertEqual(as_user(65534, lambda: os.unlink(self.p("secret"))), errno.EACCES)
        self.assertEqual(as_user(65534, lambda: os.stat(self.p("secret"))), 0)

    def test_symlink_readlink(self):
        target = "t" * 1000 + "/x"
        os.symlink(target, self.p("l"))
        self.assertEqual(os.readlink(self.p("l")), target)
        self.assertTrue(stat.S_ISLNK(os.lstat(self.p("l")).st_mode))
        with open(self.p("real"), "w") as f:
            f.write("hello")
        os.symlink("real", self.p("l2"))
        with open(self.p("l2")) as f:
            self.assertEqual(f.read(), "hello")

    def test_hard_links(self):
        with open(self.p("a"), "w") as f:
            f.write("data")
        os.link(self.p("a"), self.p("b"))
        self.assertEqual(os.stat(self.p("a")).st_nlink, 2)
        self.assertEqual(os.stat(self.p("a")).st_ino, os.stat(self.p("b")).st_ino)
        os.unlink(self.p("a"))
        self.assertEqual(os.stat(self.p("b")).st_nlink, 1)
        with open(self.p("b")) as f:
            self.assertEqual(f.read(), "data")
        os.mkdir(self.p("d"))
        self.assertErrno(errno.EPERM, os.link, self.p("d"), self.p("d2"))

    def test_unlink_open_file(self):
        fd = os.open(self.p("f"), os.O_CREAT | os.O_RDWR, 0o644)
        os.write(fd, b"still here")
        os.unlink(self.p("f"))
        self.assertFalse(os.path.exists(self.p("f")))
        self.assertEqual(os.pread(fd, 100, 0), b"still here")
        os.close(fd)

    def test_rename_flags(self):
        for n, c in (("a", "A"), ("b", "B")):
            with open(self.p(n), "w") as f:
                f.write(c)
        self.assertErrno(errno.EEXIST, renameat2, self.p("a"), self.p("b"), RENAME_NOREPLACE)
        renameat2(self.p("a"), self.p("b"), RENAME_EXCHANGE)
        self.assertEqual(open(self.p("a")).read(), "B")
        self.assertEqual(open(self.p("b")).read(), "A")
        renameat2(self.p("a"), self.p("c"), RENAME_NOREPLACE)
        self.assertFalse(os.path.exists(self.p("a")))
        os.rename(self.p("c"), self.p("b"))
        self.assertEqual(open(self.p("b")).read(), "B")
        os.mkdir(self.p("d1"))
        os.mkdir(self.p("d2"))
        open(self.p("d2", "x"), "w").close()
        self.assertErrno(errno.ENOTEMPTY, os.rename, self.p("d1"), self.p("d2"))
        os.rename(self.p("d2"), self.p("d1", "moved"))
        self.assertEqual(os.listdir(self.p("d1", "moved")), ["x"])
        self.assertEqual(os.stat(self.p("d1")).st_nlink, 3)

    def test_special_files(self):
        os.mkfifo(self.p("fifo"))
        self.assertTrue(stat.S_ISFIFO(os.stat(self.p("fifo")).st_mode))
        os.mknod(self.p("chr"), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        st = os.stat(self.p("chr"))
        self.assertTrue(stat.S_ISCHR(st.st_mode))
        self.assertEqual(st.st_rdev, os.makedev(1, 3))
        os.mknod(self.p("blk"), 0o600 | stat.S_IFBLK, os.makedev(7, 0))
        self.assertTrue(stat.S_ISBLK(os.stat(self.p("blk")).st_mode))
        s = socket.socket(socket.AF_UNIX)
        s.bind(self.p("sock"))
        s.close()
        self.assertTrue(stat.S_ISSOCK(os.stat(self.p("sock")).st_mode))

    def test_setattr(self):
        open(self.p("f"), "w").close()
        os.chmod(self.p("f"), 0o4711)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("f")).st_mode), 0o4711)
        os.chown(self.p("f"), 1234, 5678)
        st = os.stat(self.p("f"))
        self.assertEqual((st.st_uid, st.st_gid), (1234, 5678))
        os.utime(self.p("f"), ns=(1000000000123, 2000000000456))
        st = os.stat(self.p("f"))
        self.assertEqual((st.st_atime_ns, st.st_mtime_ns), (1000000000123, 2000000000456))
        utimensat(self.p("f"), (0, UTIME_OMIT), (0, UTIME_NOW))
        st = os.stat(self.p("f"))
        self.assertEqual(st.st_atime_ns, 1000000000123)
        self.assertGreater(st.st_mtime_ns, 2000000000456)

    def test_xattrs(self):
        open(self.p("f"), "w").close()
        f = self.p("f")
        self.assertEqual(os.listxattr(f), [])
        self.assertErrno(errno.ENODATA, os.getxattr, f, "user.none")
        os.setxattr(f, "user.a", b"1")
        self.assertErrno(errno.EEXIST, os.setxattr, f, "user.a", b"2", os.XATTR_CREATE)
        self.assertErrno(errno.ENODATA, os.setxattr, f, "user.b", b"2", os.XATTR_REPLACE)
        big = os.urandom(65536)
        os.setxattr(f, "user.big", big)
        self.assertEqual(os.getxattr(f, "user.big"), big)
        self.assertEqual(sorted(os.listxattr(f)), ["user.a", "user.big"])
        os.removexattr(f, "user.a")
        self.assertErrno(errno.ENODATA, os.removexattr, f, "user.a")
        self.assertEqual(os.listxattr(f), ["user.big"])

    def test_statfs(self):
        before = os.statvfs(self.m.mnt)
        with open(self.p("f"), "wb") as f:
            f.write(os.urandom(8 << 20))
            f.flush()
            os.fsync(f.fileno())
        after = os.statvfs(self.m.mnt)
        self.assertGreater(before.f_bfree, after.f_bfree)
        self.assertEqual(after.f_namemax, 255)

    def test_large_directory(self):
        n = 10000
        for i in range(n):
            os.close(os.open(self.p("entry-%05d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
        names = os.listdir(self.d)
        self.assertEqual(len(names), n)
        self.assertEqual(len(set(names)), n)
        for i in range(0, n, 97):
            os.stat(self.p("entry-%05d" % i))
        for i in range(n):
            os.unlink(self.p("entry-%05d" % i))
        self.assertEqual(os.listdir(self.d), [])

    def test_readdir_cookies_stable(self):
        for i in range(300):
            open(self.p("e%d" % i), "w").close()
        seen = []
        with os.scandir(self.d) as it:
            for k, e in enumerate(it):
                seen.append(e.name)
                if k == 50:
                    for j in range(300, 400):
                        open(self.p("e%d" % j), "w").close()
        present = set("e%d" % i for i in range(300))
        self.assertTrue(present <= set(seen))
        self.assertEqual(len(seen), len(set(seen)))


class ReadOnlyMount(unittest.TestCase):
    def test_erofs(self):
        import shutil
        import tempfile
        work = tempfile.mkdtemp(prefix="refdio-ro-")
        self.addCleanup(shutil.rmtree, work, True)
        m = Mount(size="256M", workdir=work)
        with m:
            with open(m.path("f"), "w") as f:
                f.write("x")
        m2 = Mount(image=m.image, opts="ro", workdir=work)
        with m2:
            self.assertEqual(open(m2.path("f")).read(), "x")
            for fn in (lambda: open(m2.path("g"), "w"), lambda: os.mkdir(m2.path("d")),
                       lambda: os.unlink(m2.path("f")), lambda: os.setxattr(m2.path("f"), "user.x", b"1")):
                with self.assertRaises(OSError) as cm:
                    fn()
                self.assertEqual(cm.exception.errno, errno.EROFS)


if __name__ == "__main__":
    mountlib.main()
