# SPDX-License-Identifier: MIT
"""What an operator sees on a terminal and in `certbind status` (issue 15):
the live progress line through a real pseudo-terminal (bindings done of a
total fixed once the plan is made, an ETA that is never "0s" while work
remains, nothing of it off a terminal), TERM=dumb without escape codes,
`status` listing at most 20 bindings per state unless --all, request IDs
whole in the summary and in `status`, and attempts that are the requests
made for a binding through a split batch, never more than max_attempts."""
import json
import os
import pty
import re
import select
import subprocess
import time
import unittest

from harness import (CERTBIND, SimTestCase, World, certbind, free_port,
                     record_output, scaled)

PROGRESS = re.compile(r"(\d+)/(\d+) bindings")
SIM_POST = re.compile(r"^apig-sim: POST (\S+) -> (\d+) .* id=(\S*) at=")


def on_pty(args, env, timeout=120):
    """certbind with stdin, stdout and stderr on a new pseudo-terminal;
    (exit code, everything it wrote to the terminal)."""
    master, slave = pty.openpty()
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e.update(env)
    proc = subprocess.Popen([CERTBIND, *args], stdin=slave, stdout=slave,
                            stderr=slave, env=e, start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + scaled(timeout)
    try:
        while True:
            if time.monotonic() > deadline:
                raise AssertionError("certbind %s: no end within %.0f s"
                                     % (args[0], scaled(timeout)))
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal closed it
                break
            if not chunk:
                break
            out += chunk
        proc.wait(scaled(30))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = out.decode(errors="replace")
    record_output("certbind-pty", text)
    return proc.returncode, text


def fleet(tmp, ncerts, ndomains, account="prod"):
    """ncerts certificates of ndomains domains each on one gateway."""
    w = World(tmp)
    w.account(account)
    w.gateway("edge", account, [])
    for c in range(ncerts):
        zone = "c%d.example.com" % c
        domains = ["d%02d.%s" % (i, zone) for i in range(ndomains)]
        w.gateways["edge"]["domains"] += domains
        w.certificate("cert-%d" % c, account, ["*." + zone])
        w.want("cert-%d" % c, ["edge"], domains)
    return w


def status_json(tmp):
    with open(os.path.join(tmp, "state", "status.json")) as f:
        return json.load(f)


class ProgressTest(SimTestCase):
    def test_progress_line_counts_bindings_with_a_fixed_total(self):
        # 4 certificates x 10 domains, one domain per write, one write in
        # flight per certificate, 100 ms per request: the writes take at
        # least 1 s, several 200 ms redraws of the line
        w = fleet(self.tmp, ncerts=4, ndomains=10)
        w.policy["batch_size"] = 1
        sim, cfg = self.start(w, ("--latency-ms", "100"))
        rc, text = on_pty(["apply", "-c", cfg, "--yes"], {"TERM": "xterm"})
        self.assertEqual(rc, 0, text)
        self.assertTrue(w.binding_set() <= sim.state_set())
        lines = [seg for seg in re.split(r"[\r\n]", text)
                 if PROGRESS.search(seg)]
        counts = [tuple(int(x) for x in PROGRESS.search(l).groups())
                  for l in lines]
        working = [(l, n) for l, (n, t) in zip(lines, counts) if n < t]
        self.assertGreaterEqual(len(working), 2, text)
        # the total is the bindings to write, from the first line on
        self.assertEqual({t for _, t in counts}, {40}, lines)
        done = [n for n, _ in counts]
        self.assertEqual(done, sorted(done), lines)
        for l, _ in working:
            self.assertNotIn("eta 0s", l)
            self.assertRegex(l, r"eta (\?|[1-9]\d*s|\d+m\d\ds)")
        # once bindings are done there is a rate, and an ETA from it
        timed = [l for l, n in working if n > 0]
        self.assertTrue(timed, lines)
        for l in timed:
            self.assertRegex(l, r"\d(\.\d)?/s  eta ([1-9]\d*s|\d+m\d\ds)")
        # the line is erased before the summary
        self.assertIn("\r\x1b[K", text)
        self.assertRegex(text, r"done in [0-9.]+ s: 40 bindings written")

    def test_no_progress_line_off_a_terminal(self):
        w = fleet(self.tmp, ncerts=2, ndomains=5)
        w.policy["batch_size"] = 1
        sim, cfg = self.start(w, ("--latency-ms", "50"))
        r = certbind("apply", "-c", cfg, "--log-format", "text")
        self.assertEqual(r.rc, 0, r)
        self.assertNotRegex(r.stderr, PROGRESS)
        self.assertNotIn("\r", r.stderr + r.stdout)
        self.assertNotIn("\x1b", r.stderr + r.stdout)

    def test_term_dumb_means_no_escape_codes(self):
        w = fleet(self.tmp, ncerts=2, ndomains=5)
        sim, cfg = self.start(w, ("--latency-ms", "20"))
        # on a terminal that can show them, the plan has colours
        rc, text = on_pty(["plan", "-c", cfg], {"TERM": "xterm"})
        self.assertEqual(rc, 2, text)
        self.assertRegex(text, r"\x1b\[\d+m")
        # TERM=dumb: no colour and no live line, but the same facts
        rc, text = on_pty(["plan", "-c", cfg], {"TERM": "dumb"})
        self.assertEqual(rc, 2, text)
        self.assertNotIn("\x1b", text)
        self.assertIn("d00.c0.example.com", text)
        # a first pass off the terminal (cert-0 only), so that the pass on
        # it logs nothing (the first pass warns that the counters start
        # from zero; log lines are not what this test is about)
        everything = w.wanted
        w.wanted = everything[:1]
        first = w.write_yaml(sim.ca, "first.yaml")
        w.wanted = everything
        r = certbind("apply", "-c", first)
        self.assertEqual(r.rc, 0, r)
        rc, text = on_pty(["apply", "-c", cfg, "--yes"], {"TERM": "dumb"})
        self.assertEqual(rc, 0, text)
        self.assertNotIn("\x1b", text)
        self.assertNotRegex(text, PROGRESS)
        self.assertRegex(text, r"done in [0-9.]+ s: 5 bindings written")


class StatusTest(SimTestCase):
    def test_status_lists_twenty_per_state_unless_all(self):
        # an account whose endpoint refuses connections: unreachable, its
        # 27 bindings stay pending
        w = fleet(self.tmp, ncerts=1, ndomains=27, account="dead")
        w.retry = {"max_attempts": 2, "base_delay_ms": 20,
                   "max_delay_ms": 100}
        sim, cfg = self.start(w)
        with open(cfg) as f:
            text = f.read()
        with open(cfg, "w") as f:
            f.write(text.replace("endpoint: " + sim.url,
                                 "endpoint: https://127.0.0.1:%d" % free_port()))
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 1, r)
        state = os.path.join(self.tmp, "state")
        st = status_json(self.tmp)
        self.assertEqual(sum(b["state"] == "pending" for b in st["bindings"]),
                         27)

        s = certbind("status", "--state-dir", state)
        self.assertEqual(s.rc, 0, s)
        pending = [l for l in s.stdout.splitlines()
                   if l.startswith("  pending  ")]
        self.assertEqual(len(pending), 20, s.stdout)
        self.assertIn("  \u2026 and 7 more (--all)\n", s.stdout)
        # the first 20, in the file's order
        self.assertIn("d00.c0.example.com", pending[0])
        self.assertIn("d19.c0.example.com", pending[19])

        s = certbind("status", "--state-dir", state, "--all")
        self.assertEqual(s.rc, 0, s)
        pending = [l for l in s.stdout.splitlines()
                   if l.startswith("  pending  ")]
        self.assertEqual(len(pending), 27, s.stdout)
        self.assertNotIn("more (--all)", s.stdout)

        s = certbind("status", "--state-dir", state, "--json")
        self.assertEqual(s.rc, 0, s)
        self.assertEqual(len(json.loads(s.stdout)["bindings"]), 27)

    def test_request_ids_whole_and_attempts_are_requests(self):
        # 16 domains in one batch, one the certificate does not cover
        # (400 APIG.2103): the batch is split until it stands alone.
        # max_attempts 4: halving would name it in 5 requests.
        w = fleet(self.tmp, ncerts=1, ndomains=15)
        w.gateways["edge"]["domains"].append("stray.other.org")
        w.wanted[0]["domains"].append("stray.other.org")
        w.policy["batch_size"] = 16
        w.retry = {"max_attempts": 4, "base_delay_ms": 20,
                   "max_delay_ms": 100}
        # the certificate's Show fails, so its names are unknown to the
        # plan (which would refuse the domain without sending it): the
        # attach and APIG's refusal are what this test is about
        w.faults = {"errors": [{"op": "show", "rate": 1, "status": 500,
                                "code": "APIG.9999"}]}
        sim, cfg = self.start(w, ("--log-requests",))
        r = certbind("apply", "-c", cfg, "--log-format", "json",
                     "--log-level", "info")
        self.assertEqual(r.rc, 1, r)

        # the requests that named each domain, by certbind's log
        named = {}
        for e in r.events():
            if e["event"].startswith("write.") and e.get("request_id"):
                for d in e.get("domains", []):
                    named.setdefault(d, set()).add(e["request_id"])
        sim.log.flush()
        with open(sim.log.name) as f:
            sim_ids = {m.group(3) for m in map(SIM_POST.match, f) if m}
        st = status_json(self.tmp)
        self.assertEqual(len(st["bindings"]), 16)
        for b in st["bindings"]:
            ids = named.get(b["domain"], set())
            self.assertTrue(ids <= sim_ids, (b["domain"], ids - sim_ids))
            self.assertEqual(b["attempts"], len(ids), b)
            self.assertLessEqual(b["attempts"], 4, b)
        bad = [b for b in st["bindings"] if b["state"] == "failed"]
        self.assertEqual([b["domain"] for b in bad], ["stray.other.org"])
        self.assertEqual(bad[0]["error_code"], "APIG.2103")
        self.assertGreater(bad[0]["attempts"], 1)  # it went through splits

        # its request ID, whole, in the summary and in status
        rid = bad[0]["request_id"]
        self.assertIn(rid, sim_ids)
        self.assertGreater(len(rid), 12)  # long enough to be shortened
        line = [l for l in r.stdout.splitlines() if "stray.other.org" in l]
        self.assertTrue(line, r)
        self.assertIn("(request %s)" % rid, line[0])
        s = certbind("status", "--state-dir", os.path.join(self.tmp, "state"))
        line = [l for l in s.stdout.splitlines() if "stray.other.org" in l]
        self.assertTrue(line, s)
        self.assertIn("(request %s), %d attempts" % (rid, bad[0]["attempts"]),
                      line[0])


if __name__ == "__main__":
    unittest.main()
