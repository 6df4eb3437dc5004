#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_install.sh BUILD_DIR COMPLETIONS_DIR: `cmake --install` into a fresh
# prefix installs the binary (and it runs), both manual pages and the bash
# completion, where man and bash-completion look for them.
set -uo pipefail
build=${1:?usage: test_install.sh BUILD_DIR COMPLETIONS_DIR}
completions=${2:?usage: test_install.sh BUILD_DIR COMPLETIONS_DIR}
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
fail=0

if ! cmake --install "$build" --prefix "$prefix" >"$prefix.log" 2>&1; then
  cat "$prefix.log" >&2
  rm -f "$prefix.log"
  echo "FAIL: cmake --install failed" >&2
  exit 1
fi
rm -f "$prefix.log"
case $completions in
  /*) ;;
  *) completions=$prefix/$completions ;;
esac

for f in bin/certbind share/man/man1/certbind.1 share/man/man5/certbind.yaml.5; do
  [ -s "$prefix/$f" ] || { echo "FAIL: $f not installed" >&2; fail=1; }
done
[ -s "$completions/certbind" ] ||
  { echo "FAIL: $completions/certbind not installed" >&2; fail=1; }
"$prefix/bin/certbind" --version | grep -q '^certbind ' ||
  { echo "FAIL: the installed certbind does not run" >&2; fail=1; }
bash -c 'source "$1" && complete -p certbind' _ "$completions/certbind" >/dev/null ||
  { echo "FAIL: the installed completion does not load" >&2; fail=1; }

[ "$fail" = 0 ] && echo "test_install: ok"
exit "$fail"
