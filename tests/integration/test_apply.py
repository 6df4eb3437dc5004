# SPDX-License-Identifier: MIT
"""certbind apply against apig-sim over HTTPS: the engine (issue 4)."""
import json
import os
import unittest

from harness import SimTestCase, World, certbind


def small_world(tmp, ncerts=3, ndomains=4, ngws=2, bad=None):
    w = World(tmp)
    w.account("prod")
    gws = ["edge-%d" % g for g in range(ngws)]
    for c in range(ncerts):
        zone = "c%d.example.com" % c
        domains = ["d%d.%s" % (i, zone) for i in range(ndomains)]
        for g in gws:
            if g not in w.gateways:
                w.gateway(g, "prod", [])
            w.gateways[g]["domains"] += domains
        w.certificate("cert-%d" % c, "prod", ["*." + zone])
        want = list(domains)
        if bad and c == 0:
            want.append(bad)  # not registered on any gateway: 404 APIG.3020
        w.want("cert-%d" % c, gws, want)
    return w


class ApplyTest(SimTestCase):
    def test_converges_and_second_pass_writes_nothing(self):
        w = small_world(self.tmp)
        c0 = w.certs["cert-0"]["id"]
        w.bind("cert-0", "edge-0", "d0.c0.example.com")  # already in place
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("unchanged", r.stdout)
        self.assertTrue(w.binding_set() <= sim.state_set())
        stats = sim.stats()
        self.assertEqual(stats["auth_failures"], 0)
        # the binding already in place was never written again
        self.assertEqual(stats["writes_noop"], 0, stats)
        writes = stats["writes_total"]
        self.assertEqual(stats["peak_concurrent_writes_max"], 1)

        r = certbind("plan", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(sim.stats()["writes_total"], writes)
        self.assertTrue(c0)

    def test_batches_per_certificate(self):
        w = small_world(self.tmp, ncerts=1, ndomains=5, ngws=2)
        w.policy["batch_size"] = 2
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        # 5 domains, each with both gateways in one entry: 3 requests
        self.assertEqual(sim.stats()["writes_total"], 3)
        self.assertEqual(w.binding_set(), sim.state_set())

    def test_permanent_404_inside_a_batch_is_isolated(self):
        w = small_world(self.tmp, ncerts=2, ndomains=6, bad="bad.c0.example.com")
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("bad.c0.example.com", r.stdout)
        self.assertIn("APIG.3020", r.stdout)
        good = {b for b in w.binding_set() if b[2] != "bad.c0.example.com"}
        self.assertTrue(good <= sim.state_set())
        failed = [e for e in r.events() if e["event"] == "write.failed"]
        self.assertTrue(failed)
        self.assertEqual(failed[-1]["error_code"], "APIG.3020")
        self.assertEqual(failed[-1]["domains"], ["bad.c0.example.com"])
        self.assertTrue(failed[-1]["request_id"])
        st = json.load(open(os.path.join(self.tmp, "state", "status.json")))
        bad = [b for b in st["bindings"] if b["state"] == "failed"]
        self.assertEqual({b["domain"] for b in bad}, {"bad.c0.example.com"})
        self.assertEqual(bad[0]["error_code"], "APIG.3020")

    def test_json_logs_carry_the_spec_fields(self):
        w = small_world(self.tmp, ncerts=1)
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg, "--log-format", "json")
        self.assertEqual(r.rc, 0, r)
        ev = r.events()
        names = [e["event"] for e in ev]
        for n in ("pass.start", "plan", "write.ok", "confirm.ok", "pass.done"):
            self.assertIn(n, names)
        for e in ev:
            self.assertIn("ts", e)
            self.assertIn("level", e)
        ok = [e for e in ev if e["event"] == "write.ok"][0]
        for k in ("account", "certificate", "domains", "op", "attempt",
                  "http_status", "request_id", "latency_ms"):
            self.assertIn(k, ok)
        done = [e for e in ev if e["event"] == "pass.done"][0]
        self.assertEqual(done["failed"], 0)
        self.assertEqual(done["attached"], 8)

    def test_many_pages_read_in_parallel_with_faults(self):
        """A certificate with more than one page (500 entries) of live
        bindings: the pages after the first are read at once, a failing
        page is retried alone, and the result is complete."""
        w = small_world(self.tmp, ncerts=1, ndomains=300, ngws=2)
        for d in range(260):  # 520 entries already live: two pages
            for g in ("edge-0", "edge-1"):
                w.bind("cert-0", g, "d%d.c0.example.com" % d)
        w.faults = {"errors": [{"op": "list", "rate": 0.3, "status": 500,
                                "code": "APIG.9999"}]}
        w.policy["batch_size"] = 50
        sim, cfg = self.start(w, extra=("--seed", "7"))
        r = certbind("apply", "-c", cfg, "--log-format", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(w.binding_set(), sim.state_set())
        done = [e for e in r.events() if e["event"] == "pass.done"][0]
        self.assertEqual(done["unchanged"], 520)
        self.assertEqual(done["attached"], 80)
        by_op = sim.stats()["by_op"]["list"]
        self.assertGreaterEqual(by_op.get("200", 0), 4)  # 2 pages, twice
        self.assertGreater(by_op.get("500", 0), 0)  # faults did happen
        # nothing already in place was written again
        self.assertEqual(sim.stats()["writes_noop"], 0)

    def test_dry_run_writes_nothing(self):
        w = small_world(self.tmp, ncerts=1)
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg, "--dry-run")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("dry run", r.stdout)
        self.assertEqual(sim.stats()["writes_total"], 0)
        self.assertEqual(sim.state_set(), set())


if __name__ == "__main__":
    unittest.main()
