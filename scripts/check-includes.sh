#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check-includes.sh [ROOT]: fails when a folder includes a header it must not
# (docs/architecture.md, "Dependencies"). Each folder may include its own
# headers and those of the folders listed for it below; a header is known by
# its file name, so every project header name must be unique in the tree.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

declare -A allowed=(
  [util]="util"
  [config]="config util"
  [queue]="queue"
  [api]="api config util"
  [net]="net"
  [state]="state util"
  [engine]="engine api net state queue config util"
  [cli]="cli engine api net state queue config util"
  [tools/apig-sim]="tools/apig-sim api util"
)
# headers other folders may not include, however the folders depend
declare -A private=([internal.h]=config [pass_int.h]=engine)
# the only headers of other folders that apig-sim may include
sim_may="sign.h json.h"
# pure files: no event loop, no transport
pure="engine/plan.c engine/plan.h"
# folders that must not see the event loop or the transport library
no_io="util config queue api state"

declare -A owner=()
fail=0
complain() { echo "check-includes: $*" >&2; fail=1; }

for dir in "${!allowed[@]}"; do
  for h in "$dir"/*.h; do
    [ -e "$h" ] || continue
    name=${h##*/}
    if [ -n "${owner[$name]:-}" ]; then
      complain "$h: header name also used in ${owner[$name]}/"
    fi
    owner[$name]=$dir
  done
done

for dir in "${!allowed[@]}"; do
  for f in "$dir"/*.[ch]; do
    [ -e "$f" ] || continue
    while IFS= read -r line; do
      lineno=${line%%:*}
      inc=${line#*:}
      [[ $inc =~ \"([^\"]+)\" ]] && name=${BASH_REMATCH[1]}
      from=${owner[$name]:-}
      if [ -z "$from" ]; then
        [ -e "$dir/$name" ] || complain "$f:$lineno: \"$name\" is no header of the tree"
        continue
      fi
      [ "$from" = "$dir" ] && continue
      if [ -n "${private[$name]:-}" ]; then
        complain "$f:$lineno: includes $from/$name, private to $from/"
        continue
      fi
      case " ${allowed[$dir]} " in
        *" $from "*) ;;
        *) complain "$f:$lineno: $dir/ may not include $from/$name" ;;
      esac
      if [ "$dir" = tools/apig-sim ]; then
        case " $sim_may " in
          *" $name "*) ;;
          *) complain "$f:$lineno: apig-sim may include only $sim_may of the tree" ;;
        esac
      fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" || true)
  done
done

for f in $pure; do
  [ -e "$f" ] || continue
  if grep -nE '#[[:space:]]*include[[:space:]]*[<"](uv|http|curl/curl)\.h[>"]' "$f" >&2; then
    complain "$f: a pure file includes the event loop or the transport"
  fi
done
for dir in $no_io; do
  for f in "$dir"/*.[ch]; do
    [ -e "$f" ] || continue
    if grep -nE '#[[:space:]]*include[[:space:]]*<uv\.h>' "$f" >&2; then
      complain "$f: $dir/ does not run on the event loop"
    fi
  done
done

if [ "$fail" = 0 ]; then
  echo "check-includes: ok (${#owner[@]} headers in ${#allowed[@]} folders)"
fi
exit "$fail"
