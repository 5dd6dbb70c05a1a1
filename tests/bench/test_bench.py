"""test_bench.py - `refdio bench` end to end, on a small matrix (a few seconds).

Checks that a run of 2 strategies x 2 windows x 64 MiB and one everyday job, --repeat 1:
  - exits 0, its JSON validates against bench/bench-schema.json, every cell ran or is
    refused/skipped with a reason, the figures hold what the strategies promise (pin holds
    the whole write, refctx at most its window of chunks);
  - its CSV has a row per cell and per job figure, every PNG chart is a valid PNG;
  - under a 32M memory budget (--max-held) a 64M pin is reported refused, with the
    daemon's ENOBUFS as its reason, and refctx runs within the budget;
  - the scratch image was fsck-clean, the daemon exited 0, and nothing is left behind (no
    mount, no daemon, no scratch directory);
  - bad input gets a clear message and exit 2: an unknown strategy, a window of 0, a size
    larger than the image, a baseline on tmpfs and on ramfs (no O_DIRECT);
  - Ctrl-C (SIGINT) during a write unmounts, removes the scratch image and exits 130.
Negative controls: the schema check rejects broken documents, the PNG check rejects a
damaged PNG, and a bench whose read-back check is made to compare with the wrong bytes
(REFDIO_BENCH_FAULT=verify) reports its cells failed and exits 1.
"""
import csv
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

import jsonschema

REFDIO = os.environ.get("REFDIO", "refdio")
HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = os.path.join(HERE, "..", "..", "bench", "bench-schema.json")
# The baseline must be on a disk filesystem (not tmpfs): the host's /var/tmp by default.
TEST_DIR = os.environ.get("RD_BENCH_TEST_DIR", "/var/tmp")


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def bench(args, env=None, timeout=600):
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run([REFDIO, "bench"] + args, capture_output=True, text=True,
                       timeout=timeout, env=e)
    return p


def mounted_under(path):
    with open("/proc/self/mountinfo") as f:
        return [l.split()[4] for l in f if l.split()[4].startswith(path)]


def procs_naming(path):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if path.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def assert_clean(work, what):
    check(not mounted_under(work), "%s: a mount is left under %s" % (what, work))
    check(not procs_naming(work), "%s: a process naming %s is left" % (what, work))
    left = [n for n in os.listdir(work) if n.startswith("refdio-bench")]
    check(not left, "%s: left behind in %s: %s" % (what, work, left))


# ---- validity checks, each with its negative control ----------------------------------

def png_valid(path):
    """A PNG: signature, IHDR first, chunk CRCs, IDAT inflating to the image size, IEND."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return False
    pos, first, idat, ihdr = 8, True, b"", None
    while pos + 12 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if len(body) != n or pos + 12 + n > len(data):
            return False
        crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(kind + body) & 0xffffffff != crc:
            return False
        if first and kind != b"IHDR":
            return False
        first = False
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            if ihdr is None or not idat:
                return False
            w, h, depth, ctype = ihdr[0], ihdr[1], ihdr[2], ihdr[3]
            chans = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(ctype)
            if not chans or not w or not h:
                return False
            try:
                raw = zlib.decompress(idat)
            except zlib.error:
                return False
            return len(raw) == h * (1 + (w * chans * depth + 7) // 8)
        pos += 12 + n
    return False


def schema_errors(doc, schema):
    v = jsonschema.Draft202012Validator(schema)
    return [e.message for e in v.iter_errors(doc)]


def negative_controls(doc, schema, png, scratch):
    broken = json.loads(json.dumps(doc))
    del broken["machine"]
    check(schema_errors(broken, schema), "control: a document without machine validated")
    broken = json.loads(json.dumps(doc))
    broken["matrix"][0]["status"] = "fine"
    check(schema_errors(broken, schema), "control: an unknown status validated")
    broken = json.loads(json.dumps(doc))
    broken["matrix"][0]["status"] = "refused"
    broken["matrix"][0]["reason"] = None
    check(schema_errors(broken, schema), "control: a refused cell without a reason validated")
    with open(png, "rb") as f:
        data = bytearray(f.read())
    bad = os.path.join(scratch, "bad.png")
    data[len(data) // 2] ^= 0xff
    with open(bad, "wb") as f:
        f.write(data)
    check(not png_valid(bad), "control: a PNG with a flipped byte passed the PNG check")
    with open(bad, "wb") as f:
        f.write(data[:len(data) // 3])
    check(not png_valid(bad), "control: a truncated PNG passed the PNG check")
    os.unlink(bad)


# ---- the small matrix --------------------------------------------------------------------

def small_run(work, out):
    t0 = time.time()
    p = bench(["--strategies", "refctx,pin", "--windows", "1,4", "--sizes", "64M",
               "--repeat", "1", "--jobs", "seq-write-qd1-direct", "--runtime", "0.5",
               "--file-size", "32M", "--dir", work, "--out", out])
    took = time.time() - t0
    print(p.stdout)
    check(p.returncode == 0, "small run exited %d:\n%s" % (p.returncode, p.stderr[-3000:]))
    print("small run took %.1f s" % took)

    with open(SCHEMA) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    with open(os.path.join(out, "bench.json")) as f:
        doc = json.load(f)
    errs = schema_errors(doc, schema)
    check(not errs, "bench.json does not validate: %s" % errs[:5])

    cells = doc["matrix"]
    check(len(cells) == 4, "expected 4 cells (host, refctx W=1, refctx W=4, pin), got %d"
          % len(cells))
    for c in cells:
        check(c["status"] in ("ok", "refused", "skipped"),
              "cell %s %s: %s (%s)" % (c["strategy"], c["window"], c["status"], c["reason"]))
        if c["status"] != "ok":
            check(c["reason"], "cell %s not ok without a reason" % c["strategy"])
        else:
            check(len(c["runs"]) == 1 and c["runs"][0]["bytes"] == 64 << 20,
                  "cell %s: runs %s" % (c["strategy"], c["runs"]))
            check(c["runs"][0]["verified_bytes"] > 0 and
                  c["runs"][0]["verify_mismatches"] == 0, "cell %s: read-back" % c["strategy"])
    by = {(c["strategy"], c["window"]): c for c in cells}
    pin, w1, w4 = by[("pin", None)], by[("refctx", 1)], by[("refctx", 4)]
    if pin["status"] == "ok" and w4["status"] == "ok":
        check(pin["median"]["held_peak"] >= 64 << 20,
              "pin held %s at peak, less than its 64M write" % pin["median"]["held_peak"])
        check(w4["median"]["held_peak"] <= 4 * 2 * (1 << 20),
              "refctx W=4 held %s, more than 4 chunks" % w4["median"]["held_peak"])
        check(w1["median"]["held_peak"] < w4["median"]["held_peak"] < pin["median"]["held_peak"],
              "held peaks not ordered W=1 < W=4 < pin")
        check(w4["median"]["inflight_max"] <= 4, "refctx W=4 had >4 chunks in flight")
        check(w4["median"]["rss_peak"] is None or
              w4["median"]["rss_peak"] < pin["median"]["rss_peak"],
              "daemon peak RSS of refctx not below pin's")
    check(doc["setup"]["fsck"]["status"] == 0, "fsck: %s" % doc["setup"]["fsck"])
    check(doc["setup"]["daemon_exit"] == 0, "daemon exit %s" % doc["setup"]["daemon_exit"])
    check(len(doc["jobs"]) == 1 and doc["jobs"][0]["status"] == "ok",
          "job: %s" % doc["jobs"][:1])
    check(len(doc["jobs"][0]["runs"]) == 2, "one baseline and one refdio run expected")
    check(doc["jobs"][0]["median"]["write"]["ratio"] > 0, "job ratio")

    with open(os.path.join(out, "bench.csv")) as f:
        rows = list(csv.DictReader(f))
    mrows = [r for r in rows if r["kind"] == "matrix"]
    jrows = [r for r in rows if r["kind"] == "job"]
    check(len(mrows) == len(cells), "CSV: %d matrix rows for %d cells" % (len(mrows), len(cells)))
    check(len(jrows) == 1, "CSV: %d job rows for 1 job figure" % len(jrows))
    for r, c in zip(mrows, cells):
        check(r["status"] == c["status"] and r["strategy"] == c["strategy"],
              "CSV row %s does not match its cell %s" % (r, c["strategy"]))

    pngs = sorted(n for n in os.listdir(out) if n.endswith(".png"))
    check(set(pngs) == {"throughput-64M.png", "held.png", "latency.png", "ratios.png"},
          "charts: %s" % pngs)
    for n in pngs:
        check(png_valid(os.path.join(out, n)), "%s is not a valid PNG" % n)
    check(os.path.exists(os.path.join(out, "bench.txt")), "no bench.txt")
    assert_clean(work, "small run")
    negative_controls(doc, schema, os.path.join(out, "held.png"), out)


def verify_control(work, out):
    """The read-back check, made to compare with the wrong bytes, must fail the cells."""
    p = bench(["--strategies", "refctx", "--windows", "2", "--sizes", "16M", "--repeat", "1",
               "--jobs", "none", "--dir", work, "--json", os.path.join(out, "v.json")],
              env={"REFDIO_BENCH_FAULT": "verify"})
    check(p.returncode == 1, "verify control exited %d, not 1:\n%s" % (p.returncode, p.stderr))
    with open(os.path.join(out, "v.json")) as f:
        doc = json.load(f)
    for c in doc["matrix"]:
        check(c["status"] == "failed" and "verify" in (c["reason"] or ""),
              "verify control: cell %s is %s (%s)" % (c["strategy"], c["status"], c["reason"]))
    assert_clean(work, "verify control")


def refused_cells(work, out):
    """Under a 32M budget a 64M pin can never fit: the daemon says ENOBUFS and the cell is
    reported refused with that reason, while refctx runs within the budget."""
    js = os.path.join(out, "r.json")
    p = bench(["--strategies", "pin,refctx", "--windows", "2", "--sizes", "64M",
               "--max-held", "32M", "--repeat", "1", "--jobs", "none", "--dir", work,
               "--json", js])
    check(p.returncode == 0, "budget run exited %d:\n%s" % (p.returncode, p.stderr[-3000:]))
    with open(js) as f:
        doc = json.load(f)
    by = {c["strategy"]: c for c in doc["matrix"]}
    check(by["pin"]["status"] == "refused" and "ENOBUFS" in (by["pin"]["reason"] or ""),
          "pin under a 32M budget: %s (%s)" % (by["pin"]["status"], by["pin"]["reason"]))
    check(by["refctx"]["status"] == "ok" and
          by["refctx"]["median"]["held_peak"] <= 32 << 20,
          "refctx under a 32M budget: %s" % by["refctx"])
    assert_clean(work, "budget run")


# ---- bad input ---------------------------------------------------------------------------

def bad_input(work):
    cases = [
        (["--strategies", "refctx,zap"], r"unknown strategy 'zap'"),
        (["--windows", "0,2"], r"--windows: 0 is out of range \(1\.\.65536\)"),
        (["--image-size", "256M", "--sizes", "1G"], r"larger than the image"),
        (["--baseline", "/dev/shm", "--sizes", "16M"], r"is on tmpfs.*O_DIRECT"),
        (["--chunks", "5000"], r"--chunks: 5000 is out of range"),
        (["--jobs", "nosuchjob"], r"'nosuchjob' names no job"),
        (["--repeat", "0"], r"--repeat: '0'"),
    ]
    ramfs = tempfile.mkdtemp(prefix="refdio-bench-ramfs.", dir=work)
    subprocess.run(["mount", "-t", "ramfs", "ramfs", ramfs], check=True)
    try:
        cases.append((["--baseline", ramfs, "--sizes", "16M"],
                      r"\(ramfs\) does not support O_DIRECT"))
        for args, want in cases:
            p = bench(args + ["--dir", work], timeout=60)
            check(p.returncode == 2, "%s exited %d, not 2:\n%s" % (args, p.returncode, p.stderr))
            check(re.search(want, p.stderr), "%s: message %r does not say %r" %
                  (args, p.stderr.strip(), want))
            check("Traceback" not in p.stderr and "Sanitizer" not in p.stderr,
                  "%s: crashed" % args)
            print("bad input %s -> %s" % (" ".join(args), p.stderr.strip().splitlines()[0]))
        check(not os.listdir(ramfs), "files left in the ramfs baseline")
    finally:
        subprocess.run(["umount", ramfs])
        os.rmdir(ramfs)
    # An image too small for a write, found after mounting: message, exit 2, cleaned up.
    img = os.path.join(work, "small.img")
    subprocess.run([REFDIO, "format", img, "--size", "128M"], check=True,
                   capture_output=True)
    p = bench(["--image", img, "--sizes", "1G", "--jobs", "none", "--dir", work], timeout=120)
    check(p.returncode == 2 and re.search(r"larger than the .* free on", p.stderr),
          "--image too small: exit %d: %s" % (p.returncode, p.stderr))
    os.unlink(img)
    assert_clean(work, "bad input")


# ---- Ctrl-C ------------------------------------------------------------------------------

def interrupt(work):
    p = subprocess.Popen([REFDIO, "bench", "--strategies", "refctx", "--windows", "1",
                          "--sizes", "2G", "--repeat", "3", "--jobs", "none", "--no-verify",
                          "--dir", work], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        deadline = time.time() + 120
        seen = False
        while time.time() < deadline and not seen:
            line = p.stderr.readline()
            if not line:
                break
            seen = "matrix refctx" in line
        check(seen, "the bench never started a refctx cell")
        time.sleep(0.5)         # inside the ioctl, or the next cell
        check(mounted_under(work), "no mount while the bench runs")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    check(p.returncode == 130, "interrupted bench exited %d, not 130:\n%s" % (p.returncode, err))
    check("interrupted" in err, "no word of the interruption: %s" % err)
    check("INTERRUPTED" in out, "the table does not say it was interrupted")
    assert_clean(work, "Ctrl-C")


def main():
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        print("SKIP: needs root and /dev/fuse")
        sys.exit(77)
    work = tempfile.mkdtemp(prefix="refdio-benchtest.", dir=TEST_DIR)
    out = tempfile.mkdtemp(prefix="refdio-benchout.", dir=TEST_DIR)
    try:
        small_run(work, out)
        verify_control(work, out)
        refused_cells(work, out)
        bad_input(work)
        interrupt(work)
    finally:
        for m in mounted_under(work):
            subprocess.run(["fusermount3", "-u", "-z", m])
        subprocess.run(["rm", "-rf", "--one-file-system", work, out])
    print("ok")


if __name__ == "__main__":
    main()
