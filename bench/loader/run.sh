#!/usr/bin/env bash
# Loader benchmark: validate files of 10k, 25k, 50k and 100k bindings and
# report wall time and peak RSS (RESULTS.md holds the numbers).
#
#   bench/loader/run.sh [BUILD_DIR]        (default: build)
#   RUNS=15 SIZES="1000 100000" bench/loader/run.sh build-config
#
# Runs `certbind validate -c FILE` when BUILD_DIR/daemon/certbind exists,
# else the loader-only driver BUILD_DIR/bench/loader/load_config (same
# config_load call, one-line summary). Files come from
# docs/examples/gen-bindings.py, secrets in a temp dir with mode 0600.
# Timing: hyperfine is not installed here, so each file is run RUNS times
# (after one warm-up) with a stdlib Python loop: wall time from
# perf_counter around fork+exec+wait, peak RSS from wait4()'s rusage of
# that child. Reported: median and min wall time, max peak RSS.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
RUNS=${RUNS:-9}
SIZES=${SIZES:-"10000 25000 50000 100000"}

if [ -x "$BUILD/daemon/certbind" ]; then
  CMD=("$BUILD/daemon/certbind" validate -c)
else
  cmake --build "$BUILD" --target load_config >/dev/null
  CMD=("$BUILD/bench/loader/load_config")
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "# command: ${CMD[*]} FILE   runs: $RUNS   $(nproc) CPUs, $(date -u +%FT%TZ)"
printf '%-9s %9s %12s %12s %14s\n' bindings bytes wall_med_ms wall_min_ms peak_rss_kib
for n in $SIZES; do
  f="$WORK/b$n.yaml"
  python3 docs/examples/gen-bindings.py "$n" --secret-dir "$WORK/s" -o "$f" 2>/dev/null
  python3 - "$RUNS" "$f" "${CMD[@]}" <<'PY'
import os, statistics, subprocess, sys, time
runs, f, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
# warm-up (page cache, dynamic loader), and a check that the file is valid
p = subprocess.run(cmd + [f], capture_output=True)
if p.returncode != 0:
    sys.exit("bench: %s invalid: %s" % (f, p.stderr.decode()[:500]))
walls, rss = [], 0
for _ in range(runs):
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.execv(cmd[0], cmd + [f])
    _, status, ru = os.wait4(pid, 0)
    walls.append((time.perf_counter() - t0) * 1000)
    if status != 0:
        sys.exit("bench: %s: exit status %d" % (f, status))
    rss = max(rss, ru.ru_maxrss)
n = os.path.basename(f)[1:-5]
print("%-9s %9d %12.1f %12.1f %14d" % (n, os.path.getsize(f),
      statistics.median(walls), min(walls), rss))
PY
done
