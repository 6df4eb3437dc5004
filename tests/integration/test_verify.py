# SPDX-License-Identifier: MIT
"""certbind verify against apig-sim's data plane: real TLS handshakes to
each gateway's ingress address, the leaf compared with the certificate
file the desired-state file names (SHA-256), or with the serial and
not_after the API's Show gives for a certificate named by id. All ok; a
stale gateway (mismatch, exit 1, the cell names what is served); lag
(mismatch first, then ok within confirm_timeout_s); dead and stalling
addresses; IPv6 loopback; a failed Show (unknown, with why); a wanted
binding not in place (not checked, exit 0); never a write to the API."""
import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
import time
import unittest

import harness
from harness import CERTBIND, MAKE_CERTS, SimTestCase, World, scaled

MAKE_LEAF_CERTS = os.path.join(os.path.dirname(MAKE_CERTS),
                               "make-leaf-certs.sh")
DOMAINS = ["api.example.com", "www.example.com", "*.wild.example.com"]


def leaf_sha(path):
    with open(path) as f:
        text = f.read()
    end = "-----END CERTIFICATE-----"
    first = text[:text.index(end) + len(end)] + "\n"
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()


def ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def answered(sim):
    """Handshakes the data plane has seen to their end, either way."""
    dp = sim._req("GET", "/__sim/dataplane")
    return dp["handshakes"] + dp["handshake_failures"]


class PemWorld(World):
    """A World whose certificates carry a key pair (the data plane serves
    them) and whose gateways list ingress addresses; the file names the
    certificates by their files (managed), so verify compares SHA-256."""

    def __init__(self, tmp, managed=True):
        super().__init__(tmp)
        self.pem = {}  # cert name -> (cert_file, key_file)
        self.ingress = {}  # gateway name -> [address]
        self.managed = managed  # False: the file names them by id

    def seed(self):
        seed = super().seed()
        by_id = {c["id"]: n for n, c in self.certs.items()}
        for c in seed["certificates"]:
            name = by_id[c["id"]]
            if name in self.pem:
                c["cert_file"], c["key_file"] = self.pem[name]
        return seed

    def yaml(self, ca_file):
        text = super().yaml(ca_file)
        for name, g in self.gateways.items():
            if name in self.ingress:
                old = "  %s: { account: %s, instance_id: %s }" % (
                    name, g["account"], g["instance_id"])
                new = "  %s: { account: %s, instance_id: %s, ingress: [%s] }" % (
                    name, g["account"], g["instance_id"],
                    ", ".join('"%s"' % a for a in self.ingress[name]))
                text = text.replace(old, new)
        for name, c in self.certs.items():
            if name in self.pem and self.managed:
                old = "  %s: { account: %s, id: %s }" % (name, c["account"],
                                                         c["id"])
                new = ("  %s:\n    account: %s\n    cert_file: %s\n"
                       "    key: { file: %s }" % (name, c["account"],
                                                  self.pem[name][0],
                                                  self.pem[name][1]))
                text = text.replace(old, new)
        return text


def make_leaf(tc):
    """The test's leaf certificates for DOMAINS: tc.leaf (their folder)
    and tc.chain (the EC chain)."""
    tc.leaf = os.path.join(tc.tmp, "leaf")
    subprocess.run(["sh", MAKE_LEAF_CERTS, tc.leaf, ",".join(DOMAINS)],
                   check=True, stdout=subprocess.DEVNULL)
    tc.chain = os.path.join(tc.leaf, "ec.chain.pem")


class VerifyTest(SimTestCase):
    def setUp(self):
        super().setUp()
        make_leaf(self)
        self.sha = leaf_sha(self.chain)

    def world(self, policy=None, managed=True):
        w = PemWorld(self.tmp, managed)
        w.account("acct")
        for gw in ("gw-a", "gw-b"):
            w.gateway(gw, "acct", DOMAINS)
        w.certificate("site", "acct", DOMAINS)
        w.pem["site"] = (self.chain, os.path.join(self.leaf, "ec.key"))
        for gw in ("gw-a", "gw-b"):
            for d in DOMAINS:
                w.bind("site", gw, d)
        w.want("site", ["gw-a", "gw-b"], DOMAINS)
        w.policy.update(policy or {})
        return w

    def start_dp(self, w, listen="127.0.0.1:0"):
        """The sim with a data plane; the file lists each gateway's address."""
        dp = os.path.join(self.tmp, "dp.port")
        sim = harness.Sim(self.tmp, w, ["--data-plane", listen,
                                        "--data-plane-port-file", dp])
        self.sims.append(sim)
        by_iid = {g["instance_id"]: n for n, g in w.gateways.items()}
        with open(dp) as f:
            for line in f:
                iid, addr = line.split()
                w.ingress.setdefault(by_iid[iid], []).append(addr)
        cfg = w.write_yaml(sim.ca)
        return sim, cfg

    def verify_json(self, cfg, rc=None):
        r = harness.certbind("verify", "-c", cfg, "--json",
                             timeout=scaled(120))
        if rc is not None:
            self.assertEqual(r.rc, rc, r.stderr)
        return r, json.loads(r.stdout)

    def cells(self, report, gateway=None):
        return [c for c in report["cells"]
                if gateway is None or c["gateway"] == gateway]

    def test_all_ok_and_no_api_write(self):
        sim, cfg = self.start_dp(self.world())
        before = sim.stats()["requests"]
        r = harness.certbind("verify", "-c", cfg)
        self.assertEqual(r.rc, 0, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        self.assertTrue(lines[0].startswith("domain"))
        self.assertIn("gw-a 127.0.0.1:", lines[0])
        self.assertIn("gw-b 127.0.0.1:", lines[0])
        for d in DOMAINS:
            row = [l for l in lines if l.startswith(d + " ")]
            self.assertEqual(len(row), 1, r.stdout)
            self.assertEqual(row[0].split()[1:], ["ok", "ok"], r.stdout)
        self.assertIn("verify: 6 ok, 0 mismatch, 0 expired, 0 unreachable",
                      r.stdout)
        events = [e for e in r.events() if e.get("event") == "verify.ok"]
        self.assertEqual(len(events), 6, r.stderr)
        _, rep = self.verify_json(cfg, rc=0)
        self.assertTrue(rep["ok"])
        self.assertEqual(len(rep["cells"]), 6)
        for c in rep["cells"]:
            self.assertEqual(c["result"], "ok")
            self.assertEqual(c["served"]["sha256"], self.sha)
            self.assertEqual(c["wanted_sha256"], self.sha)
        wild = [c for c in rep["cells"] if c["domain"] == "*.wild.example.com"]
        self.assertEqual({c["sni"] for c in wild},
                         {"certbind-verify.wild.example.com"})
        # it reads the API (the object that holds the file's leaf, its
        # bindings) and writes nothing
        stats = sim.stats()
        self.assertGreater(stats["requests"], before)
        self.assertEqual(stats["writes_total"], 0)
        for op in ("attach", "detach", "create", "update", "delete"):
            self.assertFalse(stats["by_op"].get(op), stats["by_op"])
        # the private key is never in any output
        with open(os.path.join(self.leaf, "ec.key")) as f:
            body = [l for l in f.read().splitlines() if "-----" not in l]
        for line in body:
            self.assertNotIn(line, r.stdout + r.stderr)

    def test_stale_gateway_is_a_mismatch(self):
        w = self.world({"confirm_timeout_s": 1})
        w.faults = {"stale_gateway": w.gateways["gw-b"]["instance_id"]}
        sim, cfg = self.start_dp(w)
        r = harness.certbind("verify", "-c", cfg)
        self.assertEqual(r.rc, 1, r.stdout + r.stderr)
        row = [l for l in r.stdout.splitlines()
               if l.startswith("api.example.com ")][0]
        self.assertEqual(row.split()[1:], ["ok", "mismatch"], r.stdout)
        # the cell says what is served: a self-signed leaf for the name
        detail = [l for l in r.stdout.splitlines()
                  if l.strip().startswith("mismatch") and
                  "api.example.com on gw-b" in l]
        self.assertEqual(len(detail), 1, r.stdout)
        self.assertIn("serves CN=api.example.com", detail[0])
        self.assertRegex(detail[0], r"serial [0-9A-F]+, not_after \d{4}-")
        self.assertNotIn(self.sha, detail[0])
        self.assertIn("verify: 3 ok, 3 mismatch", r.stdout)
        ev = [e for e in r.events() if e.get("event") == "verify.mismatch"]
        self.assertEqual(len(ev), 3, r.stderr)
        self.assertEqual({e.get("gateway") for e in ev}, {"gw-b"})
        _, rep = self.verify_json(cfg, rc=1)
        self.assertFalse(rep["ok"])
        for c in self.cells(rep, "gw-b"):
            self.assertEqual(c["result"], "mismatch")
            self.assertNotEqual(c["served"]["sha256"], self.sha)
            self.assertFalse(c["served_is_wanted"])
            self.assertTrue(c["served"]["serial"])
        for c in self.cells(rep, "gw-a"):
            self.assertEqual(c["result"], "ok")

    def test_lag_mismatch_then_ok(self):
        w = self.world({"confirm_timeout_s": 60})
        w.faults = {"stale_gateway": w.gateways["gw-b"]["instance_id"]}
        sim, cfg = self.start_dp(w)
        proc = subprocess.Popen(
            [CERTBIND, "verify", "-c", cfg, "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # the first round has met the stale node: every cell answered
            deadline = time.monotonic() + scaled(30)
            while answered(sim) < 6:
                self.assertLess(time.monotonic(), deadline)
                self.assertIsNone(proc.poll())
                time.sleep(0.02)
            sim.faults({})
            out, err = proc.communicate(timeout=scaled(60))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self.assertEqual(proc.returncode, 0, out + err)
        rep = json.loads(out)
        self.assertGreaterEqual(rep["rounds"], 2)
        for c in self.cells(rep, "gw-b"):
            self.assertEqual(c["result"], "ok")
            self.assertGreaterEqual(c["attempts"], 2)
        for c in self.cells(rep, "gw-a"):
            self.assertEqual(c["attempts"], 1)

    def test_dead_and_stalling_addresses(self):
        w = self.world({"confirm_timeout_s": 1})
        w.faults = {"dataplane": {w.gateways["gw-b"]["instance_id"]: "stall"}}
        sim, _ = self.start_dp(w)
        # gw-a: nothing listens there
        w.ingress["gw-a"] = ["127.0.0.1:%d" % harness.free_port()]
        cfg = w.write_yaml(sim.ca)
        t0 = time.monotonic()
        r, rep = self.verify_json(cfg, rc=1)
        self.assertLess(time.monotonic() - t0, scaled(30))
        for c in self.cells(rep, "gw-a"):
            self.assertEqual(c["result"], "unreachable")
            self.assertEqual(c["error"], "connect: connection refused")
        for c in self.cells(rep, "gw-b"):
            self.assertEqual(c["result"], "unreachable")
            self.assertEqual(c["error"], "handshake timed out after 5000 ms")
        ev = [e for e in r.events() if e.get("event") == "verify.unreachable"]
        self.assertEqual(len(ev), 6, r.stderr)

    def test_id_certificates_compared_with_their_show(self):
        w = self.world({"confirm_timeout_s": 1}, managed=False)
        sim, cfg = self.start_dp(w)
        serial = ssl._ssl._test_decode_cert(self.chain)["serialNumber"]
        r = harness.certbind("verify", "-c", cfg)
        self.assertEqual(r.rc, 0, r.stdout + r.stderr)
        for d in DOMAINS:
            row = [l for l in r.stdout.splitlines() if l.startswith(d + " ")]
            self.assertEqual(row[0].split()[1:], ["ok", "ok"], r.stdout)
        self.assertIn("verify: 6 ok, 0 mismatch, 0 expired, 0 unreachable, "
                      "0 unknown, 0 not bound (6 checks", r.stdout)
        _, rep = self.verify_json(cfg, rc=0)
        for c in rep["cells"]:
            self.assertEqual(c["result"], "ok")
            self.assertNotIn("wanted_sha256", c)
            # the Show's serial (the sim gives it in decimal) is the leaf's
            self.assertEqual(int(c["wanted_serial"]), int(serial, 16))
            self.assertEqual(c["served"]["serial"], serial.upper())
            self.assertEqual(c["wanted_not_after"], c["served"]["not_after"])
        # it read (lists and Shows), and wrote nothing
        by_op = sim.stats()["by_op"]
        self.assertGreaterEqual(by_op["show"].get("200", 0), 2)
        for op in ("attach", "detach"):
            self.assertFalse(by_op.get(op), by_op)
        self.assertEqual(sim.stats()["writes_total"], 0)
        # a stale node serves another leaf than the Show's: a mismatch
        sim.faults({"stale_gateway": w.gateways["gw-b"]["instance_id"]})
        _, rep = self.verify_json(cfg, rc=1)
        self.assertEqual({c["result"] for c in self.cells(rep, "gw-b")},
                         {"mismatch"})

    def test_show_fault_is_unknown_with_the_reason(self):
        w = self.world(managed=False)
        w.faults = {"errors": [{"op": "show", "rate": 1, "status": 400,
                                "code": "APIG.2012"}]}
        sim, cfg = self.start_dp(w)
        r = harness.certbind("verify", "-c", cfg)
        self.assertEqual(r.rc, 1, r.stdout + r.stderr)
        for d in DOMAINS:
            row = [l for l in r.stdout.splitlines() if l.startswith(d + " ")]
            self.assertEqual(row[0].split()[1:], ["unknown", "unknown"],
                             r.stdout)
        detail = [l for l in r.stdout.splitlines()
                  if l.strip().startswith("unknown ")]
        self.assertEqual(len(detail), 6, r.stdout)
        for l in detail:
            self.assertIn("certificate site (id %s): its Show failed"
                          % w.certs["site"]["id"], l)
            self.assertIn("serial and not_after are unknown", l)
        self.assertIn("0 ok, 0 mismatch, 0 expired, 0 unreachable, "
                      "6 unknown", r.stdout)
        # nothing to compare with: no handshake was made
        self.assertEqual(answered(sim), 0)
        _, rep = self.verify_json(cfg, rc=1)
        self.assertEqual(rep["counts"]["unknown"], 6)
        for c in rep["cells"]:
            self.assertIn("its Show failed", c["error"])
            self.assertNotIn("served", c)

    def test_wanted_binding_not_in_place_is_not_checked(self):
        other = os.path.join(self.leaf, "rsa.chain.pem")
        w = PemWorld(self.tmp, managed=False)
        w.policy["confirm_timeout_s"] = 1
        w.account("acct")
        for gw in ("gw-a", "gw-b"):
            w.gateway(gw, "acct", DOMAINS + ["old.example.com"])
        w.certificate("site", "acct", DOMAINS)
        w.certificate("old", "acct", DOMAINS)
        w.pem["site"] = (self.chain, os.path.join(self.leaf, "ec.key"))
        w.pem["old"] = (other, os.path.join(self.leaf, "rsa.key"))
        w.want("site", ["gw-a", "gw-b"], DOMAINS)
        w.want("old", ["gw-a"], ["old.example.com"])
        for d in DOMAINS:
            w.bind("site", "gw-a", d)
        w.bind("site", "gw-b", "*.wild.example.com")
        w.bind("old", "gw-b", "www.example.com")  # another certificate there
        w.bind("old", "gw-a", "old.example.com")
        # api.example.com on gw-b: bound to nothing
        sim, cfg = self.start_dp(w)
        r = harness.certbind("verify", "-c", cfg)
        self.assertEqual(r.rc, 0, r.stdout + r.stderr)
        lines = r.stdout.splitlines()

        def row(d):
            return [l for l in lines if l.startswith(d + " ")][0].split()[1:]
        self.assertEqual(row("api.example.com"), ["ok", "-"], r.stdout)
        self.assertEqual(row("www.example.com"), ["ok", "-"], r.stdout)
        self.assertEqual(row("*.wild.example.com"), ["ok", "ok"], r.stdout)
        self.assertEqual(row("old.example.com"), ["ok", "-"], r.stdout)
        at = lines.index([l for l in lines if l.startswith("not bound")][0])
        self.assertIn("certbind plan", lines[at])
        self.assertEqual(lines[at + 1].split(), [
            "api.example.com", "on", "gw-b:", "wanted", "on", "certificate",
            "site,", "not", "bound"])
        self.assertEqual(lines[at + 2].split(), [
            "www.example.com", "on", "gw-b:", "wanted", "on", "certificate",
            "site,", "bound", "to", "certificate", "old"])
        self.assertIn("verify: 5 ok, 0 mismatch, 0 expired, 0 unreachable, "
                      "0 unknown, 2 not bound (5 checks", r.stdout)
        _, rep = self.verify_json(cfg, rc=0)
        self.assertTrue(rep["ok"])
        self.assertEqual(rep["counts"]["not_bound"], 2)
        gone = {c["domain"]: c for c in rep["cells"]
                if c["result"] == "not_bound"}
        self.assertEqual(set(gone), {"api.example.com", "www.example.com"})
        self.assertEqual(gone["www.example.com"]["bound_to"], "old")
        self.assertNotIn("bound_to", gone["api.example.com"])
        self.assertEqual(gone["api.example.com"]["attempts"], 0)
        # not bound cells are not logged as checks
        ev = [e for e in r.events() if e.get("event", "").startswith(
            "verify.")]
        self.assertEqual(len(ev), 5, r.stderr)
        # what is bound fails as ever: a stale gw-b
        sim.faults({"stale_gateway": w.gateways["gw-b"]["instance_id"]})
        _, rep = self.verify_json(cfg, rc=1)
        self.assertEqual([c["result"] for c in self.cells(rep, "gw-b")
                          if c["result"] != "not_bound"], ["mismatch"])

    def test_apply_records_what_is_served(self):
        # the file names the certificate by id: compared with the serial
        # and not_after of the pass's Show
        w = self.world({"verify": "every_pass"}, managed=False)
        metrics = os.path.join(self.tmp, "certbind.prom")
        w.daemon["metrics_file"] = metrics
        sim, cfg = self.start_dp(w)
        r = harness.certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r.stdout + r.stderr)
        with open(os.path.join(self.tmp, "state", "status.json")) as f:
            st = json.load(f)
        self.assertEqual(len(st["bindings"]), 6)
        not_after = None
        for b in st["bindings"]:
            self.assertEqual(len(b["served"]), 1, b)
            e = b["served"][0]
            self.assertEqual(e["address"], w.ingress[b["gateway"]][0])
            self.assertEqual(e["result"], "ok")
            self.assertEqual(e["sha256"], self.sha)
            self.assertIsNone(e["error"])
            self.assertGreater(e["not_after"], time.time())
            not_after = e["not_after"]
        with open(metrics) as f:
            prom = f.read()
        self.assertIn("\ncertbind_served_certificate_mismatches 0\n", prom)
        for gw in ("gw-a", "gw-b"):
            for d in DOMAINS:
                self.assertIn(
                    'certbind_served_certificate_not_after_timestamp_seconds'
                    '{gateway="%s",domain="%s"} %d\n' % (gw, d, not_after),
                    prom)
        self.assertEqual(
            len([e for e in r.events() if e.get("event", "").startswith(
                "verify.")]), 6, r.stderr)
        # after_write: a pass that writes nothing checks nothing
        w.policy["verify"] = "after_write"
        cfg = w.write_yaml(sim.ca)
        r = harness.certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r.stdout + r.stderr)
        self.assertFalse([e for e in r.events()
                          if e.get("event", "").startswith("verify.")])
        with open(os.path.join(self.tmp, "state", "status.json")) as f:
            st = json.load(f)
        self.assertFalse([b for b in st["bindings"] if "served" in b])

    def test_daemon_records_what_is_served(self):
        # the stale node's mismatches are tried again until
        # confirm_timeout_s: keep that short
        w = self.world({"verify": "every_pass", "confirm_timeout_s": 1},
                       managed=False)
        metrics = os.path.join(self.tmp, "certbind.prom")
        w.daemon["metrics_file"] = metrics
        w.faults = {"stale_gateway": w.gateways["gw-b"]["instance_id"]}
        sim, cfg = self.start_dp(w)
        status = os.path.join(self.tmp, "state", "status.json")

        def verified():
            try:
                with open(status) as f:
                    st = json.load(f)
            except (OSError, ValueError):
                return False
            return all("served" in b for b in st["bindings"])

        r, _ = harness.certbind_signalled("run", "-c", cfg, ready=verified,
                                          what="a verified status.json")
        self.assertEqual(r.rc, 0, r.stderr)
        with open(status) as f:
            st = json.load(f)
        for b in st["bindings"]:
            e = b["served"][0]
            self.assertEqual(e["address"], w.ingress[b["gateway"]][0])
            if b["gateway"] == "gw-a":
                self.assertEqual(e["sha256"], self.sha)
                self.assertEqual(e["result"], "ok")
            else:  # the stale node serves a certificate made for the name
                self.assertNotEqual(e["sha256"], self.sha)
                self.assertEqual(e["result"], "mismatch")
                self.assertIn("CN=", e["subject"])
        with open(metrics) as f:
            prom = f.read()
        self.assertIn("certbind_served_certificate_not_after_timestamp_seconds"
                      '{gateway="gw-b",domain="api.example.com"}', prom)
        ev = [e for e in r.events() if e.get("event", "").startswith("verify.")]
        self.assertGreaterEqual(len(ev), 6, r.stderr)

    def test_daemon_sigterm_stops_the_verification(self):
        w = self.world({"verify": "every_pass", "confirm_timeout_s": 300},
                       managed=False)
        w.faults = {"dataplane": {w.gateways["gw-b"]["instance_id"]: "stall"}}
        sim, cfg = self.start_dp(w)

        def stalled():
            return sim._req("GET", "/__sim/dataplane")["stalled"] >= 1

        r, took = harness.certbind_signalled("run", "-c", cfg, ready=stalled,
                                             what="a stalled handshake")
        self.assertEqual(r.rc, 0, r.stderr)
        # not the 5 s handshake timeout, nor the 300 s of retries
        self.assertLess(took, scaled(4))
        with open(os.path.join(self.tmp, "state", "status.json")) as f:
            st = json.load(f)
        for b in st["bindings"]:
            e = b["served"][0]
            if b["gateway"] == "gw-b":
                self.assertEqual(e["result"], "unreachable")
                self.assertEqual(e["error"], "cancelled")

    @unittest.skipUnless(ipv6_loopback(), "no IPv6 loopback")
    def test_ipv6_loopback(self):
        sim, cfg = self.start_dp(self.world(), listen="[::1]:0")
        r, rep = self.verify_json(cfg, rc=0)
        for c in rep["cells"]:
            self.assertTrue(c["address"].startswith("[::1]:"), c)
            self.assertEqual(c["result"], "ok")


if __name__ == "__main__":
    unittest.main()
