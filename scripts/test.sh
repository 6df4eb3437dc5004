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
