# SPDX-License-Identifier: MIT
"""Certificate rollouts against apig-sim (issue 5): a domain moved old ->
new in sync mode never passes through an unbound state, and staged
rollouts run wave by wave, confirmed, with an abort on failures."""
import datetime
import json
import os
import unittest

from harness import SimTestCase, World, certbind, scaled


def ts(event):
    return datetime.datetime.strptime(event["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")


def ledger(tmp):
    path = os.path.join(tmp, "state", "ledger.json")
    with open(path) as f:
        return {(e["certificate_id"], e["instance_id"], e["domain"])
                for e in json.load(f)["entries"]}


class RolloutTest(SimTestCase):
    def test_old_to_new_never_unbound(self):
        w = World(self.tmp)
        w.account("prod")
        domains = ["svc%02d.roll.example.com" % i for i in range(20)]
        gws = ["edge-%d" % g for g in range(3)]
        for g in gws:
            w.gateway(g, "prod", domains + ["keep.roll.example.com"])
        old = w.certificate("old-2025", "prod", ["*.roll.example.com"])
        new = w.certificate("new-2026", "prod", ["*.roll.example.com"])
        w.want("old-2025", gws, domains)
        w.policy.update({"mode": "sync", "batch_size": 7,
                         "max_detach_ratio": 0.3})
        # a binding of the old certificate certbind did not make
        w.bind("old-2025", "edge-0", "keep.roll.example.com")
        w.settings["visibility_delay_ms"] = 300
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len([e for e in ledger(self.tmp) if e[0] == old]), 60)
        self.assertEqual(sim.stats()["unbound_transitions"], 0)

        # the rollout: every domain now wants the new certificate
        w.wanted[0]["certificate"] = "new-2026"
        cfg = w.write_yaml(sim.ca)
        r = certbind("plan", "-c", cfg, "--json")
        self.assertEqual(r.rc, 2, r)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["summary"]["detach"], 0, doc["summary"])
        # each is a move from the old certificate, counted apart
        self.assertEqual(doc["summary"]["attach"], 0)
        self.assertEqual(doc["summary"]["move"], 60)
        self.assertEqual({c["from"]["certificate"] for c in doc["changes"]},
                         {"old-2025"})

        r = certbind("apply", "-c", cfg, "--log-format", "json")
        self.assertEqual(r.rc, 0, r)
        stats = sim.stats()
        self.assertEqual(stats["unbound_transitions"], 0, stats)
        self.assertEqual(stats["by_op"]["detach"], {}, stats)
        state = sim.state()["bindings"]
        on_old = {(b["instance_id"], b["domain"]) for b in state
                  if b["certificate_id"] == old}
        on_new = {(b["instance_id"], b["domain"]) for b in state
                  if b["certificate_id"] == new}
        self.assertEqual(on_old, {(w.gateways["edge-0"]["instance_id"],
                                   "keep.roll.example.com")})
        self.assertEqual(len(on_new), 60)

        # the old certificate's ledger entries go once the move shows (in
        # the same pass), the new one owns them
        owned = ledger(self.tmp)
        self.assertEqual({e for e in owned if e[0] == old}, set())
        self.assertEqual(len([e for e in owned if e[0] == new]), 60)
        # the next pass has nothing to do
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(sim.stats()["writes_total"], stats["writes_total"])
        self.assertEqual(ledger(self.tmp), owned)
        # and the old certificate keeps the binding certbind never made
        self.assertIn((old, w.gateways["edge-0"]["instance_id"],
                       "keep.roll.example.com"),
                      {(b["certificate_id"], b["instance_id"], b["domain"])
                       for b in sim.state()["bindings"]})


def wave_world(tmp, bad=()):
    """10 domains on one gateway; `bad` ones are not registered there."""
    w = World(tmp)
    w.account("prod")
    domains = ["d%d.wave.example.com" % i for i in range(10)]
    w.gateway("edge-0", "prod", [d for d in domains if d not in bad])
    w.certificate("cert-0", "prod", ["*.wave.example.com"])
    w.want("cert-0", ["edge-0"], domains)
    w.policy["batch_size"] = 50
    w.rollout = {"waves": [1, "50%", "100%"], "soak_s": 1,
                 "abort_failure_ratio": 0.1}
    w.settings["visibility_delay_ms"] = 200
    return w, domains


class WavesTest(SimTestCase):
    def test_full_pages_parsed_off_the_loop(self):
        """520 bindings move on two gateways: the reads and confirmations
        get full 500-binding pages (~250 KB, parsed on the thread pool)
        and a short one (parsed in place); both count."""
        w = World(self.tmp)
        w.account("prod", limits={"requests_per_second": 1000,
                                  "burst": 1000, "max_in_flight": 64})
        domains = ["s%03d.big.example.com" % i for i in range(260)]
        gws = ["edge-0", "edge-1"]
        for g in gws:
            w.gateway(g, "prod", domains)
        old = w.certificate("old-big", "prod", ["*.big.example.com"])
        new = w.certificate("new-big", "prod", ["*.big.example.com"])
        for g in gws:
            for d in domains:
                w.bind("old-big", g, d)
        w.want("new-big", gws, domains)
        w.policy.update({"mode": "upsert", "batch_size": 50,
                         "confirm_delay_ms": 0})
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg, "--log-format", "json")
        self.assertEqual(r.rc, 0, r)
        done = [e for e in r.events() if e["event"] == "pass.done"][-1]
        self.assertEqual(done["attached"], 520, done)
        self.assertEqual(done["failed"] + done["pending"], 0, done)
        state = sim.state()["bindings"]
        self.assertEqual(len([b for b in state if b["certificate_id"] == new]),
                         520)
        self.assertFalse([b for b in state if b["certificate_id"] == old])
        self.assertEqual(sim.stats()["unbound_transitions"], 0)
        # a second pass reads the full pages again and has nothing to do
        r = certbind("apply", "-c", cfg, "--log-format", "json")
        self.assertEqual(r.rc, 0, r)
        done = [e for e in r.events() if e["event"] == "pass.done"][-1]
        self.assertEqual(done["unchanged"], 520, done)

    def test_waves_in_order_each_confirmed(self):
        w, domains = wave_world(self.tmp)
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg, "--log-format", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(w.binding_set(), sim.state_set())
        ev = r.events()
        waves = [e for e in ev if e["event"] in ("wave.start", "wave.done")]
        self.assertEqual([(e["event"], e["wave"]) for e in waves],
                         [("wave.start", 1), ("wave.done", 1),
                          ("wave.start", 2), ("wave.done", 2),
                          ("wave.start", 3), ("wave.done", 3)], waves)
        self.assertEqual([e["bindings"] for e in waves if e["event"] == "wave.start"],
                         [1, 4, 5])
        self.assertEqual([e["failed"] for e in waves if e["event"] == "wave.done"],
                         [0, 0, 0])
        # the writes of a wave are all between its start and its done, and
        # confirmed (confirm.ok) before the wave is done
        pos = {(e["event"], e["wave"]): ev.index(e) for e in waves}
        for k, size in ((1, 1), (2, 4), (3, 5)):
            lo, hi = pos[("wave.start", k)], pos[("wave.done", k)]
            written = []
            for e in ev[lo:hi]:
                if e["event"] == "write.ok":
                    written += e["domains"]
            self.assertEqual(len(written), size, ev[lo:hi])
            self.assertTrue([e for e in ev[lo:hi] if e["event"] == "confirm.ok"])
        # every write.ok sits inside a wave
        inside = set()
        for k in (1, 2, 3):
            inside.update(range(pos[("wave.start", k)], pos[("wave.done", k)]))
        for i, e in enumerate(ev):
            if e["event"] in ("write.ok", "write.failed"):
                self.assertIn(i, inside, e)
        # soak: never less than soak_s between a wave's end and the next
        # start, however long the loop iteration that ended the wave took
        # (the 1 ms: the log's clock is the wall clock, the soak's the
        # monotonic one, which NTP may slew apart by 0.5 ms a second); the
        # upper bound only catches a soak that never ends
        soak = w.rollout["soak_s"]
        for k in (1, 2):
            gap = ts(ev[pos[("wave.start", k + 1)]]) - ts(ev[pos[("wave.done", k)]])
            self.assertGreaterEqual(gap.total_seconds(), soak - 0.001)
            self.assertLess(gap.total_seconds(), soak + scaled(5))

    def test_wave_failing_above_ratio_aborts(self):
        bad = ["d1.wave.example.com", "d2.wave.example.com"]
        w, domains = wave_world(self.tmp, bad=bad)
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg, "--log-format", "json")
        self.assertEqual(r.rc, 4, r)
        self.assertIn("abort", (r.stdout + r.stderr).lower())
        ev = r.events()
        ab = [e for e in ev if e["event"] == "rollout.aborted"]
        self.assertEqual(len(ab), 1, ev)
        self.assertIn("wave 2", json.dumps(ab[0]))
        self.assertFalse([e for e in ev if e["event"] == "wave.start"
                          and e["wave"] == 3])
        live = {b[2] for b in sim.state_set()}
        # waves 1 and 2 (d0..d4) were written; wave 3 (d5..d9) was not
        self.assertEqual(live, {"d0.wave.example.com", "d3.wave.example.com",
                                "d4.wave.example.com"})
        with open(os.path.join(self.tmp, "state", "status.json")) as f:
            st = json.load(f)
        self.assertEqual(st["pass"]["outcome"], "aborted", st["pass"])
        r = certbind("status", "--state-dir", os.path.join(self.tmp, "state"))
        self.assertEqual(r.rc, 0, r)
        self.assertIn("abort", r.stdout.lower())

    def test_small_failure_share_does_not_abort(self):
        # one bad domain in the last wave (1 of 5 = 20 %) with ratio 0.5
        w, domains = wave_world(self.tmp, bad=["d9.wave.example.com"])
        w.rollout["abort_failure_ratio"] = 0.5
        w.rollout["soak_s"] = 0
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg, "--log-format", "json")
        self.assertEqual(r.rc, 1, r)
        self.assertFalse([e for e in r.events() if e["event"] == "rollout.aborted"])
        self.assertEqual(len(sim.state_set()), 9)


if __name__ == "__main__":
    unittest.main()
