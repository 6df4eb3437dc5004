# SPDX-License-Identifier: MIT
"""certbind plan / apply --plan / sync mode / status / metrics against
apig-sim over HTTPS (issue 5)."""
import json
import os
import re
import unittest

from harness import SimTestCase, World, certbind


def world(tmp, ndomains=4, ngws=2, mode="upsert", registered_extra=()):
    """One account, one certificate, ngws gateways each carrying every
    domain d0..d{n-1}.c0.example.com (plus registered_extra)."""
    w = World(tmp)
    w.account("prod")
    domains = ["d%d.c0.example.com" % i for i in range(ndomains)]
    gws = ["edge-%d" % g for g in range(ngws)]
    for g in gws:
        w.gateway(g, "prod", domains + list(registered_extra))
    w.certificate("cert-0", "prod", ["*.c0.example.com"])
    w.want("cert-0", gws, domains)
    w.policy["mode"] = mode
    return w, gws, domains


def ledger(tmp):
    path = os.path.join(tmp, "state", "ledger.json")
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        doc = json.load(f)
    return {(e["certificate_id"], e["instance_id"], e["domain"])
            for e in doc["entries"]}


def pairs(state_set, cert_id):
    """{(instance_id, domain)} of one certificate in a sim state set."""
    return {(b[1], b[2]) for b in state_set if b[0] == cert_id}


class PlanTest(SimTestCase):
    def test_exit_codes_and_json(self):
        w, gws, domains = world(self.tmp)
        sim, cfg = self.start(w)

        r = certbind("plan", "-c", cfg)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("attach", r.stdout)
        self.assertIn("d0.c0.example.com", r.stdout)

        r = certbind("plan", "-c", cfg, "--json")
        self.assertEqual(r.rc, 2, r)
        doc = json.loads(r.stdout)
        self.assertRegex(doc["checksum"], r"^[0-9a-f]{64}$")
        self.assertEqual(doc["summary"]["attach"], len(domains) * len(gws))
        got = {(c["op"], c["instance_id"], c["domain"]) for c in doc["changes"]}
        want = {("attach", w.gateways[g]["instance_id"], d)
                for g in gws for d in domains}
        self.assertEqual(got, want)
        # plan never writes
        self.assertEqual(sim.stats()["writes_total"], 0)

        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        r = certbind("plan", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        r = certbind("plan", "-c", cfg, "--json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(json.loads(r.stdout)["changes"], [])

    def test_api_error_exits_1(self):
        w, _, _ = world(self.tmp)
        w.retry = {"max_attempts": 2, "base_delay_ms": 10, "max_delay_ms": 50}
        sim, cfg = self.start(w)
        sim.faults({"errors": [{"op": "list", "rate": 1, "status": 500,
                                "code": "APIG.9999"}]})
        r = certbind("plan", "-c", cfg)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("APIG.9999", r.stdout + r.stderr)
        self.assertEqual(sim.stats()["writes_total"], 0)

    def test_invalid_file_exits_3(self):
        w, _, _ = world(self.tmp)
        sim, cfg = self.start(w)
        with open(cfg) as f:
            text = f.read()
        with open(cfg, "w") as f:
            f.write(text.replace("policy:\n", "policy:\n  bogus_key: 1\n"))
        r = certbind("plan", "-c", cfg)
        self.assertEqual(r.rc, 3, r)
        self.assertRegex(r.stderr, re.escape(cfg) + r":\d+:\d+: ")
        self.assertIn("bogus_key", r.stderr)
        self.assertEqual(sim.stats()["requests"], 0)

    def test_out_then_apply_plan(self):
        w, _, _ = world(self.tmp)
        sim, cfg = self.start(w)
        plan = os.path.join(self.tmp, "plan.json")
        r = certbind("plan", "-c", cfg, "--out", plan)
        self.assertEqual(r.rc, 2, r)
        with open(plan) as f:
            doc = json.load(f)
        self.assertRegex(doc["checksum"], r"^[0-9a-f]{64}$")
        self.assertEqual(len(doc["changes"]), 8)
        r = certbind("apply", "-c", cfg, "--plan", plan)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(w.binding_set(), sim.state_set())

    def test_apply_plan_refused_when_live_state_moved(self):
        w, gws, domains = world(self.tmp)
        sim, cfg = self.start(w)
        plan = os.path.join(self.tmp, "plan.json")
        r = certbind("plan", "-c", cfg, "--out", plan)
        self.assertEqual(r.rc, 2, r)

        # someone else attaches one binding in the meantime: a second file
        other = World(self.tmp)
        other.accounts, other.gateways, other.certs = w.accounts, w.gateways, w.certs
        other.endpoint = w.endpoint
        other.want("cert-0", gws[:1], domains[:1])
        other.daemon = {"state_dir": os.path.join(self.tmp, "other-state")}
        ocfg = other.write_yaml(sim.ca, name="other.yaml")
        r = certbind("apply", "-c", ocfg)
        self.assertEqual(r.rc, 0, r)
        writes = sim.stats()["writes_total"]
        before = sim.state_set()

        r = certbind("apply", "-c", cfg, "--plan", plan)
        self.assertEqual(r.rc, 4, r)
        self.assertIn("changed since the plan", r.stdout + r.stderr)
        self.assertEqual(sim.stats()["writes_total"], writes)
        self.assertEqual(sim.state_set(), before)

    def test_apply_plan_refused_when_file_changed(self):
        w, _, _ = world(self.tmp)
        sim, cfg = self.start(w)
        plan = os.path.join(self.tmp, "plan.json")
        r = certbind("plan", "-c", cfg, "--out", plan)
        self.assertEqual(r.rc, 2, r)
        with open(cfg, "a") as f:
            f.write("# an edit after the plan was made\n")
        r = certbind("apply", "-c", cfg, "--plan", plan)
        self.assertEqual(r.rc, 4, r)
        self.assertEqual(sim.stats()["writes_total"], 0)
        self.assertEqual(sim.state_set(), set())

    def test_apply_plan_rejects_a_broken_plan_file(self):
        w, _, _ = world(self.tmp)
        sim, cfg = self.start(w)
        plan = os.path.join(self.tmp, "plan.json")
        with open(plan, "w") as f:
            f.write('{"version": 1}')
        r = certbind("apply", "-c", cfg, "--plan", plan)
        self.assertNotEqual(r.rc, 0, r)
        self.assertEqual(sim.stats()["writes_total"], 0)


class SyncTest(SimTestCase):
    def owned_world(self, ndomains=4, **kw):
        """Sync mode; one binding pre-bound in the seed (not certbind's)."""
        w, gws, domains = world(self.tmp, ndomains=ndomains, mode="sync",
                                registered_extra=["pre.c0.example.com"], **kw)
        w.bind("cert-0", "edge-0", "pre.c0.example.com")
        return w, gws, domains

    def test_detaches_only_what_it_attached(self):
        w, gws, domains = self.owned_world()
        cid = w.certs["cert-0"]["id"]
        e0 = w.gateways["edge-0"]["instance_id"]
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        # every confirmed attach is in the ledger, the pre-bound one is not
        want = {(cid, w.gateways[g]["instance_id"], d) for g in gws for d in domains}
        self.assertEqual(ledger(self.tmp), want)
        self.assertIn((e0, "pre.c0.example.com"), pairs(sim.state_set(), cid))

        # the file drops d3 (and never wanted pre.): only d3 goes
        w.wanted[0]["domains"] = domains[:3]
        w.policy["max_detach_ratio"] = 0.5
        cfg = w.write_yaml(sim.ca)
        r = certbind("plan", "-c", cfg)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("detach", r.stdout)
        self.assertNotIn("pre.c0.example.com", r.stdout)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        live = pairs(sim.state_set(), cid)
        self.assertIn((e0, "pre.c0.example.com"), live)
        self.assertEqual({p for p in live if p[1] == domains[3]}, set())
        self.assertEqual(len(live), 2 * 3 + 1)
        self.assertEqual({e for e in ledger(self.tmp) if e[2] == domains[3]}, set())
        self.assertEqual(len(ledger(self.tmp)), 6)
        det = [e for e in r.events() if e["event"] == "write.ok"
               and e.get("op") == "detach"]
        self.assertTrue(det, r)
        r = certbind("plan", "-c", cfg)
        self.assertEqual(r.rc, 0, r)

    def test_upsert_never_detaches(self):
        w, gws, domains = self.owned_world()
        cid = w.certs["cert-0"]["id"]
        w.policy["mode"] = "upsert"
        sim, cfg = self.start(w)
        self.assertEqual(certbind("apply", "-c", cfg).rc, 0)
        w.wanted[0]["domains"] = domains[:1]
        cfg = w.write_yaml(sim.ca)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len(pairs(sim.state_set(), cid)), 2 * 4 + 1)
        self.assertEqual(sim.stats()["by_op"]["detach"], {})

    def test_already_detached_counts_as_done(self):
        w, gws, domains = self.owned_world()
        w.policy["max_detach_ratio"] = 1.0
        sim, cfg = self.start(w)
        self.assertEqual(certbind("apply", "-c", cfg).rc, 0)
        w.wanted[0]["domains"] = domains[:3]
        cfg = w.write_yaml(sim.ca)
        sim.faults({"errors": [{"op": "detach", "rate": 1, "status": 400,
                                "code": "APIG.2000"}]})
        r = certbind("apply", "-c", cfg, "--log-format", "json")
        self.assertEqual(r.rc, 0, r)
        ok = [e for e in r.events() if e["event"] == "write.ok"
              and e.get("op") == "detach"]
        self.assertTrue(ok, r)
        self.assertEqual(ok[0]["error_code"], "APIG.2000")
        self.assertFalse([e for e in r.events() if e["event"] == "write.failed"])
        # done: the ledger no longer claims it
        self.assertEqual({e for e in ledger(self.tmp) if e[2] == domains[3]}, set())

    def test_max_detach_count_guard(self):
        w, gws, domains = self.owned_world(ndomains=6)
        cid = w.certs["cert-0"]["id"]
        w.policy["max_detach_count"] = 3
        w.policy["max_detach_ratio"] = 1.0
        sim, cfg = self.start(w)
        self.assertEqual(certbind("apply", "-c", cfg).rc, 0)
        owned = ledger(self.tmp)
        w.wanted[0]["domains"] = domains[:4]  # 2 domains x 2 gateways = 4
        cfg = w.write_yaml(sim.ca)
        writes = sim.stats()["writes_total"]
        before = sim.state_set()
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 4, r)
        self.assertIn("max_detach_count", r.stdout + r.stderr)
        self.assertEqual(sim.stats()["writes_total"], writes)
        self.assertEqual(sim.state_set(), before)
        self.assertEqual(ledger(self.tmp), owned)
        self.assertEqual(len(pairs(before, cid)), 13)
        # within the guard it goes through
        w.policy["max_detach_count"] = 4
        cfg = w.write_yaml(sim.ca)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len(pairs(sim.state_set(), cid)), 9)

    def test_max_detach_ratio_guard(self):
        w, gws, domains = self.owned_world(ndomains=4)
        w.policy["max_detach_count"] = 100
        w.policy["max_detach_ratio"] = 0.3
        sim, cfg = self.start(w)
        self.assertEqual(certbind("apply", "-c", cfg).rc, 0)
        w.wanted[0]["domains"] = domains[:2]  # 4 of 9 live: 44 % > 30 %
        cfg = w.write_yaml(sim.ca)
        writes = sim.stats()["writes_total"]
        r = certbind("apply", "-c", cfg, "--log-format", "json")
        self.assertEqual(r.rc, 4, r)
        self.assertIn("max_detach_ratio", r.stdout + r.stderr)
        self.assertTrue([e for e in r.events() if e["event"] == "guard.refused"])
        self.assertEqual(sim.stats()["writes_total"], writes)
        # plan shows the detaches and says that apply would refuse them
        r = certbind("plan", "-c", cfg)
        self.assertEqual(r.rc, 4, r)
        self.assertIn("detach", r.stdout)
        self.assertIn("apply would refuse: 4 detaches of 9 live bindings "
                      "exceed policy.max_detach_ratio 0.30", r.stdout)

    def test_corrupt_ledger_detaches_nothing(self):
        w, gws, domains = self.owned_world()
        cid = w.certs["cert-0"]["id"]
        w.policy["max_detach_ratio"] = 1.0
        sim, cfg = self.start(w)
        self.assertEqual(certbind("apply", "-c", cfg).rc, 0)
        path = os.path.join(self.tmp, "state", "ledger.json")
        with open(path, "w") as f:
            f.write("{not json")
        w.wanted[0]["domains"] = domains[:3]
        cfg = w.write_yaml(sim.ca)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(len(pairs(sim.state_set(), cid)), 9, r)
        with open(path) as f:
            self.assertEqual(f.read(), "{not json")


class StatusMetricsTest(SimTestCase):
    def test_status_and_metrics_after_a_pass(self):
        w, gws, domains = world(self.tmp, ndomains=3)
        w.wanted[0]["domains"].append("bad.c0.example.com")  # 404 APIG.3020
        prom = os.path.join(self.tmp, "certbind.prom")
        w.daemon["metrics_file"] = prom
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 1, r)
        state = os.path.join(self.tmp, "state")

        r = certbind("status", "--state-dir", state)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("bad.c0.example.com", r.stdout)
        self.assertIn("APIG.3020", r.stdout)
        self.assertRegex(r.stdout, r"\b6\b")  # six converged

        r = certbind("status", "--state-dir", state, "--json")
        self.assertEqual(r.rc, 0, r)
        st = json.loads(r.stdout)
        states = {}
        for b in st["bindings"]:
            states[b["state"]] = states.get(b["state"], 0) + 1
        self.assertEqual(states, {"converged": 6, "failed": 2})
        failed = [b for b in st["bindings"] if b["state"] == "failed"]
        self.assertEqual({b["error_code"] for b in failed}, {"APIG.3020"})

        with open(prom) as f:
            text = f.read()
        for series in ('certbind_bindings{state="converged"} 6',
                       'certbind_bindings{state="failed"} 2',
                       'certbind_bindings{state="pending"} 0'):
            self.assertIn(series, text)
        self.assertRegex(text, r'certbind_requests_total\{op="attach",code="[^"]+"\} \d+')
        self.assertRegex(text, r'certbind_requests_total\{op="list",code="[^"]+"\} \d+')
        for name in ("certbind_retries_total", "certbind_pass_duration_seconds",
                     "certbind_last_success_timestamp_seconds"):
            self.assertRegex(text, r"(?m)^%s(\{[^}]*\})? [0-9.e+]+$" % name)

    def test_status_without_a_pass(self):
        r = certbind("status", "--state-dir", os.path.join(self.tmp, "none"))
        self.assertEqual(r.rc, 1, r)
        self.assertIn("status.json", r.stderr)


if __name__ == "__main__":
    unittest.main()
