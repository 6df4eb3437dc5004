# SPDX-License-Identifier: MIT
"""What an operator sees of plan and apply (issue 15), against apig-sim
over HTTPS: a move printed as a move naming both certificates, plan's
previous values and provenance in JSON, plan exiting 4 when apply would
refuse and apply --force overriding the detach threshold, apply's `yes`
question through a real pseudo-terminal, and a stale --plan naming what
changed."""
import json
import os
import pty
import re
import select
import signal
import time
import unittest

from harness import (CERTBIND, SimTestCase, World, certbind, record_output,
                     scaled)

PROMPT = b"Do you want to apply these changes? Only 'yes' will be accepted:"


def certbind_tty(*args, answer=None, interrupt=False, wait=60):
    """certbind with stdin, stdout and stderr on a pseudo-terminal. At the
    question it answers `answer` (a line) or sends SIGINT (interrupt);
    a question nobody expected fails. Returns (exit code, output, asked)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: certbind on the terminal
        try:
            env = dict(os.environ, NO_COLOR="1")
            os.execve(CERTBIND, [CERTBIND, *args], env)
        finally:
            os._exit(127)
    out, asked = b"", False
    deadline = time.monotonic() + scaled(wait)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("certbind on a terminal did not end:\n%s"
                                     % out.decode(errors="replace"))
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            out += chunk
            if not asked and PROMPT in out:
                asked = True
                if interrupt:
                    os.kill(pid, signal.SIGINT)
                elif answer is None:
                    raise AssertionError("an unexpected question:\n%s"
                                         % out.decode(errors="replace"))
                else:
                    os.write(fd, answer.encode() + b"\n")
        _, status = os.waitpid(pid, 0)
        pid = 0
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    text = out.decode(errors="replace")
    record_output("certbind-tty", text)
    return os.waitstatus_to_exitcode(status), text, asked


def rollout_world(tmp):
    """star-shop-2025 serves api. and www. on sg-edge-1; the file moves
    api. to star-shop-2026 and keeps www. where it is."""
    w = World(tmp)
    w.account("prod")
    w.gateway("sg-edge-1", "prod", ["api.example.com", "www.example.com"])
    w.certificate("star-shop-2025", "prod", ["*.example.com"])
    w.certificate("star-shop-2026", "prod", ["*.example.com"])
    w.bind("star-shop-2025", "sg-edge-1", "api.example.com")
    w.bind("star-shop-2025", "sg-edge-1", "www.example.com")
    w.want("star-shop-2025", ["sg-edge-1"], ["www.example.com"])
    w.want("star-shop-2026", ["sg-edge-1"], ["api.example.com"])
    return w


def fresh_world(tmp, ndomains=3, mode="upsert"):
    """Nothing bound yet; the file wants d0..dN on edge-0."""
    w = World(tmp)
    w.account("prod")
    domains = ["d%d.example.com" % i for i in range(ndomains)]
    w.gateway("edge-0", "prod", domains)
    w.certificate("cert-a", "prod", ["*.example.com"])
    w.certificate("cert-b", "prod", ["*.example.com"])
    w.want("cert-a", ["edge-0"], domains)
    w.policy["mode"] = mode
    return w, domains


class MoveTest(SimTestCase):
    def test_move_printed_as_a_move_with_both_names(self):
        w = rollout_world(self.tmp)
        sim, cfg = self.start(w)
        r = certbind("plan", "-c", cfg)
        self.assertEqual(r.rc, 2, r)
        self.assertRegex(r.stdout, r"(?m)^    ~ move +api\.example\.com +on "
                         r"sg-edge-1 +star-shop-2025 -> star-shop-2026$")
        self.assertNotIn("+ attach", r.stdout)
        self.assertIn("Plan: 0 to attach, 1 to move, 0 to change, "
                      "0 to detach, 1 unchanged.", r.stdout)

        r = certbind("plan", "-c", cfg, "--json")
        self.assertEqual(r.rc, 2, r)
        doc = json.loads(r.stdout)
        self.assertRegex(doc["certbind_version"], r"^\d+\.\d+")
        self.assertRegex(doc["created_at"],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertIsNone(doc["refused"])
        self.assertEqual(doc["summary"]["move"], 1)
        self.assertEqual(doc["summary"]["attach"], 0)
        [ch] = doc["changes"]
        self.assertEqual(ch["op"], "move")
        self.assertEqual(ch["certificate"], "star-shop-2026")
        self.assertEqual(ch["from"], {
            "certificate": "star-shop-2025",
            "certificate_id": w.certs["star-shop-2025"]["id"],
            "verify_client": False})

        # no terminal: no question, the move is made
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("Only 'yes'", r.stdout)
        self.assertEqual(w.binding_set(), sim.state_set())


class GuardTest(SimTestCase):
    def test_plan_says_apply_would_refuse_and_force_overrides(self):
        w, domains = fresh_world(self.tmp, ndomains=6, mode="sync")
        w.policy["max_detach_count"] = 3
        w.policy["max_detach_ratio"] = 1.0
        sim, cfg = self.start(w)
        self.assertEqual(certbind("apply", "-c", cfg).rc, 0)
        w.wanted[0]["domains"] = domains[:2]  # 4 owned bindings to detach
        cfg = w.write_yaml(sim.ca)
        writes = sim.stats()["writes_total"]
        before = sim.state_set()

        r = certbind("plan", "-c", cfg)
        self.assertEqual(r.rc, 4, r)
        self.assertIn("- detach", r.stdout)
        self.assertIn("apply would refuse: 4 detaches exceed "
                      "policy.max_detach_count 3", r.stdout)
        r = certbind("plan", "-c", cfg, "--json")
        self.assertEqual(r.rc, 4, r)
        self.assertEqual(json.loads(r.stdout)["refused"],
                         "4 detaches exceed policy.max_detach_count 3")

        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 4, r)
        self.assertIn("max_detach_count", r.stdout + r.stderr)
        self.assertEqual(sim.stats()["writes_total"], writes)
        self.assertEqual(sim.state_set(), before)

        r = certbind("apply", "-c", cfg, "--force", "--log-format", "json")
        self.assertEqual(r.rc, 0, r)
        ev = [e for e in r.events() if e["event"] == "guard.overridden"]
        self.assertEqual(len(ev), 1, r)
        self.assertEqual(ev[0]["level"], "warn")
        self.assertEqual(ev[0]["detach"], 4)
        self.assertIn("policy.max_detach_count 3", ev[0]["msg"])
        self.assertEqual(w.binding_set(), sim.state_set())


class PromptTest(SimTestCase):
    def setUp(self):
        super().setUp()
        self.w, self.domains = fresh_world(self.tmp)
        self.sim, self.cfg = self.start(self.w)

    def test_no_writes_nothing_and_exits_1(self):
        rc, out, asked = certbind_tty("apply", "-c", self.cfg, answer="no")
        self.assertTrue(asked, out)
        self.assertEqual(rc, 1, out)
        self.assertIn("+ attach", out)  # the plan came before the question
        self.assertLess(out.index("+ attach"), out.index("Only 'yes'"))
        self.assertIn("Apply cancelled.", out)
        self.assertEqual(self.sim.stats()["writes_total"], 0)
        self.assertEqual(self.sim.state_set(), set())

    def test_interrupt_at_the_question_writes_nothing(self):
        rc, out, asked = certbind_tty("apply", "-c", self.cfg, interrupt=True)
        self.assertTrue(asked, out)
        self.assertEqual(rc, 1, out)
        self.assertIn("Apply cancelled.", out)
        self.assertEqual(self.sim.stats()["writes_total"], 0)

    def test_yes_applies_then_no_changes_no_question(self):
        rc, out, asked = certbind_tty("apply", "-c", self.cfg, answer="yes")
        self.assertTrue(asked, out)
        self.assertEqual(rc, 0, out)
        self.assertEqual(self.w.binding_set(), self.sim.state_set())
        # nothing to change: nothing to ask
        rc, out, asked = certbind_tty("apply", "-c", self.cfg)
        self.assertFalse(asked, out)
        self.assertEqual(rc, 0, out)

    def test_yes_flag_does_not_ask(self):
        rc, out, asked = certbind_tty("apply", "-c", self.cfg, "--yes")
        self.assertFalse(asked, out)
        self.assertEqual(rc, 0, out)
        self.assertEqual(self.w.binding_set(), self.sim.state_set())

    def test_no_terminal_does_not_ask(self):
        r = certbind("apply", "-c", self.cfg, input="")
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("Only 'yes'", r.stdout + r.stderr)
        self.assertEqual(self.w.binding_set(), self.sim.state_set())


class StalePlanTest(SimTestCase):
    def test_stale_plan_names_the_file(self):
        w, _ = fresh_world(self.tmp)
        sim, cfg = self.start(w)
        plan = os.path.join(self.tmp, "plan.json")
        self.assertEqual(certbind("plan", "-c", cfg, "--out", plan).rc, 2)
        with open(cfg, "a") as f:
            f.write("# an edit after the plan was made\n")
        r = certbind("apply", "-c", cfg, "--plan", plan)
        self.assertEqual(r.rc, 4, r)
        self.assertIn("the file changed since the plan was made (its "
                      "SHA-256 differs)", r.stdout + r.stderr)
        self.assertEqual(sim.stats()["writes_total"], 0)

    def test_stale_plan_names_the_live_binding(self):
        w, domains = fresh_world(self.tmp)
        sim, cfg = self.start(w)
        plan = os.path.join(self.tmp, "plan.json")
        self.assertEqual(certbind("plan", "-c", cfg, "--out", plan).rc, 2)

        # someone binds d1 to cert-b meanwhile, from another file
        other = World(self.tmp)
        other.accounts, other.gateways, other.certs = (
            w.accounts, w.gateways, w.certs)
        other.endpoint = w.endpoint
        other.want("cert-b", ["edge-0"], domains[1:2])
        other.daemon = {"state_dir": os.path.join(self.tmp, "other-state")}
        r = certbind("apply", "-c", other.write_yaml(sim.ca, "other.yaml"))
        self.assertEqual(r.rc, 0, r)
        writes = sim.stats()["writes_total"]

        r = certbind("apply", "-c", cfg, "--plan", plan)
        self.assertEqual(r.rc, 4, r)
        self.assertIn("live state changed since the plan was made: "
                      "d1.example.com on edge-0 now bound to cert-b",
                      r.stdout + r.stderr)
        self.assertEqual(sim.stats()["writes_total"], writes)


if __name__ == "__main__":
    unittest.main()
