# SPDX-License-Identifier: MIT
"""Certificates given as files (cert_file + key) against apig-sim over
HTTPS (issue 16): certbind uploads the certificate, binds it, moves every
binding to a renewed certificate when the files change (no unbound
moment), deletes the old object it created once unbound for
policy.retire_after_s, and never touches an object it did not create."""
import hashlib
import json
import os
import subprocess
import time
import unittest
import urllib.request

from harness import (MAKE_CERTS, SimTestCase, World, certbind, pem_body_lines,
                     record_secrets)
from test_daemon import Daemon

LEAF_SCRIPT = os.path.join(os.path.dirname(MAKE_CERTS), "make-leaf-certs.sh")


def make_leaves(tls_dir, names):
    """make-leaf-certs.sh with the simulator's CA (tls_dir/ca.pem)."""
    subprocess.run(["sh", LEAF_SCRIPT, tls_dir, names], check=True,
                   stdout=subprocess.DEVNULL)


def put_files(live, tls, leaf, key):
    """Write the certificate (leaf + intermediate) and key into live/ the
    way certbot renews: new files renamed over the old ones."""
    os.makedirs(live, exist_ok=True)
    for name, parts in (("fullchain.pem", [leaf, "int.pem"]),
                        ("privkey.pem", [key])):
        tmp = os.path.join(live, name + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            for p in parts:
                with open(os.path.join(tls, p)) as src:
                    f.write(src.read())
        os.rename(tmp, os.path.join(live, name))
    return os.path.join(live, "fullchain.pem"), os.path.join(live, "privkey.pem")


def object_name(tls, pem, yaml_name):
    """The name certbind gives the object of a leaf: cb_NAME_ + 8 hex
    digits of the SHA-256 of its DER."""
    der = subprocess.run(["openssl", "x509", "-in", os.path.join(tls, pem),
                          "-outform", "DER"], check=True,
                         stdout=subprocess.PIPE).stdout
    return "cb_%s_%s" % (yaml_name, hashlib.sha256(der).hexdigest()[:8])


def sim_certs(sim):
    return {c["id"]: c for c in sim.state()["certificates"]}


def ledger_certs(tmp):
    with open(os.path.join(tmp, "state", "ledger.json")) as f:
        return {c["object_id"]: c for c in json.load(f).get("certificates", [])}


def bound_to(sim):
    """{(instance_id, domain): certificate_id} of the applied truth."""
    return {(b[1], b[2]): b[0] for b in sim.state_set()}


class ManagedTestCase(SimTestCase):
    def world(self, ngw=1, ndom=3, names="m.example.com,*.m.example.com"):
        w = World(self.tmp)
        w.account("prod")
        self.domains = ["d%02d.m.example.com" % i for i in range(ndom)]
        self.gws = ["edge-%d" % g for g in range(ngw)]
        for g in self.gws:
            w.gateway(g, "prod", self.domains)
        w.policy.update({"mode": "sync", "batch_size": 50,
                         "retire_after_s": 2})
        w.daemon["resync_interval_s"] = 10
        self.tls = os.path.join(self.tmp, "tls")
        # the simulator's CA first (Sim makes it there when missing)
        subprocess.run(["sh", MAKE_CERTS, self.tls], check=True,
                       stdout=subprocess.DEVNULL)
        make_leaves(self.tls, names)
        self.live = os.path.join(self.tmp, "live")
        cert, key = put_files(self.live, self.tls, "rsa.pem", "rsa.key")
        w.certificate_files("web", "prod", cert, key)
        w.want("web", self.gws, self.domains)
        return w

    def renew(self):
        put_files(self.live, self.tls, "other.pem", "other.key")

    def seed_object(self, w, oid, name, pem, key):
        """A certificate object in the seed, made by someone else, holding
        tls/pem (its key tls/key)."""
        orig = w.seed
        files = {"cert_file": os.path.join(self.tls, pem),
                 "key_file": os.path.join(self.tls, key)}
        project = w.accounts["prod"]["project_id"]

        def seed():
            s = orig()
            s["certificates"].append(dict(files, id=oid, project=project,
                                          name=name))
            return s
        w.seed = seed


class RenewalTest(ManagedTestCase):
    def test_renewal_end_to_end(self):
        """A bound on 3 gateways x 50 domains; the files are replaced by a
        renewed B; one daemon pass (the file change) uploads B and moves
        all 150 bindings with no unbound moment; A is deleted once
        retire_after_s has passed; a later pass changes nothing."""
        w = self.world(ngw=3, ndom=50)
        sim, cfg = self.start(w)

        plan = certbind("plan", "-c", cfg)
        self.assertEqual(plan.rc, 2, plan)
        self.assertIn("+ upload cb_web_", plan.stdout)
        self.assertIn("1 to upload", plan.stdout)
        self.assertEqual(sim.state()["certificates"], [], "plan created one")

        r = certbind("apply", "-c", cfg, "--yes")
        self.assertEqual(r.rc, 0, r)
        objs = sim_certs(sim)
        self.assertEqual(len(objs), 1, objs)
        a_id = next(iter(objs))
        self.assertTrue(objs[a_id]["name"].startswith("cb_web_"))
        self.assertEqual(set(bound_to(sim).values()), {a_id})
        self.assertEqual(len(bound_to(sim)), 150)
        self.assertTrue(ledger_certs(self.tmp)[a_id]["created"])

        d = Daemon(cfg, self.tmp)
        try:
            d.wait_pass(timeout=60)
            mark = d.mark()
            self.renew()
            done = d.wait_pass(after=mark, timeout=120)
            objs = sim_certs(sim)
            b_ids = [i for i in objs if i != a_id]
            self.assertEqual(len(b_ids), 1, objs)
            b_id = b_ids[0]
            self.assertEqual(set(bound_to(sim).values()), {b_id})
            self.assertEqual(len(bound_to(sim)), 150)
            self.assertEqual(sim.stats()["unbound_transitions"], 0)
            pd = d.events[done]
            self.assertEqual(pd["attached"], 150, pd)
            # A is deleted by a later pass, once unbound for 2 s
            deleted = d.wait("certificate.deleted", after=mark, timeout=60)
            self.assertGreaterEqual(deleted, done)
            d.wait_pass(after=deleted, timeout=60)  # its ledger saved
            self.assertNotIn(a_id, sim_certs(sim))
            self.assertNotIn(a_id, ledger_certs(self.tmp))
            self.assertTrue(ledger_certs(self.tmp)[b_id]["created"])
            # and the pass after changes nothing
            after = d.mark()
            i = d.wait_pass(after=after, timeout=60)
            e = d.events[i]
            self.assertEqual((e["attached"], e["detached"], e["changed"]),
                             (0, 0, 0), e)
            self.assertEqual(set(sim_certs(sim)), {b_id})
        finally:
            d.stop()
        uploads = [e for e in d.events if e["event"] == "certificate.uploaded"]
        self.assertEqual(len(uploads), 1, uploads)


class BadInputTest(ManagedTestCase):
    def test_dry_run_and_plan_send_nothing(self):
        w = self.world()
        sim, cfg = self.start(w)
        for args in (["plan"], ["apply", "--dry-run"]):
            r = certbind(*args, "-c", cfg)
            self.assertIn(r.rc, (0, 2), r)
            self.assertIn("+ upload cb_web_", r.stdout)
        by_op = sim.stats()["by_op"]
        for op in ("create", "update", "delete", "attach", "detach"):
            self.assertEqual(by_op.get(op, {}), {}, (op, by_op))
        self.assertEqual(sim.state()["certificates"], [])
        j = certbind("plan", "-c", cfg, "--json")
        plan = json.loads(j.stdout)
        self.assertEqual(plan["summary"]["upload"], 1)
        self.assertEqual(plan["certificate_objects"][0]["op"], "upload")
        self.assertIsNone(plan["certificate_objects"][0]["certificate_id"])
        self.assertEqual({c["certificate_id"] for c in plan["changes"]}, {None})
        self.assertIn("certificate web (new)", certbind("plan", "-c", cfg).stdout)

    def test_quota_full_fails_that_certificate_only(self):
        w = self.world()
        w.certificate("plain", "prod", ["*.p.example.com"])
        w.gateways["edge-0"]["domains"].append("x.p.example.com")
        w.want("plain", ["edge-0"], ["x.p.example.com"])
        w.settings["cert_quota"] = 1  # the seed certificate fills it
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg, "--yes")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("web", r.stdout + r.stderr)
        self.assertIn("quota", r.stdout + r.stderr)
        truth = bound_to(sim)
        self.assertEqual(set(truth.values()), {w.certs["plain"]["id"]})

    def test_name_collision_is_not_adopted_without_proof(self):
        """An object named like certbind's, holding another certificate,
        that certbind did not create: not adopted, not deleted."""
        w = self.world()
        self.seed_object(w, "f" * 32, object_name(self.tls, "rsa.pem", "web"),
                         "other.pem", "other.key")
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg, "--yes")
        self.assertEqual(r.rc, 0, r)
        objs = sim_certs(sim)
        self.assertIn("f" * 32, objs)
        ours = [i for i in objs if i != "f" * 32]
        self.assertEqual(len(ours), 1, objs)
        self.assertEqual(objs[ours[0]]["name"], objs["f" * 32]["name"])
        self.assertEqual(set(bound_to(sim).values()), {ours[0]})
        self.assertNotIn("f" * 32, ledger_certs(self.tmp))

    def test_adopted_by_proof_and_never_deleted(self):
        """An object holding the same leaf, uploaded by someone else, is
        adopted (proof: serial, expiry, names) and never deleted."""
        w = self.world()
        self.seed_object(w, "e" * 32, "by_hand", "rsa.pem", "rsa.key")
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg, "--yes", "--log-format", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("certificate.adopted", r.stderr)
        self.assertEqual(set(sim_certs(sim)), {"e" * 32})
        self.assertEqual(set(bound_to(sim).values()), {"e" * 32})
        rec = ledger_certs(self.tmp)["e" * 32]
        self.assertFalse(rec["created"])
        # renewed: moved to a new object; the adopted one is kept
        self.renew()
        r = certbind("apply", "-c", cfg, "--yes")
        self.assertEqual(r.rc, 0, r)
        time.sleep(2.5)
        r = certbind("apply", "-c", cfg, "--yes")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("e" * 32, sim_certs(sim))
        self.assertNotIn("e" * 32, set(bound_to(sim).values()))

    def test_delete_refused_is_kept_and_retried(self):
        """The old object's delete refused (bound, says APIG): kept, logged,
        tried again by the next pass; the bindings converge all the same."""
        w = self.world()
        w.policy["retire_after_s"] = 0
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg, "--yes")
        self.assertEqual(r.rc, 0, r)
        a_id = next(iter(sim_certs(sim)))
        self.renew()
        sim.faults({"errors": [{"op": "delete", "rate": 1, "status": 400,
                                "code": "APIG.3400"}]})
        r = certbind("apply", "-c", cfg, "--yes", "--log-format", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("certificate.delete_failed", r.stderr)
        self.assertIn(a_id, sim_certs(sim))
        self.assertIn(a_id, ledger_certs(self.tmp))
        self.assertNotIn(a_id, set(bound_to(sim).values()))
        self.assertEqual(len(bound_to(sim)), len(self.domains))
        sim.faults({})
        r = certbind("apply", "-c", cfg, "--yes", "--log-format", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("certificate.deleted", r.stderr)
        self.assertNotIn(a_id, sim_certs(sim))
        self.assertNotIn(a_id, ledger_certs(self.tmp))


def leaf_sha256(tls, pem):
    der = subprocess.run(["openssl", "x509", "-in", os.path.join(tls, pem),
                          "-outform", "DER"], check=True,
                         stdout=subprocess.PIPE).stdout
    return hashlib.sha256(der).hexdigest()


def operator_call(sim, acct, method, path, body=None):
    """What an operator does at APIG by hand: one API call with an IAM
    token of the account's user; its HTTP status."""
    auth = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": acct["user"], "password": acct["password"],
                 "domain": {"name": acct["domain"]}}}},
        "scope": {"project": {"id": acct["project_id"]}}}}
    rq = urllib.request.Request(sim.url + "/v3/auth/tokens?nocatalog=true",
                                data=json.dumps(auth).encode(), method="POST",
                                headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(rq, context=sim.ctx, timeout=10) as resp:
        tok = resp.headers["X-Subject-Token"]
    record_secrets([tok])
    rq = urllib.request.Request(
        sim.url + "/v2/%s/apigw%s" % (acct["project_id"], path),
        data=json.dumps(body).encode() if body is not None else None,
        method=method, headers={"Content-Type": "application/json",
                                "X-Auth-Token": tok})
    with urllib.request.urlopen(rq, context=sim.ctx, timeout=10) as resp:
        return resp.status


class LeftBehindTest(ManagedTestCase):
    def test_removed_certificate_is_reported_never_deleted(self):
        """Two certificates from files applied; one is removed from the
        file. Its object and binding stay at APIG; plan (exit as without
        it), apply's log, status.json and certbind status name it, with its
        leaf's SHA-256 the only certificate datum shown."""
        w = self.world(ndom=2)
        w.gateways["edge-0"]["domains"].append("e.m.example.com")
        cert, key = put_files(os.path.join(self.tmp, "live-ec"), self.tls,
                              "ec.pem", "ec.key")
        w.certificate_files("ecweb", "prod", cert, key)
        w.want("ecweb", ["edge-0"], ["e.m.example.com"])
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg, "--yes")
        self.assertEqual(r.rc, 0, r)
        ec_name = object_name(self.tls, "ec.pem", "ecweb")
        ec_id = [i for i, o in sim_certs(sim).items()
                 if o["name"] == ec_name][0]
        ec_binding = (w.gateways["edge-0"]["instance_id"], "e.m.example.com")
        self.assertEqual(bound_to(sim)[ec_binding], ec_id)

        del w.cert_files["ecweb"]
        w.wanted = [x for x in w.wanted if x["certificate"] != "ecweb"]
        w.write_yaml(sim.ca)
        sha = leaf_sha256(self.tls, "ec.pem")

        plan = certbind("plan", "-c", cfg)
        self.assertEqual(plan.rc, 0, plan)  # not a change
        self.assertIn("Certificate objects:\n    ? left   certificate %s (%s"
                      % (ec_name, ec_id[:4]), plan.stdout)
        self.assertIn("ecweb: no longer in the file, created by certbind, "
                      "not deleted", plan.stdout)
        self.assertIn("No changes:", plan.stdout)
        pj = json.loads(certbind("plan", "-c", cfg, "--json").stdout)
        self.assertEqual(pj["left_objects"], [
            {"object_id": ec_id, "name": ec_name, "certificate": "ecweb",
             "sha256": sha}])
        self.assertEqual(pj["summary"]["delete_certificate"], 0)

        r = certbind("apply", "-c", cfg, "--yes", "--log-format", "json")
        self.assertEqual(r.rc, 0, r)
        left = [e for e in r.events() if e["event"] == "certificate.left"]
        self.assertEqual(len(left), 1, r)
        self.assertEqual(left[0]["count"], 1)
        self.assertIn(ec_name, left[0]["msg"])
        self.assertEqual(sim.stats()["by_op"].get("delete", {}), {})
        self.assertIn(ec_id, sim_certs(sim))
        self.assertEqual(bound_to(sim)[ec_binding], ec_id)
        self.assertIn(ec_id, ledger_certs(self.tmp))

        state = os.path.join(self.tmp, "state")
        with open(os.path.join(state, "status.json")) as f:
            self.assertEqual(json.load(f)["left_objects"],
                             pj["left_objects"])
        st = certbind("status", "--state-dir", state)
        self.assertEqual(st.rc, 0, st)
        self.assertIn("1 certificate object certbind created is no longer in "
                      "the file: %s (delete it at APIG, or put its "
                      "certificate back in the file)" % ec_name, st.stdout)
        # the leaf's hash is all that is shown of the certificate, and no
        # line of its key or its PEM anywhere
        shown = plan.stdout + json.dumps(pj) + r.stdout + r.stderr + st.stdout
        for pem in (key, os.path.join(self.tls, "ec.pem")):
            for line in pem_body_lines(pem):
                self.assertNotIn(line, shown)

        # the record knows the object's account (endpoint and project ID)
        acct = w.accounts["prod"]
        self.assertEqual(ledger_certs(self.tmp)[ec_id].get("account"),
                         "%s %s" % (sim.url, acct["project_id"]))
        # the operator deletes the object at APIG (its domain first)
        obj = "/certificates/" + ec_id
        self.assertEqual(operator_call(sim, acct, "POST",
                                       obj + "/domains/detach",
                                       {"domains": [{"domain":
                                                     "e.m.example.com"}]}),
                         204)
        self.assertEqual(operator_call(sim, acct, "DELETE", obj), 204)
        self.assertNotIn(ec_id, sim_certs(sim))
        before = sim.stats()["by_op"].get("show", {})

        # plan no longer lists it, and leaves the ledger as it is
        pj = json.loads(certbind("plan", "-c", cfg, "--json").stdout)
        self.assertEqual(pj["left_objects"], [])
        self.assertIn(ec_id, ledger_certs(self.tmp))
        shows = sim.stats()["by_op"].get("show", {})
        self.assertEqual(shows.get("404", 0) - before.get("404", 0), 1)

        # apply forgets its record and says so; status lists nothing
        r = certbind("apply", "-c", cfg, "--yes", "--log-format", "json")
        self.assertEqual(r.rc, 0, r)
        gone = [e for e in r.events() if e["event"] == "certificate.left_gone"]
        self.assertEqual(len(gone), 1, r)
        self.assertIn(ec_id, gone[0]["msg"])
        self.assertNotIn("certificate.left",
                         [e["event"] for e in r.events()])
        self.assertNotIn(ec_id, ledger_certs(self.tmp))
        with open(os.path.join(state, "status.json")) as f:
            self.assertEqual(json.load(f).get("left_objects", []), [])
        st = certbind("status", "--state-dir", state)
        self.assertEqual(st.rc, 0, st)
        self.assertNotIn("no longer in the file", st.stdout)


if __name__ == "__main__":
    unittest.main()
