#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_completion.sh COMPLETION CERTBIND: source the bash completion and
# check what it offers (COMPREPLY) for typed command lines: commands,
# each command's options, files after -c, directories after --state-dir,
# option values; and that every command's options are exactly those its
# `certbind COMMAND --help` lists.
set -uo pipefail
completion=${1:?usage: test_completion.sh COMPLETION CERTBIND}
certbind=$(realpath "${2:?usage: test_completion.sh COMPLETION CERTBIND}")
completion=$(realpath "$completion")
export LC_ALL=C
# shellcheck source=/dev/null
source "$completion" || { echo "cannot source $completion" >&2; exit 1; }
fail=0

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
touch a.yaml b.yaml plan.json
mkdir state sub

# complete WORD... : COMPREPLY for the line, the last word being completed
complete_line()
{
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMP_LINE="$*"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  _certbind certbind "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
  printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}

expect()
{
  local want=$1 got
  shift
  got=$(complete_line "$@")
  if [ "$got" != "$want" ]; then
    echo "FAIL: '$*': got [$got], want [$want]" >&2
    fail=1
  fi
}

[ "$(complete -p certbind 2>/dev/null)" = "complete -F _certbind certbind" ] ||
  { echo "FAIL: certbind has no completion function" >&2; fail=1; }

commands="adopt apply help import plan run status validate verify"
expect "$commands" certbind ""
expect "plan" certbind pl
expect "adopt apply" certbind a
expect "plan" certbind --log-level warn pl
expect "plan" certbind -c a.yaml pl
expect "--config --dry-run --force --help --log-format --log-level --plan --yes -c -h" certbind apply -
expect "--all --help --json --log-format --log-level --state-dir -h" certbind status -
expect "--dry-run" certbind apply --d
expect "a.yaml b.yaml plan.json state sub" certbind plan -c ""
expect "b.yaml" certbind plan -c b
expect "a.yaml b.yaml plan.json state sub" certbind plan --config ""
expect "plan.json" certbind apply -c a.yaml --plan p
expect "plan.json" certbind plan -c a.yaml --out p
expect "state sub" certbind status --state-dir ""
expect "json text" certbind plan --log-format ""
expect "debug error info warn" certbind apply --log-level ""
expect "warn" certbind apply --log-level w
expect "$commands" certbind help ""
expect "status" certbind help st
expect "" certbind help plan ""
expect "a.yaml b.yaml plan.json state sub" certbind plan --config = ""

# the completion offers exactly the options the help lists, per command
for cmd in validate plan apply run status adopt import verify; do
  want=$("$certbind" "$cmd" --help |
    sed -n '/^options:/,/^$/p' | cut -c1-26 | grep -oE -- '--?[a-z][a-z-]*' |
    sort | tr '\n' ' ' | sed 's/ $//')
  got=$(complete_line certbind "$cmd" - | tr ' ' '\n' | sort | tr '\n' ' ' |
    sed 's/ $//')
  if [ -z "$want" ] || [ "$got" != "$want" ]; then
    echo "FAIL: $cmd: completion offers [$got], --help lists [$want]" >&2
    fail=1
  fi
done

[ "$fail" = 0 ] && echo "test_completion: ok"
exit "$fail"
