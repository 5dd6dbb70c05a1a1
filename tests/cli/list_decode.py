"""list_decode.py - `refdio list` decodes every key type, in text and in JSON.

Usage: list_decode.py REFDIO POPULATE
On a known image (format + populate: directories, files with data, symlinks, xattrs,
hard links), for every tree:
 - the JSON and the text say the same thing (each text line is "pos value" of its key);
 - every key decodes (no "problem", no "unknown" type) and carries its type's fields;
 - the extents' decoded device offset, region length and checksum are right: the bytes
   at dev_offset in the image have that crc32c (negative control: the bytes one block
   further on do not);
 - the alloc keys' user sectors add up to the extents' lengths;
 - every directory entry names an inode whose kind matches the entry's d_type, and the
   xattrs' names are those populate sets.
"""
import json
import os
import subprocess
import sys
import tempfile

REFDIO, POPULATE = sys.argv[1], sys.argv[2]
FIELDS = {
    "extent": ["file_offset", "length", "dev_offset", "region_len", "region_offset",
               "csum_type", "csum", "gen", "flags"],
    "alloc": ["bucket", "gen", "data_type", "dirty_sectors", "dirty_bytes"],
    "inode": ["inum", "kind", "mode", "nlink", "uid", "gid", "size", "sectors", "parent",
              "generation", "mtime_ns", "flags"],
    "inode_alloc": ["next_ino"],
    "symlink": ["inum", "chunk", "len", "target"],
    "orphan": ["inum"],
    "dirent": ["name", "inum", "d_type"],
    "whiteout": [],
    "xattr": ["name", "slot", "value_len", "here"],
    "xattr_more": ["slot", "chunk", "bytes"],
}
failures = []


def fail(msg):
    print("FAIL: " + msg)
    failures.append(msg)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def run(*args):
    p = subprocess.run([*args], capture_output=True, text=True)
    if p.returncode:
        raise SystemExit("%s exited %d: %s" % (" ".join(args), p.returncode, p.stderr))
    return p.stdout


def agree(keys, text):
    """None when each text line is its JSON key's position and value, else the first
    difference."""
    lines = text.splitlines()
    if len(lines) != len(keys):
        return "%d text lines, %d JSON keys" % (len(lines), len(keys))
    for k, ln in zip(keys, lines):
        want = "%d:%d:%d %s" % (k["inode"], k["offset"], k["snapshot"], k["value"])
        if ln != want:
            return "text %r, JSON %r" % (ln, want)
    return None


work = tempfile.mkdtemp(prefix="refdio-list-", dir=os.environ.get("RD_TEST_DIR", "/tmp"))
img = os.path.join(work, "img")
try:
    run(REFDIO, "format", img, "--size", "64M", "--bucket-size", "64k",
        "--btree-node-size", "4k", "--force")
    run(POPULATE, img, "200")
    trees = {}
    for t in ("extents", "inodes", "dirents", "xattrs", "alloc"):
        keys = json.loads(run(REFDIO, "list", img, "--btree", t, "--json"))
        text = run(REFDIO, "list", img, "--btree", t)
        trees[t] = keys
        why = agree(keys, text)
        if why:
            fail("%s: text and JSON differ: %s" % (t, why))
        if not keys:
            fail("%s: no keys" % t)
        for k in keys:
            name = k.get("type_name")
            if "problem" in k or name not in FIELDS:
                fail("%s: key %r does not decode" % (t, k))
                continue
            miss = [f for f in FIELDS[name] if f not in k["fields"]]
            if miss:
                fail("%s: %s key lacks %s: %r" % (t, name, miss, k))
            if not k["value"].startswith(name):
                fail("%s: text %r does not start with its type" % (t, k["value"]))
    seen = {k["type_name"] for ks in trees.values() for k in ks}
    for want in ("extent", "alloc", "inode", "inode_alloc", "symlink", "dirent", "xattr"):
        if want not in seen:
            fail("no %s key in the image (populate changed?)" % want)

    # Extents against the image's bytes.
    checked = controls = 0
    with open(img, "rb") as f:
        for k in trees["extents"]:
            x = k["fields"]
            if x["csum_type"] != "crc32c" or x["flags"] != "none" or x["region_len"] > 65536:
                continue
            off = int(x["dev_offset"], 16)
            f.seek(off)
            if crc32c(f.read(x["region_len"])) != int(x["csum"], 16):
                fail("extent %r: crc32c of the bytes at dev_offset differs" % k)
            checked += 1
            if controls < 3:
                f.seek(off + 4096)
                if crc32c(f.read(x["region_len"])) == int(x["csum"], 16):
                    fail("negative control: the bytes a block further on match too")
                controls += 1
            if checked >= 25:
                break
    if checked < 5:
        fail("only %d extents checked against the image" % checked)

    # Alloc keys against the extents.
    user = sum(k["fields"]["dirty_sectors"] for k in trees["alloc"]
               if k["fields"]["data_type"] == "user")
    ext = sum(k["fields"]["length"] for k in trees["extents"]) // 512
    if user != ext:
        fail("alloc keys count %d user sectors, the extents %d" % (user, ext))

    # Names against inodes.
    kinds = {k["fields"]["inum"]: k["fields"]["kind"] for k in trees["inodes"]
             if k["type_name"] == "inode"}
    for k in trees["dirents"]:
        if k["type_name"] != "dirent":
            continue
        d = k["fields"]
        if kinds.get(d["inum"]) != d["d_type"]:
            fail("dirent %r: inode %d is a %s" % (d, d["inum"], kinds.get(d["inum"])))
    names = {k["fields"]["name"] for k in trees["xattrs"] if k["type_name"] == "xattr"}
    if not names or not all(n.startswith(("user.", "trusted.", "security.")) for n in names):
        fail("xattr names %r" % names)

    # Negative control of the text/JSON comparison.
    keys = trees["dirents"]
    text = run(REFDIO, "list", img, "--btree", "dirents")
    bad = [dict(k) for k in keys]
    bad[0]["value"] += "x"
    if agree(bad, text) is None:
        fail("negative control: a changed value still agreed")
    print("%d keys in 5 trees decoded, %d extents checked against the image" %
          (sum(len(v) for v in trees.values()), checked))
finally:
    subprocess.run(["rm", "-rf", work])
sys.exit(1 if failures else 0)
