# SPDX-License-Identifier: MIT
"""The metrics textfile (issue 13, item 10): its counters are kept in
state_dir/counters.json, so `apply` and the daemon add to the same ones and
they never go down between two writes of the file; the last success is a
pass after which nothing is pending and every failure is a permanent error
of one binding; build_info, bindings_uncertain and
config_last_reload_successful are there, the last one set by the daemon's
reloads and kept when `apply` writes the file."""
import json
import os
import re
import signal
import stat
import time
import unittest

import harness
from harness import SimTestCase, World, certbind
from test_daemon import DaemonTestCase

BAD = "bad.c0.example.com"  # wanted, registered on no gateway: 404 APIG.3020
COUNTERS = ("certbind_requests_total", "certbind_retries_total",
            "certbind_passes_total")


def world(tmp, ndomains=3, bad=False):
    w = World(tmp)
    w.account("prod")
    w.gateway("edge-0", "prod", [])
    for c in range(2):
        zone = "c%d.example.com" % c
        doms = ["d%d.%s" % (i, zone) for i in range(ndomains + 2)]
        w.gateways["edge-0"]["domains"] += doms
        w.certificate("cert-%d" % c, "prod", ["*." + zone])
        w.want("cert-%d" % c, ["edge-0"],
               doms[:ndomains] + ([BAD] if bad and c == 0 else []))
    w.retry = {"max_attempts": 3, "base_delay_ms": 20, "max_delay_ms": 200}
    w.daemon = {"metrics_file": os.path.join(tmp, "certbind.prom")}
    return w


def read_prom(path):
    """{'name{labels}': value} of every sample of the textfile."""
    out = {}
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            m = re.match(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", line.rstrip("\n"))
            assert m, "not a sample line: %r" % line
            out[m.group(1)] = float(m.group(2))
    return out


def counters(sample):
    return {k: v for k, v in sample.items() if k.split("{")[0] in COUNTERS}


class Checks:
    def assert_grew(self, before, after):
        """No counter of `before` went down or vanished in `after`."""
        for k, v in counters(before).items():
            self.assertIn(k, after)
            self.assertGreaterEqual(after[k], v, k)

    def assert_info_series(self, s):
        self.assertRegex(
            " ".join(k for k in s if k.startswith("certbind_build_info")),
            r'^certbind_build_info\{version="\d+\.\d+\.\d+[^"]*"\}$')
        for k in s:
            if k.startswith("certbind_build_info"):
                self.assertEqual(s[k], 1)
        self.assertEqual(s["certbind_bindings_uncertain"], 0)
        self.assertIn(s["certbind_config_last_reload_successful"], (0, 1))


class MetricsTest(Checks, SimTestCase):
    def test_apply_twice_counters_only_grow(self):
        w = world(self.tmp)
        sim, cfg = self.start(w)
        prom = w.daemon["metrics_file"]
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        first = read_prom(prom)
        self.assertEqual(first["certbind_passes_total"], 1)
        self.assertGreater(first['certbind_requests_total{op="attach",code="204"}'], 0)
        self.assert_info_series(first)
        self.assertEqual(first["certbind_config_last_reload_successful"], 1)
        kept = os.path.join(self.tmp, "state", "counters.json")
        self.assertEqual(stat.S_IMODE(os.stat(kept).st_mode), 0o600)

        w.wanted[0]["domains"].append("d3.c0.example.com")
        cfg = w.write_yaml(sim.ca)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        second = read_prom(prom)
        self.assert_grew(first, second)
        self.assertEqual(second["certbind_passes_total"], 2)
        lists = 'certbind_requests_total{op="list",code="200"}'
        self.assertGreater(second[lists], first[lists])
        self.assert_info_series(second)
        # the gauges describe the last pass
        self.assertEqual(second['certbind_bindings{state="converged"}'], 7)

    def test_corrupt_counters_file_starts_from_zero(self):
        w = world(self.tmp)
        sim, cfg = self.start(w)
        prom = w.daemon["metrics_file"]
        self.assertEqual(certbind("apply", "-c", cfg).rc, 0)
        kept = os.path.join(self.tmp, "state", "counters.json")
        with open(kept, "w") as f:
            f.write('{"version": 1, "requests": [')
        r = certbind("apply", "-c", cfg, "--log-format", "json")
        self.assertEqual(r.rc, 0, r)  # never blocks a pass
        warned = [e for e in r.events() if e["event"] == "metrics.counters"]
        self.assertTrue(warned, r)
        self.assertEqual(warned[0]["level"], "warn")
        self.assertIn("counters.json", warned[0]["msg"])
        self.assertEqual(read_prom(prom)["certbind_passes_total"], 1)
        with open(kept) as f:
            self.assertEqual(json.load(f)["passes_total"], 1)

    def test_impossible_binding_is_a_success(self):
        """One binding that can never be made (a permanent 4xx of a write
        of that domain alone) does not hold the last success back."""
        w = world(self.tmp, bad=True)
        sim, cfg = self.start(w)
        t0 = int(time.time())
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 1, r)
        s = read_prom(w.daemon["metrics_file"])
        self.assertEqual(s['certbind_bindings{state="failed"}'], 1)
        self.assertEqual(s['certbind_bindings{state="pending"}'], 0)
        self.assertGreaterEqual(s["certbind_last_success_timestamp_seconds"], t0)
        self.assertLessEqual(s["certbind_last_success_timestamp_seconds"],
                             time.time() + 1)

    def test_pending_or_retryable_failure_is_not_a_success(self):
        w = world(self.tmp, ndomains=12)
        w.policy["batch_size"] = 1
        sim, cfg = self.start(w)
        prom = w.daemon["metrics_file"]
        last = "certbind_last_success_timestamp_seconds"

        # every attach fails with a 500: failed, but not for good
        sim.faults({"errors": [{"op": "attach", "rate": 1.0, "status": 500,
                                "code": "APIG.9999"}]})
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 1, r)
        s = read_prom(prom)
        self.assertGreater(s['certbind_bindings{state="failed"}'], 0)
        self.assertEqual(s[last], 0)

        # a pass stopped while it writes: bindings left pending
        sim.faults({"latency": {"kind": "fixed", "ms": 300}})
        writes = sim.stats()["writes_total"]
        r, _ = harness.certbind_signalled(
            "apply", "-c", cfg, "--log-format", "json", wait=60,
            what="a write", ready=lambda: sim.stats()["writes_total"] != writes)
        err = r.stderr
        with open(os.path.join(self.tmp, "state", "status.json")) as f:
            st = json.load(f)
        self.assertEqual(st["pass"]["outcome"], "interrupted", err[-3000:])
        s = read_prom(prom)
        self.assertGreater(s['certbind_bindings{state="pending"}'], 0)
        self.assertEqual(s[last], 0)
        self.assertEqual(s["certbind_passes_total"], 2)

        # and a pass that converges is one
        sim.faults({})
        t0 = int(time.time())
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertGreaterEqual(read_prom(prom)[last], t0)


class DaemonMetricsTest(Checks, DaemonTestCase):
    def test_daemon_and_apply_share_counters_and_reload_gauge(self):
        w = world(self.tmp)
        w.daemon["resync_interval_s"] = 10
        w.policy["confirm_timeout_s"] = 10
        sim, cfg = self.start(w)
        prom = w.daemon["metrics_file"]
        good = w.yaml(sim.ca)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        seen = [read_prom(prom)]
        self.assertEqual(seen[-1]["certbind_config_last_reload_successful"], 1)

        # the daemon adds to apply's counters; a rejected edit shows as 0
        # in the file its next pass writes (the first one, made slow so
        # that the edit lands during it, or the resync after it)
        sim.faults({"latency": {"kind": "fixed", "ms": 1000}})
        d = self.run_daemon(cfg)
        d.notify.wait_for("READY", "1", timeout=harness.scaled(20))
        m = d.mark()
        with open(cfg, "w") as f:
            f.write(good.replace("policy:\n", "policy:\n  batch_size: many\n"))
        d.wait("config.rejected", m, timeout=harness.scaled(30))
        d.wait_pass(m, timeout=harness.scaled(90))
        seen.append(read_prom(prom))
        self.assert_grew(seen[-2], seen[-1])
        self.assertEqual(seen[-1]["certbind_config_last_reload_successful"], 0)
        sim.faults({})
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(harness.scaled(60)), 0)
        d.stop()  # frees its notify socket for the next daemon
        self.daemons.remove(d)

        # apply does not know about reloads: the daemon's word stands
        with open(cfg, "w") as f:
            f.write(good)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        seen.append(read_prom(prom))
        self.assert_grew(seen[-2], seen[-1])
        self.assertEqual(seen[-1]["certbind_config_last_reload_successful"], 0)

        # a daemon started on a good file says 1
        d = self.run_daemon(cfg)
        d.wait_pass(timeout=harness.scaled(60))
        seen.append(read_prom(prom))
        self.assert_grew(seen[-2], seen[-1])
        self.assertEqual(seen[-1]["certbind_config_last_reload_successful"], 1)
        passes = [s["certbind_passes_total"] for s in seen]
        self.assertEqual(passes, sorted(passes))
        self.assertGreaterEqual(passes[-1], 4)
        self.assertGreater(seen[-1]["certbind_last_success_timestamp_seconds"], 0)


class SaveFailureTest(SimTestCase):
    """A state file that cannot be written fails `apply` (exit 1); the log
    names that file and the cause; the other files are still written."""

    def failed_events(self, r):
        return [e for e in r.events()
                if e["event"] in ("status.failed", "metrics.failed",
                                  "ledger.failed")]

    def test_unwritable_status_fails_apply(self):
        w = world(self.tmp)
        sim, cfg = self.start(w)
        state = os.path.join(self.tmp, "state")
        os.makedirs(os.path.join(state, "status.json"))  # rename over it fails
        r = certbind("apply", "-c", cfg, "--log-format", "json")
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(w.binding_set(), sim.state_set())  # the pass itself worked
        ev = self.failed_events(r)
        self.assertEqual([e["event"] for e in ev], ["status.failed"], r)
        self.assertIn(os.path.join(state, "status.json") + ":", ev[0]["msg"])
        self.assertRegex(ev[0]["msg"], r"(?i)\bdirectory\b")  # the cause
        # the metrics and the counters were written all the same
        self.assertEqual(read_prom(w.daemon["metrics_file"])
                         ["certbind_passes_total"], 1)

    def test_unwritable_metrics_file_fails_apply(self):
        w = world(self.tmp)
        missing = os.path.join(self.tmp, "no-such-dir")
        w.daemon["metrics_file"] = os.path.join(missing, "certbind.prom")
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg, "--log-format", "json")
        self.assertEqual(r.rc, 1, r)
        ev = self.failed_events(r)
        self.assertEqual([e["event"] for e in ev], ["metrics.failed"], r)
        self.assertIn(w.daemon["metrics_file"], ev[0]["msg"])
        self.assertIn("does not exist", ev[0]["msg"])
        with open(os.path.join(self.tmp, "state", "status.json")) as f:
            self.assertEqual(json.load(f)["pass"]["outcome"], "converged")

    def test_dry_run_writes_no_state(self):
        """Not even when it is refused (a stale --plan): refused passes of
        a real apply are saved, a dry run leaves state_dir alone."""
        w = world(self.tmp)
        sim, cfg = self.start(w)
        plan = os.path.join(self.tmp, "plan.json")
        self.assertEqual(certbind("plan", "-c", cfg, "--out", plan).rc, 2)
        with open(cfg, "a") as f:
            f.write("# an edit after the plan was made\n")
        r = certbind("apply", "-c", cfg, "--plan", plan, "--dry-run")
        self.assertEqual(r.rc, 4, r)
        state = os.path.join(self.tmp, "state")
        kept = set(os.listdir(state)) if os.path.isdir(state) else set()
        self.assertEqual(kept - {"lock"}, set())  # the lock file is no state
        self.assertFalse(os.path.exists(w.daemon["metrics_file"]))
        # the same without --dry-run: the refusal is recorded
        r = certbind("apply", "-c", cfg, "--plan", plan)
        self.assertEqual(r.rc, 4, r)
        with open(os.path.join(state, "status.json")) as f:
            self.assertEqual(json.load(f)["pass"]["outcome"], "refused")


if __name__ == "__main__":
    unittest.main()
