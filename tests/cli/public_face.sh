#!/usr/bin/env bash
# public_face.sh - fuse/ and bin/ reach the engine only through its public face: every
# #include "..." there names a header of fuse/ or bin/ themselves, refdio.h, refdio_ioctl.h
# or the build's rd_config.h. (The build gives them include/ only, so "store.h" would not even
# compile; this also catches a path such as "../engine/core/store.h".)
# Usage: public_face.sh SOURCE_ROOT. Exit 0 clean, 1 with the offending lines.
set -u
root=$1

# check DIR...: prints the offending includes, returns 1 if any
check() {
  local bad=0 f inc
  for dir in "$@"; do
    for f in "$dir"/*.c "$dir"/*.h; do
      [ -e "$f" ] || continue
      while IFS= read -r inc; do
        case "$inc" in
          refdio.h|refdio_ioctl.h|rd_config.h) continue ;;
        esac
        if [ "${inc#*/}" = "$inc" ] && { [ -e "$dir/$inc" ] || [ -e "$root/fuse/$inc" ]; }; then
          continue      # a header of the same directory, or of the daemon (fuse/)
        fi
        echo "$f: includes \"$inc\", which is not the engine's public face"
        bad=1
      done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
    done
  done
  return $bad
}

# Negative control: a file that reaches an engine-private header must be caught.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include "refdio.h"\n#include "../engine/core/store.h"\n' > "$tmp/x.c"
if check "$tmp" >/dev/null; then
  echo "public_face: the check missed an engine-private include (negative control)"
  exit 1
fi

check "$root/fuse" "$root/bin" || exit 1
echo "public_face: fuse/ and bin/ include only the engine's public face"
