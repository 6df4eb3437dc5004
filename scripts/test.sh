#!/usr/bin/env bash
# Install what is missing, build, and run every test: once in a plain -Werror
# build, once under ASan+UBSan. Each test starts what it needs (apig-sim, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
(cd build && ctest --output-on-failure -j"$(nproc)" --timeout 300)
scripts/setup.sh build-asan -DASAN=ON -DUBSAN=ON -DCMAKE_BUILD_TYPE=Debug
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --output-on-failure -j"$(nproc)" --timeout 600 -LE no-asan)

# valgrind (memcheck) on the plain build: the unit tests and fuzz corpus
# replays (every ctest case that runs a binary of the build tree), then the
# apply, command-line and plan/sync integration tests with certbind itself
# under valgrind (the hostile-server, fault and daemon suites run under ASan). Any error or
# definite/indirect leak fails the stage. A few minutes on 2 cores.
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
  vgdir=$(mktemp -d)
  printf '#!/bin/sh\nexec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect --log-file=%s/vg.%%p.log %s "$@"\n' \
    "$vgdir" "$PWD/build/daemon/certbind" > "$vgdir/certbind"
  chmod +x "$vgdir/certbind"
  (cd tests/integration && CERTBIND="$vgdir/certbind" APIG_SIM="$PWD/../../build/tests/sim/apig-sim" \
    MAKE_CERTS="$PWD/../sim/make-certs.sh" PYTHONDONTWRITEBYTECODE=1 \
    python3 -m unittest test_apply test_cli test_plan_sync)
  if ! find "$vgdir" -name 'vg.*.log' | grep -q .; then
    echo "valgrind: certbind never ran under valgrind"
    exit 1
  fi
  if find "$vgdir" -name 'vg.*.log' -size +0 | grep -q .; then
    cat "$vgdir"/vg.*.log
    echo "valgrind: certbind reported errors or leaks"
    exit 1
  fi
  rm -rf "$vgdir"
  echo "valgrind: clean"
fi
