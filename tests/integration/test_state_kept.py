# SPDX-License-Identifier: MIT
"""A pass that is interrupted never erases what an earlier pass knew
(issue 13, item 7): the bindings it did not reach keep their last state in
status.json (a permanent failure stays failed with its error, converged
ones stay converged), and the certbind_bindings gauges are counted from
that, not zeroed. Interruptions: SIGTERM while the live state is being read
(apply and run), and a guard's refusal (sync mode, max_detach_count)."""
import json
import os
import re
import unittest

import harness
from harness import SimTestCase, World, certbind

BAD = "bad.c0.example.com"  # wanted, but registered on no gateway: 404
NCERTS, NDOMAINS = 3, 3
# every API request takes this long in the interrupted pass, so that the
# signal lands while its reads are still out
LATENCY_MS = 1500


def world(tmp):
    w = World(tmp)
    w.account("prod")
    w.gateway("edge-0", "prod", [])
    for c in range(NCERTS):
        zone = "c%d.example.com" % c
        doms = ["d%d.%s" % (i, zone) for i in range(NDOMAINS)]
        w.gateways["edge-0"]["domains"] += doms
        w.certificate("cert-%d" % c, "prod", ["*." + zone])
        w.want("cert-%d" % c, ["edge-0"], doms + ([BAD] if c == 0 else []))
    w.retry = {"max_attempts": 3, "base_delay_ms": 20, "max_delay_ms": 200}
    w.daemon = {"metrics_file": os.path.join(tmp, "certbind.prom")}
    return w


def load(path):
    with open(path) as f:
        return json.load(f)


def gauges(path):
    with open(path) as f:
        text = f.read()
    return {m.group(1): float(m.group(2)) for m in re.finditer(
        r'(?m)^certbind_bindings\{state="(\w+)"\} (\S+)$', text)}


class StateKeptTest(SimTestCase):
    def known_state(self):
        """apply: every binding converged but one permanent failure."""
        w = world(self.tmp)
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 1, r)  # the impossible binding
        self.state = os.path.join(self.tmp, "state")
        self.status = os.path.join(self.state, "status.json")
        self.prom = w.daemon["metrics_file"]
        st = load(self.status)
        self.assert_known(st)
        return w, sim, cfg

    def assert_known(self, st):
        by = {b["domain"]: b for b in st["bindings"]}
        self.assertEqual(len(by), NCERTS * NDOMAINS + 1, st)
        self.assertEqual(by[BAD]["state"], "failed", st)
        self.assertEqual(by[BAD]["error_code"], "APIG.3020", st)
        self.assertTrue(by[BAD]["error_msg"], st)
        self.assertGreaterEqual(by[BAD]["attempts"], 1, st)
        good = [b for d, b in by.items() if d != BAD]
        self.assertEqual({b["state"] for b in good}, {"converged"}, st)

    def assert_gauges_kept(self):
        g = gauges(self.prom)
        self.assertEqual(g, {"converged": NCERTS * NDOMAINS, "failed": 1,
                             "pending": 0}, g)

    def interrupt_while_reading(self, sim, cmd, cfg):
        """Start `cmd`, SIGTERM it once its first list request is out
        (each takes LATENCY_MS), return (rc, stderr)."""
        sim.faults({"latency": {"kind": "fixed", "ms": LATENCY_MS}})
        lists = sim.stats()["by_op"].get("list", {})
        before = sum(lists.values())
        r, _ = harness.certbind_signalled(
            cmd, "-c", cfg, "--log-format", "json", wait=60,
            what="a request in flight",
            ready=lambda: sim.stats()["in_flight"] > 0)
        sim.faults({})
        lists = sim.stats()["by_op"].get("list", {})
        self.assertGreater(sum(lists.values()), before)
        return r.rc, r.stderr

    def check_interrupted(self, rc, err, want_rc):
        self.assertEqual(rc, want_rc, err[-3000:])
        st = load(self.status)
        self.assertEqual(st["pass"]["outcome"], "interrupted", err[-3000:])
        self.assert_known(st)
        self.assert_gauges_kept()
        # `certbind status` says the same
        r = certbind("status", "--state-dir", self.state)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("9 converged, 0 pending, 1 failed", r.stdout)
        self.assertIn("APIG.3020", r.stdout)

    def test_sigterm_during_apply_keeps_known_state(self):
        w, sim, cfg = self.known_state()
        rc, err = self.interrupt_while_reading(sim, "apply", cfg)
        self.check_interrupted(rc, err, 1)

    def test_sigterm_during_run_keeps_known_state(self):
        w, sim, cfg = self.known_state()
        rc, err = self.interrupt_while_reading(sim, "run", cfg)
        self.check_interrupted(rc, err, 0)

    def test_refused_pass_keeps_known_state(self):
        """Sync mode, a guard refuses the pass: nothing is written, the
        refusal is recorded, and the known failure is still there."""
        w = world(self.tmp)
        extra = ["x%d.c1.example.com" % i for i in range(3)]
        w.gateways["edge-0"]["domains"] += extra
        w.wanted[1]["domains"] += extra
        w.policy.update({"mode": "sync", "max_detach_count": 1,
                         "max_detach_ratio": 1.0})
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 1, r)
        self.state = os.path.join(self.tmp, "state")
        self.status = os.path.join(self.state, "status.json")
        self.prom = w.daemon["metrics_file"]
        self.assertEqual(gauges(self.prom)["failed"], 1)
        # the file drops the three extra domains: three detaches > 1
        w.wanted[1]["domains"] = w.wanted[1]["domains"][:NDOMAINS]
        cfg = w.write_yaml(sim.ca)
        writes = sim.stats()["writes_total"]
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 4, r)
        self.assertEqual(sim.stats()["writes_total"], writes)
        st = load(self.status)
        self.assertEqual(st["pass"]["outcome"], "refused", st)
        by = {b["domain"]: b for b in st["bindings"]}
        self.assertEqual(by[BAD]["state"], "failed", st)
        self.assertEqual(by[BAD]["error_code"], "APIG.3020", st)
        for d in extra:  # planned, refused: still to do
            self.assertEqual(by[d]["state"], "pending", st)
        good = [b for d, b in by.items() if d != BAD and d not in extra]
        self.assertEqual(len(good), NCERTS * NDOMAINS)
        self.assertEqual({b["state"] for b in good}, {"converged"}, st)
        g = gauges(self.prom)
        self.assertEqual(g, {"converged": NCERTS * NDOMAINS, "failed": 1,
                             "pending": 3}, g)


if __name__ == "__main__":
    unittest.main()
