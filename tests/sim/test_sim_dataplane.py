# SPDX-License-Identifier: MIT
"""apig-sim's data plane: real TLS handshakes (Python's ssl, i.e. OpenSSL)
against the per-gateway listeners, with SNI, comparing the leaf served with
the certificate files the seed names."""
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
import urllib.error
import urllib.request

APIG_SIM = os.environ["APIG_SIM"]
MAKE_LEAF_CERTS = os.environ["MAKE_LEAF_CERTS"]
GEN_WORLD = os.environ["GEN_WORLD"]
TIME_SCALE = float(os.environ.get("CERTBIND_TEST_TIME_SCALE") or 1)

PROJECT = "0123456789abcdef0123456789abcdef"
GW_A = "f0fa1789-3b76-433b-a787-9892951c620e"
GW_B = "7d39549681c54d968ec2910da9da95cd"
RSA = "a27be832f2e9441c8127fe48e3b5ac67"
EC = "b27be832f2e9441c8127fe48e3b5ac67"
NOKEY = "c27be832f2e9441c8127fe48e3b5ac67"
LONG_DELAY_MS = 3600 * 1000  # no run comes near it


def scaled(seconds):
    return seconds * TIME_SCALE


def pem_leaf_sha(path):
    with open(path) as f:
        text = f.read()
    end = "-----END CERTIFICATE-----"
    first = text[:text.index(end) + len(end)] + "\n"
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()


def x509(der, *args):
    """openssl x509 on a DER certificate: (exit status, output)."""
    p = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", *args],
                       input=der, capture_output=True, check=False)
    return p.returncode, p.stdout.decode()


def handshake(addr, name, timeout=None):
    """A TLS handshake with SNI name (None: no SNI) and no verification:
    (the leaf's DER, bytes received). Raises what the handshake met."""
    host, port = addr.rsplit(":", 1)
    host = host.strip("[]")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname=name)
    sock = socket.create_connection((host, int(port)),
                                    timeout=timeout or scaled(10))
    received = 0
    try:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pending = out.read()
                if pending:
                    sock.sendall(pending)
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionAbortedError("closed during the handshake")
                received += len(chunk)
                inc.write(chunk)
        pending = out.read()  # the client's Finished
        if pending:
            sock.sendall(pending)
        return tls.getpeercert(binary_form=True), received
    finally:
        sock.close()


def served_sha(addr, name):
    der, _ = handshake(addr, name)
    return hashlib.sha256(der).hexdigest()


class Sim:
    """apig-sim over plain HTTP, with its data plane."""

    def __init__(self, tmp, seed, extra=()):
        self.tmp = tmp
        self.seed_path = os.path.join(tmp, "world.json")
        with open(self.seed_path, "w") as f:
            json.dump(seed, f)
        port_file = os.path.join(tmp, "sim.port")
        self.dp_file = os.path.join(tmp, "dp.port")
        for p in (port_file, self.dp_file):
            if os.path.exists(p):
                os.unlink(p)
        self.log_path = os.path.join(tmp, "sim.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [APIG_SIM, "--listen", "127.0.0.1:0", "--port-file", port_file,
             "--seed-file", self.seed_path,
             "--data-plane-port-file", self.dp_file, *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + scaled(10)
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("apig-sim did not start (exit %s): %s"
                                   % (self.proc.returncode, self.text()))
            time.sleep(0.02)
        with open(port_file) as f:
            self.url = "http://127.0.0.1:%d" % int(f.read())
        self.addrs = {}
        with open(self.dp_file) as f:
            for line in f:
                gw, addr = line.split()
                self.addrs.setdefault(gw, []).append(addr)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(scaled(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def req(self, method, path, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        rq = urllib.request.Request(self.url + path, data=data, method=method,
                                    headers=dict(headers or {}))
        rq.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(rq, timeout=scaled(10)) as r:
            raw = r.read()
            return r.status, r.headers, json.loads(raw) if raw else None

    def admin(self, method, path, body=None):
        return self.req(method, path, body)[2]

    def token(self):
        body = {"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"domain": {"name": "acme"}, "name": "deployer",
                     "password": "correct horse"}}},
            "scope": {"project": {"id": PROJECT}}}}
        _, headers, _ = self.req("POST", "/v3/auth/tokens", body)
        return headers["X-Subject-Token"]

    def attach(self, cert, domain, gw):
        path = "/v2/%s/apigw/certificates/%s/domains/attach" % (PROJECT, cert)
        body = {"domains": [{"domain": domain, "instance_ids": [gw]}]}
        status, _, _ = self.req("POST", path, body,
                                {"X-Auth-Token": self.token()})
        return status

    def dataplane(self):
        return self.admin("GET", "/__sim/dataplane")

    def wait_dataplane(self, key, want):
        """The server counts after it answers: wait for the count."""
        deadline = time.monotonic() + scaled(10)
        while self.dataplane()[key] != want:
            if time.monotonic() > deadline:
                raise AssertionError("%s never became %r: %r"
                                     % (key, want, self.dataplane()))
            time.sleep(0.02)


class DataPlaneTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="certbind-dp-certs-")
        subprocess.run(["sh", MAKE_LEAF_CERTS, cls.certs], check=True)
        cls.rsa = pem_leaf_sha(os.path.join(cls.certs, "rsa.chain.pem"))
        cls.ec = pem_leaf_sha(os.path.join(cls.certs, "ec.chain.pem"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, ignore_errors=True)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="certbind-dp-")
        self.sims = []

    def tearDown(self):
        for s in self.sims:
            s.stop()
            # a clean stop, and no sanitizer report (ASan/UBSan builds)
            self.assertEqual(s.proc.returncode, 0, s.text())
            self.assertNotIn("Sanitizer", s.text())
            self.assertNotIn("runtime error", s.text())
            # never any private key in what the simulator prints
            for key in ("rsa.key", "ec.key"):
                with open(os.path.join(self.certs, key)) as f:
                    body = [l for l in f.read().splitlines() if "-----" not in l]
                text = s.text()
                self.assertNotIn("PRIVATE KEY", text)
                for line in body:
                    self.assertNotIn(line, text)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def seed(self):
        c = self.certs
        return {
            "projects": [{"id": PROJECT, "region": "cn-north-4",
                          "users": [{"domain": "acme", "name": "deployer",
                                     "password": "correct horse"}]}],
            "gateways": [
                {"instance_id": GW_A, "project": PROJECT,
                 "ingress": ["127.0.0.1:0", "[::1]:0"],
                 "domains": ["api.example.com", "www.example.com",
                             "shop.example.com", "shop.example.net",
                             "*.example.com"]},
                {"instance_id": GW_B, "project": PROJECT,
                 "domains": ["api.example.com"]}],
            "certificates": [
                {"id": RSA, "project": PROJECT, "name": "cert_rsa",
                 "cert_file": os.path.join(c, "rsa.chain.pem"),
                 "key_file": os.path.join(c, "rsa.key")},
                {"id": EC, "project": PROJECT, "name": "cert_ec",
                 "cert_file": os.path.join(c, "ec.chain.pem"),
                 "key_file": os.path.join(c, "ec.key")},
                {"id": NOKEY, "project": PROJECT, "name": "cert_nokey",
                 "san": ["*.example.com"]}],
            "bindings": [
                {"certificate": RSA, "instance_id": GW_A,
                 "domain": "api.example.com"},
                {"certificate": NOKEY, "instance_id": GW_A,
                 "domain": "www.example.com"},
                {"certificate": EC, "instance_id": GW_A,
                 "domain": "*.example.com"},
                {"certificate": EC, "instance_id": GW_B,
                 "domain": "api.example.com"}],
        }

    def start(self, seed=None, extra=("--data-plane", "127.0.0.1:0")):
        sim = Sim(self.tmp, seed or self.seed(), extra)
        self.sims.append(sim)
        return sim

    def a(self, sim):
        return sim.addrs[GW_A][0]

    def assert_alert(self, addr, name, reason):
        with self.assertRaises(ssl.SSLError) as cm:
            handshake(addr, name)
        self.assertIn(reason, str(cm.exception))

    def test_port_file_names_every_listener(self):
        sim = self.start()
        self.assertEqual(len(sim.addrs[GW_A]), 2)  # the seed's two ingresses
        self.assertTrue(sim.addrs[GW_A][0].startswith("127.0.0.1:"))
        self.assertTrue(sim.addrs[GW_A][1].startswith("[::1]:"))
        self.assertEqual(len(sim.addrs[GW_B]), 1)  # --data-plane
        self.assertNotIn(":0", [a[-2:] for l in sim.addrs.values() for a in l])
        listed = {(l["instance_id"], l["address"])
                  for l in sim.dataplane()["listeners"]}
        self.assertEqual(listed, {(g, a) for g, l in sim.addrs.items()
                                  for a in l})

    def test_serves_the_bound_certificate_per_gateway(self):
        sim = self.start()
        self.assertEqual(served_sha(self.a(sim), "api.example.com"), self.rsa)
        self.assertEqual(served_sha(self.a(sim), "API.Example.com."), self.rsa)
        self.assertEqual(served_sha(sim.addrs[GW_B][0], "api.example.com"),
                         self.ec)
        # IPv6 loopback, same gateway
        self.assertEqual(served_sha(sim.addrs[GW_A][1], "api.example.com"),
                         self.rsa)
        sim.wait_dataplane("handshakes", 4)

    def test_wildcard_binding_serves_one_label(self):
        sim = self.start()
        self.assertEqual(served_sha(self.a(sim), "x.example.com"), self.ec)
        # registered but unbound: the wildcard binding still covers it
        self.assertEqual(served_sha(self.a(sim), "shop.example.com"), self.ec)
        self.assert_alert(self.a(sim), "deep.x.example.com",
                          "UNRECOGNIZED_NAME")

    def test_handshake_fails_without_a_servable_binding(self):
        sim = self.start()
        a = self.a(sim)
        self.assert_alert(a, "shop.example.net", "UNRECOGNIZED_NAME")  # unbound
        self.assert_alert(a, "api.example.org", "UNRECOGNIZED_NAME")
        self.assert_alert(a, None, "UNRECOGNIZED_NAME")  # no SNI
        # bound, but a seed certificate without PEM has no key pair
        self.assert_alert(a, "www.example.com", "HANDSHAKE_FAILURE")
        # B has api.example.com only
        self.assert_alert(sim.addrs[GW_B][0], "x.example.com",
                          "UNRECOGNIZED_NAME")
        sim.wait_dataplane("handshake_failures", 5)
        sim.wait_dataplane("handshakes", 0)

    def test_new_binding_served_after_the_visibility_delay(self):
        sim = self.start()
        sim.admin("POST", "/__sim/settings",
                  {"visibility_delay_ms": LONG_DELAY_MS})
        self.assertEqual(sim.attach(EC, "api.example.com", GW_A), 204)
        truth = {(b["instance_id"], b["domain"]): b["certificate_id"]
                 for b in sim.admin("GET", "/__sim/state")["bindings"]}
        self.assertEqual(truth[(GW_A, "api.example.com")], EC)
        # applied, but not yet visible: still the old certificate
        self.assertEqual(served_sha(self.a(sim), "api.example.com"), self.rsa)
        sim.admin("POST", "/__sim/settings", {"visibility_delay_ms": 0})
        self.assertEqual(served_sha(self.a(sim), "api.example.com"), self.ec)
        self.assertEqual(served_sha(sim.addrs[GW_A][1], "api.example.com"),
                         self.ec)

    def test_stale_gateway_serves_the_previous_certificate(self):
        sim = self.start()
        self.assertEqual(sim.attach(EC, "api.example.com", GW_A), 204)
        self.assertEqual(served_sha(self.a(sim), "api.example.com"), self.ec)
        got = sim.admin("POST", "/__sim/faults", {"stale_gateway": GW_A})
        self.assertEqual(got["dataplane"], {GW_A: "stale"})
        self.assertEqual(served_sha(self.a(sim), "api.example.com"), self.rsa)
        # a name that never changed: a made-up certificate, not the bound one
        der, _ = handshake(self.a(sim), "x.example.com")
        self.assertNotEqual(hashlib.sha256(der).hexdigest(), self.ec)
        _, subj = x509(der, "-subject", "-issuer")
        self.assertIn("subject=CN = x.example.com", subj)
        self.assertIn("issuer=CN = x.example.com", subj)
        # the other gateway is not stale
        self.assertEqual(served_sha(sim.addrs[GW_B][0], "api.example.com"),
                         self.ec)
        sim.admin("POST", "/__sim/faults", {})
        self.assertEqual(served_sha(self.a(sim), "api.example.com"), self.ec)

    def test_fault_refuse_closes_at_accept(self):
        sim = self.start()
        sim.admin("POST", "/__sim/faults", {"dataplane": {GW_A: "refuse"}})
        with self.assertRaises(OSError):
            handshake(self.a(sim), "api.example.com")
        sim.wait_dataplane("refused", 1)
        self.assertEqual(served_sha(sim.addrs[GW_B][0], "api.example.com"),
                         self.ec)

    def test_fault_reset_after_client_hello(self):
        sim = self.start()
        sim.admin("POST", "/__sim/faults", {"dataplane": {"*": "reset"}})
        with self.assertRaises(ConnectionResetError):
            handshake(sim.addrs[GW_B][0], "api.example.com")
        sim.wait_dataplane("resets", 1)

    def test_fault_stall_never_answers(self):
        sim = self.start()
        sim.admin("POST", "/__sim/faults", {"dataplane": {GW_A: "stall"}})
        with self.assertRaises(TimeoutError):
            handshake(self.a(sim), "api.example.com", timeout=0.5)
        sim.wait_dataplane("stalled", 1)
        sim.wait_dataplane("handshakes", 0)
        # the client's close frees the connection
        sim.wait_dataplane("open_connections", 0)

    def test_fault_expired_and_self_signed(self):
        sim = self.start()
        sim.admin("POST", "/__sim/faults", {"dataplane": {GW_A: "expired"}})
        der, _ = handshake(self.a(sim), "api.example.com")
        rc, out = x509(der, "-checkend", "0", "-subject", "-issuer")
        self.assertEqual(rc, 1, out)  # "will expire": it has
        self.assertIn("subject=CN = api.example.com", out)
        self.assertIn("issuer=CN = apig-sim data-plane fault CA", out)
        sim.admin("POST", "/__sim/faults", {"dataplane": {GW_A: "self_signed"}})
        der, _ = handshake(self.a(sim), "api.example.com")
        rc, out = x509(der, "-checkend", "0", "-subject", "-issuer")
        self.assertEqual(rc, 0, out)
        self.assertIn("subject=CN = api.example.com", out)
        self.assertIn("issuer=CN = api.example.com", out)

    def test_fault_huge_chain_keeps_the_right_leaf(self):
        sim = self.start()
        _, small = handshake(self.a(sim), "api.example.com")
        sim.admin("POST", "/__sim/faults", {"dataplane": {GW_A: "huge_chain"}})
        der, big = handshake(self.a(sim), "api.example.com")
        self.assertEqual(hashlib.sha256(der).hexdigest(), self.rsa)
        self.assertLess(small, 10000)
        self.assertGreater(big, 96000)

    def test_bad_fault_is_refused(self):
        sim = self.start()
        for bad in ({"dataplane": {GW_A: "melt"}}, {"dataplane": [GW_A]},
                    {"stale_gateway": 3}):
            with self.assertRaises(urllib.error.HTTPError) as cm:
                sim.admin("POST", "/__sim/faults", bad)
            self.assertEqual(cm.exception.code, 400)
            self.assertIn(b"dataplane" if "dataplane" in bad
                          else b"stale_gateway", cm.exception.read())

    def test_reset_keeps_the_listeners(self):
        sim = self.start()
        self.assertEqual(sim.attach(EC, "api.example.com", GW_A), 204)
        self.assertEqual(served_sha(self.a(sim), "api.example.com"), self.ec)
        sim.admin("POST", "/__sim/reset", {})
        self.assertEqual(served_sha(self.a(sim), "api.example.com"), self.rsa)

    def test_non_loopback_ingress_is_refused(self):
        seed = self.seed()
        seed["gateways"][1]["ingress"] = ["192.0.2.1:443"]
        with self.assertRaises(RuntimeError) as cm:
            self.start(seed)
        self.assertIn("data plane: gateway %s: ingress 192.0.2.1:443: not a "
                      "loopback address" % GW_B, str(cm.exception))
        self.assertIn("(exit 1)", str(cm.exception))

    def test_gen_world_key_pairs_are_served(self):
        pems = os.path.join(self.tmp, "pems")
        world = os.path.join(self.tmp, "gen.json")
        subprocess.run(["python3", GEN_WORLD, "--certs", "2", "--domains", "2",
                        "--gateways", "2", "--bound", "1", "--pem-dir", pems,
                        "--ingress", "127.0.0.1:0", "-o", world], check=True)
        with open(world) as f:
            seed = json.load(f)
        sim = self.start(seed, extra=())
        self.assertEqual(len(sim.addrs), 2)
        for i in range(2):
            want = pem_leaf_sha(os.path.join(pems, "cert_%d.pem" % i))
            for addrs in sim.addrs.values():
                self.assertEqual(
                    served_sha(addrs[0], "d1.c%d.example.com" % i), want)
        self.assertEqual(os.stat(os.path.join(pems, "cert_0.key")).st_mode
                         & 0o077, 0)


if __name__ == "__main__":
    unittest.main()
