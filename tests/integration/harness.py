# SPDX-License-Identifier: MIT
"""Integration test harness: a simulated APIG world, apig-sim over real
HTTPS, and the real certbind binary.

A World describes accounts, gateways (with the domains registered on them),
certificates, bindings already in place, and the bindings the file wants.
It writes both apig-sim's seed (JSON) and certbind's desired-state file
(YAML), with secret files mode 0600, so the two always agree.

Paths come from the environment that CMake sets for every test:
CERTBIND, APIG_SIM, MAKE_CERTS. Each test gets its own temporary directory.
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.request

CERTBIND = os.environ.get("CERTBIND", "certbind")
APIG_SIM = os.environ.get("APIG_SIM", "apig-sim")
MAKE_CERTS = os.environ.get("MAKE_CERTS", "make-certs.sh")

# Distinctive secrets: the suite-wide scan looks for these in every output.
SECRET_MARKERS = []


def hex32(*parts):
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def uuid_of(*parts):
    h = hex32(*parts)
    return "-".join([h[:8], h[8:12], h[12:16], h[16:20], h[20:32]])


def yaml_str(s):
    return json.dumps(s)  # JSON strings are valid YAML flow scalars


class World:
    def __init__(self, tmp, region="cn-north-4"):
        self.tmp = tmp
        self.region = region
        self.accounts = {}  # name -> dict
        self.gateways = {}  # name -> dict
        self.certs = {}  # name -> dict
        self.cert_files = {}  # name -> dict: certificates given as files
        self.bound = []  # seed bindings
        self.wanted = []  # yaml binding entries
        self.policy = {"mode": "upsert", "confirm_timeout_s": 20}
        self.retry = {"max_attempts": 6, "base_delay_ms": 20, "max_delay_ms": 500}
        self.rollout = None
        self.daemon = {}
        self.settings = {"visibility_delay_ms": 0}
        self.faults = None
        self.endpoint = None  # set by Sim.start

    def account(self, name, auth="aksk", limits=None, project_id=None):
        pid = project_id or hex32("project", name)
        tag = hex32("secret", name, self.tmp)[:12]
        acct = {
            "name": name,
            "project_id": pid,
            "auth": auth,
            "ak": "AK" + tag.upper(),
            "sk": "SK-" + tag + "-s3cr3t",
            "user": "deployer",
            "domain": "acme-" + name,
            "password": "PW-" + tag + "-hunter2",
            "limits": limits or {"requests_per_second": 1000, "burst": 1000,
                                 "max_in_flight": 64},
        }
        SECRET_MARKERS.extend([acct["sk"], acct["password"]])
        record_secrets([acct["sk"], acct["password"]])
        self.accounts[name] = acct
        return acct

    def gateway(self, name, account, domains, dashed=True):
        iid = uuid_of("gw", name) if dashed else hex32("gw", name)
        self.gateways[name] = {"name": name, "account": account,
                               "instance_id": iid, "domains": list(domains)}
        return iid

    def certificate(self, name, account, san):
        cid = hex32("cert", name)
        self.certs[name] = {"name": name, "account": account, "id": cid,
                            "san": list(san)}
        return cid

    def certificate_files(self, name, account, cert_file, key_file, **opts):
        """A certificate given as files (cert_file + key), managed by
        certbind; opts: type, gateway, update. The key's PEM body is a
        secret for the suite-wide scan."""
        self.cert_files[name] = dict(opts, name=name, account=account,
                                     cert_file=cert_file, key_file=key_file)
        record_key_secret(key_file)

    def bind(self, cert, gateway, domain, verify=False):
        """A binding already in place in the simulated cloud."""
        self.bound.append({"certificate": self.certs[cert]["id"],
                           "instance_id": self.gateways[gateway]["instance_id"],
                           "domain": domain,
                           "verified_client_certificate_enabled": verify})

    def want(self, cert, gateways, domains, verify=None):
        entry = {"certificate": cert, "gateways": list(gateways),
                 "domains": list(domains)}
        if verify is not None:
            entry["verify_client"] = verify
        self.wanted.append(entry)

    # -- output ------------------------------------------------------------

    def seed(self):
        projects = []
        for a in self.accounts.values():
            projects.append({
                "id": a["project_id"], "region": self.region,
                "credentials": [{"ak": a["ak"], "sk": a["sk"]}],
                "users": [{"domain": a["domain"], "name": a["user"],
                           "password": a["password"]}],
            })
        gws = [{"instance_id": g["instance_id"],
                "project": self.accounts[g["account"]]["project_id"],
                "domains": g["domains"]} for g in self.gateways.values()]
        certs = [{"id": c["id"],
                  "project": self.accounts[c["account"]]["project_id"],
                  "name": c["name"], "san": c["san"]}
                 for c in self.certs.values()]
        seed = {"projects": projects, "gateways": gws, "certificates": certs,
                "bindings": self.bound, "settings": self.settings}
        if self.faults:
            seed["faults"] = self.faults
        return seed

    def secret_file(self, name, value):
        path = os.path.join(self.tmp, "secrets", name)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, (value + "\n").encode())
        os.close(fd)
        return path

    def yaml(self, ca_file):
        out = ["version: 1", "accounts:"]
        for a in self.accounts.values():
            n = a["name"]
            out += ["  %s:" % n, "    region: %s" % self.region,
                    "    project_id: %s" % a["project_id"],
                    "    endpoint: %s" % self.endpoint,
                    "    auth:", "      method: %s" % a["auth"]]
            if a["auth"] == "aksk":
                out += ["      access_key: { file: %s }" % self.secret_file(n + "-ak", a["ak"]),
                        "      secret_key: { file: %s }" % self.secret_file(n + "-sk", a["sk"])]
            elif a["auth"] == "password":
                out += ["      iam_endpoint: %s" % self.endpoint,
                        "      user: %s" % a["user"],
                        "      domain: %s" % a["domain"],
                        "      password: { file: %s }" % self.secret_file(n + "-pw", a["password"])]
            elif a["auth"] == "token":
                out += ["      token: { file: %s }" % self.secret_file(n + "-tok", a.get("token", "none"))]
            out += ["    tls: { ca_file: %s }" % ca_file]
            lim = a["limits"]
            out += ["    limits: { %s }" % ", ".join("%s: %s" % kv for kv in lim.items())]
        out.append("gateways:")
        for g in self.gateways.values():
            out.append("  %s: { account: %s, instance_id: %s }" % (g["name"], g["account"], g["instance_id"]))
        out.append("certificates:")
        for c in self.certs.values():
            out.append("  %s: { account: %s, id: %s }" % (c["name"], c["account"], c["id"]))
        for c in self.cert_files.values():
            extra = "".join(", %s: %s" % (k, c[k])
                            for k in ("type", "gateway", "update") if k in c)
            out.append("  %s: { account: %s, cert_file: %s, key: { file: %s }%s }"
                       % (c["name"], c["account"], c["cert_file"], c["key_file"], extra))
        out.append("bindings:" if self.wanted else "bindings: []")
        for w in self.wanted:
            out.append("  - certificate: %s" % w["certificate"])
            out.append("    gateways: [%s]" % ", ".join(w["gateways"]))
            out.append("    domains: [%s]" % ", ".join(yaml_str(d) for d in w["domains"]))
            if "verify_client" in w:
                out.append("    verify_client: %s" % ("true" if w["verify_client"] else "false"))
        out.append("policy:")
        out += ["  %s: %s" % kv for kv in self.policy.items()]
        out.append("retry: { %s }" % ", ".join("%s: %s" % kv for kv in self.retry.items()))
        if self.rollout:
            out.append("rollout:")
            for k, v in self.rollout.items():
                out.append("  %s: %s" % (k, json.dumps(v)))
        daemon = {"state_dir": os.path.join(self.tmp, "state")}
        daemon.update(self.daemon)
        out.append("daemon:")
        out += ["  %s: %s" % kv for kv in daemon.items()]
        return "\n".join(out) + "\n"

    def write_yaml(self, ca_file, name="bindings.yaml"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(self.yaml(ca_file))
        return path

    def binding_set(self):
        """The wanted (certificate_id, instance_id, domain, verify) set."""
        out = set()
        for w in self.wanted:
            for g in w["gateways"]:
                for d in w["domains"]:
                    out.add((self.certs[w["certificate"]]["id"],
                             self.gateways[g]["instance_id"], d.lower(),
                             bool(w.get("verify_client", False))))
        return out


_CERTS_CACHE = {}


def make_certs(tmp):
    d = os.path.join(tmp, "tls")
    subprocess.run(["sh", MAKE_CERTS, d], check=True)
    return d


class SimAdmin:
    """The simulator's admin API (/__sim/...) over HTTPS; the subclass sets
    url and ctx (an ssl context trusting the test CA)."""

    admin_timeout = 10

    def _req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        rq = urllib.request.Request(self.url + path, data=data, method=method,
                                    headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(rq, context=self.ctx,
                                    timeout=self.admin_timeout) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def state(self):
        return self._req("GET", "/__sim/state")

    def state_set(self):
        return {(b["certificate_id"], b["instance_id"], b["domain"],
                 b["verified_client_certificate_enabled"])
                for b in self.state()["bindings"]}

    def stats(self):
        return self._req("GET", "/__sim/stats")

    def faults(self, faults):
        return self._req("POST", "/__sim/faults", faults)

    def settings(self, settings):
        return self._req("POST", "/__sim/settings", settings)

    def revoke_tokens(self, project):
        return self._req("POST", "/__sim/tokens/revoke", {"project": project})

    def reset(self):
        return self._req("POST", "/__sim/reset", {})


class Sim(SimAdmin):
    """apig-sim as a child process over HTTPS on a free loopback port."""

    def __init__(self, tmp, world, extra=()):
        self.tmp = tmp
        self.world = world
        self.tls = make_certs(tmp)
        self.ca = os.path.join(self.tls, "ca.pem")
        seed = os.path.join(tmp, "world.json")
        with open(seed, "w") as f:
            json.dump(world.seed(), f)
        port_file = os.path.join(tmp, "sim.port")
        self.log = open(os.path.join(tmp, "sim.log"), "w")
        self.proc = subprocess.Popen(
            [APIG_SIM, "--listen", "127.0.0.1:0", "--port-file", port_file,
             "--seed-file", seed, "--tls-cert", os.path.join(self.tls, "server.pem"),
             "--tls-key", os.path.join(self.tls, "server.key"), *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("apig-sim did not start: see %s" % self.log.name)
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read().strip())
        self.url = "https://127.0.0.1:%d" % self.port
        world.endpoint = self.url
        self.ctx = ssl.create_default_context(cafile=self.ca)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Result:
    def __init__(self, proc, stdout, stderr):
        self.rc = proc.returncode
        self.stdout = stdout
        self.stderr = stderr

    def events(self):
        """The JSON log lines of stderr, parsed."""
        out = []
        for line in self.stderr.splitlines():
            line = line.strip()
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def __repr__(self):
        return "rc=%d\nstdout:\n%s\nstderr:\n%s" % (self.rc, self.stdout, self.stderr[-4000:])


LOG_DIR = os.environ.get("CERTBIND_TEST_LOGS")


def record_output(name, text):
    """Keep every output for the suite-wide secret scan."""
    if LOG_DIR:
        os.makedirs(LOG_DIR, exist_ok=True)
        path = os.path.join(LOG_DIR, "%s-%d-%f.log" % (name, os.getpid(), time.time()))
        with open(path, "w") as f:
            f.write(text)


def record_secrets(values):
    """Append secrets to LOG_DIR/secrets.txt for the suite-wide scan."""
    if LOG_DIR:
        os.makedirs(LOG_DIR, exist_ok=True)
        with open(os.path.join(LOG_DIR, "secrets.txt"), "a") as f:
            for v in values:
                f.write(v + "\n")


def pem_body_lines(path):
    """The base64 lines of a PEM file (what a leak of it would show)."""
    with open(path) as f:
        return [l.strip() for l in f
                if l.strip() and not l.startswith("-----")]


def record_key_secret(path):
    """A private key's PEM body is a secret: each of its base64 lines
    (64 characters, long enough to never appear by chance) goes to the
    suite-wide scan, so that no output, log or state file holds any."""
    lines = [l for l in pem_body_lines(path) if len(l) >= 40]
    SECRET_MARKERS.extend(lines)
    record_secrets(lines)


def certbind(*args, timeout=120, env=None, input=None):
    e = dict(os.environ)
    e.setdefault("NO_COLOR", "1")
    if env:
        e.update(env)
    proc = subprocess.Popen([CERTBIND, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=e, text=True)
    out, err = proc.communicate(input=input, timeout=timeout)
    record_output("certbind", out + "\n" + err)
    return Result(proc, out, err)


def certbind_signalled(*args, ready, what, sig=signal.SIGTERM, wait=30):
    """Run certbind with args, send it sig once ready() is true (polled;
    certbind must still be running then, and it must happen within
    scaled(wait) s), and wait for its exit. Returns (Result, seconds from
    the signal to the exit)."""
    e = dict(os.environ, NO_COLOR="1")
    proc = subprocess.Popen([CERTBIND, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=e, text=True)
    out = err = ""
    try:
        deadline = time.monotonic() + scaled(wait)
        while not ready():
            if proc.poll() is not None:
                raise AssertionError("certbind ended before " + what)
            if time.monotonic() > deadline:
                raise AssertionError("no %s within %.0f s" % (what, scaled(wait)))
            time.sleep(0.02)
        t0 = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=scaled(120))
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    record_output("certbind", out + "\n" + err)
    return Result(proc, out, err), took


class SimTestCase(unittest.TestCase):
    """A temporary directory per test; the sim is stopped at the end."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="certbind-it-")
        self.sims = []

    def tearDown(self):
        for s in self.sims:
            s.stop()
            try:
                with open(s.log.name) as f:
                    record_output("apig-sim", f.read())
            except OSError:
                pass
        for root, _, files in os.walk(self.tmp):
            for fn in files:
                if fn.endswith((".json", ".prom", ".log")) and "world" not in fn:
                    try:
                        with open(os.path.join(root, fn)) as f:
                            record_output("state-" + fn, f.read())
                    except (OSError, UnicodeDecodeError):
                        pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, world, extra=()):
        sim = Sim(self.tmp, world, extra)
        self.sims.append(sim)
        cfg = world.write_yaml(sim.ca)
        return sim, cfg


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# How much slower than native the code under test may run: 10 when certbind
# runs under valgrind (tests/integration/CMakeLists.txt sets it), 1 else.
# Every upper bound a test puts on wall-clock time is multiplied by it; a
# lower bound (what the code guarantees, e.g. a soak never shorter than
# configured) never is.
TIME_SCALE = float(os.environ.get("CERTBIND_TEST_TIME_SCALE") or 1)


def scaled(seconds):
    """An upper bound on wall-clock time, stretched by TIME_SCALE."""
    return seconds * TIME_SCALE
