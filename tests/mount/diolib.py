"""diolib.py - the refdio direct-write ioctls from Python, the dio-write test pattern, and
the daemon's statistics, for the dio mount tests.

The ioctl structs are packed here by hand from include/refdio_ioctl.h (a second client of
the ABI besides `refdio dio-write`); their sizes are asserted against the header's.
"""
import ctypes
import fcntl
import hashlib
import json
import mmap
import os
import struct
import subprocess

from mountlib import REFDIO, sanitizer_report  # noqa: F401 (the tests call it here)

MAGIC = 0xD1
WRITE_FMT = "=QQQIIIIIIQqQ4Q"     # struct refdio_dio_write
WAIT_FMT = "=QIIqQQ3Q"            # struct refdio_dio_wait
assert struct.calcsize(WRITE_FMT) == 104
assert struct.calcsize(WAIT_FMT) == 64


def _iowr(nr, size):
    return (3 << 30) | (size << 16) | (MAGIC << 8) | nr


DIO_WRITE = _iowr(1, 104)
DIO_SUBMIT = _iowr(2, 104)
DIO_WAIT = _iowr(3, 64)
STATS = _iowr(4, 2472)

STRATEGIES = ["refctx", "pin", "chunk", "bounce64"]   # REFDIO_STRATEGY_* = index + 1
ISSUES = ["inline", "punt"]                           # REFDIO_ISSUE_* = index + 1
DSYNC = 1
WAIT_NOWAIT = 1
MIB = 1 << 20
GIB = 1 << 30
# Sizes are divided by this under ThreadSanitizer (tests/meson.build sets RD_TEST_TSAN).
SCALE = 4 if os.environ.get("RD_TEST_TSAN") else 1
PERIOD = 4 * MIB + 4096          # the pattern's period (bin/cmd_dio_write.c)


class Memory:
    """Anonymous memory of this process with its address, for the ioctls to read."""

    def __init__(self, data):
        self.len = len(data)
        self.mm = mmap.mmap(-1, max(self.len, 1))
        self.mm[:self.len] = data
        self._c = ctypes.c_char.from_buffer(self.mm)
        self.addr = ctypes.addressof(self._c)

    def close(self):
        del self._c
        self.mm.close()


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
PROT_NONE, PROT_READ, PROT_WRITE = 0, 1, 2


def mprotect(addr, length, prot):
    if _libc.mprotect(ctypes.c_void_p(addr), length, prot):
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def _ioc(d, t, nr, size):
    return (d << 30) | (size << 16) | (t << 8) | nr


UFFDIO_API = _ioc(3, 0xAA, 0x3F, 24)
UFFDIO_REGISTER = _ioc(3, 0xAA, 0x00, 32)
UFFDIO_ZEROPAGE = _ioc(3, 0xAA, 0x04, 32)


def userfaultfd_stall(addr, length):
    """Registers [addr, addr + length) (untouched anonymous memory) with a new
    userfaultfd for missing pages and returns its fd: every access to those pages,
    the daemon's included, waits until someone resolves them (nobody does) or the fd
    is closed by every process holding it. Needs root."""
    fd = _libc.syscall(323, os.O_CLOEXEC)   # userfaultfd(2), x86-64
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, "userfaultfd: " + os.strerror(e))
    api = bytearray(struct.pack("=QQQ", 0xAA, 0, 0))
    fcntl.ioctl(fd, UFFDIO_API, api, True)
    reg = bytearray(struct.pack("=QQQQ", addr, length, 1, 0))   # MODE_MISSING
    fcntl.ioctl(fd, UFFDIO_REGISTER, reg, True)
    return fd


def userfaultfd_resolve(fd, addr, length):
    """Zero pages for the range: the waiters go on."""
    z = bytearray(struct.pack("=QQQq", addr, length, 0, 0))
    fcntl.ioctl(fd, UFFDIO_ZEROPAGE, z, True)


def vm_hwm(pid):
    """The process's peak resident memory (VmHWM) in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM for %d" % pid)


def _write_struct(addr, length, offset, flags=0, strategy=0, issue=0, window=0, chunk=0):
    # buf, len, offset, flags, strategy, window, chunk, issue, reserved0, id, result,
    # elapsed_ns, reserved[4]
    return bytearray(struct.pack(WRITE_FMT, addr, length, offset, flags, strategy, window,
                                 chunk, issue, 0, 0, 0, 0, 0, 0, 0, 0))


def dio_write(fd, addr, length, offset, **kw):
    """REFDIO_IOC_DIO_WRITE: returns (bytes written, daemon ns). Raises OSError."""
    b = _write_struct(addr, length, offset, **kw)
    fcntl.ioctl(fd, DIO_WRITE, b, True)
    f = struct.unpack(WRITE_FMT, b)
    return f[10], f[11]


def dio_submit(fd, addr, length, offset, **kw):
    """REFDIO_IOC_DIO_SUBMIT: returns the id."""
    b = _write_struct(addr, length, offset, **kw)
    fcntl.ioctl(fd, DIO_SUBMIT, b, True)
    return struct.unpack(WRITE_FMT, b)[9]


def dio_wait(fd, wid, nowait=False):
    """REFDIO_IOC_DIO_WAIT: returns (result, len). Raises OSError (EAGAIN, ENOENT...)."""
    b = bytearray(struct.pack(WAIT_FMT, wid, WAIT_NOWAIT if nowait else 0, 0, 0, 0, 0, 0, 0, 0))
    fcntl.ioctl(fd, DIO_WAIT, b, True)
    f = struct.unpack(WAIT_FMT, b)
    return f[3], f[4]


_blocks = {}


def pattern_block(seed):
    """The P-byte block of `refdio dio-write --pattern SEED`."""
    if seed not in _blocks:
        _blocks[seed] = b"".join(hashlib.sha256(struct.pack("<QQ", seed, i)).digest()
                                 for i in range(PERIOD // 32))
    return _blocks[seed]


def pattern(seed, off, n):
    """The pattern's bytes for file range [off, off + n)."""
    block = pattern_block(seed)
    start = off % PERIOD
    reps = (start + n) // PERIOD + 1
    return (block * reps)[start:start + n]


def check_pattern(path, seed, off, n):
    """Whether file bytes [off, off + n) are the pattern (read a period at a time)."""
    block = pattern_block(seed)
    start = off % PERIOD
    rot = block[start:] + block[:start]
    with open(path, "rb", buffering=0) as f:
        f.seek(off)
        done = 0
        while done < n:
            want = min(PERIOD, n - done)
            got = f.read(want)
            if got != rot[:want]:
                return False
            done += want
    return True


def check_pattern_chunks(path, seed, n, chunk, rng, probe=4096):
    """Whether file bytes [0, n) look like the pattern at every chunk of a write cut into
    `chunk`-byte chunks: the probe bytes on each side of every chunk boundary and a probe
    at a random place inside each chunk, and the last probe bytes. Cheaper than
    check_pattern (about 3 probes per chunk), and it looks where a chunk lost, misplaced,
    stale or committed out of order would show."""
    block = pattern_block(seed)
    ranges = [(max(0, n - probe), n)]
    for start in range(0, n, chunk):
        end = min(start + chunk, n)
        ranges.append((start, min(start + probe, end)))
        ranges.append((max(start, end - probe), end))
        mid = rng.randrange(start, end)
        ranges.append((mid, min(mid + probe, end)))
    with open(path, "rb", buffering=0) as f:
        for lo, hi in ranges:
            got = os.pread(f.fileno(), hi - lo, lo)
            start = lo % PERIOD
            want = block[start:start + hi - lo]
            if len(want) < hi - lo:
                want += block[:hi - lo - len(want)]
            if got != want:
                return False
    return True

STATS_STRATEGY_OFF = 168     # offsetof(struct refdio_stats, strategy)
STRATEGY_STATS_SIZE = 192


def committed_chunks(path, strategy=1):
    """Chunks committed by a strategy, straight from REFDIO_IOC_STATS (no process spawned:
    fast enough to poll while a write runs)."""
    b = bytearray(2472)
    struct.pack_into("=I", b, 0, 2472)
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, STATS, b, True)
    finally:
        os.close(fd)
    off = STATS_STRATEGY_OFF + (strategy - 1) * STRATEGY_STATS_SIZE + 16
    return struct.unpack_from("=Q", b, off)[0]


def stats(mnt, reset=False):
    args = [REFDIO, "stats", mnt, "--json"] + (["--reset"] if reset else [])
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("refdio stats exited %d: %s" % (p.returncode, p.stderr))
    return json.loads(p.stdout)


def dio_write_cli(path, *args, check=True, **kw):
    """Runs refdio dio-write --json; returns (exit status, the result object or None)."""
    p = subprocess.run([REFDIO, "dio-write", "--json", *args, path], capture_output=True,
                       text=True, **kw)
    if check and p.returncode not in (0, 3):
        raise AssertionError("dio-write %s exited %d: %s" % (" ".join(args), p.returncode,
                                                             p.stderr))
    lines = [line for line in p.stdout.splitlines() if line.startswith("{") and "bytes" in line]
    return p.returncode, (json.loads(lines[-1]) if lines else None)


def test_dir():
    return os.environ.get("RD_TEST_DIR", "/tmp")
