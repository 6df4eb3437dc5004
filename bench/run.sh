#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/run.sh [BUILD_DIR]: regenerate every benchmark of bench/RESULTS.md.
#
#  1. builds certbind, apig-sim and bench/sign_requests (Release) in
#     BUILD_DIR (default build-bench);
#  2. installs the Node.js competitor's pinned dependencies into
#     bench/node_modules (npm ci, from bench/package-lock.json);
#  3. runs bench/bench.py (all scenarios, competitors, callgrind) and
#     rewrites the generated block of bench/RESULTS.md with its tables.
#
# Needs: cmake, a C compiler, python3, curl, node + npm, valgrind.
# Without node or valgrind the matching columns are left out.
# Extra arguments after BUILD_DIR go to bench.py (e.g. --quick, --only
# throughput). Takes ~5 minutes on 2 CPUs, plus ~25 minutes for scenario 5
# (the quota-bound rollout, bench/quota.py: paced by apig-sim's 5 req/s,
# so its time is the quota's, not the CPU's; --only quota runs it alone,
# --quota-sizes 3,20 a shorter set). Run it on a quiet machine.
# One scenario again, the others kept from the last run (bench/work):
#   bench/run.sh build-bench --only rollout --merge
# (scenario 2 unpinned and pinned: apig-sim on CPU 0, certbind on CPU 1).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-bench}
shift || true
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target certbind apig-sim sign_requests -j"$(nproc)" >/dev/null
if command -v npm >/dev/null; then
  (cd "$root/bench" && npm ci --no-audit --no-fund --silent) ||
    echo "bench: npm ci failed: the Node.js competitor is skipped" >&2
fi
out=$root/bench/work
# apig-sim shows writes at once, so the confirmation delay is 0 like the
# competitors (scenario 1 is also run once with the default 1000 ms).
python3 "$root/bench/bench.py" --build "$build" --out "$out" \
  --confirm-delay-ms 0 --default-delay-run "$@" >/dev/null
python3 - "$root/bench/RESULTS.md" "$out/results.md" <<'PY'
import sys
res, gen = sys.argv[1], open(sys.argv[2]).read()
begin, end = "<!-- BEGIN GENERATED (bench/run.sh) -->", "<!-- END GENERATED -->"
text = open(res).read()
a, b = text.index(begin) + len(begin), text.index(end)
open(res, "w").write(text[:a] + "\n" + gen + text[b:])
PY
echo "bench: tables written to bench/RESULTS.md (raw: $out/results.json)"
