#!/usr/bin/env bash
# completion.sh - the bash completion of refdio (completion/refdio): sourced into a bash
# with nothing else loaded, it completes subcommands, their options, option values, demo
# scenarios and -o mount options (after a comma too). Each case compares COMPREPLY with
# what it must hold; a negative control checks that the checker fails on a wrong
# expectation, and that an unknown prefix completes to nothing.
# Usage: completion.sh COMPLETION-FILE
set -uo pipefail
# shellcheck source=/dev/null
source "$1" || { echo "FAIL: cannot source $1"; exit 1; }
failures=0

# comp "WORDS..." : runs _refdio for the command line WORDS (the last word is the one
# completed; a trailing space in WORDS means an empty word), sets REPLY to COMPREPLY
# sorted and space-joined.
comp() {
  read -r -a COMP_WORDS <<<"$1"
  [[ $1 == *" " ]] && COMP_WORDS+=("")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  _refdio refdio "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
  REPLY=" ${COMPREPLY[*]} "
}
# sorted WORDS: REPLY's words sorted, space-joined.
sorted() { printf '%s\n' $REPLY | sort | tr '\n' ' ' | sed 's/ $//'; }
# has WORDS WANT... : every WANT is among the completions of WORDS.
has() {
  local words=$1 w; shift
  comp "$words"
  for w in "$@"; do
    [[ $REPLY == *" $w "* ]] || { echo "FAIL: '$words' completes to '$REPLY', lacks '$w'"; return 1; }
  done
}
# is WORDS EXACT : the completions of WORDS are exactly EXACT (sorted, space-joined).
is() {
  local got
  comp "$1"
  got=$(sorted)
  [[ $got == "$2" ]] || { echo "FAIL: '$1' completes to '$got', not '$2'"; return 1; }
}
check() { "$@" || failures=$((failures + 1)); }

check has "refdio " format show list fsck mount dio-write stats bench demo
check is "refdio di" "dio-write"
check is "refdio li" "list"
check is "refdio list img --bt" "--btree"
check is "refdio list img --btree ex" "extents"
check has "refdio list img --btree " extents inodes dirents xattrs alloc
check is "refdio dio-write --str" "--strategy"
check is "refdio dio-write --strategy " "bounce64 chunk pin refctx"
check is "refdio stats --int" "--interval"
check has "refdio stats /mnt --" --json --watch --interval --reset
check is "refdio demo " "all caller-exit huge-write interrupt strategies"
check is "refdio demo --f" "--fast"
check is "refdio format img --csum " "crc32c none xxhash"
check is "refdio mount -o max_h" "max_held= max_held_user="
check is "refdio mount -o ro,dio_" "ro,dio_workers="
check has "refdio mount -o " ro allow_other strategy= window= chunk= source_timeout=
check is "refdio fsck -" "--help --json --no-data -h -n -y"
# Every option of every --help is offered (the lists in the file kept in step).
if [ -n "${REFDIO:-}" ]; then
  for cmd in format show list fsck mount dio-write stats bench demo; do
    for o in $("$REFDIO" "$cmd" --help | awk -F'  ' '/^  -/ { print $2 }' | grep -oE -- '(^|[ ,])--?[a-zA-Z][a-zA-Z0-9-]*' | tr -d ' ,' | sort -u); do
      check has "refdio $cmd $o" "$o"
    done
  done
fi

# Negative controls: a wrong expectation must fail, an unknown prefix completes to nothing.
if is "refdio li" "list show" >/dev/null; then echo "FAIL: the checker accepted a wrong list"; failures=$((failures + 1)); fi
check is "refdio zz" ""
check is "refdio list img --btree zz" ""

[ "$failures" -eq 0 ] && echo "completion: all cases pass" && exit 0
echo "completion: $failures failed"; exit 1
