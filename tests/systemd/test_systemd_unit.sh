#!/bin/sh
# SPDX-License-Identifier: MIT
# test_systemd_unit.sh UNIT MAX_EXPOSURE [BINARY]
#
# 1. systemd-analyze security --offline=yes UNIT: overall exposure must be
#    <= MAX_EXPOSURE (docs/operations.md §3; also gated with --threshold).
# 2. systemd-analyze verify on a copy of UNIT whose ExecStart points at
#    BINARY (the build's certbind; verify needs the binary to exist), or at
#    /bin/true when no binary was built yet: the unit's syntax, directives
#    and dependencies are still checked.
# 3. Restart and core settings: Restart=on-failure, but never for an
#    invalid file or a usage error (RestartPreventExitStatus= has 3 and 64:
#    restarting cannot fix either, it only loops every RestartSec), and
#    LimitCORE=0 (no core file can hold a secret).
# 4. With BINARY: the process is not dumpable. `certbind run` (a valid file
#    with no bindings; an env: token) is started as an unprivileged user
#    (nobody, via setpriv, when the test runs as root; else as the caller),
#    and its /proc/PID/status must be owned by root: the kernel gives the
#    /proc files of a non-dumpable process to root, those of a dumpable one
#    to the process's own user.
# Exit 77 (ctest: skipped) only when systemd-analyze is not installed.
set -eu
unit=$1
max=$2
binary=${3:-}

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "systemd-analyze not installed: skipped"
  exit 77
fi
[ -f "$unit" ] || { echo "FAIL: no unit file $unit"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- 1. exposure ---------------------------------------------------------
# The threshold is in tenths (0..100 units).
threshold=$(awk -v m="$max" 'BEGIN { printf "%d", m * 10 }')
if ! systemd-analyze security --offline=yes --threshold="$threshold" \
    --no-pager "$unit" >"$tmp/security.txt" 2>&1; then
  cat "$tmp/security.txt"
  echo "FAIL: systemd-analyze security --threshold=$threshold failed"
  exit 1
fi
exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' \
  "$tmp/security.txt")
if [ -z "$exposure" ]; then
  cat "$tmp/security.txt"
  echo "FAIL: no overall exposure level in the output"
  exit 1
fi
echo "exposure: $exposure (max $max)"
if ! awk -v e="$exposure" -v m="$max" 'BEGIN { exit !(e <= m) }'; then
  grep -E '^✗' "$tmp/security.txt" || true
  echo "FAIL: exposure $exposure > $max"
  exit 1
fi

# --- 2. verify -----------------------------------------------------------
if [ -n "$binary" ] && [ -x "$binary" ]; then
  exe=$binary
else
  exe=/bin/true
  echo "note: certbind not built, verifying with ExecStart=/bin/true"
fi
copy="$tmp/certbind.service"
sed "s|^ExecStart=[^ ]*|ExecStart=$exe|" "$unit" >"$copy"
grep -q "^ExecStart=$exe " "$copy" || { echo "FAIL: no ExecStart= in $unit"; exit 1; }
if ! systemd-analyze verify --man=no "$copy" >"$tmp/verify.txt" 2>&1; then
  cat "$tmp/verify.txt"
  echo "FAIL: systemd-analyze verify"
  exit 1
fi
# verify exits 0 on some warnings; any line about our unit is a finding.
if grep -F "certbind.service" "$tmp/verify.txt"; then
  echo "FAIL: systemd-analyze verify reported the lines above"
  exit 1
fi
echo "verify: ok"

# --- 3. restart and core settings ------------------------------------------
# the last assignment of a key wins; RestartPreventExitStatus= accumulates
last() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
[ "$(last Restart)" = on-failure ] ||
  { echo "FAIL: Restart= is '$(last Restart)', want on-failure"; exit 1; }
prevent=" $(sed -n 's/^RestartPreventExitStatus=//p' "$unit" | tr '\n' ' ') "
for code in 3 64; do
  case $prevent in
  *" $code "*) ;;
  *) echo "FAIL: RestartPreventExitStatus= lacks $code (has:$prevent)"; exit 1 ;;
  esac
done
[ "$(last LimitCORE)" = 0 ] ||
  { echo "FAIL: LimitCORE= is '$(last LimitCORE)', want 0"; exit 1; }
echo "restart/core: ok (RestartPreventExitStatus=$(echo $prevent), LimitCORE=0)"

# --- 4. the process is not dumpable -----------------------------------------
if [ -z "$binary" ] || [ ! -x "$binary" ]; then
  echo "note: certbind not built, dumpable check skipped"
  exit 0
fi
scale=${CERTBIND_TEST_TIME_SCALE:-1}
d="$tmp/run"
mkdir "$d"
cat >"$d/bindings.yaml" <<EOF
version: 1
accounts:
  a1:
    region: r1
    project_id: 0123456789abcdef0123456789abcdef
    endpoint: https://127.0.0.1:9
    auth: {method: token, token: {env: CERTBIND_TEST_TOKEN}}
gateways: {}
certificates: {}
bindings: []
policy: {mode: upsert}
daemon: {state_dir: $d/state, resync_interval_s: 3600}
EOF
if [ "$(id -u)" -eq 0 ]; then
  command -v setpriv >/dev/null ||
    { echo "FAIL: running as root and setpriv is missing"; exit 1; }
  chmod 0755 "$tmp"
  chown -R 65534:65534 "$d"
  want_uid=65534
  as_user="setpriv --reuid=65534 --regid=65534 --clear-groups"
else
  want_uid=$(id -u)
  as_user=
fi
CERTBIND_TEST_TOKEN=not-a-secret $as_user "$binary" run \
  -c "$d/bindings.yaml" --log-format json 2>"$d/log" &
pid=$!
# SIGTERM, then SIGKILL if it is still there after a bound
stop() {
  kill -TERM "$pid" 2>/dev/null || return 0
  n=0
  while kill -0 "$pid" 2>/dev/null && [ $n -lt $((200 * scale)) ]; do
    sleep 0.1
    n=$((n + 1))
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
trap 'stop; rm -rf "$tmp"' EXIT
# its first log line comes after main() made itself non-dumpable
n=0
until [ -s "$d/log" ]; do
  if ! kill -0 "$pid" 2>/dev/null || [ $n -ge $((200 * scale)) ]; then
    cat "$d/log"
    echo "FAIL: certbind run did not start (or log) within $((20 * scale)) s"
    exit 1
  fi
  sleep 0.1
  n=$((n + 1))
done
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
owner=$(stat -c %u "/proc/$pid/status")
if [ "$uid" != "$want_uid" ]; then
  echo "FAIL: certbind runs as uid $uid, want $want_uid"
  exit 1
fi
if [ "$owner" != 0 ]; then
  echo "FAIL: /proc/$pid/status of certbind (uid $uid) is owned by uid" \
    "$owner, not root: the process is dumpable (a core dump or ptrace" \
    "would expose its secrets)"
  exit 1
fi
echo "dumpable: no (/proc/$pid/status owned by root, process uid $uid)"
