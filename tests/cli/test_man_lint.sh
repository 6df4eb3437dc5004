#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_man_lint.sh PAGE...: mandoc's linter finds nothing of level warning
# or above in the manual pages (any message fails, not only the exit code).
set -uo pipefail
(($#)) || { echo "usage: test_man_lint.sh PAGE..." >&2; exit 2; }
out=$(mandoc -T lint -W warning "$@" 2>&1)
rc=$?
if [ "$rc" != 0 ] || [ -n "$out" ]; then
  echo "$out" >&2
  echo "FAIL: mandoc -T lint -W warning: exit $rc" >&2
  exit 1
fi
echo "test_man_lint: ok ($*)"
