#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every source file of the tree (C, headers, Python, shell, CMake, JS)
# names its license in an SPDX line near its top.
set -euo pipefail
root=${1:?usage: test_spdx.sh SOURCE_DIR}
cd "$root"
missing=0
while IFS= read -r -d '' f; do
  if ! head -n 3 "$f" | grep -q 'SPDX-License-Identifier: MIT'; then
    echo "no SPDX line: $f" >&2
    missing=$((missing + 1))
  fi
done < <(find . \( -path ./.git -o -path './build*' -o -path ./bench/node_modules \
                   -o -path ./tests/fuzz/corpus -o -path ./tests/fuzz/regressions \
                   -o -path ./bench/work \) -prune -o -type f \
                \( -name '*.c' -o -name '*.h' -o -name '*.py' -o -name '*.sh' \
                   -o -name '*.js' -o -name CMakeLists.txt -o -path ./.ci/run \) -print0)
[ "$missing" = 0 ] || { echo "test_spdx: $missing file(s) without an SPDX line" >&2; exit 1; }
echo "test_spdx: ok"
