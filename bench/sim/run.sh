#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/sim/run.sh [BUILD_DIR] [DURATION_S]: how fast is apig-sim? (30 s per run
# by default: long enough that the TLS connection storm at the start of each
# run, ~0.3 s, does not decide the p99 of the steady state)
#  1. throughput with no latency, HTTP and HTTPS (keep-alive), 64 connections
#  2. 1,024 concurrent connections with 50 ms injected latency (p50/p99)
# Load generator: wrk (Debian package "wrk"). Requests are authenticated
# list calls (GET .../attached-domains, page of 20, ~8 KB) or certificate
# show calls (~0.6 KB) with an IAM token from the simulator itself. wrk runs
# on the same machine; PIN=1 pins apig-sim to CPU 0 and wrk to CPU 1
# (taskset). Every wrk run opens its connections anew (over HTTPS: 1,024
# TLS handshakes in its first ~0.3 s). Results go to stdout; see RESULTS.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-sim}
dur=${2:-30}
sim=$build/tools/apig-sim/apig-sim
pin_sim=() pin_wrk=()
if [ "${PIN:-0}" = 1 ]; then pin_sim=(taskset -c 0) pin_wrk=(taskset -c 1); fi
wrk_bin=$(command -v wrk || true)
wrk() { "${pin_wrk[@]}" "$wrk_bin" "$@"; }
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 2; }
[ -x "$sim" ] || { echo "build apig-sim first: cmake --build $build --target apig-sim" >&2; exit 2; }
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$root/tests/certs/make-certs.sh" "$work/certs"
python3 "$root/tools/apig-sim/gen-world.py" --certs 100 --domains 10 --gateways 4 \
  --bound 0.5 -o "$work/world.json"
project=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["projects"][0]["id"])' "$work/world.json")
cert=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["certificates"][0]["id"])' "$work/world.json")

start() { # start SCHEME [extra args...]
  local scheme=$1; shift
  local tls=()
  [ "$scheme" = https ] && tls=(--tls-cert "$work/certs/server.pem" --tls-key "$work/certs/server.key")
  rm -f "$work/port"
  "${pin_sim[@]}" "$sim" --listen 127.0.0.1:0 --port-file "$work/port" --seed-file "$work/world.json" \
    --seed 1 --threads 2 "${tls[@]}" "$@" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
  base="$scheme://127.0.0.1:$(cat "$work/port")"
  token=$(curl -s -o /dev/null -D - --cacert "$work/certs/ca.pem" -X POST "$base/v3/auth/tokens?nocatalog=1" \
    -d '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"deployer","password":"correct horse","domain":{"name":"acme"}}}},"scope":{"project":{"id":"'"$project"'"}}}}' \
    | tr -d '\r' | awk -F': ' 'tolower($1)=="x-subject-token"{print $2}')
  url="$base/v2/$project/apigw/certificates/$cert/attached-domains?limit=20"
  show_url="$base/v2/$project/apigw/certificates/$cert"
  [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/certs/ca.pem" -H "X-Auth-Token: $token" "$url")" = 200 ]
}
stop() { kill "$pid"; wait "$pid" || true; pid=; }
show() { # label wrk-output
  echo "== $1"
  grep -E "Requests/sec|Non-2xx|Socket errors|^ +(50|75|90|99)%|Latency " <<<"$2" | sed 's/^/   /'
}

echo "apig-sim benchmark: $(nproc) CPUs, ${dur}s per run, PIN=${PIN:-0}, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
for scheme in http https; do
  start "$scheme"
  wrk -t2 -c64 -d3s -H "X-Auth-Token: $token" "$url" >/dev/null   # warm-up
  out=$(wrk -t2 -c64 -d"${dur}s" --latency -H "X-Auth-Token: $token" "$url")
  show "$scheme, no latency, 64 connections" "$out"
  stop
done
for scheme in http https; do
  start "$scheme" --latency-ms 50
  wrk -t2 -c1024 -d3s --timeout 5s -H "X-Auth-Token: $token" "$show_url" >/dev/null
  out=$(wrk -t2 -c1024 -d"${dur}s" --timeout 5s --latency -H "X-Auth-Token: $token" "$url")
  show "$scheme, 50 ms latency, 1024 connections, list page (8 KB)" "$out"
  out=$(wrk -t2 -c1024 -d"${dur}s" --timeout 5s --latency -H "X-Auth-Token: $token" "$show_url")
  show "$scheme, 50 ms latency, 1024 connections, certificate show (0.6 KB)" "$out"
  stop
done
