# SPDX-License-Identifier: MIT
"""Authentication against apig-sim over HTTPS (issue 4): a wrong secret key,
a wrong access key or a skewed clock cost ONE failed request per account
(APIG locks a key after 5), the account's first request goes alone, other
accounts still converge; password (IAM token: fetch, renewal on expiry or
revocation mid-pass, wrong password) and static token methods; the daemon
keeps its IAM token across passes (issue 13 item 9)."""
import json
import os
import signal
import subprocess
import time
import urllib.request

from harness import (CERTBIND, SimTestCase, World, certbind, record_output,
                     record_secrets, Result, scaled)
from test_daemon import Daemon, rename_over
from test_engine_faults import fleet


def status_bindings(tmp):
    with open(os.path.join(tmp, "state", "status.json")) as f:
        return json.load(f)["bindings"]


def token_calls(stats):
    return stats["by_op"].get("token", {})


def wait_for(pred, timeout=20, what="condition"):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


class AuthTest(SimTestCase):
    def apply(self, cfg, *extra):
        return certbind("apply", "-c", cfg, "--log-format", "json", *extra)

    def two_accounts(self, nbad=50):
        w = fleet(self.tmp, ncerts=nbad, ndomains=1, ngws=1, account="bad")
        fleet(self.tmp, ncerts=4, ndomains=3, ngws=2, account="good", w=w)
        return w

    def assert_bad_failed_good_converged(self, w, sim, r, code="APIG.0301"):
        self.assertEqual(r.rc, 1, r)
        good = {b for b in w.binding_set()
                if b[0] in {c["id"] for c in w.certs.values()
                            if c["account"] == "good"}}
        self.assertEqual(sim.state_set(), good)
        bad_certs = {n for n, c in w.certs.items() if c["account"] == "bad"}
        st = status_bindings(self.tmp)
        bad = [b for b in st if b["certificate"] in bad_certs]
        self.assertEqual(len(bad), len(bad_certs), st[:3])
        for b in bad:
            self.assertEqual(b["state"], "failed", b)
            self.assertEqual(b["error_code"], code, b)
        self.assertTrue(all(b["state"] == "converged" for b in st
                            if b["certificate"] not in bad_certs))
        blocked = [e for e in r.events() if e["event"] == "account.blocked"]
        self.assertEqual([e["account"] for e in blocked], ["bad"], r)

    # -- 7. wrong keys, clock skew ---------------------------------------

    def test_wrong_secret_key_costs_one_request(self):
        w = self.two_accounts()
        sim, cfg = self.start(w)
        wrong = "SK-wrong-" + w.accounts["bad"]["sk"][3:]
        record_secrets([wrong])
        w.secret_file("bad-sk", wrong)
        r = self.apply(cfg, "--log-level", "debug")
        st = sim.stats()
        self.assertEqual(st["auth_failures"], 1, st)
        self.assert_bad_failed_good_converged(w, sim, r)
        # not locked: with the right key the next pass converges
        w.secret_file("bad-sk", w.accounts["bad"]["sk"])
        r = self.apply(cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(w.binding_set() <= sim.state_set())
        self.assertEqual(sim.stats()["auth_failures"], 1)

    def test_wrong_access_key_costs_one_request(self):
        w = self.two_accounts()
        sim, cfg = self.start(w)
        w.secret_file("bad-ak", "AKUNKNOWN0000000000")
        r = self.apply(cfg)
        self.assertEqual(sim.stats()["auth_failures"], 1)
        self.assert_bad_failed_good_converged(w, sim, r)
        failed = [e for e in r.events() if e["event"] in ("list.failed", "write.failed")
                  and e.get("account") == "bad"]
        self.assertEqual(len(failed), 1, r)
        self.assertEqual(failed[0]["http_status"], 401)
        self.assertTrue(failed[0]["request_id"])

    def test_clock_skew_costs_one_request_and_no_lockout(self):
        w = fleet(self.tmp, ncerts=20, ndomains=2, ngws=1)
        w.settings["now"] = "20200101T000000Z"  # the server's clock: years off
        sim, cfg = self.start(w)
        r = self.apply(cfg)
        self.assertEqual(r.rc, 1, r)
        st = sim.stats()
        self.assertEqual(st["requests"], 1, st)
        self.assertEqual(st["auth_failures"], 1, st)
        failed = [e for e in r.events() if e["event"] == "list.failed"]
        self.assertEqual(len(failed), 1)
        self.assertEqual(failed[0]["error_code"], "APIG.0301")
        self.assertIn("X-Sdk-Date", failed[0]["error_msg"])
        sim.settings({"now": None})
        r = self.apply(cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(w.binding_set() <= sim.state_set())

    # -- 9. the account gate ---------------------------------------------

    def test_first_request_goes_alone(self):
        w = fleet(self.tmp, ncerts=50, ndomains=1, ngws=1)
        w.faults = {"latency": {"kind": "fixed", "ms": 100}}
        sim, cfg = self.start(w)
        w.secret_file("prod-sk", "SK-not-the-right-one-at-all")
        record_secrets(["SK-not-the-right-one-at-all"])
        r = self.apply(cfg)
        self.assertEqual(r.rc, 1, r)
        st = sim.stats()
        self.assertEqual(st["requests"], 1, st)
        self.assertEqual(st["peak_concurrent_requests"], 1, st)
        # and with the right key it fans out after the first success
        w.secret_file("prod-sk", w.accounts["prod"]["sk"])
        r = self.apply(cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertGreater(sim.stats()["peak_concurrent_requests"], 1)

    # -- 8. password and token -------------------------------------------

    def password_world(self, ncerts=6):
        w = World(self.tmp)
        w.account("iam", auth="password")
        return fleet(self.tmp, ncerts=ncerts, ndomains=3, ngws=2,
                     account="iam", w=w)

    def test_password_converges_with_one_token(self):
        w = self.password_world()
        sim, cfg = self.start(w)
        # debug level too: the secret scan covers everything it prints
        r = self.apply(cfg, "--log-level", "debug")
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(w.binding_set() <= sim.state_set())
        st = sim.stats()
        self.assertEqual(token_calls(st), {"201": 1}, st)
        self.assertEqual(st["auth_failures"], 0)
        self.assertIn("token.ok", [e["event"] for e in r.events()])

    def test_token_revoked_mid_pass_is_renewed_once(self):
        w = self.password_world(ncerts=8)
        w.faults = {"latency": {"kind": "fixed", "ms": 150}}
        w.settings["visibility_delay_ms"] = 2500
        sim, cfg = self.start(w)
        proc = self.run_apply_async(cfg)
        try:
            # revoke once the writes started (the token is in use)
            wait_for(lambda: sim.stats()["writes_total"] >= 1, what="first write")
            n = sim.revoke_tokens(w.accounts["iam"]["project_id"])
            self.assertEqual(n["revoked"], 1)
        finally:
            r = self.finish(proc)
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(w.binding_set() <= sim.state_set())
        st = sim.stats()
        self.assertEqual(token_calls(st), {"201": 2}, st)
        self.assertGreaterEqual(st["auth_failures"], 1, st)
        self.assertEqual(len([e for e in r.events() if e["event"] == "token.ok"]), 2)
        self.assertNotIn("account.blocked", [e["event"] for e in r.events()])

    def run_apply_async(self, cfg):
        return subprocess.Popen([CERTBIND, "apply", "-c", cfg, "--log-format", "json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=dict(os.environ, NO_COLOR="1"))

    def finish(self, proc):
        try:
            out, err = proc.communicate(timeout=scaled(60))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        record_output("certbind", out + "\n" + err)
        return Result(proc, out, err)

    def test_token_revoked_with_many_requests_in_flight_is_renewed_once(self):
        # 401s that come back after the new token arrived (jittered
        # latency) must use it, not renew again. The token is revoked
        # while the account's first read (alone) is out, so the
        # other 39 reads all go out with it: many 401s, whatever the timing
        # (revoking once "many requests are in flight" raced with them).
        w = self.password_world(ncerts=40)
        w.faults = {"latency": {"kind": "uniform", "min_ms": 300, "max_ms": 900}}
        sim, cfg = self.start(w, ("--seed", "2"))
        proc = self.run_apply_async(cfg)

        def lone_read_out():
            st = sim.stats()
            return (token_calls(st).get("201") == 1 and st["in_flight"] >= 1
                    and not st["by_op"]["list"])
        try:
            wait_for(lone_read_out, what="the account's first read in flight")
            sim.revoke_tokens(w.accounts["iam"]["project_id"])
        finally:
            r = self.finish(proc)
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(w.binding_set() <= sim.state_set())
        st = sim.stats()
        self.assertGreaterEqual(st["auth_failures"], 2, st)
        self.assertEqual(token_calls(st), {"201": 2}, st)

    def test_short_token_ttl_is_renewed(self):
        w = self.password_world(ncerts=4)
        w.settings["token_ttl_s"] = 3
        w.settings["visibility_delay_ms"] = 4000
        sim, cfg = self.start(w)
        r = self.apply(cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(w.binding_set() <= sim.state_set())
        st = sim.stats()
        tokens = token_calls(st).get("201", 0)
        # the pass lasts > 2 token lives: renewed before it expired (no
        # request earned a 401), and not on every request: never before half
        # its 3 s life (auth_token_needs_renewal; whole seconds), so at most
        # one token a second of the pass, however slow the machine (it was
        # a fixed 5, and a pass under valgrind beside a CPU hog took 7)
        self.assertGreaterEqual(tokens, 2, st)
        done = [e for e in r.events() if e["event"] == "pass.done"][0]
        self.assertLessEqual(tokens, done["duration_ms"] / 1000 + 2, (st, done))
        self.assertLess(tokens, st["requests"] - tokens, st)
        self.assertEqual(st["auth_failures"], 0, st)

    def test_wrong_password_fails_without_any_apig_request(self):
        w = self.password_world()
        sim, cfg = self.start(w)
        wrong = "PW-wrong-" + w.accounts["iam"]["password"]
        record_secrets([wrong])
        w.secret_file("iam-pw", wrong)
        r = self.apply(cfg)
        self.assertEqual(r.rc, 1, r)
        st = sim.stats()
        self.assertEqual(sum(token_calls(st).values()), 1, st)
        self.assertEqual(st["writes_total"], 0)
        self.assertEqual(st["by_op"]["list"], {}, st)
        self.assertEqual(st["by_op"]["attach"], {}, st)
        self.assertIn("token.failed", [e["event"] for e in r.events()])

    def iam_token(self, sim, acct):
        body = {"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"name": acct["user"], "password": acct["password"],
                     "domain": {"name": acct["domain"]}}}},
            "scope": {"project": {"id": acct["project_id"]}}}}
        rq = urllib.request.Request(sim.url + "/v3/auth/tokens?nocatalog=true",
                                    data=json.dumps(body).encode(), method="POST",
                                    headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(rq, context=sim.ctx, timeout=10) as resp:
            self.assertEqual(resp.status, 201)
            tok = resp.headers["X-Subject-Token"]
        self.assertTrue(tok)
        record_secrets([tok])
        return tok

    def test_static_token_converges_and_a_revoked_one_fails_once(self):
        w = World(self.tmp)
        w.account("tok", auth="token")
        fleet(self.tmp, ncerts=10, ndomains=2, ngws=2, account="tok", w=w)
        sim, cfg = self.start(w)
        tok = self.iam_token(sim, w.accounts["tok"])
        w.secret_file("tok-tok", tok)
        r = self.apply(cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(w.binding_set() <= sim.state_set())
        st = sim.stats()
        self.assertEqual(token_calls(st), {"201": 1})  # the test's own
        self.assertEqual(st["auth_failures"], 0)
        # a revoked static token: one failed request, no renewal attempt
        sim.revoke_tokens(w.accounts["tok"]["project_id"])
        before = sim.stats()["requests"]
        r = self.apply(cfg)
        self.assertEqual(r.rc, 1, r)
        st = sim.stats()
        self.assertEqual(st["requests"] - before, 1, st)
        self.assertEqual(st["auth_failures"], 1)
        self.assertEqual(token_calls(st), {"201": 1})


class DaemonTokenTest(SimTestCase):
    """certbind run keeps an IAM token across its passes until the token's
    renewal time (issue 13 item 9: 8 passes fetched 8 tokens), renews it
    after a token error or past that time, and never uses it for other
    credentials after a reload."""

    def setUp(self):
        super().setUp()
        self.daemon = None

    def tearDown(self):
        if self.daemon:
            self.daemon.stop()
        super().tearDown()

    def sighup_pass(self, d):
        m = d.mark()
        d.signal(signal.SIGHUP)
        i = d.wait_pass(m, timeout=30)
        self.assertIn("outcome converged", d.events[i]["msg"], d.events[i])

    def test_daemon_reuses_the_token_until_it_must_be_renewed(self):
        w = World(self.tmp)
        acct = w.account("iam", auth="password")
        fleet(self.tmp, ncerts=3, ndomains=2, ngws=1, account="iam", w=w)
        w.daemon["resync_interval_s"] = 3600  # passes on SIGHUP
        other = {"domain": acct["domain"], "name": "deployer2",
                 "password": "PW-" + acct["password"][3:] + "-other"}
        record_secrets([other["password"]])
        seed = w.seed
        w.seed = lambda: dict(seed(), projects=[
            dict(p, users=p["users"] + [other]) for p in seed()["projects"]])
        sim, cfg = self.start(w)
        d = self.daemon = Daemon(cfg, self.tmp)
        d.wait_pass(timeout=30)
        for _ in range(4):  # each SIGHUP also reloads the same file
            self.sighup_pass(d)
        st = sim.stats()
        self.assertEqual(len(d.named("pass.done")), 5)
        self.assertEqual(token_calls(st), {"201": 1}, st)
        self.assertEqual(st["auth_failures"], 0, st)
        self.assertTrue(w.binding_set() <= sim.state_set())

        # revoked between passes: one 401, one new token, reused after
        sim.revoke_tokens(acct["project_id"])
        self.sighup_pass(d)
        self.sighup_pass(d)
        st = sim.stats()
        self.assertEqual(token_calls(st), {"201": 2}, st)
        self.assertEqual(st["auth_failures"], 1, st)

        # a reload with other credentials does not use the old token (one
        # change: the new password in a new file, then the file renamed
        # over; World.yaml() would rewrite the named secret file first)
        m = d.mark()
        pw2 = w.secret_file("iam-pw2", other["password"])
        with open(cfg) as f:
            text = f.read()
        text = text.replace("user: %s\n" % acct["user"],
                            "user: %s\n" % other["name"])
        text = text.replace(os.path.join(self.tmp, "secrets", "iam-pw"), pw2)
        self.assertIn(pw2, text)
        self.assertIn("user: deployer2\n", text)
        rename_over(cfg, text)
        d.wait("config.reload", m, timeout=10)
        d.wait_pass(m, timeout=30)
        self.sighup_pass(d)
        st = sim.stats()
        self.assertEqual(token_calls(st), {"201": 3}, st)
        self.assertEqual(st["auth_failures"], 1, st)

        # a token past its renewal time is not reused: with a 3 s life it
        # is renewed 1.5 s after it was obtained; wait until it expired
        sim.settings({"token_ttl_s": 3})
        sim.revoke_tokens(acct["project_id"])
        self.sighup_pass(d)  # a 401, then a 3 s token
        st = sim.stats()
        tokens, failures = token_calls(st)["201"], st["auth_failures"]
        self.assertGreaterEqual(tokens, 4, st)
        time.sleep(3.5)
        self.sighup_pass(d)
        st = sim.stats()
        self.assertGreater(token_calls(st)["201"], tokens, st)
        # renewed before it was sent: no request was refused for it
        self.assertEqual(st["auth_failures"], failures, st)
        self.assertNotIn("account.blocked", [e["event"] for e in d.events])


if __name__ == "__main__":
    import unittest
    unittest.main()
