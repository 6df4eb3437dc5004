# SPDX-License-Identifier: MIT
"""The daemon keeps id certificates' Shows across passes: its second pass
sends no Show (apig-sim's request counts by op), while a one-shot apply
always shows."""
import signal
import unittest

from harness import certbind
from test_daemon import DaemonTestCase, daemon_world


def shows(sim):
    return sum(sim.stats()["by_op"].get("show", {}).values())


class KeptShowTest(DaemonTestCase):
    def test_second_pass_sends_no_show_and_apply_always_shows(self):
        w, domains = daemon_world(self.tmp)
        # the simulator's certificates end on 2027-01-01: outside one day
        # of warning, a kept Show may stand for a new one
        w.policy["expiry_warning_days"] = 1
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


if __name__ == "__main__":
    unittest.main()
