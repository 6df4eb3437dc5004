#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Loader benchmark: validate files of 10k, 25k, 50k and 100k bindings and
# report wall time, CPU time and peak RSS; then time hostile inputs that
# must be refused fast. RESULTS.md holds the numbers.
#
#   bench/loader/run.sh [BUILD_DIR]        (default: build)
#   RUNS=15 SIZES="1000 100000" bench/loader/run.sh build-config
#   GEN_ARGS="--gateways 1 --domains-per-entry 500" bench/loader/run.sh
#     (another file shape: N distinct domains instead of N/4)
#
# Runs `certbind validate -c FILE` when BUILD_DIR/cli/certbind exists,
# else the loader-only driver BUILD_DIR/bench/loader/load_config (same
# config_load call, one-line summary). Files come from
# docs/examples/gen-bindings.py, secrets in a temp dir with mode 0600.
# hyperfine is not installed here, so each file is run RUNS times (after
# one warm-up) by a stdlib Python loop: wall time from perf_counter around
# fork+exec+wait, CPU time (user + sys, less sensitive to a busy machine)
# and peak RSS from wait4()'s rusage of that child.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
RUNS=${RUNS:-9}
SIZES=${SIZES:-"1 10000 25000 50000 100000"}
GEN_ARGS=${GEN_ARGS:-}

if [ -x "$BUILD/cli/certbind" ]; then
  CMD=("$BUILD/cli/certbind" validate -c)
else
  cmake --build "$BUILD" --target load_config >/dev/null
  CMD=("$BUILD/bench/loader/load_config")
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# time_it EXPECTED_EXIT_STATUS LABEL FILE: one table row
time_it() {
  [ -s "$3" ] || { echo "bench: $3 missing" >&2; exit 1; }
  python3 - "$RUNS" "$1" "$2" "$3" "${CMD[@]}" <<'PY'
import os, statistics, subprocess, sys, time
runs, want, label, f = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
cmd = sys.argv[5:]
# warm-up (page cache, dynamic loader) and a check of the exit status
p = subprocess.run(cmd + [f], capture_output=True)
if p.returncode != want:
    sys.exit("bench: %s: exit %d: %s" % (f, p.returncode, p.stderr.decode()[:500]))
walls, cpus, rss = [], [], 0
for _ in range(runs):
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.execv(cmd[0], cmd + [f])
    _, status, ru = os.wait4(pid, 0)
    walls.append((time.perf_counter() - t0) * 1000)
    if os.waitstatus_to_exitcode(status) != want:
        sys.exit("bench: %s: exit status %d" % (f, status))
    rss = max(rss, ru.ru_maxrss)
    cpus.append((ru.ru_utime + ru.ru_stime) * 1000)
print("%-16s %9d %12.1f %12.1f %12.1f %14d" % (label, os.path.getsize(f),
      statistics.median(walls), min(walls), statistics.median(cpus), rss))
PY
}

header() {
  printf '%-16s %9s %12s %12s %12s %14s\n' "$1" bytes wall_med_ms \
    wall_min_ms cpu_med_ms peak_rss_kib
}

echo "# command: ${CMD[*]} FILE   runs: $RUNS   $(nproc) CPUs, $(date -u +%FT%TZ)"
echo "# files: gen-bindings.py N ${GEN_ARGS:-(defaults: 2 accounts x 4 gateways, 50 domains per entry)}"
header bindings
for n in $SIZES; do
  f="$WORK/b$n.yaml"
  # shellcheck disable=SC2086
  python3 docs/examples/gen-bindings.py "$n" $GEN_ARGS --secret-dir "$WORK/s" \
    -o "$f" 2>/dev/null
  time_it 0 "$n" "$f"
done

# Hostile inputs must be refused (exit 3) fast: the loader stops at the
# first anchor or the 33rd nesting level, whatever follows.
python3 - "$WORK" <<'PY'
import sys
w = sys.argv[1]
open(w + "/deep-100k.yaml", "w").write("[" * 100 * 1024)
open(w + "/deep-4m.yaml", "w").write("[" * (4 * 1024 * 1024 - 1))
open(w + "/deepmap-4m.yaml", "w").write("{a: " * (1024 * 1024 - 1))
lol = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
for i, c in enumerate("bcdefghi"):
    lol.append("%s: &%s [%s]" % (c, c, ",".join(["*" + "abcdefghi"[i]] * 9)))
open(w + "/billion-laughs.yaml", "w").write("\n".join(lol) + "\n")
open(w + "/too-big.yaml", "w").write("#" * (4 * 1024 * 1024 + 1))
PY
echo
echo "# hostile inputs (exit 3 expected)"
header input
for h in deep-100k deep-4m deepmap-4m billion-laughs too-big; do
  time_it 3 "$h" "$WORK/$h.yaml"
done
