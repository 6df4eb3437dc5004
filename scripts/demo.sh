#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo: certbind against apig-sim, a simulated Huawei Cloud APIG, over
# HTTPS on 127.0.0.1, with the bundled world of docs/examples/demo/.
#
# Installs what is missing and builds (scripts/setup.sh), starts apig-sim
# with a fresh test CA and fresh random credentials in a temporary
# directory, then runs: validate, plan, apply, status, a second plan and
# verify (a TLS handshake per domain at each gateway's data plane).
# Everything it started or wrote is removed on exit. Exit status 0 when
# certbind behaved as expected: everything converged except the one
# binding the world makes impossible (404 APIG.3020).
#
# Environment: CERTBIND_BUILD_DIR (default build), CERTBIND_DEMO_NO_BUILD=1
# to skip setup.sh and use an existing build, CERTBIND_DEMO_KEEP=1 to keep
# the temporary directory (it holds the demo's throw-away secrets).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${CERTBIND_BUILD_DIR:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
DEMO=$ROOT/docs/examples/demo
FAILING=legacy.shop.example.com
FAILING_GW=sg-edge-2

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  B=$'\033[1m' G=$'\033[32m' R=$'\033[31m' N=$'\033[0m'
else
  B='' G='' R='' N=''
fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
show() { printf '%s$ %s%s\n' "$B" "$*" "$N"; }
fail() {
  printf '\n%sdemo: FAILED: %s%s\n' "$R" "$*" "$N" >&2
  if [ -s "${TMP:-/nonexistent}/sim.log" ]; then
    echo "--- last lines of apig-sim's log:" >&2
    tail -n 20 "$TMP/sim.log" >&2
  fi
  exit 1
}

SIM_PID=
TMP=$(mktemp -d "${TMPDIR:-/tmp}/certbind-demo.XXXXXX")
cleanup() {
  if [ -n "$SIM_PID" ]; then
    kill "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
  fi
  if [ -n "${CERTBIND_DEMO_KEEP:-}" ]; then
    echo "demo: kept $TMP" >&2
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- 1. install what is missing and build --------------------------------
if [ -z "${CERTBIND_DEMO_NO_BUILD:-}" ]; then
  step "installing missing packages and building (scripts/setup.sh)"
  if ! scripts/setup.sh "$BUILD" >"$TMP/build.log" 2>&1; then
    tail -n 30 "$TMP/build.log" >&2
    fail "the build failed"
  fi
fi
CERTBIND=$BUILD/cli/certbind
SIM=$BUILD/tools/apig-sim/apig-sim
if [ ! -x "$CERTBIND" ] || [ ! -x "$SIM" ]; then
  fail "no $CERTBIND or $SIM: build first"
fi
command -v python3 >/dev/null || fail "python3 is needed (scripts/setup.sh installs it)"
export NO_COLOR=${NO_COLOR:-}

# ---- 2. the world: TLS, secrets (0600), seed, desired-state file ---------
step "preparing the demo world in $TMP"
umask 077
sh "$ROOT/tests/certs/make-certs.sh" "$TMP/tls"
# status-page is a certificate from files: a leaf (and its intermediate)
# from the demo's CA, which certbind uploads itself
sh "$ROOT/tests/certs/make-leaf-certs.sh" "$TMP/tls" \
  status.example.com,www.status.example.com >/dev/null
rand_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
SG_AK=$(rand_hex 10 | tr a-f A-F)
SG_SK=$(rand_hex 20)
EU_PW=$(rand_hex 16)
mkdir -m 0700 "$TMP/secrets"
printf '%s\n' "$SG_AK" >"$TMP/secrets/sg-ak"
printf '%s\n' "$SG_SK" >"$TMP/secrets/sg-sk"
printf '%s\n' "$EU_PW" >"$TMP/secrets/eu-password"
sed -e "s/@SG_AK@/$SG_AK/" -e "s/@SG_SK@/$SG_SK/" -e "s/@EU_PASSWORD@/$EU_PW/" \
  "$DEMO/world.json.in" >"$TMP/world.json"

# Key pairs, so that the simulator's data plane can serve each certificate:
# a P-256 key and a leaf for the certificate's SANs (the wildcards the world
# claims) from the demo's test CA, where the seed names them (pem/...).
mkdir -m 0700 "$TMP/pem"
python3 -c '
import json, sys
for c in json.load(open(sys.argv[1]))["certificates"]:
    print(c["cert_file"], c["key_file"], ",".join("DNS:" + n for n in c["san"]))
' "$TMP/world.json" | while read -r pem key sans; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TMP/$key" -out "$TMP/$pem" -days 365 \
    -subj "/CN=${sans%%,*}" -CA "$TMP/tls/ca.pem" -CAkey "$TMP/tls/ca.key" \
    -addext "subjectAltName=$sans" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -addext "extendedKeyUsage=serverAuth" >/dev/null 2>&1 ||
    fail "could not make the key pair $pem"
done

"$SIM" --listen 127.0.0.1:0 --port-file "$TMP/sim.port" \
  --seed-file "$TMP/world.json" \
  --tls-cert "$TMP/tls/server.pem" --tls-key "$TMP/tls/server.key" \
  --data-plane 127.0.0.1:0 --data-plane-port-file "$TMP/dp.port" \
  >"$TMP/sim.log" 2>&1 &
SIM_PID=$!
for _ in $(seq 200); do
  [ -s "$TMP/sim.port" ] && break
  kill -0 "$SIM_PID" 2>/dev/null || fail "apig-sim exited at start"
  sleep 0.05
done
[ -s "$TMP/sim.port" ] || fail "apig-sim did not start listening within 10 s"
PORT=$(cat "$TMP/sim.port")
ENDPOINT=https://127.0.0.1:$PORT
sed -e "s|@ENDPOINT@|$ENDPOINT|g" -e "s|@CA_FILE@|$TMP/tls/ca.pem|g" \
  -e "s|@SECRETS@|$TMP/secrets|g" -e "s|@STATE_DIR@|$TMP/state|g" \
  -e "s|@LEAF@|$TMP/tls|g" \
  "$DEMO/bindings.yaml.in" >"$TMP/bindings.yaml"
# Each gateway's data plane (what its clients get) is where its listener
# is: the gateway's ingress in the file (written before sim.port, so there).
while read -r iid addr; do
  sed -i "s|instance_id: $iid }|instance_id: $iid, ingress: [\"$addr\"] }|" \
    "$TMP/bindings.yaml"
done <"$TMP/dp.port"
grep -q "ingress:" "$TMP/bindings.yaml" || fail "no gateway got an ingress address"
echo "apig-sim listens on $ENDPOINT (HTTPS, test CA $TMP/tls/ca.pem),"
echo "answers in 10-30 ms and shows writes to reads 1 s late (real APIG: 5-10 s)."
echo "2 accounts (AK/SK and IAM password), 4 gateways, 5 certificates (one"
echo "from files, which certbind uploads); some bindings already in place,"
echo "some on last year's certificate."
echo "Each gateway serves TLS on its own loopback address (its data plane)."

cd "$TMP"
rc_of() { "$@" && rc=0 || rc=$?; }

# ---- 3. validate ----------------------------------------------------------
step "validate the desired-state file (offline)"
show "certbind validate -c bindings.yaml"
rc_of "$CERTBIND" validate -c bindings.yaml
[ "$rc" -eq 0 ] || fail "validate exited $rc, expected 0"

# ---- 4. plan ---------------------------------------------------------------
step "plan: read the live bindings of every certificate, print the difference"
show "certbind plan -c bindings.yaml --out plan.json"
rc_of "$CERTBIND" plan -c bindings.yaml --out plan.json --log-level warn \
  >plan.txt
# A few lines per certificate (the plan has one line per domain):
# every change and detach, the binding that will fail, the first attaches.
awk -v keep=3 -v failing="$FAILING" '
  function flush() { if (hidden) printf "      ... and %d more domains to attach or move\n", hidden; hidden = 0 }
  /^account / || /^  certificate / || /^Certificate objects:/ { flush(); n = 0; print; next }
  /^    / { if (++n <= keep || ($1 != "+" && $2 != "move") || index($0, failing)) print; else hidden++; next }
  { flush(); print }
  END { flush() }' plan.txt
echo "(exit $rc: 2 means there are changes)"
[ "$rc" -eq 2 ] || fail "plan exited $rc, expected 2 (changes)"
grep -q '+ upload cb_status_page_' plan.txt || fail "the plan does not upload status-page"

# ---- 5. apply --------------------------------------------------------------
step "apply: one pass (batched writes, one in flight per certificate, confirmed by re-reading)"
show "certbind apply -c bindings.yaml"
start=$(date +%s)
rc_of "$CERTBIND" apply -c bindings.yaml --log-level warn --log-format text \
  >apply.txt
cat apply.txt
echo "(exit $rc: 1 means some bindings did not converge, $(($(date +%s) - start)) s)"
[ "$rc" -eq 1 ] || fail "apply exited $rc, expected 1 (the one impossible binding)"
grep -q "$FAILING" apply.txt || fail "the summary does not name $FAILING"
grep -q "APIG.3020" apply.txt || fail "the summary does not give APIG.3020"

# ---- 6. status -------------------------------------------------------------
step "status: the last pass, from state_dir/status.json"
show "certbind status --state-dir state"
rc_of "$CERTBIND" status --state-dir state
[ "$rc" -eq 0 ] || fail "status exited $rc, expected 0"

# ---- 7. the second plan ----------------------------------------------------
step "plan again: only the binding that cannot be made is left"
show "certbind plan -c bindings.yaml"
rc_of "$CERTBIND" plan -c bindings.yaml --log-level warn --out plan2.json
echo "(exit $rc)"
[ "$rc" -eq 2 ] || fail "the second plan exited $rc, expected 2"

# ---- 8. check against the simulator's own state --------------------------
step "checking the outcome against apig-sim's own state"
curl -sS --fail --cacert tls/ca.pem "$ENDPOINT/__sim/state" >sim-state.json \
  || fail "could not read /__sim/state"
curl -sS --fail --cacert tls/ca.pem "$ENDPOINT/__sim/stats" >sim-stats.json \
  || fail "could not read /__sim/stats"
python3 - "$FAILING" "$FAILING_GW" <<'PY' || fail "the outcome is not what was planned"
import json, sys
failing, failing_gw = sys.argv[1], sys.argv[2]
plan = json.load(open("plan.json"))
plan2 = json.load(open("plan2.json"))
state = json.load(open("sim-state.json"))
stats = json.load(open("sim-stats.json"))
status = json.load(open("state/status.json"))
live = {(b["certificate_id"], b["instance_id"], b["domain"]):
        b["verified_client_certificate_enabled"] for b in state["bindings"]}
problems = []
# the certificate from files: uploaded by apply under its generated name
uploaded = [c["id"] for c in state["certificates"]
            if c["name"].startswith("cb_status_page_")]
if len(uploaded) != 1 or plan["summary"].get("upload") != 1:
    problems.append("status-page was not uploaded once: %r" % uploaded)
new_id = uploaded[0] if uploaded else None
done = 0
for c in plan["changes"]:
    cid = new_id if c["certificate_id"] is None else c["certificate_id"]
    key = (cid, c["instance_id"], c["domain"])
    if (c["domain"], c["gateway"]) == (failing, failing_gw):
        if key in live:
            problems.append("%s on %s is bound, yet it cannot be" % (failing, failing_gw))
        continue
    if live.get(key) != c["verify_client"]:
        problems.append("not in place: %s %s on %s" % (c["op"], c["domain"], c["gateway"]))
    done += 1
left = [(c["op"], c["domain"], c["gateway"]) for c in plan2["changes"]]
if left != [("attach", failing, failing_gw)]:
    problems.append("the second plan is not just the failing binding: %r" % left)
failed = [(b["domain"], b["gateway"], b["error_code"])
          for b in status["bindings"] if b["state"] == "failed"]
if failed != [(failing, failing_gw, "APIG.3020")]:
    problems.append("status.json failures: %r" % failed)
if stats.get("peak_concurrent_writes_max") != 1:
    problems.append("more than one write in flight on a certificate: %r"
                    % stats.get("peak_concurrent_writes_max"))
if stats.get("writes_noop"):
    problems.append("%d writes changed nothing" % stats["writes_noop"])
if stats.get("auth_failures"):
    problems.append("%d authentication failures" % stats["auth_failures"])
for p in problems:
    print("  " + p)
if problems:
    sys.exit(1)
s = plan["summary"]
print("  %d of %d planned changes are live (%d attach, %d change); %d unchanged;"
      " status-page uploaded as %s"
      % (done, len(plan["changes"]), s["attach"], s["change"], s["unchanged"],
         next(c["name"] for c in state["certificates"] if c["id"] == new_id)))
print("  left: attach %s on %s (404 APIG.3020: not registered on that gateway)"
      % (failing, failing_gw))
print("  at most %d write in flight per certificate, %d writes that changed nothing,"
      " %d authentication failures" % (stats["peak_concurrent_writes_max"],
                                       stats.get("writes_noop", 0),
                                       stats.get("auth_failures", 0)))
PY

# ---- 9. what the gateways serve ---------------------------------------------
step "verify: what each gateway actually serves, by a TLS handshake per domain"
show "certbind verify -c bindings.yaml"
rc_of "$CERTBIND" verify -c bindings.yaml --log-level warn >verify.txt
# the header, a few rows, what is not bound, the summary
awk 'NR <= 4 || /^not bound/ || /^  / || /^verify:/ { print; next }
     NR == 5 { print "..." }' verify.txt
echo "(exit $rc)"
[ "$rc" -eq 0 ] || fail "verify exited $rc, expected 0 (every bound domain served right)"
grep -q "^verify: [1-9][0-9]* ok, 0 mismatch, 0 expired, 0 unreachable, 0 unknown, 1 not bound" \
  verify.txt || fail "verify did not find every bound domain served right"
grep -q "^  $FAILING on $FAILING_GW: " verify.txt ||
  fail "verify does not list $FAILING on $FAILING_GW as not bound"

printf '\n%sdemo: OK%s: certbind converged everything it could and reported the rest.\n' "$G" "$N"
