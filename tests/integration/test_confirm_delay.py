# SPDX-License-Identifier: MIT
"""policy.confirm_delay_ms: the wait before a certificate's first
confirmation read (config key, default 1000 ms; 0 for apig-sim and the
benchmarks). The bounds asserted hold on any machine: a pass cannot end
before its configured delay, and with no delay it does not wait for it."""
import unittest

from harness import SimTestCase, World, certbind, scaled


def world(tmp, delay_ms):
    w = World(tmp)
    w.account("prod")
    domains = ["d%d.example.com" % i for i in range(6)]
    w.gateway("edge", "prod", domains)
    w.certificate("star", "prod", ["*.example.com"])
    w.want("star", ["edge"], domains)
    if delay_ms is not None:
        w.policy["confirm_delay_ms"] = delay_ms
    return w


class ConfirmDelayTest(SimTestCase):
    def run_pass(self, delay_ms):
        w = world(self.tmp, delay_ms)
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg, "--log-format", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(w.binding_set(), sim.state_set())
        done = [e for e in r.events() if e["event"] == "pass.done"][0]
        # one read, the certificate's Show, one write, one confirmation:
        # the first re-read showed it
        self.assertEqual(done["requests"], 4, done)
        return done["duration_ms"]

    def test_configured_delay_is_waited(self):
        self.assertGreaterEqual(self.run_pass(2500), 2500)

    def test_zero_delay_confirms_at_once(self):
        # an upper bound on time: stretched under valgrind (the plain and
        # ASan stages keep it below the delay it must not wait for)
        self.assertLess(self.run_pass(0), scaled(2500))

    def test_default_is_one_second(self):
        self.assertGreaterEqual(self.run_pass(None), 1000)


if __name__ == "__main__":
    unittest.main()
