#!/usr/bin/env bash
# bad_input.sh - every refdio command on damaged or foreign images: each must end with a
# message that names the problem and a non-zero exit, never a crash (the test runs under
# the sanitizer build, where a crash or sanitizer report is an abort, exit >= 128).
# Usage: bad_input.sh REFDIO POPULATE
set -uo pipefail
R=$1
POP=$2
work=$(mktemp -d "${RD_TEST_DIR:-/tmp}/refdio-badinput.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0
checks=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# A check that cannot run here: the test then exits 77 (meson: skipped), never passes.
skips=0
skip() { echo "SKIP $*"; skips=$((skips + 1)); }

# expect STATUS PATTERN CMD... : exit status must be STATUS ("nz" = any non-zero, not a
# crash) and the combined output must match PATTERN (grep -Ei; "" = anything).
expect() {
  local want=$1 pat=$2; shift 2
  local out st
  out=$("$@" 2>&1); st=$?
  checks=$((checks + 1))
  if [ "$st" -ge 128 ] || grep -qE "AddressSanitizer|runtime error|LeakSanitizer" <<<"$out"; then
    fail "crash ($st): $*"; echo "$out" | head -n 30; return
  fi
  if [ "$want" = nz ]; then
    [ "$st" -ne 0 ] || { fail "expected failure: $*"; echo "$out" | head -n 10; return; }
  elif [ "$st" -ne "$want" ]; then
    fail "expected exit $want, got $st: $*"; echo "$out" | head -n 10; return
  fi
  if [ -n "$pat" ] && ! grep -qEi -- "$pat" <<<"$out"; then
    fail "output of '$*' lacks /$pat/:"; echo "$out" | head -n 10
  fi
}

# flip BYTE-OFFSET FILE: invert every bit of one byte.
flip() {
  python3 - "$1" "$2" <<'EOF'
import sys
off, path = int(sys.argv[1]), sys.argv[2]
with open(path, "r+b") as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0xff]))
EOF
}
zero() { dd if=/dev/zero of="$2" bs=4096 count=1 seek=$(($1 / 4096)) conv=notrunc status=none; }

# Every reading command on one damaged image.
all_fail() {
  local pat=$1 img=$2
  expect nz "$pat" "$R" show "$img"
  expect nz "$pat" "$R" list "$img" --btree alloc
  expect nz "$pat" "$R" fsck -n "$img"
  expect nz "$pat" "$R" fsck -n --json "$img"
}

# A filesystem of 3000 files (and directories, links, xattrs, data) on 4 KiB nodes.
fresh() {
  "$R" format "$1" --size 64M --bucket-size 64k --btree-node-size 4k --force >/dev/null ||
    { fail "format $1"; return 1; }
  "$POP" "$1" 3000 || { fail "populate $1"; return 1; }
}

img=$work/a.img
size=$((64 << 20))

# -- not a refdio image ----------------------------------------------------------------
: >"$work/empty"
all_fail "not a refdio image" "$work/empty"
head -c $((4 << 20)) /dev/urandom >"$work/random"
all_fail "not a refdio image" "$work/random"
all_fail "no such file" "$work/missing"
all_fail "not a regular file" "$work"

# -- truncated -------------------------------------------------------------------------
fresh "$img" && truncate -s $((size / 2)) "$img" && all_fail "truncated" "$img"

# -- superblock copies -------------------------------------------------------------------
for which in primary backup; do
  for damage in zero flip; do
    fresh "$img" || continue
    off=4096; [ $which = backup ] && off=$((size - 4096))
    if [ $damage = zero ]; then zero $off "$img"; else flip $((off + 60)) "$img"; fi
    expect 0 "" "$R" show "$img"                        # the other copy serves
    expect 0 "mode 0" "$R" list "$img" --btree inodes
    expect 4 "$which superblock" "$R" fsck -n "$img"
    expect 1 "rewritten" "$R" fsck -y "$img"
    expect 0 "clean" "$R" fsck -n "$img"
  done
done
fresh "$img" && zero 4096 "$img" && zero $((size - 4096)) "$img" &&
  all_fail "not a refdio image" "$img"
fresh "$img" && flip 4200 "$img" && flip $((size - 4096 + 200)) "$img" &&
  all_fail "checksum mismatch" "$img"

# -- a b-tree node with a bad checksum ---------------------------------------------------
if fresh "$img"; then
  leaf=$("$R" list "$img" --btree inodes --nodes --json |
         python3 -c 'import json,sys; print([n["offset"] for n in json.load(sys.stdin) if n["level"] == 0][3])')
  flip $((leaf + 300)) "$img"
  expect nz "checksum mismatch" "$R" list "$img" --btree inodes
  expect nz "checksum mismatch" "$R" list "$img" --btree inodes --nodes
  expect 4 "checksum mismatch" "$R" fsck -n "$img"
  expect 0 "file-" "$R" list "$img" --btree dirents   # other trees still readable
  # The root of the tree: reading anything in it fails cleanly.
  root=$("$R" list "$img" --btree dirents --nodes --json |
         python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["offset"])')
  flip $((root + 150)) "$img"
  expect nz "checksum mismatch|b-tree node" "$R" list "$img" --btree dirents
  expect nz "checksum mismatch|b-tree node" "$R" fsck -n "$img"
fi

# -- file data: one bit flipped in a data region ------------------------------------------
# fsck reads every region and names the inode and byte range; --no-data does not see it;
# -y cannot repair it (exit 4 again). --json lists it with its kind and object.
if fresh "$img"; then
  expect 0 "clean.*MiB of data verified" "$R" fsck -n "$img"
  dev=$("$R" list "$img" --btree extents --json | python3 -c '
import json, sys
k = json.load(sys.stdin)[0]
print(int(k["fields"]["dev_offset"], 16))')
  flip $((dev + 777)) "$img"
  expect 4 "inode [0-9]+: file bytes \[.*checksum mismatch" "$R" fsck -n "$img"
  expect 0 "clean" "$R" fsck -n --no-data "$img"
  expect 4 "checksum mismatch" "$R" fsck -y "$img"
  expect 4 '"kind":"data-csum"' "$R" fsck -n --json "$img"
  expect 4 '"inode":[0-9]+' "$R" fsck -n --json "$img"
  flip $((dev + 777)) "$img"
  expect 0 "clean" "$R" fsck -n "$img"
  # The progress display, on a terminal only (script(1) gives the command one).
  if command -v script >/dev/null; then
    expect 0 "checking (inodes|dirents|extents)" script -qec "$R fsck -n $img" /dev/null
  else
    skip "progress display: script(1) is missing (scripts/deps installs bsdutils)"
  fi
  out=$("$R" fsck -n "$img" | tr -d '\n')
  case $out in *checking*) fail "progress written to a pipe";; esac
fi

# -- format and option errors -------------------------------------------------------------
fresh "$img"
expect nz "already holds a refdio" "$R" format "$img" --size 64M
expect nz "block size|bucket" "$R" format "$work/b.img" --size 64M --block-size 3000
expect nz "unknown type" "$R" format "$work/b.img" --size 64M --csum md5
expect nz "not a valid size" "$R" format "$work/b.img" --size 12Q
expect nz "too small|size" "$R" format "$work/b.img" --size 64k
expect nz "" "$R" format "$work/b.img" --no-such-option
expect nz "unknown b-tree" "$R" list "$img" --btree nope
expect nz "unknown command" "$R" frobnicate
expect 16 "contradict" "$R" fsck -n -y "$img"
expect 0 "clean" "$R" fsck -n "$img"

echo "bad_input: $checks checks, $failures failures, $skips skipped"
[ "$failures" -eq 0 ] || exit 1
[ "$skips" -eq 0 ] || exit 77
