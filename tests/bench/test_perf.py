"""test_perf.py - the performance regression check: refdio against the host, side by side.

Runs `refdio bench` on four everyday jobs (4 KiB random and 1 MiB sequential O_DIRECT
writes and reads, queue depth 1, io_uring), 1 s per run, 3 interleaved repeats, on small
files, and fails when the median ratio refdio / host of a job falls below its floor. Only
ratios measured in one run mean anything on a shared machine: a loaded machine slows both
sides alike, so the floors can be generous and still catch a change that loses most of a
job's speed.

The floors (FLOORS below) are about a third of the lowest median measured on the loaded
2-core development VM (docs/benchmarks.md, "The regression check"): today's code does not
yet reach issue 13's goals, so a quarter of a goal would sit too close to what it measures
for noise never to trip it. Under a sanitizer (RD_TEST_SANITIZED, set by tests/meson.build)
the daemon is the ASan/UBSan build, slower per request, while the host side is not: those
floors are about a third of what that build measured (and never above the plain ones).
Either way, every build checks a real floor.

Negative control: the check is run on the same document with refdio's figure of every job
set to half its floor (a regression of that size) and must fail every job, and set to twice
its floor and must pass: the check is seen to fail, and to fail only below the floor.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

REFDIO = os.environ.get("REFDIO", "refdio")
TEST_DIR = os.environ.get("RD_BENCH_TEST_DIR", "/var/tmp")
SANITIZED = bool(os.environ.get("RD_TEST_SANITIZED"))

JOBS = ["rand-write-qd1-direct", "rand-read-qd1-direct",
        "seq-write-qd1-direct", "seq-read-qd1-direct"]
# job: (floor of a plain build, floor under a sanitizer); medians of refdio / host.
FLOORS = {
    "rand-write-qd1-direct": (0.08, 0.05),
    "rand-read-qd1-direct": (0.04, 0.01),
    "seq-write-qd1-direct": (0.09, 0.08),
    "seq-read-qd1-direct": (0.12, 0.10),
}


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def ratios(doc):
    """job -> median ratio refdio / baseline, from a refdio bench JSON document."""
    out = {}
    for j in doc["jobs"]:
        if j["name"] in FLOORS and j["status"] == "ok":
            fig = j["figures"][0]
            out[j["name"]] = j["median"][fig]["ratio"]
    return out


def below_floor(doc):
    """The jobs whose ratio is missing or below the floor of this build: [(job, ratio)]."""
    r = ratios(doc)
    bad = []
    for job in JOBS:
        floor = FLOORS[job][1 if SANITIZED else 0]
        if r.get(job) is None or r[job] < floor:
            bad.append((job, r.get(job)))
    return bad


def at_floor_times(doc, k):
    """The document with refdio's median figure of each job set to k times its floor."""
    d = json.loads(json.dumps(doc))
    for j in d["jobs"]:
        if j["name"] not in FLOORS:
            continue
        floor = FLOORS[j["name"]][1 if SANITIZED else 0]
        for fig in j.get("figures", []):
            m = j["median"][fig]
            m["refdio"] = m["baseline"] * floor * k
            m["ratio"] = m["refdio"] / m["baseline"] if m["baseline"] else None
    return d


def main():
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        print("SKIP: needs root and /dev/fuse")
        sys.exit(77)
    work = tempfile.mkdtemp(prefix="refdio-perftest.", dir=TEST_DIR)
    out = os.path.join(work, "perf.json")
    try:
        t0 = time.time()
        p = subprocess.run([REFDIO, "bench", "--no-matrix", "--jobs", ",".join(JOBS),
                            "--runtime", "1", "--repeat", "3", "--file-size", "16M",
                            "--dir", work, "--json", out],
                           capture_output=True, text=True, timeout=600)
        print(p.stdout)
        print("bench took %.1f s" % (time.time() - t0))
        if p.returncode != 0:
            fail("refdio bench exited %d:\n%s" % (p.returncode, p.stderr[-3000:]))
        with open(out) as f:
            doc = json.load(f)
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", work])

    kind = "sanitizer" if SANITIZED else "plain"
    for job, ratio in sorted(ratios(doc).items()):
        print("%-24s ratio %.3f  floor (%s build) %.3f" %
              (job, ratio, kind, FLOORS[job][1 if SANITIZED else 0]))

    # Negative control first: at half its floor every job fails, at twice it none does.
    caught = below_floor(at_floor_times(doc, 0.5))
    if len(caught) != len(JOBS):
        fail("control: refdio at half the floor passed the check of %s"
             % sorted(set(JOBS) - {j for j, _ in caught}))
    if below_floor(at_floor_times(doc, 2.0)):
        fail("control: refdio at twice the floor failed: %s" %
             below_floor(at_floor_times(doc, 2.0)))
    bad = below_floor(doc)
    if bad:
        fail("below the floor: %s" % ", ".join("%s %s" % (j, "missing" if r is None
                                                           else "%.3f" % r) for j, r in bad))
    print("ok")


if __name__ == "__main__":
    main()
