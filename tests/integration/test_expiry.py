# SPDX-License-Identifier: MIT
"""Expiry and names of certificates given by id (issue 16 part 7), against
apig-sim over HTTPS with certificates that hold real PEM content: each
pass shows every certificate (GET .../certificates/{id}); plan and status
print its days left; one ending within policy.expiry_warning_days logs
certificate.expiring; the metric
certbind_certificate_not_after_timestamp_seconds carries its not_after; a
domain its names do not cover and any attach of an expired certificate
are plan errors that are never sent; a Show that fails leaves all of it
unknown (metric 0) and the pass converging."""
import calendar
import datetime
import json
import os
import re
import subprocess
import time
import unittest

from harness import MAKE_CERTS, SimTestCase, World, certbind

LEAF_CERTS = os.path.join(os.path.dirname(os.path.abspath(MAKE_CERTS)),
                          "make-leaf-certs.sh")
METRIC = "certbind_certificate_not_after_timestamp_seconds"


def make_pems(tmp):
    """make-leaf-certs.sh's certificates for api.example.com and
    *.example.com (rsa: 30 days, expired: ended yesterday), and a 3-day
    leaf for short.example.com from the same intermediate: inside the
    default warning window of 21 days."""
    d = os.path.join(tmp, "pem")
    subprocess.run(["sh", LEAF_CERTS, d, "api.example.com,*.example.com"],
                   check=True, stdout=subprocess.DEVNULL)
    ext = os.path.join(d, "short.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints = CA:FALSE\n"
                "extendedKeyUsage = serverAuth\n"
                "subjectAltName = DNS:short.example.com\n")
    run = lambda *a: subprocess.run(a, check=True, cwd=d,
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-out", "short.key")
    os.chmod(os.path.join(d, "short.key"), 0o600)
    run("openssl", "req", "-new", "-key", "short.key", "-subj",
        "/CN=short.example.com", "-out", "short.csr")
    run("openssl", "x509", "-req", "-in", "short.csr", "-CA", "int.pem",
        "-CAkey", "int.key", "-CAcreateserial", "-days", "3", "-extfile",
        ext, "-out", "short.pem")
    with open(os.path.join(d, "short.chain.pem"), "w") as out:
        for name in ("short.pem", "int.pem"):
            with open(os.path.join(d, name)) as f:
                out.write(f.read())
    return d


class PemWorld(World):
    """A World whose seed certificates named in `pem` hold PEM content
    (cert_file, key_file): their names and dates come from the leaf."""

    def __init__(self, tmp, pem_dir):
        super().__init__(tmp)
        self.pem_dir = pem_dir
        self.pem = {}  # certificate name -> file stem in pem_dir

    def seed(self):
        seed = super().seed()
        for c in seed["certificates"]:
            stem = self.pem.get(c["name"])
            if stem:
                c["cert_file"] = os.path.join(self.pem_dir, stem + ".chain.pem")
                c["key_file"] = os.path.join(self.pem_dir, stem + ".key")
                del c["san"]
        return seed


def unix_of(iso):
    """The sim's not_after ("2026-03-01T12:00:00Z") in Unix seconds."""
    t = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")
    return calendar.timegm(t.timetuple())


def days_between(not_after, t0, t1):
    """The days left a certbind run between t0 and t1 may have counted."""
    return {(not_after - int(t)) // 86400 for t in (t0, t1)}


def metric_values(path):
    """certificate name -> value of METRIC in the textfile."""
    out = {}
    with open(path) as f:
        for line in f:
            m = re.match(METRIC + r'\{certificate="([^"]+)",id="([^"]+)"\} (\d+)$',
                         line.strip())
            if m:
                out[m.group(1)] = (m.group(2), int(m.group(3)))
    return out


class ExpiryTest(SimTestCase):
    def world(self):
        w = PemWorld(self.tmp, make_pems(self.tmp))
        w.account("prod")
        w.gateway("gw1", "prod", ["api.example.com", "www.example.com",
                                  "x.other.com", "short.example.com",
                                  "exp.example.com", "old.example.com"])
        w.certificate("star", "prod", [])
        w.certificate("short", "prod", [])
        w.certificate("old", "prod", [])
        w.pem = {"star": "rsa", "short": "short", "old": "expired"}
        w.bind("old", "gw1", "old.example.com")  # in place: left alone
        w.want("star", ["gw1"], ["api.example.com", "www.example.com",
                                 "x.other.com"])
        w.want("short", ["gw1"], ["short.example.com"])
        w.want("old", ["gw1"], ["exp.example.com", "old.example.com"])
        w.daemon["metrics_file"] = os.path.join(self.tmp, "certbind.prom")
        return w

    def not_after(self, sim):
        """certificate id -> its not_after (Unix s), as the sim holds it."""
        return {c["id"]: unix_of(c["not_after"])
                for c in sim.state()["certificates"]}

    def test_days_left_plan_errors_expiring_and_metric(self):
        w = self.world()
        sim, cfg = self.start(w)
        ends = self.not_after(sim)
        ids = {n: c["id"] for n, c in w.certs.items()}
        star_end, short_end, old_end = (ends[ids[n]] for n in
                                        ("star", "short", "old"))
        self.assertLess(old_end, time.time())  # the seed is what we think
        self.assertLess(short_end - time.time(), 4 * 86400)

        # plan: days left in each header, the two errors, nothing sent
        t0 = time.time()
        p = certbind("plan", "-c", cfg)
        t1 = time.time()
        self.assertEqual(p.rc, 1, p)  # errors: the plan is not all there is
        m = re.search(r"certificate star \(\S+\), (\d+) days left", p.stdout)
        self.assertTrue(m, p)
        self.assertIn(int(m.group(1)), days_between(star_end, t0, t1), p)
        m = re.search(r"certificate short \(\S+\), expires in (\d+) days?",
                      p.stdout)
        self.assertTrue(m, p)
        self.assertIn(int(m.group(1)), days_between(short_end, t0, t1), p)
        old_day = time.strftime("%Y-%m-%d", time.gmtime(old_end))
        self.assertRegex(p.stdout, r"certificate old \(\S+\), EXPIRED on "
                         + old_day)
        uncovered = [l for l in p.stdout.splitlines() if "x.other.com" in l]
        self.assertEqual(len(uncovered), 1, p)
        self.assertRegex(uncovered[0], r"^\s+! not covered\s+x\.other\.com\s+"
                         r"on gw1\s+star covers api\.example\.com, "
                         r"\*\.example\.com$")
        expired = [l for l in p.stdout.splitlines() if "exp.example.com" in l]
        self.assertEqual(len(expired), 1, p)
        self.assertRegex(expired[0], r"^\s+! expired\s+exp\.example\.com\s+on "
                         r"gw1\s+expired on " + old_day)
        self.assertNotIn("old.example.com", p.stdout)  # in place, kept
        self.assertIn("2 errors (not sent)", p.stdout)
        # one Show per certificate, sent alongside the lists
        self.assertEqual(sim.stats()["by_op"]["show"], {"200": 3})

        pj = certbind("plan", "-c", cfg, "--json")
        plan = json.loads(pj.stdout)
        got = {c["certificate"]: c["not_after"] for c in plan["certificates"]}
        for name in ("star", "short", "old"):
            self.assertEqual(unix_of(got[name]), ends[ids[name]], plan)
        self.assertEqual(plan["summary"]["errors"], 2)
        self.assertEqual(sorted((e["domain"], e["error_code"])
                                for e in plan["errors"]),
                         [("exp.example.com", "certificate-expired"),
                          ("x.other.com", "certificate-not-covered")])
        self.assertEqual(
            sorted(c["domain"] for c in plan["changes"]),
            ["api.example.com", "short.example.com", "www.example.com"])

        # apply: the errors are never sent, the rest converges
        t0 = time.time()
        r = certbind("apply", "-c", cfg, "--log-format", "json")
        t1 = time.time()
        self.assertEqual(r.rc, 1, r)
        st = sim.stats()
        # two batches (star's two domains, short's one), all accepted: an
        # uncovered domain sent would have been refused (APIG.2103)
        self.assertEqual(st["by_op"]["attach"], {"204": 2}, st)
        self.assertEqual(st["by_op"]["detach"], {}, st)
        live = {(b["domain"], b["certificate_id"])
                for b in sim.state()["bindings"]}
        self.assertEqual(live, {("api.example.com", ids["star"]),
                                ("www.example.com", ids["star"]),
                                ("short.example.com", ids["short"]),
                                ("old.example.com", ids["old"])})

        expiring = [e for e in r.events() if e["event"] == "certificate.expiring"]
        self.assertEqual(len(expiring), 1, r)  # once per pass
        e = expiring[0]
        self.assertEqual(e["level"], "warn")
        self.assertEqual(e["certificate"], "short")
        self.assertEqual(e["not_after"], short_end)
        self.assertIn(e["days_left"], days_between(short_end, t0, t1))
        self.assertIn(ids["short"], e["msg"])
        gone = [e for e in r.events() if e["event"] == "certificate.expired"]
        self.assertEqual([e["certificate"] for e in gone], ["old"], r)

        with open(os.path.join(self.tmp, "state", "status.json")) as f:
            status = json.load(f)
        by_domain = {b["domain"]: b for b in status["bindings"]}
        self.assertEqual(by_domain["x.other.com"]["state"], "failed")
        self.assertEqual(by_domain["x.other.com"]["error_code"],
                         "certificate-not-covered")
        self.assertIn("star covers api.example.com, *.example.com",
                      by_domain["x.other.com"]["error_msg"])
        self.assertEqual(by_domain["exp.example.com"]["state"], "failed")
        self.assertEqual(by_domain["exp.example.com"]["error_code"],
                         "certificate-expired")
        self.assertIn("expired on " + old_day,
                      by_domain["exp.example.com"]["error_msg"])
        self.assertEqual(by_domain["old.example.com"]["state"], "converged")
        certs = {c["certificate"]: c for c in status["certificates"]}
        for name in ("star", "short", "old"):
            self.assertEqual(certs[name]["not_after"], ends[ids[name]])
            self.assertEqual(certs[name]["certificate_id"], ids[name])
        self.assertIn(certs["star"]["days_left"],
                      days_between(star_end, t0, t1))

        s = certbind("status", "--state-dir", os.path.join(self.tmp, "state"))
        self.assertEqual(s.rc, 0, s)
        self.assertRegex(s.stdout, r"certificate star \(%s\): \d+ days left"
                         % ids["star"])
        self.assertRegex(s.stdout, r"certificate short \(%s\): expires in "
                         r"\d+ days?" % ids["short"])
        self.assertRegex(s.stdout, r"certificate old \(%s\): EXPIRED on %s"
                         % (ids["old"], old_day))
        self.assertRegex(s.stdout, r"failed\s+x\.other\.com on gw1 .*"
                         r"certificate-not-covered")

        metrics = metric_values(w.daemon["metrics_file"])
        self.assertEqual(metrics, {n: (ids[n], ends[ids[n]])
                                   for n in ("star", "short", "old")})

    def test_show_failure_leaves_expiry_unknown_and_converges(self):
        w = self.world()
        w.wanted = []
        w.bound = []
        w.want("star", ["gw1"], ["api.example.com", "x.other.com"])
        w.retry = {"max_attempts": 3, "base_delay_ms": 20, "max_delay_ms": 100}
        w.faults = {"errors": [{"op": "show", "rate": 1, "status": 500,
                                "code": "APIG.9999"}]}
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg, "--log-format", "json")
        # names unknown: x.other.com is sent, and APIG refuses it
        self.assertEqual(r.rc, 1, r)
        st = sim.stats()
        self.assertEqual(st["by_op"]["show"].get("200"), None, st)
        self.assertGreater(st["by_op"]["show"]["500"], 0, st)
        live = {(b["domain"], b["certificate_id"])
                for b in sim.state()["bindings"]}
        self.assertIn(("api.example.com", w.certs["star"]["id"]), live)
        failed = [e for e in r.events() if e["event"] == "certificate.show_failed"]
        self.assertTrue(failed, r)
        self.assertFalse([e for e in r.events()
                          if e["event"] in ("certificate.expiring",
                                            "certificate.expired")], r)
        with open(os.path.join(self.tmp, "state", "status.json")) as f:
            status = json.load(f)
        by_domain = {b["domain"]: b for b in status["bindings"]}
        self.assertEqual(by_domain["api.example.com"]["state"], "converged")
        self.assertEqual(by_domain["x.other.com"]["error_code"], "APIG.2103")
        certs = {c["certificate"]: c for c in status["certificates"]}
        self.assertEqual(certs["star"]["not_after"], 0)
        self.assertIsNone(certs["star"]["days_left"])
        metrics = metric_values(w.daemon["metrics_file"])
        self.assertEqual(metrics["star"], (w.certs["star"]["id"], 0))
        # and the short certificate, not wanted, is still shown and known
        # to be unknown, never reported with a guess
        self.assertEqual(metrics["short"], (w.certs["short"]["id"], 0))

        # the Show works again: the next pass knows the end
        sim.faults({})
        r = certbind("apply", "-c", cfg, "--log-format", "json")
        metrics = metric_values(w.daemon["metrics_file"])
        self.assertEqual(metrics["star"][1],
                         self.not_after(sim)[w.certs["star"]["id"]])


if __name__ == "__main__":
    unittest.main()
