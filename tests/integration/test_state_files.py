# SPDX-License-Identifier: MIT
"""State files must be regular files: a FIFO as ledger.json or status.json
is an error naming the file, at once. Before, opening a FIFO for reading
waited for a writer forever: plan, apply, status and the daemon's start
(no READY=1) hung. A write never renames over something that is not a
regular file either.

Every wait is bounded: a command that hangs fails the test (its process is
killed) instead of hanging the suite. The bounds are far above what a
working command takes, and stretched by CERTBIND_TEST_TIME_SCALE (and 10x
when certbind runs under valgrind)."""
import os
import signal
import stat
import subprocess
import unittest

from harness import CERTBIND, Result, record_output
from test_daemon import DaemonTestCase, daemon_world


def time_scale():
    scale = float(os.environ.get("CERTBIND_TEST_TIME_SCALE", "1") or 1)
    if "valgrind" in CERTBIND:
        scale = max(scale, 10)
    return scale


# A working plan/apply/status against apig-sim takes well under a second.
BOUND_S = 15 * time_scale()


class StateFileTest(DaemonTestCase):
    def world(self):
        w, domains = daemon_world(self.tmp)
        sim, cfg = self.start(w)
        self.state = os.path.join(self.tmp, "state")
        os.makedirs(self.state, mode=0o700, exist_ok=True)
        return w, domains, sim, cfg

    def tearDown(self):
        # stop the daemons, then remove the FIFOs: the harness's tearDown
        # reads every .json file it finds (and would block on a FIFO)
        for d in self.daemons:
            d.stop()
        self.daemons = []
        for root, _, files in os.walk(self.tmp):
            for fn in files:
                path = os.path.join(root, fn)
                if stat.S_ISFIFO(os.lstat(path).st_mode):
                    os.unlink(path)
        super().tearDown()

    def fifo(self, name):
        path = os.path.join(self.state, name)
        os.mkfifo(path, 0o600)
        return path

    def run_bounded(self, *args):
        """certbind ARGS, killed if it runs past the bound."""
        env = dict(os.environ, NO_COLOR="1")
        try:
            p = subprocess.run([CERTBIND, *args], capture_output=True,
                               text=True, env=env, timeout=BOUND_S)
        except subprocess.TimeoutExpired:  # run() has killed it
            self.fail("certbind %s still running after %.0f s (blocked on a "
                      "FIFO?)" % (" ".join(args), BOUND_S))
        record_output("certbind", p.stdout + "\n" + p.stderr)
        return Result(p, p.stdout, p.stderr)

    def assert_still_fifo(self, path):
        self.assertTrue(stat.S_ISFIFO(os.lstat(path).st_mode), path)

    def test_fifo_ledger_plan_and_apply_end_with_an_error_naming_it(self):
        w, domains, sim, cfg = self.world()
        ledger = self.fifo("ledger.json")
        why = "%s is not a regular file (a FIFO)" % ledger
        for cmd in ("plan", "apply"):
            with self.subTest(cmd=cmd):
                r = self.run_bounded(cmd, "-c", cfg)
                self.assertIn(why, r.stderr, r)
                unusable = [e for e in r.events()
                            if e["event"] == "ledger.unusable"]
                self.assertEqual(len(unusable), 1, r)
                self.assertEqual(unusable[0]["level"], "error", r)
                self.assertIn(why, unusable[0]["msg"])
                self.assert_still_fifo(ledger)
        # apply still attached what the file wants (the ledger only decides
        # what may be detached), and left the FIFO alone
        self.assertEqual({b[2] for b in sim.state_set()}, set(domains[:2]))

    def test_fifo_status_apply_refuses_to_replace_it_and_status_ends(self):
        w, domains, sim, cfg = self.world()
        status = self.fifo("status.json")
        r = self.run_bounded("status", "--state-dir", self.state)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("%s is not a regular file (a FIFO)" % status, r.stderr)

        r = self.run_bounded("apply", "-c", cfg)
        failed = [e for e in r.events() if e["event"] == "status.failed"]
        self.assertEqual(len(failed), 1, r)
        self.assertIn("cannot write %s: it is not a regular file (a FIFO)" %
                      status, failed[0]["msg"])
        self.assert_still_fifo(status)
        self.assertEqual(os.listdir(self.state).count("status.json"), 1)
        self.assertFalse([n for n in os.listdir(self.state)
                          if n.startswith(".status.json.")])

    def test_daemon_with_fifo_state_files_is_ready_and_logs_them(self):
        w, domains, sim, cfg = self.world()
        ledger = self.fifo("ledger.json")
        status = self.fifo("status.json")
        d = self.run_daemon(cfg)
        d.notify.wait_for("READY", "1", timeout=BOUND_S)
        i = d.wait("ledger.unusable", timeout=BOUND_S)
        self.assertIn("%s is not a regular file (a FIFO)" % ledger,
                      d.events[i]["msg"])
        d.wait_pass(timeout=BOUND_S)
        i = d.wait("status.failed", timeout=BOUND_S)
        self.assertIn("cannot write %s: it is not a regular file (a FIFO)" %
                      status, d.events[i]["msg"])
        self.assertEqual({b[2] for b in sim.state_set()}, set(domains[:2]))
        # and it still stops when asked
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(BOUND_S), 0)
        self.assert_still_fifo(ledger)
        self.assert_still_fifo(status)


if __name__ == "__main__":
    unittest.main()
