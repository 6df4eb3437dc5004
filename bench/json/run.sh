#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# JSON reader benchmark: the same driver (parse_bench.c) built against the
# readers of an old revision and of the working tree, run alternately, CPU
# time of the parse loop only. RESULTS.md holds the numbers.
#
#   bench/json/run.sh [OLD_REV]          (default: main)
#   ROUNDS=9 bench/json/run.sh 64165e4
#   IR=1 bench/json/run.sh               (also instructions per parse,
#                                          counted by callgrind: exact and
#                                          independent of the machine's load)
#
# Each side is compiled from its own api/apig.c, state/status.c,
# state/ledger.c, util/statefile.c and (when the revision has it)
# util/json.c with the project's flags (-O2 -g, C11, _GNU_SOURCE). Cases:
# a list page of 500 bindings parsed 10,000 times, a status.json and a
# ledger.json of 100,000 entries parsed 5 times. Prints the median and the
# minimum of ROUNDS runs per case and side (the machine is shared: compare
# minima first).
set -euo pipefail
cd "$(dirname "$0")/../.."
OLD=${1:-main}
ROUNDS=${ROUNDS:-7}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# build SIDE SRCDIR: $WORK/SIDE/parse_bench
build() {
  local side=$1 src=$2 extra=()
  [ -f "$src/util/json.c" ] && extra+=("$src/util/json.c")
  gcc -std=c11 -O2 -g -D_GNU_SOURCE -o "$WORK/$side/parse_bench" \
    -I"$src/api" -I"$src/state" -I"$src/util" bench/json/parse_bench.c \
    "$src/api/apig.c" "$src/state/status.c" "$src/state/ledger.c" \
    "$src/util/statefile.c" "${extra[@]}" \
    $(pkg-config --cflags --libs yajl libcurl)
}

mkdir -p "$WORK/old/src" "$WORK/new"
git archive "$OLD" api state util | tar -x -C "$WORK/old/src"
build old "$WORK/old/src"
build new .

echo "# old: $OLD ($(git rev-parse --short "$OLD"))   new: working tree" \
  "($(git rev-parse --short HEAD)$(git diff --quiet HEAD -- api state util ||
    echo '+changes'))"
echo "# $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)," \
  "$ROUNDS rounds"
printf '%-8s %7s %6s %5s %14s %14s\n' case items n side us_per_parse_med \
  us_per_parse_min
for c in "list 10000 500" "status 5 100000" "ledger 5 100000"; do
  read -r what n items <<<"$c"
  for side in old new; do : >"$WORK/$side.times"; done
  for _ in $(seq "$ROUNDS"); do
    for side in old new; do
      "$WORK/$side/parse_bench" "$what" "$n" "$items" |
        awk '{print $5}' >>"$WORK/$side.times"
    done
  done
  for side in old new; do
    sort -g "$WORK/$side.times" | awk -v c="$what" -v n="$n" -v i="$items" \
      -v s="$side" '{v[NR]=$1} END {printf "%-8s %7d %6d %5s %14.2f %14.2f\n",
      c, i, n, s, v[int((NR+1)/2)], v[1]}'
  done
done

[ "${IR:-0}" = 1 ] || exit 0
# ir SIDE CASE N ITEMS: instructions of the whole run
ir() {
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" \
    "$WORK/$1/parse_bench" "$2" "$3" "$4" 2>&1 |
    awk '/refs:/ {gsub(",", "", $NF); print $NF}'
}
echo
printf '%-8s %7s %5s %22s\n' case items side instructions_per_parse
for c in "list 20 500" "status 1 100000" "ledger 1 100000"; do
  read -r what n items <<<"$c"
  for side in old new; do
    base=$(ir "$side" "$what" 0 "$items") # building the input, start-up
    all=$(ir "$side" "$what" "$n" "$items")
    printf '%-8s %7d %5s %22d\n' "$what" "$items" "$side" \
      $(((all - base) / n))
  done
done
