#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/conn_cost.sh [BUILD_DIR] [N]: certbind's client CPU per request on a
# new TLS connection (full and resumed handshake) and on a pooled one,
# against apig-sim over HTTPS on loopback (see bench/conn_cost.c).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-bench}
n=${2:-150}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target apig-sim conn_cost -j"$(nproc)" >/dev/null
tmp=$(mktemp -d)
trap 'kill "$sim" 2>/dev/null || true; rm -rf "$tmp"' EXIT
"$root/tests/certs/make-certs.sh" "$tmp" >/dev/null
"$build/tools/apig-sim/apig-sim" --listen 127.0.0.1:0 --port-file "$tmp/port" \
  --seed-file "$root/tests/sim/world-test.json" --tls-cert "$tmp/server.pem" \
  --tls-key "$tmp/server.key" 2>/dev/null &
sim=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
"$build/bench/conn_cost" "https://127.0.0.1:$(cat "$tmp/port")/__sim/stats" \
  "$tmp/ca.pem" "$n"
