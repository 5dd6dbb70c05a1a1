#!/usr/bin/env bash
# test_scripts_test.sh - the test of scripts/test: does it count honestly?
#
# Runs a copy of scripts/test in a scratch tree with a fake `meson` first on PATH and stub
# scripts/demo and scripts/deps, so each case decides what meson setup/compile/test do
# (fail, abort part-way, crash, skip, write no log) and whether the demo or deps fail. Each case checks the
# exit status and the exact last line. One case where everything passes is the positive
# control: the script can succeed, so the failing cases are not failing for another reason.
# Owns nothing outside its scratch directory; never runs the real meson or the real demo.
# Usage: test_scripts_test.sh [REPO]   (default: the repository holding this file)
set -uo pipefail
repo=$(realpath "${1:-$(dirname "$0")/../..}")
work=$(mktemp -d "${RD_TEST_DIR:-/tmp}/refdio-scripts-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0
cases=0

mkdir -p "$work/tree/scripts" "$work/bin"
cp "$repo/scripts/test" "$work/tree/scripts/"

# The stub deps: FAKE_DEPS=fail makes it fail as the real one does (apt-get's error).
cat >"$work/tree/scripts/deps" <<'EOF'
#!/usr/bin/env bash
if [ "${FAKE_DEPS:-ok}" = fail ]; then
  echo "E: Unable to locate package liburing-dev" >&2
  echo "scripts/deps: could not install: liburing-dev" >&2
  exit 1
fi
EOF

# The stub demo: FAKE_DEMO=fail makes it fail as the real one does, with a message.
cat >"$work/tree/scripts/demo" <<'EOF'
#!/usr/bin/env bash
if [ "${FAKE_DEMO:-ok}" = fail ]; then
  echo "demo FAILED at step: compile (exit status 1)" >&2
  exit 1
fi
echo "demo done"
EOF

# The stub fuzz: 4 harnesses; FAKE_FUZZ=fail: one fails; FAKE_FUZZ=dies: no count line.
cat >"$work/tree/scripts/fuzz" <<'EOF'
#!/usr/bin/env bash
case ${FAKE_FUZZ:-ok} in
  ok) echo "4 passed, 0 failed" ;;
  fail) echo "fuzz_node: crash-1234"; echo "3 passed, 1 failed"; exit 1 ;;
  dies) echo "clang: not found" >&2; exit 127 ;;
esac
EOF

# The fake meson. FAKE_MESON names what it does:
#   ok            3 tests listed, 3 OK
#   setup-fails   meson setup exits 1
#   compile-fails meson compile exits 1 with a compiler error
#   fails         3 tests: OK, FAIL, TIMEOUT; exits 1
#   aborts        5 tests listed, 2 results written, then exits 1 (runner aborted)
#   crashes       3 listed, 1 result written, then the runner dies of SIGSEGV
#   no-log        3 listed, exits 0 without a log
#   skips         3 tests: OK, OK, SKIP (exit 77)
#   skips-allowed the same, the skipped test marked RD_SKIP_ALLOWED
cat >"$work/bin/meson" <<'EOF'
#!/usr/bin/env bash
mode=${FAKE_MESON:-ok}
cmd=$1; shift
dir=""
args=("$@")
logbase=""
wrapper=""
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    -C) dir=${args[i + 1]} ;;
    --wrapper) wrapper=-$(basename "${args[i + 1]%% *}") ;;
    --logbase) logbase=${args[i + 1]} ;;
  esac
done
log=${logbase:-testlog}${wrapper:-}      # as meson 1.0 names it
result() {  # result NAME RESULT [ENV-JSON]: one line of meson's test log
  local env=${3:-}
  [ -n "$env" ] || env='{}'
  printf '{"name": "fake / %s", "result": "%s", "returncode": 0, "stdout": "", "stderr": "SKIP why: %s", "env": %s}\n' \
    "$1" "$2" "$1" "$env" >>"$dir/meson-logs/$log.json"
}
case $cmd in
  setup)
    dir=$1
    [ "$mode" = setup-fails ] && { echo "ERROR: Dependency \"liburing\" not found"; exit 1; }
    mkdir -p "$dir/meson-logs" && touch "$dir/build.ninja" ;;
  compile)
    [ "$mode" = compile-fails ] && { echo "../engine/x.c:1:1: error: it broke"; exit 1; }
    exit 0 ;;
  test)
    n=3
    [ "$mode" = aborts ] && n=5
    case " ${args[*]} " in
      *" --list "*) echo "ninja: no work to do."; for i in $(seq $n); do echo "fake / t$i"; done
                    exit 0;;
    esac
    mkdir -p "$dir/meson-logs"
    case $mode in
      ok) result t1 OK; result t2 OK; result t3 OK ;;
      fails) result t1 OK; result t2 FAIL; result t3 TIMEOUT; exit 1 ;;
      aborts) result t1 OK; result t2 OK; exit 1 ;;
      crashes) result t1 OK; ulimit -c 0; kill -SEGV $$ ;;
      no-log) exit 0 ;;
      skips) result t1 OK; result t2 OK; result t3 SKIP ;;
      skips-allowed) result t1 OK; result t2 OK
                     result t3 SKIP '{"RD_SKIP_ALLOWED": "needs a GPU"}' ;;
    esac ;;
esac
exit 0
EOF
chmod +x "$work/bin/meson" "$work/tree/scripts/demo" "$work/tree/scripts/deps" \
  "$work/tree/scripts/fuzz"

# check NAME WANT-STATUS LAST-LINE-REGEX ENV...: runs the copy of scripts/test.
check() {
  local name=$1 want=$2 pat=$3; shift 3
  local out st last plain
  cases=$((cases + 1))
  rm -rf "$work/tree/build-"*
  out=$(cd "$work/tree" && env -u CI "$@" PATH="$work/bin:$PATH" ./scripts/test 2>&1)
  st=$?
  last=$(tail -n 2 <<<"$out" | head -n 1)
  plain=$(tail -n 1 <<<"$out")
  if { [ "$want" = nz ] && [ "$st" -eq 0 ]; } || { [ "$want" = 0 ] && [ "$st" -ne 0 ]; }; then
    echo "FAIL $name: exit status $st, wanted $want"
  elif ! grep -qE "^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped" <<<"$last"; then
    echo "FAIL $name: line before the last does not begin 'N passed, N failed, N skipped': $last"
  elif [ "$plain" != "$(grep -oE '^[0-9]+ passed, [0-9]+ failed' <<<"$last")" ]; then
    echo "FAIL $name: the last line is not the plain 'N passed, N failed' of: $last: $plain"
  elif ! grep -qE -- "$pat" <<<"$last"; then
    echo "FAIL $name: the line before the last lacks /$pat/: $last"
  else
    echo "ok   $name: $last"
    return
  fi
  failures=$((failures + 1))
  tail -n 15 <<<"$out" | sed 's/^/    /'
}

# The positive control: the script can pass. 12 = the demo, the clang build, 3 + 3 tests,
# 4 fuzz harnesses.
check "all pass" 0 '^12 passed, 0 failed, 0 skipped$' FAKE_MESON=ok
check "all pass on CI" 0 '^12 passed, 0 failed, 0 skipped$' FAKE_MESON=ok CI=true
# The run itself fails: never "0 failed", always named on the last line.
check "setup fails" nz '^5 passed, 3 failed, 0 skipped; FAILED: meson setup build-clang exited with status 1 .*meson setup build-asan exited with status 1 .*meson setup build-tsan' FAKE_MESON=setup-fails
check "compile fails" nz '^5 passed, 3 failed, 0 skipped; FAILED: meson compile -C build-clang exited with status 1 .*meson compile -C build-asan exited with status 1' FAKE_MESON=compile-fails
check "runner aborts" nz '^10 passed, 4 failed, 0 skipped; FAILED: build-asan: 2 of 5 tests have a result in rdtest.json;meson test -C build-asan exited with status 1;build-tsan: 2 of 5 tests have a result in rdtest-setarch.json' FAKE_MESON=aborts
check "runner crashes" nz '^8 passed, 4 failed, 0 skipped; FAILED: build-asan: 1 of 3 tests have a result in rdtest.json;meson test -C build-asan exited with status 139' FAKE_MESON=crashes
check "runner writes no log" nz '^6 passed, 2 failed, 0 skipped; FAILED: build-asan: 0 of 3 tests have a result in rdtest.json;build-tsan: 0 of 3' FAKE_MESON=no-log
check "deps fail" nz '^0 passed, 1 failed, 0 skipped; FAILED: scripts/deps could not install the packages$' FAKE_MESON=ok FAKE_DEPS=fail
check "demo fails" nz '^11 passed, 1 failed, 0 skipped; FAILED: scripts/demo exited with status 1' FAKE_MESON=ok FAKE_DEMO=fail
check "a fuzz harness fails" nz '^11 passed, 1 failed, 0 skipped; FAILED: 1 fuzz harness' FAKE_MESON=ok FAKE_FUZZ=fail
check "fuzz dies" nz '^8 passed, 1 failed, 0 skipped; FAILED: scripts/fuzz ended without its count \(status 127' FAKE_MESON=ok FAKE_FUZZ=dies
# Tests fail: counted one by one.
check "tests fail" nz '^8 passed, 4 failed, 0 skipped$' FAKE_MESON=fails
# Skips: counted as skipped, never as passed; on CI a failure unless allowed.
check "skip" 0 '^10 passed, 0 failed, 2 skipped$' FAKE_MESON=skips
check "skip on CI" nz '^10 passed, 2 failed, 0 skipped; FAILED: fake / t3 skipped on CI' FAKE_MESON=skips CI=true
check "allowed skip on CI" 0 '^10 passed, 0 failed, 2 skipped$' FAKE_MESON=skips-allowed CI=true

echo "scripts/test: $cases cases, $failures failures"
[ "$failures" -eq 0 ]
