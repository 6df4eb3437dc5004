# SPDX-License-Identifier: MIT
"""Writes reuse kept-alive connections, yet curl never re-sends one by
itself (http.h no_resend): a write whose connection dies after the server
applied it is re-read, not sent again. Guards the performance fix that
replaced a fresh TLS connection per write (bench/RESULTS.md)."""
import unittest

from harness import SimTestCase, World, certbind


def world(tmp, ncerts):
    w = World(tmp)
    w.account("prod", limits={"requests_per_second": 1000, "burst": 1000,
                              "max_in_flight": 4})
    domains = ["d.c%d.example.com" % c for c in range(ncerts)]
    w.gateway("edge", "prod", domains)
    for c in range(ncerts):
        w.certificate("cert-%d" % c, "prod", ["*.c%d.example.com" % c])
        w.want("cert-%d" % c, ["edge"], [domains[c]])
    return w


class NoResendTest(SimTestCase):
    def test_writes_reuse_connections(self):
        w = world(self.tmp, 40)
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg, "--log-format", "json")
        self.assertEqual(r.rc, 0, r)
        done = [e for e in r.events() if e["event"] == "pass.done"][0]
        # 40 reads + 40 Shows + 40 writes + 40 confirmations over at most 4
        # at a time: a handshake per write would be >= 40 connections
        self.assertEqual(done["requests"], 160, done)
        self.assertLess(done["connections"], 20, done)

    def test_reset_after_apply_on_reused_connection_is_not_resent(self):
        # Every attach is applied, then its connection is closed without a
        # response. On a reused connection curl 7.88 would re-send the POST
        # (up to 5 times); with no_resend it fails, the pass re-reads and
        # finds the binding in place.
        w = world(self.tmp, 12)
        w.faults = {"reset_after_apply": {"op": "attach", "rate": 1.0}}
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg, "--log-format", "json")
        self.assertEqual(r.rc, 0, r)
        st = sim.stats()
        self.assertEqual(w.binding_set(), sim.state_set())
        attach = sum(st["by_op"]["attach"].values())
        self.assertEqual(attach, 12, st)  # each write reached the server once
        self.assertEqual(st["writes_total"], 12, st)
        self.assertEqual(st["writes_noop"], 0, st)
        unknown = [e for e in r.events() if e["event"] == "write.retry"
                   and "outcome unknown" in e.get("msg", "")]
        self.assertEqual(len(unknown), 12, r)


if __name__ == "__main__":
    unittest.main()
