# SPDX-License-Identifier: MIT
"""Ownership and the state directory (issue 13 items 1, 2 and 5):
ownership is only what certbind saw applied; intents are kept apart and
resolved; a crash-left intent whose binding is live is uncertain (never
detached, owned after `certbind adopt`); a ledger that cannot be written
stops the writes that would change ownership and fails the pass, naming the
file and the cause; one process at a time writes a state directory, and the
daemon reads the ledger again at every pass."""
import contextlib
import fcntl
import json
import os
import subprocess
import time
import unittest

import harness
from harness import SimTestCase, World, certbind
from test_daemon import Daemon


def ledger_doc(state):
    path = os.path.join(state, "ledger.json")
    if not os.path.exists(path):
        return {"entries": [], "intents": []}
    with open(path) as f:
        return json.load(f)


def owned(state):
    return {(e["certificate_id"], e["instance_id"], e["domain"])
            for e in ledger_doc(state)["entries"]}


def intents(state):
    return {(e["certificate_id"], e["instance_id"], e["domain"])
            for e in ledger_doc(state).get("intents", [])}


def sent(sim, *ops):
    """Requests of these ops the simulator received, whatever the answer."""
    by_op = sim.stats()["by_op"]
    return sum(sum(by_op.get(op, {}).values()) for op in ops)


class ReadOnlyKeyWorld(World):
    """A project with a second, read-only credential (list and show only:
    attach and detach answer 403 APIG.1005)."""

    def seed(self):
        s = super().seed()
        a = self.accounts["prod"]
        s["projects"][0]["credentials"] = [
            {"ak": a.get("full_ak", a["ak"]), "sk": a.get("full_sk", a["sk"])},
            {"ak": a["ro_ak"], "sk": a["ro_sk"], "permissions": ["list", "show"]}]
        return s


def sync_world(tmp, cls=World, ndomains=4):
    w = cls(tmp)
    acct = w.account("prod")
    acct["ro_ak"] = "AKRO" + acct["ak"][2:]
    acct["ro_sk"] = acct["sk"] + "-readonly"
    harness.record_secrets([acct["ro_sk"]])
    domains = ["d%d.own.example.com" % i for i in range(ndomains)]
    w.gateway("edge-0", "prod", domains + ["manual.own.example.com"])
    w.certificate("cert-0", "prod", ["*.own.example.com"])
    w.want("cert-0", ["edge-0"], domains)
    w.policy.update({"mode": "sync", "confirm_timeout_s": 10,
                     "max_detach_ratio": 1.0, "max_detach_count": 100})
    w.retry = {"max_attempts": 3, "base_delay_ms": 10, "max_delay_ms": 50}
    return w, domains


def use_key(w, read_only):
    a = w.accounts["prod"]
    if read_only:
        a["ak"], a["full_ak"] = a["ro_ak"], a["ak"]
        a["sk"], a["full_sk"] = a["ro_sk"], a["sk"]
    else:
        a["ak"], a["sk"] = a["full_ak"], a["full_sk"]


def person_attaches(tmp, w, sim, cert, domains):
    """A person (another tool, with its own state) attaches bindings by
    hand: certbind in upsert mode with a state directory of its own."""
    hand = os.path.join(tmp, "hand")
    os.makedirs(hand, exist_ok=True)
    saved = (w.wanted, dict(w.policy), dict(w.daemon))
    w.wanted = []
    w.want(cert, ["edge-0"], domains)
    w.policy["mode"] = "upsert"
    w.daemon["state_dir"] = os.path.join(hand, "state")
    cfg = w.write_yaml(sim.ca, "hand.yaml")
    r = certbind("apply", "-c", cfg)
    w.wanted, w.policy, w.daemon = saved
    return r


class StateTestCase(SimTestCase):
    def state(self):
        return os.path.join(self.tmp, "state")


class OwnershipTest(StateTestCase):
    def test_refused_attach_is_never_owned(self):
        """Item 1's repro: sync with a read-only key fails; a person then
        attaches the bindings by hand; the key is fixed and one domain
        dropped from the file: certbind must not detach the person's
        binding."""
        w, domains = sync_world(self.tmp, ReadOnlyKeyWorld, ndomains=2)
        use_key(w, read_only=True)
        sim, cfg = self.start(w)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("APIG.1005", r.stdout + r.stderr)
        self.assertEqual(owned(self.state()), set())
        self.assertEqual(intents(self.state()), set())  # refused: dropped

        use_key(w, read_only=False)
        r = person_attaches(self.tmp, w, sim, "cert-0", domains)
        self.assertEqual(r.rc, 0, r)
        w.wanted = []
        w.want("cert-0", ["edge-0"], domains[:1])
        cfg = w.write_yaml(sim.ca)
        r = certbind("plan", "-c", cfg)
        self.assertEqual(r.rc, 0, r)  # nothing owned: nothing to detach
        self.assertNotIn("detach", r.stdout)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertIn(domains[1], {b[2] for b in sim.state_set()})
        self.assertEqual(sent(sim, "detach"), 0)

    def test_interrupted_pass_owns_only_what_was_applied(self):
        """SIGTERM mid-pass: the attaches never sent are not owned and
        leave no intent; every owned binding is live."""
        w, domains = sync_world(self.tmp, ndomains=30)
        w.policy["batch_size"] = 1
        w.faults = {"latency": {"kind": "fixed", "ms": 100}}
        sim, cfg = self.start(w)
        r, _ = harness.certbind_signalled(
            "apply", "-c", cfg, what="the third write",
            ready=lambda: sim.stats()["writes_total"] >= 3)
        err = r.stderr
        live = {b[:3] for b in sim.state_set()}
        mine = owned(self.state())
        self.assertLess(len(live), 30, "the signal came too late to test")
        self.assertTrue(mine, err[-2000:])
        self.assertEqual(mine, live)  # applied = owned, nothing more
        self.assertEqual(intents(self.state()), set())

    def test_crash_left_intent_is_uncertain_until_adopted(self):
        """An intent a crash left for a live binding: plan lists it as
        uncertain, sync never detaches it, adopt owns it."""
        w, domains = sync_world(self.tmp, ndomains=3)
        cid = w.certs["cert-0"]["id"]
        iid = w.gateways["edge-0"]["instance_id"]
        for d in domains:
            w.bind("cert-0", "edge-0", d)
        sim, cfg = self.start(w)
        os.makedirs(self.state(), mode=0o700)
        with open(os.path.join(self.state(), "ledger.json"), "w") as f:
            json.dump({"version": 1, "entries": [], "intents": [
                {"certificate_id": cid, "instance_id": iid, "domain": d,
                 "attached_at": int(time.time()) - 3600} for d in domains]}, f)
        # the file no longer wants d2: it is uncertain, not detached
        w.wanted = []
        w.want("cert-0", ["edge-0"], domains[:2])
        cfg = w.write_yaml(sim.ca)
        r = certbind("plan", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Uncertain: 3", r.stdout)
        self.assertIn("? uncertain %s" % domains[2], r.stdout)
        r = certbind("plan", "-c", cfg, "--json")
        doc = json.loads(r.stdout)
        self.assertEqual(doc["summary"]["uncertain"], 3)
        self.assertEqual({u["domain"] for u in doc["uncertain"]}, set(domains))
        r = certbind("apply", "-c", cfg, "--log-format", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(sim.stats()["writes_total"], 0)
        self.assertEqual(len(intents(self.state())), 3)
        self.assertEqual([e["uncertain"] for e in r.events()
                          if e["event"] == "plan"], [3])
        r = certbind("status", "--state-dir", self.state())
        self.assertIn("3 uncertain", r.stdout)
        r = certbind("status", "--state-dir", self.state(), "--json")
        self.assertEqual(json.loads(r.stdout)["pass"]["uncertain"], 3)

        r = certbind("adopt", "-c", cfg, "--certificate", "nope")
        self.assertEqual(r.rc, 64, r)
        self.assertIn("nope", r.stderr)
        r = certbind("adopt", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("adopted 2 binding(s) (2 were uncertain)", r.stdout)
        self.assertEqual(owned(self.state()),
                         {(cid, iid, d) for d in domains[:2]})
        self.assertEqual(intents(self.state()), {(cid, iid, domains[2])})
        # owned now: dropping d1 from the file detaches it; d2 stays
        w.wanted = []
        w.want("cert-0", ["edge-0"], domains[:1])
        cfg = w.write_yaml(sim.ca)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual({b[2] for b in sim.state_set()},
                         {domains[0], domains[2]})

    def test_adopt_existing_fleet(self):
        """adopt owns the live bindings the file wants (of one
        certificate with --certificate), and nothing else."""
        w, domains = sync_world(self.tmp, ndomains=3)
        w.certificate("cert-1", "prod", ["*.own.example.com"])
        w.gateways["edge-0"]["domains"].append("x.own.example.com")
        for d in domains[:2]:
            w.bind("cert-0", "edge-0", d)
        w.bind("cert-1", "edge-0", "x.own.example.com")
        w.want("cert-1", ["edge-0"], ["x.own.example.com"])
        sim, cfg = self.start(w)
        r = certbind("adopt", "-c", cfg, "--certificate", "cert-0")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("adopted 2 binding(s)", r.stdout)
        self.assertIn("1 wanted but not live", r.stdout)
        self.assertEqual({e[2] for e in owned(self.state())}, set(domains[:2]))
        r = certbind("adopt", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("adopted 1 binding(s) (0 were uncertain), 2 already "
                      "owned", r.stdout)
        self.assertEqual(sim.stats()["writes_total"], 0)


@contextlib.contextmanager
def mounted(kind, target, opts):
    """A mount for the test (root only); skips the test where mounting is
    not allowed."""
    os.makedirs(target, exist_ok=True)
    if kind == "ro":
        rc = subprocess.call(["mount", "--bind", target, target],
                             stderr=subprocess.DEVNULL)
        if rc == 0:
            rc = subprocess.call(["mount", "-o", "remount,ro,bind", target],
                                 stderr=subprocess.DEVNULL)
            if rc:
                subprocess.call(["umount", target])
    else:
        rc = subprocess.call(["mount", "-t", "tmpfs", "-o", opts, "tmpfs",
                              target], stderr=subprocess.DEVNULL)
    if rc:
        raise unittest.SkipTest("mount is not allowed here (needs root)")
    try:
        yield target
    finally:
        subprocess.call(["umount", "-l", target])


class UnwritableLedgerTest(SimTestCase):
    def test_read_only_state_dir_sends_nothing(self):
        """EROFS: the pass cannot lock (nor write) its state directory, so
        it sends nothing and fails (exit 1), naming the file and the
        cause (not "does not exist")."""
        w, domains = sync_world(self.tmp, ndomains=6)
        sim, cfg = self.start(w)
        state = os.path.join(self.tmp, "state")
        os.makedirs(state)
        with mounted("ro", state, None):
            r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(sent(sim, "list", "attach", "detach"), 0, r)
        self.assertIn(os.path.join(state, "lock"), r.stderr)
        self.assertIn("Read-only file system", r.stderr)
        self.assertNotIn("does not exist", r.stderr)

    def test_full_disk_detaches_nothing(self):
        """ENOSPC: a sync pass that would detach 20 owned bindings (and
        attach one) sends none of them and fails, naming the file and the
        cause; the ledger on disk still owns the 24; once there is space
        the same pass goes through."""
        w, domains = sync_world(self.tmp, ndomains=24)
        sim, cfg = self.start(w)
        state = os.path.join(self.tmp, "state")
        os.makedirs(state)
        with mounted("tmpfs", state, "size=1m,mode=0700"):
            r = certbind("apply", "-c", cfg)
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(len(owned(state)), 24)
            writes = sent(sim, "attach", "detach")
            filler = os.path.join(state, "filler")
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            # 20 detaches and one attach: neither is sent without its
            # ownership change on disk
            w.wanted = []
            w.want("cert-0", ["edge-0"],
                   domains[:4] + ["manual.own.example.com"])
            cfg = w.write_yaml(sim.ca)
            r = certbind("apply", "-c", cfg)
            self.assertEqual(r.rc, 1, r)
            self.assertEqual(sent(sim, "attach", "detach"), writes, r)
            self.assertIn("no space left", r.stderr + r.stdout)
            self.assertIn("ledger.json", r.stderr)
            self.assertEqual(len(owned(state)), 24)  # the file on disk
            os.unlink(filler)
            r = certbind("apply", "-c", cfg)  # space again: detached now
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(len(sim.state_set()), 5)
            self.assertEqual(len(owned(state)), 5)


class StateLockTest(StateTestCase):
    def test_second_writer_waits_then_names_the_holder(self):
        w, domains = sync_world(self.tmp)
        sim, cfg = self.start(w)
        state = os.path.join(self.tmp, "state")
        os.makedirs(state, mode=0o700)
        with open(os.path.join(state, "lock"), "w") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            t0 = time.monotonic()
            r = certbind("apply", "-c", cfg)
            waited = time.monotonic() - t0
            self.assertEqual(r.rc, 1, r)
            self.assertIn("locked by pid %d" % os.getpid(), r.stderr)
            self.assertGreaterEqual(waited, 10)  # the lock waits 10 s
            self.assertEqual(sent(sim, "list", "attach", "detach"), 0)
            fcntl.flock(lk, fcntl.LOCK_SH)  # readers share it
            r = certbind("plan", "-c", cfg)
            self.assertEqual(r.rc, 2, r)
        r = certbind("apply", "-c", cfg)
        self.assertEqual(r.rc, 0, r)

    def test_daemon_keeps_what_a_concurrent_apply_owns(self):
        """The daemon reads the ledger at every pass, under the lock: the
        bindings an apply made between two of its passes stay owned."""
        w, domains = sync_world(self.tmp, ndomains=24)
        w.policy["mode"] = "upsert"
        w.daemon["resync_interval_s"] = 3600
        w.wanted = []
        w.want("cert-0", ["edge-0"], domains[:4])
        sim, cfg = self.start(w)
        d = Daemon(cfg, self.tmp)
        try:
            first = d.wait_pass(timeout=30)
            w.wanted = []
            w.want("cert-0", ["edge-0"], domains[4:])
            other = w.write_yaml(sim.ca, "other.yaml")
            r = certbind("apply", "-c", other)
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(len(owned(self.state())), 24)
            # the daemon's next pass attaches one more, so it saves the
            # ledger: from what is on disk, not from its memory
            w.wanted = []
            w.want("cert-0", ["edge-0"],
                   domains[:4] + ["manual.own.example.com"])
            mark = d.mark()
            w.write_yaml(sim.ca)
            d.wait("config.reload", after=mark, timeout=30)
            d.wait_pass(after=mark, timeout=30)
            self.assertGreater(mark, first)
        finally:
            d.stop()
        self.assertEqual(len(owned(self.state())), 25)

    def test_daemon_reads_a_new_state_dir_and_a_mended_ledger(self):
        w, domains = sync_world(self.tmp, ndomains=6)
        w.daemon["resync_interval_s"] = 3600
        w.wanted = []
        w.want("cert-0", ["edge-0"], domains[:2])
        for dm in domains[2:4] + ["manual.own.example.com"]:
            w.bind("cert-0", "edge-0", dm)
        sim, cfg = self.start(w)
        cid = w.certs["cert-0"]["id"]
        iid = w.gateways["edge-0"]["instance_id"]
        # a corrupt ledger at start: nothing is detached, it is kept
        os.makedirs(self.state(), mode=0o700)
        lpath = os.path.join(self.state(), "ledger.json")
        with open(lpath, "w") as f:
            f.write("{not json")
        d = Daemon(cfg, self.tmp)
        try:
            d.wait_pass(timeout=30)
            self.assertTrue(d.named("ledger.unusable"))
            self.assertIn(domains[2], {b[2] for b in sim.state_set()})
            # mended: the next pass reads it and detaches what it owns
            with open(lpath, "w") as f:
                json.dump({"version": 1, "entries": [
                    {"certificate_id": cid, "instance_id": iid, "domain": dm,
                     "attached_at": 1} for dm in domains[2:4]]}, f)
            mark = d.mark()
            d.signal(1)
            d.wait_pass(after=mark, timeout=30)
            self.assertEqual({b[2] for b in sim.state_set()},
                             set(domains[:2]) | {"manual.own.example.com"})
            # a reload to another state_dir reads that directory's ledger
            # (which owns "manual", live and no longer wanted: detached),
            # and writes nothing of the first directory's there
            other = os.path.join(self.tmp, "state2")
            os.makedirs(other, mode=0o700)
            with open(os.path.join(other, "ledger.json"), "w") as f:
                json.dump({"version": 1, "entries": [
                    {"certificate_id": cid, "instance_id": iid,
                     "domain": "manual.own.example.com", "attached_at": 1}]}, f)
            w.daemon["state_dir"] = other
            mark = d.mark()
            w.write_yaml(sim.ca)
            d.wait("config.reload", after=mark, timeout=30)
            d.wait_pass(after=mark, timeout=30)
        finally:
            d.stop()
        self.assertEqual({b[2] for b in sim.state_set()}, set(domains[:2]))
        self.assertEqual(owned(other), set())  # not state's entries
        self.assertEqual(owned(self.state()), set())


if __name__ == "__main__":
    unittest.main()
