#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what is missing, build, and run every test three times: in a plain
# -Werror build, under ASan+UBSan, and under valgrind (memcheck). Each test
# starts what it needs (apig-sim, ...).
#
# Most tests spend their time waiting (latency, visibility delays, timeouts),
# not computing: the plain and ASan stages keep less than one core of two
# busy. So they run side by side:
#   lane 1 (this shell, output as it comes): the plain build, its tests
#     (-j3 x cores);
#   lane 2 (started once the plain build is done, in its own session so that
#     a failing lane 1 can stop all of it; output kept in build/lane2.log
#     and printed when it ends): the ASan+UBSan build at nice 10, then its
#     tests (-j3 x cores).
# The valgrind stages are CPU-bound and timing-sensitive under valgrind:
#   the binary tests (one per core) follow the ASan tests in lane 2: lane 1
#     is then down to its last test, the chaos suite at full size, which
#     waits out Retry-After pauses (load below 1) for up to 6 minutes;
#   the integration suite (-j(cores + 1)) starts once both lanes are done
#     (it reconfigures lane 1's build tree), with nothing else beside it.
# Every stage prints "== test.sh +SECONDS UTC-TIME load LOADAVG: WHAT" when it
# starts and ends. CERTBIND_TEST_JOBS overrides the -j of the waiting-bound
# stages, CERTBIND_TEST_VG_JOBS the number of valgrind binary tests at once.
set -euo pipefail
cd "$(dirname "$0")/.."

NPROC=$(nproc)
# CPU-bound work (valgrind): one test per core and one more
CPU_JOBS=$((NPROC + 1))
VG_JOBS=${CERTBIND_TEST_VG_JOBS:-$NPROC}
# waiting-bound stages (plain, ASan): ctest starts the costliest first (COST
# in tests/integration/CMakeLists.txt)
WAIT_JOBS=${CERTBIND_TEST_JOBS:-$((NPROC * 3))}
T0=${CERTBIND_TEST_T0:-$(date +%s)}
export CERTBIND_TEST_T0=$T0

stage() {
  echo "== test.sh +$(($(date +%s) - T0))s $(date -u +%H:%M:%S)" \
    "load $(cut -d' ' -f1-3 /proc/loadavg): $*"
}

asan_env() {
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$@"
}

VG="valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect"
export VG

# valgrind (memcheck) on every ctest case that runs a binary of the plain
# build tree (unit tests, simulator tests, fuzz corpus replays), one per core
# at a time, costliest first; certbind itself runs under valgrind in the
# integration stage. Any error or definite/indirect leak fails the stage.
valgrind_binary_list() {
  # one line per test: its directory, a tab, its command; costliest first
  (cd build && ctest --show-only=json-v1) | python3 -c '
import json, os, shlex, sys
build = os.path.abspath("build")
tests = []
for t in json.load(sys.stdin)["tests"]:
    cmd = t.get("command") or []
    props = {p["name"]: p["value"] for p in t.get("properties", [])}
    # scripts are left out; certbind itself runs under valgrind below
    if not cmd or not cmd[0].startswith(build + "/"):
        continue
    tests.append((-float(props.get("COST", 0)), props.get("WORKING_DIRECTORY", build), shlex.join(cmd)))
for _, d, c in sorted(tests, key=lambda t: t[0]):
    print(d + "\t" + c)
' >build/valgrind-binary-tests.txt
}

valgrind_binary_tests() {
  # each test's stderr (valgrind's reports) is printed whole after it ends,
  # under a lock so that parallel tests do not interleave; waits that assume
  # native speed (TLS handshakes before an abort) are stretched 10x under
  # valgrind
  export VG_LOCK=$PWD/build/valgrind-binary-tests.lock
  # shellcheck disable=SC2016
  if ! xargs -a build/valgrind-binary-tests.txt -d '\n' -n 1 -P "$VG_JOBS" \
    bash -c '
      IFS=$'"'\t'"' read -r dir cmd <<<"$1"
      err=$(mktemp)
      start=$(date +%s)
      rc=0
      (cd "$dir" && export CERTBIND_TEST_TIME_SCALE=10 &&
        eval "$VG $cmd" >/dev/null 2>"$err") || rc=$?
      if [ $rc -eq 0 ]; then
        flock "$VG_LOCK" echo "valgrind: ok ($(($(date +%s) - start)) s): $cmd"
      else
        flock "$VG_LOCK" sh -c "cat \"\$0\"; echo \"valgrind: FAILED: \$1\"" "$err" "$cmd"
      fi
      rm -f "$err"
      exit $((rc != 0))' _ </dev/null; then
    echo "valgrind: FAILED (binary tests)"
    return 1
  fi
}

# lane 2: scripts/test.sh lane2 (run by lane 1 in its own session)
if [ "${1:-}" = lane2 ]; then
  stage "asan: build (nice 10)"
  nice -n 10 scripts/setup.sh build-asan -DASAN=ON -DUBSAN=ON \
    -DCMAKE_BUILD_TYPE=Debug
  stage "asan: tests (-j$WAIT_JOBS)"
  rc=0
  (cd build-asan && asan_env ctest --output-on-failure -j"$WAIT_JOBS" \
    --timeout 600) || rc=$?
  stage "asan: done (rc $rc)"
  if [ $rc -eq 0 ] && command -v valgrind >/dev/null; then
    stage "valgrind: binary tests (-P$VG_JOBS, costliest first)"
    valgrind_binary_tests || rc=$?
    stage "valgrind: binary tests done (rc $rc)"
  fi
  exit $rc
fi

lane2=
cleanup() {
  # a failing lane 1 takes lane 2 (and what it started) down with it
  if [ -n "$lane2" ]; then kill -- -"$lane2" 2>/dev/null || true; fi
  # the build tree is left configured as setup.sh made it
  if [ -f build/CMakeCache.txt ]; then
    cmake -S . -B build -DCERTBIND_TEST_VALGRIND=OFF >/dev/null
  fi
}
trap cleanup EXIT

stage "plain: build"
scripts/setup.sh build -DCERTBIND_TEST_VALGRIND=OFF

command -v valgrind >/dev/null && valgrind_binary_list
stage "lane 2 (asan build and tests, valgrind binary tests) started in the background (log: build/lane2.log)"
setsid bash scripts/test.sh lane2 </dev/null >build/lane2.log 2>&1 &
lane2=$!

# the plain stage runs the chaos suite at its full size (10,000 bindings);
# the ASan and valgrind stages at 2,000
stage "plain: tests (-j$WAIT_JOBS)"
(cd build && CERTBIND_CHAOS_FULL=1 ctest --output-on-failure -j"$WAIT_JOBS" \
  --timeout 300)
stage "plain: done; waiting for lane 2"
lane2_rc=0
wait "$lane2" || lane2_rc=$?
lane2=
cat build/lane2.log
stage "lane 2 done (rc $lane2_rc)"
[ $lane2_rc -eq 0 ]

if command -v valgrind >/dev/null; then
  # the same build tree, configured for one run with certbind under valgrind
  # (only test properties change: nothing is recompiled); it_valgrind_clean
  # checks every certbind process's log
  cmake -S . -B build -DCERTBIND_TEST_VALGRIND=ON >/dev/null
  stage "valgrind: integration tests (-j$CPU_JOBS)"
  (cd build && ctest -L integration --output-on-failure -j"$CPU_JOBS" \
    --timeout 600)
  echo "valgrind: clean"
fi
stage "all done"
