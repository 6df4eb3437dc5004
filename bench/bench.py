#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""certbind benchmarks against apig-sim over HTTPS on loopback (issue 6).

Scenarios (see bench/RESULTS.md for what each one proves):
  throughput  N bindings on N certificates, 50 ms latency, 256 in flight
  rollout     50 certificates x 200 domains x 8 gateways move to new certs
  ratelimit   per-account limit of 50 req/s: every 1 s window
  scaling     1,000 -> 100,000 bindings: wall, CPU, memory
  callgrind   instructions per request (certbind and curl), profile
  quota       scenario 5: a rollout against APIG's quota (5 req/s) and its
              visibility delay (bench/quota.py)

Each scenario builds its world with tests/integration/harness.py (World:
seed + YAML + 0600 secrets), starts its own apig-sim, runs certbind apply,
then resets the sim and runs the competitors on the same requests:
`curl --parallel --parallel-max 256` (configs signed by bench/sign_requests)
and bench/node/pool.js on @huaweicloud/huaweicloud-sdk-core. Every child is
measured with GNU time: wall time, user+sys CPU, peak RSS.

  bench.py --build build-bench --out bench/work [--only throughput,...]
           [--quick]   (small sizes: a check that everything runs)

Writes OUT/results.json and OUT/results.md (the tables of RESULTS.md).
"""
import argparse
import datetime
import json
import math
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402
import quota  # noqa: E402

LATENCY_MS = 50
IN_FLIGHT = 256
UNLIMITED = {"requests_per_second": 10000, "burst": 10000,
             "max_in_flight": IN_FLIGHT}


class Tools:
    def __init__(self, build, node=True, curl=True):
        self.certbind = os.path.join(build, "cli", "certbind")
        self.sim = os.path.join(build, "tools", "apig-sim", "apig-sim")
        self.sign = os.path.join(build, "bench", "sign_requests")
        self.make_certs = os.path.join(ROOT, "tests", "certs", "make-certs.sh")
        self.pool_js = os.path.join(ROOT, "bench", "node", "pool.js")
        self.node = shutil.which("node") if node else None
        if self.node and not os.path.isdir(
                os.path.join(ROOT, "bench", "node_modules", "@huaweicloud")):
            self.node = None
        self.curl = shutil.which("curl") if curl else None
        if self.curl and not os.path.exists(self.sign):
            self.curl = None
        harness.CERTBIND = self.certbind
        harness.APIG_SIM = self.sim
        harness.MAKE_CERTS = self.make_certs


# ---- measuring a child ----------------------------------------------------

def measure(cmd, out_path, err_path, env=None, timeout=900, stdin=None):
    """Run cmd under GNU time: wall (s), user+sys CPU (s), peak RSS (KiB).

    Not wait4() on a child of this process: Linux carries the parent's
    peak RSS over fork+exec into the child's ru_maxrss, and this Python
    process holds the worlds (100+ MB). /usr/bin/time is small, so the
    RSS it reports is the command's own."""
    tfile = out_path + ".time"
    full = ["/usr/bin/time", "-f", "%e %U %S %M", "-o", tfile, *cmd]
    with open(out_path, "wb") as o, open(err_path, "wb") as e:
        t0 = time.perf_counter()
        p = subprocess.Popen(full, stdout=o, stderr=e, env=env,
                             stdin=stdin or subprocess.DEVNULL)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        wall = time.perf_counter() - t0
    with open(tfile) as f:
        last = f.read().strip().splitlines()[-1].split()
    os.unlink(tfile)
    user, sys_s, rss = float(last[1]), float(last[2]), int(last[3])
    return {"rc": p.returncode, "wall_s": wall, "user_s": user,
            "sys_s": sys_s, "cpu_s": user + sys_s, "rss_kib": rss}


def add(a, b):
    """Sum sequential runs (stages): wall and CPU add up, RSS is the max."""
    if a is None:
        return dict(b)
    out = dict(a)
    for k in ("wall_s", "user_s", "sys_s", "cpu_s"):
        out[k] = a[k] + b[k]
    out["rss_kib"] = max(a["rss_kib"], b["rss_kib"])
    out["rc"] = a["rc"] or b["rc"]
    return out


# ---- the simulator --------------------------------------------------------

class Sim(harness.SimAdmin):
    """apig-sim over HTTPS; stderr (with --log-requests) is read by a thread
    that stamps each request line with the monotonic clock on arrival."""

    admin_timeout = 60

    def __init__(self, tools, tmp, world, latency_ms=LATENCY_MS,
                 log_requests=False, threads=2, cpu=None):
        self.tmp = tmp
        self.tls = os.path.join(tmp, "tls")
        if not os.path.exists(os.path.join(self.tls, "ca.pem")):
            subprocess.run(["sh", tools.make_certs, self.tls], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ca = os.path.join(self.tls, "ca.pem")
        seed = os.path.join(tmp, "world.json")
        with open(seed, "w") as f:
            json.dump(world.seed(), f)
        port_file = os.path.join(tmp, "sim.port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        args = [tools.sim, "--listen", "127.0.0.1:0", "--port-file", port_file,
                "--seed-file", seed, "--seed", "1", "--threads", str(threads),
                "--tls-cert", os.path.join(self.tls, "server.pem"),
                "--tls-key", os.path.join(self.tls, "server.key")]
        if latency_ms:
            args += ["--latency-ms", str(latency_ms)]
        if log_requests:
            args.append("--log-requests")
        if cpu is not None:  # pinned: taskset -c CPU
            args[0:0] = ["taskset", "-c", str(cpu)]
        self.lines = []
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        deadline = time.time() + 20
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("apig-sim did not start")
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read().strip())
        self.url = "https://127.0.0.1:%d" % self.port
        world.endpoint = self.url
        self.ctx = ssl.create_default_context(cafile=self.ca)

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line.decode(errors="replace")))

    def reset(self):
        super().reset()
        self.lines.clear()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)
        self.proc.stderr.close()


def api_counts(stats):
    """Requests by op and status from /__sim/stats (admin calls excluded)."""
    out = {}
    for op, by in stats.get("by_op", {}).items():
        if op == "admin":
            continue
        for code, n in by.items():
            if n:
                out["%s %s" % (op, code)] = n
    return out


def api_total(stats):
    return sum(n for k, n in api_counts(stats).items())


# ---- worlds ---------------------------------------------------------------

def fanout_world(tmp, ncerts, ndomains, ngateways, limits, policy=None):
    """ncerts certificates, each wanting ndomains domains on ngateways
    gateways; nothing bound yet. Certificate i covers *.c<i>.example.com."""
    w = harness.World(tmp)
    w.account("bench", limits=limits)
    all_domains, per_cert = [], []
    for i in range(ncerts):
        ds = ["d%d.c%d.example.com" % (j, i) for j in range(ndomains)]
        per_cert.append(ds)
        all_domains.extend(ds)
    gws = ["gw%d" % g for g in range(ngateways)]
    for g in gws:
        w.gateway(g, "bench", all_domains, dashed=(g != "gw1"))
    for i in range(ncerts):
        name = "c%d" % i
        w.certificate(name, "bench", ["*.c%d.example.com" % i])
        w.want(name, gws, per_cert[i])
    w.retry = {"max_attempts": 6, "base_delay_ms": 500, "max_delay_ms": 60000}
    w.policy = {"mode": "upsert", "batch_size": 50, "confirm_timeout_s": 60}
    if policy:
        w.policy.update(policy)
    return w


def rollout_world(tmp, ncerts, ndomains, ngateways, limits, policy=None):
    """Like fanout_world, but every domain is bound to an old certificate
    on every gateway; the file moves each to its new certificate."""
    w = fanout_world(tmp, ncerts, ndomains, ngateways, limits, policy)
    for i in range(ncerts):
        old = "old%d" % i
        w.certificate(old, "bench", ["*.c%d.example.com" % i])
        for g in w.gateways:
            for j in range(ndomains):
                w.bind(old, g, "d%d.c%d.example.com" % (j, i))
    return w


def write_config(w, sim):
    """The YAML names only the certificates the bindings want: the old
    certificates of a rollout exist in the seed only (the operator replaced
    them in the file), so certbind does not read them."""
    wanted = {b["certificate"] for b in w.wanted}
    saved = {k: v for k, v in w.certs.items() if k not in wanted}
    for k in saved:
        del w.certs[k]
    try:
        return w.write_yaml(sim.ca)
    finally:
        w.certs.update(saved)


# ---- the requests a pass needs, for the competitors -------------------------

def pages(n):
    return max(1, math.ceil(n / 500))


def competitor_stages(w, batch):
    """The requests certbind's pass needs, in dependency stages: the reads,
    then the k-th write of every certificate (one write in flight per
    certificate), then the confirmation reads (all pages at once)."""
    project = next(iter(w.accounts.values()))["project_id"]
    reads, writes, confirms = [], [], []
    base = "/v2/%s/apigw/certificates/" % project
    bound = {}
    for b in w.bound:
        bound[b["certificate"]] = bound.get(b["certificate"], 0) + 1
    for wanted in w.wanted:
        cert = w.certs[wanted["certificate"]]
        cid = cert["id"]
        live = bound.get(cid, 0)
        for k in range(pages(live)):
            reads.append(("GET", base + cid + "/attached-domains",
                          {"limit": "500", "offset": str(500 * k)}, None))
        iids = [w.gateways[g]["instance_id"] for g in wanted["gateways"]]
        ds = wanted["domains"]
        cw = []
        for lo in range(0, len(ds), batch):
            body = {"domains": [{"domain": d, "instance_ids": iids,
                                 "verified_client_certificate_enabled": False}
                                for d in ds[lo:lo + batch]]}
            cw.append(("POST", base + cid + "/domains/attach", None, body))
        writes.append(cw)
        for k in range(pages(len(ds) * len(iids))):
            confirms.append(("GET", base + cid + "/attached-domains",
                             {"limit": "500", "offset": str(500 * k)}, None))
    stages = [reads]
    for k in range(max(len(c) for c in writes)):
        stages.append([c[k] for c in writes if k < len(c)])
    stages.append(confirms)
    return stages


def nstage_requests(stages):
    return sum(len(s) for s in stages)


def run_curl(tools, tmp, sim, w, stages, parallel=IN_FLIGHT, rate=None):
    """One curl --parallel per stage (parallel=0: one transfer at a time);
    configs signed just before each."""
    acct = next(iter(w.accounts.values()))
    ak = os.path.join(tmp, "secrets", "bench-ak")
    sk = os.path.join(tmp, "secrets", "bench-sk")
    total, codes, connects = None, {}, 0
    for n, stage in enumerate(stages):
        tsv = os.path.join(tmp, "curl-%d.tsv" % n)
        with open(tsv, "w") as f:
            for m, path, q, body in stage:
                qs = "?" + "&".join("%s=%s" % kv for kv in q.items()) if q else ""
                f.write("%s\t%s%s\t%s\n" % (m, path, qs,
                                            json.dumps(body, separators=(",", ":"))
                                            if body else ""))
        cfg = os.path.join(tmp, "curl-%d.cfg" % n)
        with open(tsv) as i, open(cfg, "w") as o:
            subprocess.run([tools.sign, sim.url, acct["project_id"], ak, sk,
                            sim.ca], stdin=i, stdout=o, check=True)
        cmd = [tools.curl, "--silent", "-K", cfg]
        if parallel:
            cmd[2:2] = ["--parallel", "--parallel-max", str(parallel)]
        if rate:
            cmd[1:1] = ["--rate", rate]
        out = os.path.join(tmp, "curl-%d.out" % n)
        r = measure(cmd, out, os.path.join(tmp, "curl-%d.err" % n))
        total = add(total, r)
        with open(out) as f:
            for line in f:
                parts = line.split()
                if parts:
                    codes[parts[0]] = codes.get(parts[0], 0) + 1
                    if len(parts) > 1:
                        connects += int(parts[1])
        os.unlink(cfg)  # holds signatures
    total["codes"] = codes
    total["connects"] = connects
    return total


def run_node(tools, tmp, sim, w, stages, pool=IN_FLIGHT):
    acct = next(iter(w.accounts.values()))
    req = {"stages": [[{"m": m, "p": p, "q": q, "b": b} for m, p, q, b in s]
                      for s in stages]}
    path = os.path.join(tmp, "node-requests.json")
    with open(path, "w") as f:
        json.dump(req, f)
    env = dict(os.environ, NODE_EXTRA_CA_CERTS=sim.ca,
               NODE_PATH=os.path.join(ROOT, "bench", "node_modules"))
    out = os.path.join(tmp, "node.out")
    r = measure([tools.node, tools.pool_js, path, sim.url, acct["project_id"],
                 os.path.join(tmp, "secrets", "bench-ak"),
                 os.path.join(tmp, "secrets", "bench-sk"), str(pool)],
                out, os.path.join(tmp, "node.err"), env=env)
    codes, connects = {}, 0
    try:
        with open(out) as f:
            res = json.loads(f.read().strip().splitlines()[-1])
        for st in res["stages"]:
            for k, v in st.items():
                codes[k] = codes.get(k, 0) + v
        connects = res.get("connects", 0)
    except (ValueError, IndexError, KeyError):
        pass
    r["codes"] = codes
    r["connects"] = connects
    return r


# ---- certbind ---------------------------------------------------------------

def run_certbind(tools, tmp, cfg, extra_env=None, wrapper=()):
    env = dict(os.environ, NO_COLOR="1")
    if extra_env:
        env.update(extra_env)
    out = os.path.join(tmp, "certbind.out")
    err = os.path.join(tmp, "certbind.err")
    r = measure([*wrapper, tools.certbind, "apply", "-c", cfg,
                 "--log-format", "json"], out, err, env=env)
    events = {"pass.start": {}, "pass.done": {}}
    with open(err, errors="replace") as f:
        for line in f:
            for name in events:
                if line.startswith("{") and '"%s"' % name in line:
                    try:
                        events[name] = json.loads(line)
                    except ValueError:
                        pass
    r["pass_start"] = events["pass.start"]
    r["pass_done"] = events["pass.done"]
    if harness.LOG_DIR:  # under ctest: the suite-wide secret scan reads it
        with open(err, errors="replace") as f:
            harness.record_output("bench-certbind", f.read())
    return r


def check_converged(sim, w):
    live = sim.state_set()
    want = w.binding_set()
    missing = want - live
    return len(missing)


def competitors(tools, tmp, sim, w, stages, res, rate=None, node=True):
    """Reset the sim, run curl, reset, run node; record into res."""
    if tools.curl:
        sim.reset()
        r = run_curl(tools, tmp, sim, w, stages, rate=rate)
        st = sim.stats()
        r["sim"] = api_counts(st)
        r["requests"] = api_total(st)
        r["missing"] = check_converged(sim, w)
        res["curl"] = r
    if tools.node and node:
        sim.reset()
        r = run_node(tools, tmp, sim, w, stages)
        st = sim.stats()
        r["sim"] = api_counts(st)
        r["requests"] = api_total(st)
        r["missing"] = check_converged(sim, w)
        res["node"] = r


def tls_resumed_text(c):
    if c.get("tls_connections") is None:
        return "n/a"
    return "%d of %d new connections (the others: full handshakes)" % (
        c["tls_resumed"], c["tls_connections"])


def certbind_result(tools, tmp, sim, w, cfg, wrapper=()):
    r = run_certbind(tools, tmp, cfg, wrapper=wrapper)
    st = sim.stats()
    r["sim"] = api_counts(st)
    r["requests"] = api_total(st)
    r["peak_concurrent"] = st.get("peak_concurrent_requests")
    r["peak_writes_per_cert"] = st.get("peak_concurrent_writes_max")
    r["writes_noop"] = st.get("writes_noop")
    r["missing"] = check_converged(sim, w)
    r["connects"] = r["pass_done"].get("connections")
    # as apig-sim counted them: new TLS connections, and those resumed
    r["tls_connections"] = st.get("tls_connections")
    r["tls_resumed"] = st.get("tls_resumed")
    return r


# ---- scenarios --------------------------------------------------------------

def confirm_policy(args):
    return {"confirm_delay_ms": args.confirm_delay_ms} \
        if args.confirm_delay_ms is not None else {}


def scenario_throughput(tools, work, n, args, competitors_too=True,
                        latency_ms=LATENCY_MS, limits=None):
    tmp = tempfile.mkdtemp(prefix="s1-", dir=work)
    w = fanout_world(tmp, n, 1, 1, limits or UNLIMITED, confirm_policy(args))
    sim = Sim(tools, tmp, w, latency_ms=latency_ms)
    try:
        cfg = write_config(w, sim)
        res = {"bindings": n, "certificates": n, "latency_ms": latency_ms,
               "in_flight": (limits or UNLIMITED)["max_in_flight"]}
        res["certbind"] = certbind_result(tools, tmp, sim, w, cfg)
        needed = 4 * n  # read, Show, write, confirmation per certificate
        res["requests_needed"] = needed
        res["ideal_s"] = needed * latency_ms / 1000.0 / res["in_flight"]
        if competitors_too:
            stages = competitor_stages(w, 50)
            competitors(tools, tmp, sim, w, stages, res)
        return res
    finally:
        sim.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


LOG_LINE = re.compile(r"apig-sim: (\w+) (\S+) -> \d+ \S* ?([\d.]+)ms")


def pass_start_wall(r):
    """The wall-clock time of run_certbind result r's pass.start, or None."""
    ts = r["pass_start"].get("ts")
    if not ts:
        return None
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def rollout_timeline(lines, mono_at_pass_start):
    """When each step of every certificate's sequence reached apig-sim and
    was answered (its request log, stamped on arrival), in seconds from
    the pass's start: the read, each write, the confirmation pages."""
    per_cert = {}
    for tm, line in lines:
        m = LOG_LINE.search(line)
        if not m or "/apigw/certificates/" not in m.group(2):
            continue
        end = tm - mono_at_pass_start
        cert = m.group(2).split("/")[5]
        per_cert.setdefault(cert, []).append(
            (end - float(m.group(3)) / 1000.0, end, m.group(1)))
    steps = {}
    for reqs in per_cert.values():
        writes = 0
        for start, end, method in sorted(reqs, key=lambda r: r[1]):
            if method == "POST":
                writes += 1
                name = "write %d" % writes
            else:
                name = "read" if writes == 0 else "confirmation pages"
            steps.setdefault(name, []).append((start, end))
    order = sorted(steps, key=lambda k: min(s for s, _ in steps[k]))
    return [{"step": k, "requests": len(steps[k]),
             "first_start": min(s for s, _ in steps[k]),
             "last_start": max(s for s, _ in steps[k]),
             "first_end": min(e for _, e in steps[k]),
             "last_end": max(e for _, e in steps[k])} for k in order]


def start_over(sim, tmp):
    """The world and certbind's state dir as before the first pass."""
    sim.reset()
    state = os.path.join(tmp, "state")
    for f in os.listdir(state):
        os.unlink(os.path.join(state, f))


def scenario_rollout(tools, work, args, ncerts=50, ndomains=200, ngw=8,
                     batch=50):
    tmp = tempfile.mkdtemp(prefix="s2-", dir=work)
    pol = {"batch_size": batch}
    pol.update(confirm_policy(args))
    w = rollout_world(tmp, ncerts, ndomains, ngw, UNLIMITED, pol)
    sim = Sim(tools, tmp, w, log_requests=True)
    try:
        cfg = write_config(w, sim)
        res = {"certificates": ncerts, "domains": ndomains, "gateways": ngw,
               "bindings": ncerts * ndomains * ngw, "batch_size": batch,
               "latency_ms": LATENCY_MS}
        writes = math.ceil(ndomains / batch)
        confirm_pages = pages(ndomains * ngw)
        # Critical path of one certificate: its read (one page: the new
        # certificate has nothing yet), its writes one after another, then
        # one confirmation round: a client that wrote the bindings knows how
        # many pages to expect and can read them at once (certbind does).
        res["writes_per_certificate"] = writes
        res["confirm_pages"] = confirm_pages
        res["critical_requests"] = 1 + writes + 1
        res["lower_bound_s"] = res["critical_requests"] * LATENCY_MS / 1000.0
        # an account's first request goes alone, one more latency
        res["lower_bound_spec_s"] = res["lower_bound_s"] + LATENCY_MS / 1000.0
        # the bound of earlier versions: the pages read one after another
        res["sequential_pages_bound_s"] = \
            (1 + writes + confirm_pages) * LATENCY_MS / 1000.0
        load0 = loadavg()
        res["certbind"] = certbind_result(tools, tmp, sim, w, cfg)
        # one pass is noisy on 2 shared cores: the same pass again, from
        # the same state, for a median
        runs = [res["certbind"]["pass_done"].get("duration_ms")]
        cpus = [res["certbind"]["cpu_s"]]
        for _ in range(args.rollout_runs - 1):
            start_over(sim, tmp)
            r = run_certbind(tools, tmp, cfg)
            if check_converged(sim, w) == 0 and r["rc"] == 0:
                runs.append(r["pass_done"].get("duration_ms"))
                cpus.append(r["cpu_s"])
        res["certbind"]["pass_runs_ms"] = sorted(x for x in runs if x)
        res["certbind"]["cpu_runs_s"] = sorted(cpus)
        res["load"] = [load0, loadavg()]
        # one more pass for its timeline at the simulator
        start_over(sim, tmp)
        t_wall, t_mono = time.time(), time.monotonic()
        r = run_certbind(tools, tmp, cfg)
        time.sleep(0.2)  # the reader thread's last lines
        start = pass_start_wall(r)
        if start and r["rc"] == 0:
            res["timeline"] = rollout_timeline(
                list(sim.lines), t_mono + (start - t_wall))
            res["timeline_pass_s"] = \
                (r["pass_done"].get("duration_ms") or 0) / 1000.0
        res["unbound_transitions"] = sim.stats().get("unbound_transitions")
        stages = competitor_stages(w, batch)
        competitors(tools, tmp, sim, w, stages, res)
        if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
            sim.stop()
            sim = Sim(tools, tmp, w, log_requests=True, cpu=0)
            cfg = write_config(w, sim)
            res["pinned"] = rollout_series(tools, tmp, sim, w, cfg,
                                           args.rollout_runs, cpu=1)
        return res
    finally:
        sim.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def rollout_series(tools, tmp, sim, w, cfg, n, cpu=None):
    """n passes of scenario 2 from the same state (certbind pinned to cpu
    when given): each pass's time (pass.done), process wall and certbind's
    own CPU (user+sys, getrusage of the process via GNU time), and the
    load average before and after."""
    out = {"load": [loadavg()], "runs": []}
    wrapper = ["taskset", "-c", str(cpu)] if cpu is not None else []
    for _ in range(n):
        start_over(sim, tmp)
        r = run_certbind(tools, tmp, cfg, wrapper=wrapper)
        ok = check_converged(sim, w) == 0 and r["rc"] == 0
        out["runs"].append({"pass_s": (r["pass_done"].get("duration_ms") or 0)
                            / 1000.0, "wall_s": r["wall_s"],
                            "cpu_s": r["cpu_s"], "user_s": r["user_s"],
                            "sys_s": r["sys_s"], "rss_kib": r["rss_kib"],
                            "ok": ok})
    out["load"].append(loadavg())
    return out


def windows(times, width=1.0):
    """Max number of events in any [t, t + width) window, t an event."""
    times = sorted(times)
    best, j = 0, 0
    for i in range(len(times)):
        while times[i] - times[j] >= width:
            j += 1
        best = max(best, i - j + 1)
    return best


def rate_stats(lines, limit):
    ts = [t for t, line in lines if line.startswith("apig-sim: ")]
    if len(ts) < 2:
        return {"requests": len(ts)}
    span = ts[-1] - ts[0]
    per_second = {}
    for t in ts:
        k = int(t - ts[0])
        per_second[k] = per_second.get(k, 0) + 1
    full = [v for k, v in per_second.items() if k < int(span)]
    return {"requests": len(ts), "span_s": span,
            "max_sliding_1s": windows(ts),
            "max_aligned_1s": max(per_second.values()),
            "mean_rate": (len(ts) - 1) / span if span > 0 else 0,
            "mean_full_windows": sum(full) / len(full) if full else 0,
            "throttled": sum(1 for _, line in lines if " -> 429 " in line)}


def scenario_ratelimit(tools, work, args, ncerts=200, ndomains=5, rps=50,
                       burst=10):
    tmp = tempfile.mkdtemp(prefix="s3-", dir=work)
    limits = {"requests_per_second": rps, "burst": burst,
              "max_in_flight": IN_FLIGHT}
    w = fanout_world(tmp, ncerts, ndomains, 1, limits, confirm_policy(args))
    # The server enforces the same rate (burst 2x): a 429 means certbind
    # sent faster than a server with its own limit accepts.
    w.faults = {"latency": {"kind": "fixed", "ms": LATENCY_MS},
                "throttle": {"rps": rps, "burst": 2 * burst}}
    sim = Sim(tools, tmp, w, latency_ms=0, log_requests=True)
    try:
        cfg = write_config(w, sim)
        res = {"bindings": ncerts * ndomains, "certificates": ncerts,
               "limit_rps": rps, "burst": burst,
               "server_throttle": {"rps": rps, "burst": 2 * burst}}
        res["certbind"] = certbind_result(tools, tmp, sim, w, cfg)
        res["certbind"]["rate"] = rate_stats(list(sim.lines), rps)
        # curl's own limiter: --rate with --parallel (observed to flood:
        # it does not pace parallel transfers), and --rate one at a time
        for key, par in (("curl", IN_FLIGHT), ("curl_serial", 0)):
            if not tools.curl:
                break
            stages = competitor_stages(w, 50)
            sim.reset()
            r = run_curl(tools, tmp, sim, w, stages, parallel=par,
                         rate="%d/s" % rps)
            st = sim.stats()
            r["sim"] = api_counts(st)
            r["requests"] = api_total(st)
            r["missing"] = check_converged(sim, w)
            r["rate"] = rate_stats(list(sim.lines), rps)
            res[key] = r
        return res
    finally:
        sim.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def scenario_scaling(tools, work, args, sizes):
    out = []
    for n in sizes:
        tmp = tempfile.mkdtemp(prefix="s4-", dir=work)
        ncerts = max(1, n // 10)
        w = fanout_world(tmp, ncerts, 10, 1, UNLIMITED, confirm_policy(args))
        sim = Sim(tools, tmp, w)
        try:
            cfg = write_config(w, sim)
            res = {"bindings": ncerts * 10, "certificates": ncerts,
                   "requests_needed": 4 * ncerts,  # + the Show
                   "ideal_s": 4 * ncerts * LATENCY_MS / 1000.0 / IN_FLIGHT,
                   "config_bytes": os.path.getsize(cfg)}
            res["certbind"] = certbind_result(tools, tmp, sim, w, cfg)
            if not args.no_scaling_competitors:
                competitors(tools, tmp, sim, w, competitor_stages(w, 50), res)
            out.append(res)
        finally:
            sim.stop()
            if not args.keep:
                shutil.rmtree(tmp, ignore_errors=True)
    return out


def callgrind_run(tools, tmp, sim, w, cfg, who, stages=None):
    """Instructions (Ir) of one run under callgrind; the out file kept."""
    cg = os.path.join(tmp, "callgrind.%s.%d" % (who, len(w.wanted)))
    wrapper = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + cg]
    sim.reset()
    if who == "certbind":
        r = run_certbind(tools, tmp, cfg, wrapper=wrapper)
        ok = r["rc"] == 0
    else:
        acct = next(iter(w.accounts.values()))
        ok = True
        for n, stage in enumerate(stages):
            tsv = os.path.join(tmp, "cg-%d.tsv" % n)
            with open(tsv, "w") as f:
                for m, path, q, body in stage:
                    qs = "?" + "&".join("%s=%s" % kv for kv in q.items()) if q else ""
                    f.write("%s\t%s%s\t%s\n" % (m, path, qs, json.dumps(
                        body, separators=(",", ":")) if body else ""))
            cfgc = os.path.join(tmp, "cg-%d.cfg" % n)
            with open(tsv) as i, open(cfgc, "w") as o:
                subprocess.run([tools.sign, sim.url, acct["project_id"],
                                os.path.join(tmp, "secrets", "bench-ak"),
                                os.path.join(tmp, "secrets", "bench-sk"),
                                sim.ca], stdin=i, stdout=o, check=True)
            r = measure([*wrapper[:-1], wrapper[-1] + ".%d" % n, tools.curl,
                         "--silent", "--parallel", "--parallel-max", "32",
                         "-K", cfgc], os.path.join(tmp, "cg.out"),
                        os.path.join(tmp, "cg.err"))
            ok = ok and r["rc"] == 0
    st = sim.stats()
    ir = 0
    for fn in os.listdir(tmp):
        if fn.startswith(os.path.basename(cg)):
            with open(os.path.join(tmp, fn)) as f:
                for line in f:
                    if line.startswith("summary:") or line.startswith("totals:"):
                        ir += int(line.split()[1])
                        break
    return {"ir": ir, "requests": api_total(st), "ok": ok,
            "missing": check_converged(sim, w), "file": cg}


def annotate(cg_file):
    """{(function, object): self Ir} and the total, from callgrind_annotate."""
    try:
        out = subprocess.run(["callgrind_annotate", "--threshold=100",
                              cg_file], capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}, 0
    total, funcs = 0, {}
    for line in out.splitlines():
        s = line.strip()
        if s.endswith("PROGRAM TOTALS"):
            total = int(s.split()[0].replace(",", ""))
            continue
        parts = s.split(None, 1)
        if len(parts) != 2 or not parts[0].replace(",", "").isdigit() \
                or "[" not in parts[1]:
            continue
        rest = parts[1]
        if rest.startswith("("):  # "( 4.95%)  file:function [object]"
            rest = rest.split(")", 1)[1].strip()
        fn = rest.rsplit(" [", 1)[0]
        obj = os.path.basename(rest.rsplit("[", 1)[1].rstrip("]"))
        fn = fn.rsplit("/", 1)[-1]
        funcs[(fn, obj)] = funcs.get((fn, obj), 0) + \
            int(parts[0].replace(",", ""))
    return funcs, total


def profile(small_file, large_file, d_requests, top=15):
    """Where the steady-state instructions go: per function and object, the
    large run minus the small run (start-up and handshakes cancel)."""
    a, ta = annotate(small_file)
    b, tb = annotate(large_file)
    if not b or d_requests <= 0:
        return {}
    diff = {k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b)}
    total = tb - ta
    by_obj = {}
    for (fn, obj), n in diff.items():
        by_obj[obj] = by_obj.get(obj, 0) + n
    funcs = sorted(((n, fn, obj) for (fn, obj), n in diff.items()),
                   reverse=True)
    return {"total": total, "per_request": total / d_requests,
            "by_object": sorted(by_obj.items(), key=lambda kv: -kv[1]),
            "top": funcs[:top]}


def scenario_callgrind(tools, work, args, small=200, large=600):
    """Differencing two run lengths cancels start-up (config, TLS
    handshakes: both runs open the same connections) and leaves the
    steady-state instructions per request. No latency, 32 in flight."""
    res = {"small": small, "large": large, "in_flight": 32}
    lim = {"requests_per_second": 10000, "burst": 10000, "max_in_flight": 32}
    for who in ("certbind", "curl"):
        if who == "curl" and not tools.curl:
            continue
        runs = []
        for n in (small, large):
            tmp = tempfile.mkdtemp(prefix="cg-", dir=work)
            w = fanout_world(tmp, n, 1, 1, lim, confirm_policy(args))
            sim = Sim(tools, tmp, w, latency_ms=5)
            try:
                cfg = write_config(w, sim)
                runs.append(callgrind_run(tools, tmp, sim, w, cfg, who,
                                          competitor_stages(w, 50)))
                if who == "certbind":  # keep the file for the profile
                    keep = os.path.join(work, "cg-%s-%d.out" % (who, n))
                    shutil.copy(runs[-1]["file"], keep)
                    runs[-1]["file"] = keep
            finally:
                sim.stop()
                if not args.keep:
                    shutil.rmtree(tmp, ignore_errors=True)
        if who == "certbind":
            res["profile"] = profile(runs[0]["file"], runs[1]["file"],
                                     runs[1]["requests"] - runs[0]["requests"])
        d_ir = runs[1]["ir"] - runs[0]["ir"]
        d_rq = runs[1]["requests"] - runs[0]["requests"]
        res[who] = {"runs": [{k: v for k, v in r.items() if k != "file"}
                             for r in runs],
                    "ir_per_request": d_ir / d_rq if d_rq else None,
                    "ir_per_request_total": runs[1]["ir"] / runs[1]["requests"]
                    if runs[1]["requests"] else None}
    return res


# ---- report -----------------------------------------------------------------

def fmt_kib(k):
    return "%.1f MB" % (k / 1024.0)


def ratio(a, b):
    return "%.2f×" % (a / b) if b else "—"


def tool_row(name, r, requests):
    rq = r.get("requests") or requests or 1
    ok = r.get("missing", 0) == 0 and r.get("rc", 0) == 0
    return "| %s | %.2f s | %.2f s | %.0f µs | %s | %s | %s |" % (
        name, r["wall_s"], r["cpu_s"], 1e6 * r["cpu_s"] / rq,
        fmt_kib(r["rss_kib"]), r.get("connects", "—"),
        "yes" if ok else "NO (rc %s, %s missing)" % (r.get("rc"), r.get("missing")))


def compare_table(res, requests):
    lines = ["| tool | wall | CPU (user+sys) | CPU/request | peak RSS | TLS connections | all bindings in place |",
             "|---|---|---|---|---|---|---|"]
    lines.append(tool_row("certbind apply", res["certbind"], requests))
    for k, label in (("curl", "curl --parallel-max 256"),
                     ("node", "Node SDK pool 256")):
        if k in res:
            lines.append(tool_row(label, res[k], requests))
    c = res["certbind"]
    for k, label in (("curl", "curl"), ("node", "Node SDK")):
        if k in res:
            o = res[k]
            lines.append("")
            lines.append("certbind / %s: wall %s, CPU %s, peak RSS %s." % (
                label, ratio(c["wall_s"], o["wall_s"]),
                ratio(c["cpu_s"], o["cpu_s"]),
                ratio(c["rss_kib"], o["rss_kib"])))
    return lines


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else 0.0


def rollout_pinned_lines(s2):
    """Scenario 2 unpinned and pinned (apig-sim on CPU 0, certbind on CPU
    1): pass time against the bound, certbind's own CPU per pass."""
    c = s2["certbind"]
    bound = s2["lower_bound_s"]
    rows = []
    if c.get("cpu_runs_s"):
        runs = [x / 1000.0 for x in c["pass_runs_ms"]]
        rows.append(("unpinned (both on both CPUs)", runs, c["cpu_runs_s"],
                     s2.get("load", ["?", "?"])))
    p = s2.get("pinned")
    if p:
        ok = [r for r in p["runs"] if r["ok"]]
        rows.append(("pinned (apig-sim `taskset -c 0`, certbind `taskset -c 1`)",
                     [r["pass_s"] for r in ok], [r["cpu_s"] for r in ok],
                     p["load"]))
    if not rows:
        return []
    L = ["Scenario 2 with and without pinning (median of the passes; certbind's CPU is "
         "the process's user+sys, start-up and status/ledger files included; load "
         "average before / after each series):", "",
         "| run | passes | pass median (min–max) | × bound (%.2f s) | certbind CPU per pass, median | load before / after |" % bound,
         "|---|---|---|---|---|---|"]
    for name, runs, cpus, load in rows:
        if not runs:
            L.append("| %s | 0 | — | — | — | %s / %s |" % (name, load[0], load[-1]))
            continue
        L.append("| %s | %d | %.3f s (%.3f–%.3f) | %.2f× | %.3f s | %s / %s |" % (
            name, len(runs), median(runs), min(runs), max(runs),
            median(runs) / bound, median(cpus), load[0], load[-1]))
    return L


def goal_line(name, value, goal, fmt, lower_is_better=True):
    ratio_v = value / goal if goal else 0
    met = value <= goal if lower_is_better else value >= goal
    return "| %s | %s | %s | %.2f× | %s |" % (
        name, fmt % value, fmt % goal, ratio_v, "met" if met else "**missed**")


def goals_issue18(results):
    """Issue 18's memory, CPU and scenario 2 goals, each met or missed with
    the measured ratio (measured ÷ goal)."""
    L = []
    s1 = results.get("throughput")
    if s1:
        L.append(goal_line("peak RSS at %d in flight (scenario 1, %d bindings)"
                           % (s1["in_flight"], s1["bindings"]),
                           s1["certbind"]["rss_kib"] / 1024.0, 40.0, "%.1f MB"))
    for r in results.get("scaling") or []:
        if r["bindings"] == 100000:
            L.append(goal_line("peak RSS at 100,000 bindings (scenario 4)",
                               r["certbind"]["rss_kib"] / 1024.0, 64.0, "%.1f MB"))
    cg = results.get("callgrind")
    if cg and cg.get("certbind", {}).get("ir_per_request"):
        L.append(goal_line("instructions per request (callgrind, steady state)",
                           cg["certbind"]["ir_per_request"] / 1000.0, 250.0,
                           "%.0f k"))
    s2 = results.get("rollout")
    if s2 and s2.get("pinned"):
        ok = [r["pass_s"] for r in s2["pinned"]["runs"] if r["ok"]]
        if ok:
            L.append(goal_line("scenario 2 pinned: pass median within 1.2× the bound",
                               median(ok), 1.2 * s2["lower_bound_s"], "%.3f s"))
    if not L:
        return []
    return ["### Goals of issue 18 (ratio: measured ÷ goal)", "",
            "| goal | measured | goal | ratio | |", "|---|---|---|---|---|"] + L + [""]


def report(results, meta):
    L = ["Generated by `bench/run.sh` on %s: %s." % (meta["date"], meta["machine"]),
         "Load average before / after: %s / %s." % (meta["load_before"], meta.get("load_after", "?")),
         ""]
    if meta.get("merged_from"):
        L[1:1] = ["Scenarios not in `--only` of that run are from the run of %s." % meta["merged_from"]]
    s1 = results.get("throughput")
    if s1:
        c = s1["certbind"]
        pass_s = (c["pass_done"].get("duration_ms") or 0) / 1000.0
        L += ["### Scenario 1: throughput (%d bindings on %d certificates, %d ms latency, %d in flight)"
              % (s1["bindings"], s1["certificates"], s1["latency_ms"], s1["in_flight"]), "",
              "Requests the pass needs: %d (read + write + confirmation per certificate); "
              "ideal %.2f s = %d × %d ms ÷ %d." % (s1["requests_needed"], s1["ideal_s"],
                                                 s1["requests_needed"], s1["latency_ms"], s1["in_flight"]),
              "",
              "| metric | certbind |", "|---|---|",
              "| wall time (process) | %.2f s |" % c["wall_s"],
              "| bindings/s | %.0f |" % (s1["bindings"] / c["wall_s"]),
              "| ratio to ideal (ideal ÷ wall) | %.1f %% |" % (100 * s1["ideal_s"] / c["wall_s"]),
              "| requests sent (sim count) | %d (%s) |" % (c["requests"], ", ".join("%s: %d" % kv for kv in sorted(c["sim"].items()))),
              "| client CPU per request | %.0f µs |" % (1e6 * c["cpu_s"] / max(1, c["requests"])),
              "| peak RSS | %s |" % fmt_kib(c["rss_kib"]),
              "| TLS handshakes / request | %s |" % (
                  "%.4f (%s connections)" % (c["connects"] / c["requests"], c["connects"])
                  if c.get("connects") is not None else "n/a"),
              "| TLS sessions resumed (apig-sim's count) | %s |" % tls_resumed_text(c),
              "| peak concurrent requests at the server | %s |" % c.get("peak_concurrent"),
              "| bindings in place / exit code | %s / %d |" % (
                  "all" if c["missing"] == 0 else "%d missing" % c["missing"], c["rc"]),
              ""]
        if pass_s:
            L.insert(len(L) - 1, "| pass time (pass.done) | %.2f s |" % pass_s)
        L += compare_table(s1, s1["requests_needed"]) + [""]
    s1d = results.get("throughput_default_delay")
    if s1d:
        c = s1d["certbind"]
        L += ["Same run with the default `confirm_delay_ms` (1000 ms): wall %.2f s, "
              "%.1f %% of ideal." % (c["wall_s"], 100 * s1d["ideal_s"] / c["wall_s"]), ""]
    s2 = results.get("rollout")
    if s2:
        c = s2["certbind"]
        runs2 = [x / 1000.0 for x in c.get("pass_runs_ms") or
                 [c["pass_done"].get("duration_ms") or 0]]
        med2 = runs2[len(runs2) // 2]
        L += ["### Scenario 2: fleet rollout (%d certificates × %d domains × %d gateways = %d bindings, batch %d)"
              % (s2["certificates"], s2["domains"], s2["gateways"], s2["bindings"], s2["batch_size"]), "",
              "Lower bound: per certificate %d requests one after another (1 read + %d writes + "
              "1 confirmation round of %d pages read at once) × %d ms = **%.2f s**; with the account's "
              "first request alone %.2f s. (Earlier versions of this file used %.2f s, which "
              "counted the %d confirmation pages one after another; certbind reads them at once.)"
              % (s2["critical_requests"], s2["writes_per_certificate"], s2["confirm_pages"],
                 s2["latency_ms"], s2["lower_bound_s"], s2["lower_bound_spec_s"],
                 s2["sequential_pages_bound_s"], s2["confirm_pages"]), "",
              "| metric | certbind |", "|---|---|",
              "| wall time (process) | %.2f s (%.2f× the lower bound) |" % (c["wall_s"], c["wall_s"] / s2["lower_bound_s"]),
              "| pass time (pass.done), median of %d passes | %.2f s (%.2f× the lower bound, %.2f× with the lone first request; min %.2f s, max %.2f s) |" % (
                  len(runs2), med2, med2 / s2["lower_bound_s"], med2 / s2["lower_bound_spec_s"],
                  runs2[0], runs2[-1]),
              "| requests | %d (%s) |" % (c["requests"], ", ".join("%s: %d" % kv for kv in sorted(c["sim"].items()))),
              "| TLS sessions resumed (apig-sim's count) | %s |" % tls_resumed_text(c),
              "| peak concurrent writes per certificate | %s |" % c.get("peak_writes_per_cert"),
              "| (gateway, domain) left without a certificate | %s |" % s2.get("unbound_transitions"),
              "| bindings in place / exit code | %s / %d |" % (
                  "all" if c["missing"] == 0 else "%d missing" % c["missing"], c["rc"]),
              ""]
        L += compare_table(s2, None) + [""]
        L += rollout_pinned_lines(s2) + [""]
        tl = s2.get("timeline")
        if tl:
            L += ["One more pass (%.2f s), as apig-sim saw it: every certificate's steps, in seconds "
                  "from the pass's start (ideal: the lone first request ends at 0.05, the reads at 0.10, "
                  "write k at 0.10 + 0.05 k, the confirmation at 0.35)." % s2["timeline_pass_s"], "",
                  "| step | requests | first / last reached apig-sim | first / last answered |",
                  "|---|---|---|---|"]
            for t in tl:
                L.append("| %s | %d | %.3f / %.3f | %.3f / %.3f |" % (
                    t["step"], t["requests"], t["first_start"], t["last_start"],
                    t["first_end"], t["last_end"]))
            L.append("")
    s3 = results.get("ratelimit")
    if s3:
        L += ["### Scenario 3: rate-limited (limit %d req/s, burst %d; server throttles at %d req/s, burst %d)"
              % (s3["limit_rps"], s3["burst"], s3["server_throttle"]["rps"], s3["server_throttle"]["burst"]), "",
              "| tool | wall | requests | span | max in any 1 s window | max in aligned 1 s windows | mean rate | mean of full aligned windows | 429s | all in place |",
              "|---|---|---|---|---|---|---|---|---|---|"]
        for k, label in (("certbind", "certbind"),
                         ("curl", "curl --rate %d/s --parallel-max 256" % s3["limit_rps"]),
                         ("curl_serial", "curl --rate %d/s (one at a time)" % s3["limit_rps"])):
            if k in s3:
                r = s3[k]["rate"]
                L.append("| %s | %.1f s | %d | %.1f s | %d | %d | %.1f/s | %.1f/s | %d | %s |" % (
                    label, s3[k]["wall_s"], r["requests"], r.get("span_s", 0), r.get("max_sliding_1s", 0),
                    r.get("max_aligned_1s", 0), r.get("mean_rate", 0),
                    r.get("mean_full_windows", 0), r.get("throttled", 0),
                    "yes" if s3[k]["missing"] == 0 else "%d missing" % s3[k]["missing"]))
        L += ["", "Goal: no 1 s window above limit + burst = %d." % (s3["limit_rps"] + s3["burst"]), ""]
    s4 = results.get("scaling")
    if s4:
        L += ["### Scenario 4: scaling (10 domains per certificate, 1 gateway, %d ms, %d in flight)" % (LATENCY_MS, IN_FLIGHT), "",
              "| bindings | certificates | config | requests | ideal | wall | CPU | CPU/binding | peak RSS | RSS over the 1k run, per binding | curl wall / CPU / RSS | Node wall / CPU / RSS |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        base = s4[0]["certbind"]["rss_kib"]
        for r in s4:
            c = r["certbind"]
            extra = (c["rss_kib"] - base) * 1024.0 / r["bindings"] if r is not s4[0] else 0
            comp = []
            for k in ("curl", "node"):
                o = r.get(k)
                comp.append("%.2f s / %.2f s / %s" % (o["wall_s"], o["cpu_s"], fmt_kib(o["rss_kib"])) if o else "—")
            L.append("| %d | %d | %.1f MB | %d | %.2f s | %.2f s | %.2f s | %.1f µs | %s | %s | %s | %s |" % (
                r["bindings"], r["certificates"], r["config_bytes"] / 1e6, c["requests"],
                r["ideal_s"], c["wall_s"], c["cpu_s"], 1e6 * c["cpu_s"] / r["bindings"],
                fmt_kib(c["rss_kib"]), "%.0f B" % extra if r is not s4[0] else "—",
                comp[0], comp[1]))
        L.append("")
    cg = results.get("callgrind")
    if cg:
        L += ["### Instructions per request (callgrind; %d vs %d certificates, 32 in flight, difference of the two runs)"
              % (cg["small"], cg["large"]), "",
              "| tool | Ir small run | Ir large run | requests (small / large) | Ir per request (steady state) | Ir per request (whole large run) |",
              "|---|---|---|---|---|---|"]
        for who in ("certbind", "curl"):
            if who in cg:
                x = cg[who]
                L.append("| %s | %s | %s | %d / %d | %s | %s |" % (
                    who, "{:,}".format(x["runs"][0]["ir"]), "{:,}".format(x["runs"][1]["ir"]),
                    x["runs"][0]["requests"], x["runs"][1]["requests"],
                    "{:,.0f}".format(x["ir_per_request"]) if x["ir_per_request"] else "—",
                    "{:,.0f}".format(x["ir_per_request_total"]) if x["ir_per_request_total"] else "—"))
        pr = cg.get("profile")
        if pr and pr.get("total"):
            L += ["", "Where certbind's steady-state instructions go (large run minus small run, "
                  "self cost; %s Ir per request):" % "{:,.0f}".format(pr["per_request"]), "",
                  "| object | share | Ir per request |", "|---|---|---|"]
            for obj, n in pr["by_object"][:10]:
                L.append("| %s | %.1f %% | %s |" % (obj, 100.0 * n / pr["total"],
                                                   "{:,.0f}".format(n / (pr["total"] / pr["per_request"]))))
            L += ["", "Top functions (self, steady state):", "", "| function | object | share |", "|---|---|---|"]
            for n, fn, obj in pr["top"][:15]:
                L.append("| `%s` | %s | %.1f %% |" % (fn, obj, 100.0 * n / pr["total"]))
        L.append("")
    L += goals_issue18(results)
    return "\n".join(L) + "\n"


def report_quota(results):
    """Scenario 5's tables (bench/quota.py), after the others."""
    q = results.get("quota")
    return "\n".join(quota.report(q)) + "\n\n" if q else ""


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "work"))
    ap.add_argument("--only", default="throughput,rollout,ratelimit,scaling,callgrind,quota")
    ap.add_argument("--quick", action="store_true", help="small sizes")
    ap.add_argument("--n", type=int, default=10000, help="scenario 1 size")
    ap.add_argument("--sizes", default="1000,10000,30000,100000")
    ap.add_argument("--confirm-delay-ms", type=int, default=None,
                    help="policy.confirm_delay_ms for every run (the sim "
                         "shows writes at once)")
    ap.add_argument("--default-delay-run", action="store_true",
                    help="scenario 1 again with the default confirm delay")
    ap.add_argument("--no-node", action="store_true")
    ap.add_argument("--no-curl", action="store_true")
    ap.add_argument("--no-scaling-competitors", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep work dirs")
    ap.add_argument("--quota-sizes", default="3,20,200",
                    help="scenario 5: certificates per case")
    ap.add_argument("--rollout-runs", type=int, default=9,
                    help="scenario 2 passes for the median (unpinned, and "
                         "again pinned)")
    ap.add_argument("--merge", action="store_true",
                    help="keep the results of scenarios not run from "
                         "OUT/results.json (e.g. --only rollout --merge: "
                         "scenario 2 again, on a quiet machine)")
    args = ap.parse_args()
    tools = Tools(args.build, node=not args.no_node, curl=not args.no_curl)
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="run-", dir=args.out)
    only = set(args.only.split(","))
    sizes = [int(s) for s in args.sizes.split(",")]
    n = args.n
    if args.quick:
        n, sizes = 500, [1000, 5000]
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": "%d CPUs, %s" % (os.cpu_count(), os.uname().release),
            "load_before": loadavg(),
            "confirm_delay_ms": args.confirm_delay_ms,
            "tools": {"curl": tools.curl and subprocess.run(
                [tools.curl, "--version"], capture_output=True, text=True).stdout.splitlines()[0],
                "node": tools.node and subprocess.run(
                    [tools.node, "--version"], capture_output=True, text=True).stdout.strip()}}
    results = {}
    prev_json = os.path.join(args.out, "results.json")
    if args.merge and os.path.exists(prev_json):
        with open(prev_json) as f:
            prev = json.load(f)
        results = prev.get("results", {})
        meta["merged_from"] = prev.get("meta", {}).get("merged_from") or \
            prev.get("meta", {}).get("date")
    steps = [
        ("throughput", lambda: scenario_throughput(tools, work, n, args)),
        ("throughput_default_delay", lambda: scenario_throughput(
            tools, work, n, argparse.Namespace(**dict(vars(args), confirm_delay_ms=None)),
            competitors_too=False)),
        ("rollout", lambda: scenario_rollout(tools, work, args)),
        ("ratelimit", lambda: scenario_ratelimit(
            tools, work, args, ncerts=50 if args.quick else 200)),
        ("scaling", lambda: scenario_scaling(tools, work, args, sizes)),
        ("callgrind", lambda: scenario_callgrind(
            tools, work, args, *((50, 150) if args.quick else (200, 600)))),
        ("quota", lambda: quota.scenario_quota(
            {"certbind": tools.certbind, "sim": tools.sim,
             "make_certs": tools.make_certs}, work,
            [3, 20] if args.quick else
            [int(x) for x in args.quota_sizes.split(",")], log=sys.stderr)),
    ]
    for name, fn in steps:
        key = "throughput" if name == "throughput_default_delay" else name
        if key not in only:
            continue
        if name == "throughput_default_delay" and (
                not args.default_delay_run or args.confirm_delay_ms is None):
            continue
        print("bench: %s ..." % name, file=sys.stderr, flush=True)
        t0 = time.time()
        results[name] = fn()
        print("bench: %s done in %.0f s" % (name, time.time() - t0),
              file=sys.stderr, flush=True)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1,
                      default=str)
    meta["load_after"] = loadavg()
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1, default=str)
    md = report(results, meta) + report_quota(results)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(md)
    sys.stdout.write(md)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
