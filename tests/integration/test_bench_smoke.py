# SPDX-License-Identifier: MIT
"""A small version of benchmark scenario 1 (bench/bench.py): N bindings on
N certificates through apig-sim with latency, many in flight. Asserts the
run is correct and that the benchmark's own accounting holds (requests the
pass needs, connection reuse, the pass.done fields the report reads), not
its speed."""
import argparse
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
import bench  # noqa: E402
import harness  # noqa: E402


class BenchSmokeTest(unittest.TestCase):
    def setUp(self):
        self.work = os.path.abspath(
            os.path.join(os.environ.get("CERTBIND_TEST_LOGS", "/tmp"),
                         "..", "bench-smoke"))
        os.makedirs(self.work, exist_ok=True)
        # the environment of ctest names the binaries exactly
        exe = (os.environ["CERTBIND"], os.environ["APIG_SIM"],
               os.environ["MAKE_CERTS"])
        self.tools = bench.Tools("/nonexistent", node=False, curl=False)
        self.tools.certbind, self.tools.sim, self.tools.make_certs = exe
        harness.CERTBIND, harness.APIG_SIM, harness.MAKE_CERTS = exe

    def test_throughput_scenario_small(self):
        n, in_flight = 300, 32
        args = argparse.Namespace(keep=False, confirm_delay_ms=None)
        res = bench.scenario_throughput(
            self.tools, self.work, n, args, competitors_too=False,
            latency_ms=10,
            limits={"requests_per_second": 10000, "burst": 10000,
                    "max_in_flight": in_flight})
        c = res["certbind"]
        self.assertEqual(c["rc"], 0, c)
        self.assertEqual(c["missing"], 0, c)
        # exactly the requests the ideal counts: read, the certificate's
        # Show, write, confirmation
        self.assertEqual(res["requests_needed"], 4 * n)
        self.assertEqual(c["requests"], 4 * n, c["sim"])
        self.assertEqual(c["sim"].get("attach 204"), n, c["sim"])
        self.assertEqual(c["writes_noop"], 0)
        self.assertEqual(c["peak_writes_per_cert"], 1)
        self.assertLessEqual(c["peak_concurrent"], in_flight)
        done = c["pass_done"]
        self.assertEqual(done["attached"], n, done)
        self.assertEqual(done["requests"], 4 * n, done)
        # connections are reused: no TLS handshake per request
        self.assertLessEqual(done["connections"], in_flight + 4, done)
        self.assertGreater(done["duration_ms"], 0)
        self.assertLessEqual(done["duration_ms"], c["wall_s"] * 1000 + 1)
        self.assertGreater(c["cpu_s"], 0)
        self.assertGreater(c["rss_kib"], 0)
        md = bench.report({"throughput": res},
                          {"date": "-", "machine": "-", "load_before": "-"})
        self.assertIn("Scenario 1", md)

    def test_rate_windows(self):
        self.assertEqual(bench.windows([0.0, 0.5, 0.99, 1.0, 1.5]), 3)
        self.assertEqual(bench.windows([]), 0)


if __name__ == "__main__":
    unittest.main()
