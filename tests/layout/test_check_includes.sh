#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The include check passes on the tree and fails on each kind of forbidden
# include, planted in a copy of the tree.
set -euo pipefail
root=${1:?usage: test_check_includes.sh SOURCE_DIR}
check=$root/scripts/check-includes.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$check" "$root"

copy_tree() {
  rm -rf "$tmp/t"
  mkdir -p "$tmp/t/tools"
  for d in util config queue api net state engine cli; do cp -r "$root/$d" "$tmp/t/"; done
  cp -r "$root/tools/apig-sim" "$tmp/t/tools/"
}

# expect_refused FILE LINE WHAT: plant LINE at the top of FILE, expect a
# failure that names FILE
expect_refused() {
  copy_tree
  sed -i "1i $2" "$tmp/t/$1"
  if out=$("$check" "$tmp/t" 2>&1); then
    echo "FAIL: $3 was not refused" >&2
    exit 1
  fi
  grep -q "$1" <<<"$out" || { echo "FAIL: $3: message does not name $1: $out" >&2; exit 1; }
  echo "ok: $3"
}

expect_refused api/apig.c '#include "ledger.h"' "api/ including state/"
expect_refused state/ledger.c '#include "config.h"' "state/ including config/"
expect_refused net/http.c '#include "apig.h"' "net/ including api/"
expect_refused engine/pass.c '#include "cli.h"' "engine/ including cli/"
expect_refused engine/plan.c '#include <uv.h>' "the pure plan including uv.h"
expect_refused api/auth.c '#include <uv.h>' "api/ including uv.h"
expect_refused cli/main.c '#include "internal.h"' "config/internal.h outside config/"
expect_refused tools/apig-sim/sim_map.c '#include "apig.h"' "apig-sim including api/apig.h"
expect_refused queue/queue.c '#include "log.h"' "queue/ including util/"
expect_refused util/log.c '#include "nosuch.h"' "an include of no header of the tree"
