#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what is missing, build, and run every test three times: in a plain
# -Werror build, under ASan+UBSan, and under valgrind (memcheck). Each test
# starts what it needs (apig-sim, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
# One test more than there are cores: most integration tests spend much of
# their time waiting (latency, visibility delays, timeouts), and the suite
# used about one core of two at -j$(nproc).
JOBS=$(($(nproc) + 1))
scripts/setup.sh build -DCERTBIND_TEST_VALGRIND=OFF
# the plain stage runs the chaos suite at its full size (10,000 bindings);
# the ASan and valgrind stages at 2,000
(cd build && CERTBIND_CHAOS_FULL=1 ctest --output-on-failure -j"$JOBS" --timeout 300)
scripts/setup.sh build-asan -DASAN=ON -DUBSAN=ON -DCMAKE_BUILD_TYPE=Debug
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --output-on-failure -j"$JOBS" --timeout 600)

# valgrind (memcheck) on the plain build: first every ctest case that runs a
# binary of the build tree (unit tests, simulator tests, fuzz corpus
# replays), then the whole integration suite with certbind itself under
# valgrind (CERTBIND_TEST_VALGRIND: a wrapper with one log per process, and
# it_valgrind_clean checks every log). Any error or definite/indirect leak
# fails the stage.
if command -v valgrind >/dev/null; then
  VG="valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect"
  (cd build && ctest --show-only=json-v1) | python3 -c '
import json, os, shlex, sys
build = os.path.abspath("build")
for t in json.load(sys.stdin)["tests"]:
    cmd = t.get("command") or []
    props = {p["name"]: p["value"] for p in t.get("properties", [])}
    # scripts are left out; certbind itself runs under valgrind below
    if not cmd or not cmd[0].startswith(build + "/"):
        continue
    print(props.get("WORKING_DIRECTORY", build), shlex.join(cmd))
' | while read -r dir cmd; do
    echo "valgrind: $cmd"
    # waits that assume native speed (TLS handshakes before an abort) are
    # stretched 10x under valgrind
    (cd "$dir" && export CERTBIND_TEST_TIME_SCALE=10 && eval "$VG $cmd" >/dev/null) ||
      { echo "valgrind: FAILED: $cmd"; exit 1; }
  done
  # the same build tree, configured for one run with certbind under valgrind
  # (only test properties change: nothing is recompiled)
  trap 'cmake -S . -B build -DCERTBIND_TEST_VALGRIND=OFF >/dev/null' EXIT
  cmake -S . -B build -DCERTBIND_TEST_VALGRIND=ON >/dev/null
  (cd build && ctest -L integration --output-on-failure -j"$JOBS" --timeout 600)
  echo "valgrind: clean"
fi
