# SPDX-License-Identifier: MIT
"""The daemon keeps id certificates' Shows across passes: its second pass
sends no Show (apig-sim's request counts by op), while a one-shot apply
always shows. With policy.verify, a gateway serving a leaf other than a
kept Show is unknown (not a mismatch from stale data), and the next pass
shows the certificate again."""
import signal
import unittest

from harness import certbind
from test_daemon import DaemonTestCase, daemon_world
import test_verify  # not its classes: unittest would run their tests here


def shows(sim):
    return sum(sim.stats()["by_op"].get("show", {}).values())


class KeptShowTest(DaemonTestCase):
    def test_second_pass_sends_no_show_and_apply_always_shows(self):
        w, domains = daemon_world(self.tmp)
        # apig-sim's certificates end a year from now: beyond the default
        # expiry_warning_days, so a kept Show may stand for a new one
        sim, cfg = self.start(w)
        d = self.run_daemon(cfg, level="debug")
        d.wait_pass()
        first = shows(sim)
        self.assertEqual(first, len(w.certs))  # one per id certificate
        self.assertEqual(d.named("certificate.show_cached"), [])

        m = d.mark()
        d.signal(signal.SIGHUP)
        d.wait_pass(m)
        self.assertEqual(shows(sim), first)
        cached = d.named("certificate.show_cached", m)
        self.assertEqual(len(cached), len(w.certs))
        self.assertTrue(all(e["age_s"] >= 0 for e in cached), cached)
        d.stop()

        # a one-shot command never keeps a Show: each certificate again
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(shows(sim), first + len(w.certs))


class KeptShowVerifyTest(DaemonTestCase):
    world = test_verify.VerifyTest.world
    start_dp = test_verify.VerifyTest.start_dp

    def setUp(self):
        super().setUp()
        test_verify.make_leaf(self)

    def test_served_leaf_other_than_kept_show_is_unknown_then_shown(self):
        w = self.world({"verify": "every_pass", "confirm_timeout_s": 1,
                        "expiry_warning_days": 0}, managed=False)
        sim, cfg = self.start_dp(w)
        d = self.run_daemon(cfg, level="debug")
        d.wait_pass()
        first = shows(sim)
        self.assertEqual(first, 1)
        self.assertEqual(d.named("verify.mismatch"), [])
        self.assertEqual(len(d.named("verify.ok")), 6)

        # gw-b now serves another leaf: the kept Show may be what is stale
        sim.faults({"stale_gateway": w.gateways["gw-b"]["instance_id"]})
        m = d.mark()
        d.signal(signal.SIGHUP)
        d.wait_pass(m)
        self.assertEqual(shows(sim), first)  # the kept Show stood for it
        self.assertEqual(len(d.named("certificate.show_cached", m)), 1)
        bad = d.named("verify.mismatch", m)
        self.assertEqual(len(bad), 3, bad)
        for e in bad:
            self.assertEqual(e["gateway"], "gw-b")
            self.assertIn("unknown", e["msg"])
            self.assertNotIn("mismatch:", e["msg"])
            self.assertIn("shown again next pass", e["msg"])

        # the next pass shows it again: then a mismatch, judged fresh
        m = d.mark()
        d.signal(signal.SIGHUP)
        d.wait_pass(m)
        self.assertEqual(shows(sim), first + 1)
        self.assertEqual(d.named("certificate.show_cached", m), [])
        bad = d.named("verify.mismatch", m)
        self.assertTrue(bad)
        self.assertTrue(all(" mismatch: " in e["msg"] for e in bad), bad)


if __name__ == "__main__":
    unittest.main()
