#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Scenario 5, the quota-bound rollout (issue 18).

apig-sim throttles like APIG (5 req/s, burst 10 per project, Retry-After:
1), answers after 30 ms and shows writes only after a visibility delay.
N certificates x 50 domains x 4 gateways are rolled out with certbind's
defaults (5 req/s, burst 10). For each case bench computes:

  minimum   the requests the pass needs: every page of every certificate's
            first read, its Show (names and expiry, one per certificate and
            pass), its writes, one confirmation round;
  ideal     the wall time of an exact schedule of those requests: a
            simulation of the server's token bucket, where a write goes
            once its certificate's read is answered and a confirmation no
            earlier than the visibility delay after its certificate's last
            write was answered (the delay in force at that time when the
            server changes it mid-pass); the last answer ends it;
  certbind  its requests and 429s, counted in apig-sim's request log, and
            its pass time (pass.done duration_ms).

Three ways of running certbind:
  cold   `certbind apply`: a first-ever pass, a process that knows nothing
         of the account (an empty state_dir);
  warm   `certbind run`: the daemon's second pass, after a first pass on
         other certificates of the same account (N, at least 20; what it
         learnt is kept in memory): the everyday renewal by the daemon;
  again  `certbind apply` with the state_dir an earlier `apply` on other
         certificates of the same account (N, at least 20) left: what it
         learnt is read from state_dir/visibility.json; the everyday
         renewal from the command line.

Used by bench.py (--only quota) and by tests/integration/test_quota_bound.py
(a small case). Alone: quota.py --build DIR [--sizes 3,20] [--vis 5000].
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

SERVER_RPS = 5
SERVER_BURST = 10
RETRY_AFTER_S = 1
LATENCY_MS = 30
DOMAINS = 50
GATEWAYS = 4
BATCH = 50  # certbind's default policy.batch_size
PAGE = 500  # bindings per list page
LEARN_MIN = 20  # certificates of the daemon's first pass in a warm run


# ---- what the pass needs, and how fast it could go -------------------------

def minimum_requests(n, domains=DOMAINS, gateways=GATEWAYS, batch=BATCH):
    """Per certificate (nothing bound yet): one read of its (empty) first
    page, its Show, its write batches, one confirmation round of every
    page."""
    writes = math.ceil(domains / batch)
    confirm_pages = max(1, math.ceil(domains * gateways / PAGE))
    return n * (2 + writes + confirm_pages)


def visible_at(t_w, vis):
    """The earliest time a read shows a write answered at t_w: vis is a
    delay (s) or a list of (from_s, delay_s) steps of a server that
    changes its delay; a read at t shows what was written before
    t - delay(t)."""
    if not isinstance(vis, list):
        return t_w + vis
    steps = sorted(vis)
    for i, (start, d) in enumerate(steps):
        end = steps[i + 1][0] if i + 1 < len(steps) else math.inf
        t = max(start, t_w + d)
        if t < end:
            return t
    return t_w + steps[-1][1]


def ideal_schedule(n, vis, rps=SERVER_RPS, burst=SERVER_BURST,
                   latency=LATENCY_MS / 1000.0, domains=DOMAINS,
                   gateways=GATEWAYS, batch=BATCH):
    """The minimum requests paced by the server's bucket (full at 0, rps a
    second, at most burst), each sent as soon as a token and its
    dependencies allow: writes first (they start the visibility clocks),
    then reads, then due confirmations. Returns the time of the last
    answer (s)."""
    writes = math.ceil(domains / batch)
    pages = max(1, math.ceil(domains * gateways / PAGE))
    # certificates whose read and Show are not sent: each twice, its
    # writes may go once the second is answered
    reads = [c for c in range(n) for _ in range(2)]
    write_ready = []            # (time the write may go, cert, k)
    confirm_due = []            # (time the confirmation may go, cert)
    left_pages = {}
    tokens, t, last = float(burst), 0.0, 0.0
    sent = 0
    total = minimum_requests(n, domains, gateways, batch)
    while sent < total:
        ready_w = [x for x in write_ready if x[0] <= t + 1e-9]
        ready_c = [x for x in confirm_due if x[0] <= t + 1e-9]
        pick = None
        if ready_w:
            pick = ("w", min(ready_w))
        elif reads:
            pick = ("r", reads[0])
        elif ready_c:
            pick = ("c", min(ready_c))
        if pick is None or tokens < 1 - 1e-9:
            nxt = [x[0] for x in write_ready + confirm_due if x[0] > t + 1e-9]
            if tokens < 1 - 1e-9:
                nxt.append(t + (1 - tokens) / rps)
            t2 = min(nxt)
            tokens = min(burst, tokens + (t2 - t) * rps)
            t = t2
            continue
        tokens -= 1
        sent += 1
        kind, x = pick
        if kind == "r":
            reads.pop(0)
            if x not in reads:
                write_ready.append((t + latency, x, 1))
        elif kind == "w":
            write_ready.remove(x)
            _, cert, k = x
            if k < writes:
                write_ready.append((t + latency, cert, k + 1))
            else:
                confirm_due.append((visible_at(t + latency, vis), cert))
                left_pages[cert] = pages
        else:
            left_pages[x[1]] -= 1
            if left_pages[x[1]] == 0:
                confirm_due.remove(x)
        last = max(last, t + latency)
    return last


# ---- the world ---------------------------------------------------------------

def quota_world(tmp, ncerts, rps, vis_ms, domains=DOMAINS, gateways=GATEWAYS):
    """ncerts certificates, each wanting its domains on every gateway,
    nothing bound; certbind's defaults but for requests_per_second."""
    w = harness.World(tmp)
    w.account("quota", limits={"requests_per_second": rps, "burst": 10,
                               "max_in_flight": 32})
    all_domains, per_cert = [], []
    for i in range(ncerts):
        ds = ["d%d.c%d.example.com" % (j, i) for j in range(domains)]
        per_cert.append(ds)
        all_domains.extend(ds)
    gws = ["gw%d" % g for g in range(gateways)]
    for g in gws:
        w.gateway(g, "quota", all_domains)
    for i in range(ncerts):
        w.certificate("c%d" % i, "quota", ["*.c%d.example.com" % i])
    w.per_cert = per_cert
    w.gws = gws
    w.policy = {"mode": "upsert"}
    w.retry = {"max_attempts": 6, "base_delay_ms": 500,
               "max_delay_ms": 60000}
    w.settings = {"visibility_delay_ms": vis_ms}
    w.faults = {"latency": {"kind": "fixed", "ms": LATENCY_MS},
                "throttle": {"rps": SERVER_RPS, "burst": SERVER_BURST,
                             "retry_after_s": RETRY_AFTER_S}}
    return w


def want_certs(w, certs):
    """The file wants exactly these certificates' bindings (and names only
    them, so certbind reads only them)."""
    w.wanted = []
    for i in certs:
        w.want("c%d" % i, w.gws, w.per_cert[i])


def write_yaml_of(w, ca, certs, path):
    want_certs(w, certs)
    named = {"c%d" % i for i in certs}
    saved = dict(w.certs)
    try:
        for k in list(w.certs):
            if k not in named:
                del w.certs[k]
        text = w.yaml(ca)
    finally:
        w.certs = saved
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)  # the daemon sees one complete file
    return path


# ---- the simulator -----------------------------------------------------------

class QuotaSim(harness.SimAdmin):
    """apig-sim with --log-requests; each request line is kept with its
    arrival time (at=, ms of CLOCK_MONOTONIC, the clock of
    time.monotonic())."""

    admin_timeout = 60

    def __init__(self, sim_bin, make_certs, tmp, world):
        tls = os.path.join(tmp, "tls")
        if not os.path.exists(os.path.join(tls, "ca.pem")):
            subprocess.run(["sh", make_certs, tls], check=True,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        self.ca = os.path.join(tls, "ca.pem")
        seed = os.path.join(tmp, "world.json")
        with open(seed, "w") as f:
            json.dump(world.seed(), f)
        port_file = os.path.join(tmp, "sim.port")
        self.log_path = os.path.join(tmp, "sim.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sim_bin, "--listen", "127.0.0.1:0", "--port-file", port_file,
             "--seed-file", seed, "--seed", "1", "--log-requests",
             "--tls-cert", os.path.join(tls, "server.pem"),
             "--tls-key", os.path.join(tls, "server.key")],
            stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + 20
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("apig-sim did not start")
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read().strip())
        self.url = "https://127.0.0.1:%d" % self.port
        world.endpoint = self.url
        import ssl
        self.ctx = ssl.create_default_context(cafile=self.ca)

    def requests(self, since=0.0):
        """API requests of the log (not /__sim/ calls) that arrived at or
        after since (time.monotonic() s): (count, 429s)."""
        self.log.flush()
        n = throttled = 0
        with open(self.log_path, errors="replace") as f:
            for line in f:
                if not line.startswith("apig-sim: ") or " /__sim/" in line:
                    continue
                at = line.rsplit("at=", 1)
                if len(at) != 2 or float(at[1]) / 1000.0 < since:
                    continue
                n += 1
                throttled += " -> 429 " in line
        return n, throttled

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---- certbind ------------------------------------------------------------------

def events_of(path, name):
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("{") and '"%s"' % name in line:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("event") == name:
                    out.append(e)
    return out


def change_later(sim, after_s, vis_ms):
    """The server's delay becomes vis_ms after_s from now (a thread)."""
    def go():
        time.sleep(after_s)
        sim.settings({"visibility_delay_ms": vis_ms})
    th = threading.Thread(target=go, daemon=True)
    th.start()
    return th


def run_cold(certbind, sim, w, tmp, n, change, name="cold"):
    cfg = write_yaml_of(w, sim.ca, range(n), os.path.join(tmp, "b.yaml"))
    err = os.path.join(tmp, name + ".err")
    t0 = time.monotonic()
    th = change_later(sim, change[0], change[1]) if change else None
    with open(err, "wb") as e:
        rc = subprocess.run([certbind, "apply", "-c", cfg, "--log-format",
                             "json"], stdout=subprocess.DEVNULL, stderr=e,
                            env=dict(os.environ, NO_COLOR="1"),
                            timeout=900).returncode
    if th:
        th.join()
    done = events_of(err, "pass.done")
    return {"rc": rc, "since": t0, "err": err,
            "pass_s": done[-1]["duration_ms"] / 1000.0 if done else None}


def run_again(certbind, sim, w, tmp, n, change, learn=None, then="apply"):
    """`certbind apply` on learn (default max(N, 20)) other certificates of
    the account, then the measured pass on the N, with the same state_dir
    (the World's): `certbind apply` (then="apply"), or the first pass of a
    daemon that starts then (then="run"); it starts from the delays the
    first apply learnt."""
    learn = learn or learning_certs(n)
    cfg = write_yaml_of(w, sim.ca, range(n, n + learn),
                        os.path.join(tmp, "learn.yaml"))
    err = os.path.join(tmp, "learn.err")
    with open(err, "wb") as e:
        rc = subprocess.run([certbind, "apply", "-c", cfg, "--log-format",
                             "json"], stdout=subprocess.DEVNULL, stderr=e,
                            env=dict(os.environ, NO_COLOR="1"),
                            timeout=900).returncode
    if harness.LOG_DIR:  # under ctest: the suite-wide secret scan
        with open(err, errors="replace") as f:
            harness.record_output("quota-certbind", f.read())
    # both token buckets full again, as before a cold run
    time.sleep(2.5)
    if then == "run":
        r = run_daemon_first(certbind, sim, w, tmp, n)
    else:
        r = run_cold(certbind, sim, w, tmp, n, change, name="again")
    if rc != 0:
        r["rc"] = rc
    return r


def start_daemon(certbind, cfg, err):
    """`certbind run` on cfg, its JSON log in the file err."""
    with open(err, "wb") as e:
        return subprocess.Popen([certbind, "run", "-c", cfg, "--log-format",
                                 "json"], stdout=subprocess.DEVNULL,
                                stderr=e, env=dict(os.environ, NO_COLOR="1"))


def stop_daemon(proc):
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_daemon_first(certbind, sim, w, tmp, n):
    """The first pass of `certbind run` on the N certificates."""
    cfg = write_yaml_of(w, sim.ca, range(n), os.path.join(tmp, "b.yaml"))
    err = os.path.join(tmp, "again.err")
    t0 = time.monotonic()
    proc = start_daemon(certbind, cfg, err)
    try:
        ok = wait_passes(proc, err, 1, 900)
    finally:
        stop_daemon(proc)
    done = events_of(err, "pass.done")
    return {"rc": 0 if ok and done else 1, "since": t0, "err": err,
            "pass_s": done[0]["duration_ms"] / 1000.0 if done else None}


def wait_passes(proc, err, count, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(events_of(err, "pass.done")) >= count:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def learning_certs(n):
    """The certificates of the daemon's first pass in a warm run."""
    return max(n, LEARN_MIN)


def run_warm(certbind, sim, w, tmp, n, change):
    """The daemon: a first pass rolls out other certificates of the same
    account (at least LEARN_MIN); then the file changes to the n measured
    ones."""
    cfg = os.path.join(tmp, "b.yaml")
    write_yaml_of(w, sim.ca, range(n, n + learning_certs(n)), cfg)
    err = os.path.join(tmp, "warm.err")
    proc = start_daemon(certbind, cfg, err)
    try:
        ok = wait_passes(proc, err, 1, 900)
        # both token buckets full again, as before a cold run
        time.sleep(2.5)
        t0 = time.monotonic()
        write_yaml_of(w, sim.ca, range(n), cfg)
        th = change_later(sim, change[0] + 0.3, change[1]) if change else None
        ok = ok and wait_passes(proc, err, 2, 900)
        if th:
            th.join()
    finally:
        stop_daemon(proc)
    done = events_of(err, "pass.done")
    return {"rc": 0 if ok and len(done) >= 2 else 1, "since": t0, "err": err,
            "pass_s": done[1]["duration_ms"] / 1000.0 if len(done) > 1
            else None}


def run_case(tools, work, n, vis_ms, mode="cold", rps=SERVER_RPS,
             change=None, keep=False, learn=None, then="apply"):
    """One case; change = (after_s, new_vis_ms): the server's delay changes
    that long after the measured pass starts. learn, then (again only):
    the certificates of the first apply (default max(N, 20)), and what
    runs the measured pass (run_again)."""
    tmp = tempfile.mkdtemp(prefix="s5-", dir=work)
    w = quota_world(tmp, n if mode == "cold" else
                    n + (learn or learning_certs(n)), rps, vis_ms)
    sim = QuotaSim(tools["sim"], tools["make_certs"], tmp, w)
    try:
        if mode == "again":
            r = run_again(tools["certbind"], sim, w, tmp, n, change, learn,
                          then)
        else:
            run = run_warm if mode == "warm" else run_cold
            r = run(tools["certbind"], sim, w, tmp, n, change)
        requests, throttled = sim.requests(r["since"])
        want_certs(w, range(n))
        missing = len(w.binding_set() - sim.state_set())
    finally:
        sim.stop()
        if harness.LOG_DIR:  # under ctest: the suite-wide secret scan
            with open(r["err"], errors="replace") as f:
                harness.record_output("quota-certbind", f.read())
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    vis = vis_ms / 1000.0
    if change:
        vis = [(0.0, vis), (change[0], change[1] / 1000.0)]
    need = minimum_requests(n)
    ideal = ideal_schedule(n, vis, rps=SERVER_RPS)
    res = {"certificates": n, "visibility_ms": vis_ms, "mode": mode,
           "rps": rps, "change": list(change) if change else None,
           "minimum": need, "requests": requests, "throttled": throttled,
           "ideal_s": ideal, "pass_s": r["pass_s"], "rc": r["rc"],
           "missing": missing}
    if keep:
        res["tmp"] = tmp
    res["requests_ratio"] = requests / need
    res["wall_ratio"] = ideal / r["pass_s"] if r["pass_s"] else 0.0
    res["goals"] = goals(res)
    return res


def goals(r):
    """Each goal of issue 18 that applies to the case: (name, met)."""
    out = [("requests ≤ 1.05 × minimum", r["requests_ratio"] <= 1.05)]
    if r["rps"] == SERVER_RPS:
        out += [("wall ≥ 90 % of ideal", r["wall_ratio"] >= 0.90),
                ("0 throttled", r["throttled"] == 0)]
    else:
        out += [("wall ≥ 80 % of ideal", r["wall_ratio"] >= 0.80),
                ("≤ 10 throttled", r["throttled"] <= 10)]
    return out


# ---- the cases of RESULTS.md ---------------------------------------------------

def cases(sizes):
    """(n, vis_ms, mode, rps, change) of scenario 5."""
    out = []
    for mode in ("cold", "warm", "again"):
        for n in sizes:
            for vis in (5000, 10000):
                out.append((n, vis, mode, SERVER_RPS, None))
        small = min(sizes)
        mid = sorted(sizes)[len(sizes) // 2] if len(sizes) > 1 else small
        # the server's delay goes from 5 s to 10 s during the writes
        out.append((mid, 5000, mode, SERVER_RPS, (3.0, 10000)))
        # configured at 20 req/s against the server's 5
        for n in sorted({small, mid}):
            out.append((n, 5000, mode, 20, None))
    return out


def scenario_quota(tools, work, sizes=(3, 20, 200), only_modes=None,
                   log=None):
    results = []
    for n, vis, mode, rps, change in cases(sizes):
        if only_modes and mode not in only_modes:
            continue
        load = loadavg()
        t = time.time()
        r = run_case(tools, work, n, vis, mode, rps, change)
        r["load_before"] = load
        r["load_after"] = loadavg()
        results.append(r)
        if log:
            print("quota: %s n=%d vis=%d rps=%g change=%s: %d/%d requests, "
                  "%d 429, pass %.2f s, ideal %.2f s (%.0f s)" % (
                      mode, n, vis, rps, change, r["requests"], r["minimum"],
                      r["throttled"], r["pass_s"] or 0, r["ideal_s"],
                      time.time() - t), file=log, flush=True)
    return results


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def describe(r):
    vis = "%g s" % (r["visibility_ms"] / 1000.0)
    if r["change"]:
        vis += " → %g s at %g s" % (r["change"][1] / 1000.0, r["change"][0])
    rate = "" if r["rps"] == SERVER_RPS else ", rps %g" % r["rps"]
    return "%s, %d, %s%s" % (r["mode"], r["certificates"], vis, rate)


def report(results, title="Scenario 5: quota-bound rollout"):
    L = ["### %s" % title, "",
         "apig-sim: %d req/s, burst %d per project, `Retry-After: %d`, %d ms "
         "latency; N certificates × %d domains × %d gateways; certbind's "
         "defaults (5 req/s, burst 10) unless the rate is given. cold = "
         "`certbind apply`, a first-ever pass; warm = the daemon's second pass "
         "(`certbind run`, after a first pass on max(N, 20) other certificates "
         "of the account); again = `certbind apply` with the state_dir of an "
         "earlier `apply` on max(N, 20) other certificates of the account." % (
             SERVER_RPS, SERVER_BURST, RETRY_AFTER_S, LATENCY_MS, DOMAINS,
             GATEWAYS), "",
         "| run, N, visibility | requests: minimum / certbind | 429s | "
         "wall: schedule / certbind | goals | load before / after |",
         "|---|---|---|---|---|---|"]
    for r in results:
        g = "; ".join("%s %s" % (name, "met" if ok else "**missed**")
                      for name, ok in r["goals"])
        bad = "" if r["rc"] == 0 and r["missing"] == 0 else \
            " (rc %d, %d missing)" % (r["rc"], r["missing"])
        L.append("| %s | %d / %d (%.2f×) | %d | %.1f s / %s (%.0f %%)%s | %s "
                 "| %s / %s |" % (
                     describe(r), r["minimum"], r["requests"],
                     r["requests_ratio"], r["throttled"], r["ideal_s"],
                     "%.1f s" % r["pass_s"] if r["pass_s"] else "—",
                     100 * r["wall_ratio"], bad, g, r.get("load_before", "?"),
                     r.get("load_after", "?")))
    return L


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "work"))
    ap.add_argument("--sizes", default="3,20,200")
    ap.add_argument("--modes", default="cold,warm,again")
    ap.add_argument("--title", default="Scenario 5: quota-bound rollout")
    args = ap.parse_args()
    tools = {"certbind": os.path.join(args.build, "cli", "certbind"),
             "sim": os.path.join(args.build, "tools", "apig-sim", "apig-sim"),
             "make_certs": os.path.join(ROOT, "tests", "certs",
                                        "make-certs.sh")}
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="quota-", dir=args.out)
    try:
        res = scenario_quota(tools, work,
                             [int(s) for s in args.sizes.split(",")],
                             args.modes.split(","), log=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(args.out, "quota.json"), "w") as f:
        json.dump(res, f, indent=1)
    print("\n".join(report(res, args.title)))


if __name__ == "__main__":
    main()
