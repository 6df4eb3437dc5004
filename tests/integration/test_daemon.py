# SPDX-License-Identifier: MIT
"""certbind run (the daemon) against apig-sim over HTTPS: sd_notify
on a NOTIFY_SOCKET the test owns, reload on edit / rename / SIGHUP, a
rejected bad edit, coalesced passes, drain on SIGTERM, a second signal,
the watchdog, per-binding failure memory, status and metrics per pass."""
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import unittest

from harness import CERTBIND, SimTestCase, World, record_output, scaled
from notify import NotifySocket


class Daemon:
    """certbind run as a child; its JSON log lines collected by a thread."""

    def __init__(self, cfg, tmp, env=None, level="info"):
        self.notify = NotifySocket(tmp)
        e = dict(os.environ)
        e["NO_COLOR"] = "1"
        e.update(self.notify.env())
        if env:
            e.update(env)
        self.proc = subprocess.Popen(
            [CERTBIND, "run", "-c", cfg, "--log-format", "json",
             "--log-level", level],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, text=True)
        self.events = []
        self.raw = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.raw.append(line)
                if line.startswith("{"):
                    try:
                        self.events.append(json.loads(line))
                    except ValueError:
                        pass
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def mark(self):
        with self.cond:
            return len(self.events)

    def named(self, name, after=0):
        with self.cond:
            return [e for e in self.events[after:] if e["event"] == name]

    def wait(self, name, after=0, timeout=30, pred=None):
        """The index of the first event `name` at or after `after`; the
        timeout is stretched by harness.scaled()."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(after, len(self.events)):
                    e = self.events[i]
                    if e["event"] == name and (pred is None or pred(e)):
                        return i
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None
                                 and not self.reader.is_alive()):
                    raise AssertionError("no %s event within %ss:\n%s" %
                                         (name, timeout, "".join(self.raw[-40:])))
                self.cond.wait(min(left, 0.5))

    def wait_pass(self, after=0, timeout=30):
        """Wait for the next pass to end and its results (status.json,
        ledger, metrics) to be saved: the daemon says STATUS=last pass ...
        after saving. The index of its pass.done."""
        i = self.wait("pass.done", after, timeout)
        with self.cond:
            n = sum(1 for e in self.events[:i + 1] if e["event"] == "pass.done")
        deadline = time.monotonic() + scaled(timeout)
        while self.saved() < n:
            if time.monotonic() > deadline:
                raise AssertionError("pass %d ended but was not saved: %r" %
                                     (n, self.notify.snapshot()))
            with self.notify.cond:
                self.notify.cond.wait(0.5)
        return i

    def saved(self):
        return sum(1 for m in self.notify.snapshot()
                   if m.get("STATUS", "").startswith("last pass"))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        rc = self.proc.wait(timeout)
        self.reader.join(5)
        return rc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)
        self.proc.stdout.close()
        self.proc.stderr.close()
        self.notify.close()
        record_output("certbind-run", "".join(self.raw))


def daemon_world(tmp, ndomains=6, want=2, extra_regs=(), metrics=False):
    w = World(tmp)
    w.account("prod")
    domains = ["d%d.run.example.com" % i for i in range(ndomains)]
    w.gateway("edge-0", "prod", domains + list(extra_regs))
    w.certificate("cert-a", "prod", ["*.run.example.com"])
    w.certificate("cert-b", "prod", ["*.run.example.com"])
    w.want("cert-a", ["edge-0"], domains[:want])
    w.policy["confirm_timeout_s"] = 10
    w.daemon["resync_interval_s"] = 3600
    if metrics:
        w.daemon["metrics_file"] = os.path.join(tmp, "certbind.prom")
    return w, domains


def ts(event):
    t = datetime.datetime.strptime(event["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
    return t.timestamp()


def bound(sim):
    return {b[2] for b in sim.state_set()}


def rename_over(path, text):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


class DaemonTestCase(SimTestCase):
    def setUp(self):
        super().setUp()
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            d.stop()
        super().tearDown()

    def run_daemon(self, cfg, **kw):
        d = Daemon(cfg, self.tmp, **kw)
        self.daemons.append(d)
        return d


class ReloadTest(DaemonTestCase):
    def test_ready_status_and_reloads(self):
        w, domains = daemon_world(self.tmp, metrics=True)
        sim, cfg = self.start(w)
        d = self.run_daemon(cfg)
        d.notify.wait_for("READY", "1")
        first = d.wait_pass()
        self.assertEqual(bound(sim), set(domains[:2]))
        # a STATUS= line summarising the pass
        self.assertEqual(d.saved(), 1)  # a STATUS= line summarising it
        with open(os.path.join(self.tmp, "state", "status.json")) as f:
            self.assertEqual(json.load(f)["pass"]["outcome"], "converged")
        prom = os.path.join(self.tmp, "certbind.prom")
        with open(prom) as f:
            self.assertIn("certbind_passes_total 1", f.read())

        # 1. edit in place
        m = d.mark()
        w.wanted[0]["domains"] = domains[:3]
        with open(cfg, "w") as f:
            f.write(w.yaml(sim.ca))
        d.wait("config.reload", m, timeout=10)
        d.wait_pass(m)
        self.assertIn(domains[2], bound(sim))
        with open(prom) as f:
            self.assertIn("certbind_passes_total 2", f.read())

        # 2. replace by rename, as editors and config management do
        m = d.mark()
        w.wanted[0]["domains"] = domains[:4]
        rename_over(cfg, w.yaml(sim.ca))
        d.wait("config.reload", m, timeout=10)
        d.wait_pass(m)
        self.assertIn(domains[3], bound(sim))

        # 3. SIGHUP: RELOADING=1, then READY=1, then a pass
        m = d.mark()
        n = len(d.notify.snapshot())
        d.signal(signal.SIGHUP)
        i, _ = d.notify.wait_for("RELOADING", "1", after=n)
        d.notify.wait_for("READY", "1", after=i + 1)
        d.wait("config.reload", m, timeout=10)
        d.wait_pass(m)
        self.assertEqual(bound(sim), set(domains[:4]))
        self.assertIsNone(d.proc.poll())
        self.assertEqual(len(d.named("pass.start")), 4)
        # no WATCHDOG_USEC in the environment: no watchdog pings
        self.assertEqual(d.notify.count("WATCHDOG"), 0)

    def test_broken_edit_is_rejected_and_last_good_stays(self):
        w, domains = daemon_world(self.tmp)
        sim, cfg = self.start(w)
        d = self.run_daemon(cfg)
        d.wait_pass()
        writes = sim.stats()["writes_total"]

        m = d.mark()
        w.wanted[0]["domains"] = domains[:5]  # would add three bindings ...
        text = w.yaml(sim.ca).replace("policy:\n", "policy:\n  batch_size: many\n")
        with open(cfg, "w") as f:
            f.write(text)  # ... but the file is broken
        d.wait("config.rejected", m, timeout=10)
        rejected = d.named("config.rejected", m)
        self.assertTrue(any(re.search(re.escape(cfg) + r":\d+:\d+: ", e.get("msg", ""))
                            for e in rejected), rejected)
        # SIGHUP with the broken file: rejected again, no pass, no writes
        m2 = d.mark()
        n = len(d.notify.snapshot())
        d.signal(signal.SIGHUP)
        d.wait("config.rejected", m2, timeout=10)
        # systemd hears that the reload is over and that it was rejected
        i, _ = d.notify.wait_for("RELOADING", "1", after=n)
        _, ready = d.notify.wait_for("READY", "1", after=i + 1)
        self.assertIn("rejected", ready.get("STATUS", ""))
        self.assertEqual(d.named("pass.start", m), [])
        self.assertEqual(sim.stats()["writes_total"], writes)
        self.assertEqual(bound(sim), set(domains[:2]))
        self.assertIsNone(d.proc.poll())

        # fixed: the new file takes effect
        m = d.mark()
        with open(cfg, "w") as f:
            f.write(w.yaml(sim.ca))
        d.wait("config.reload", m, timeout=10)
        d.wait_pass(m)
        self.assertEqual(bound(sim), set(domains[:5]))

    def test_rejected_status_counts_the_problems(self):
        # issue 13 item 13: the diagnostics were freed before they were
        # counted, so STATUS= said "file rejected (0 problems)"
        w, domains = daemon_world(self.tmp)
        sim, cfg = self.start(w)
        d = self.run_daemon(cfg)
        d.wait_pass(timeout=30)
        m = d.mark()
        n = len(d.notify.snapshot())
        text = w.yaml(sim.ca).replace(
            "policy:\n", "policy:\n  batch_size: many\n  max_detach_ratio: 7\n")
        with open(cfg, "w") as f:
            f.write(text)
        d.wait("config.rejected", m, timeout=10,
               pred=lambda e: "problem(s)" in e.get("msg", ""))
        lines = [e for e in d.named("config.rejected", m)
                 if re.search(re.escape(cfg) + r":\d+:\d+: ", e.get("msg", ""))]
        self.assertEqual(len(lines), 2, lines)
        i, _ = d.notify.wait_for("RELOADING", "1", after=n,
                                 timeout=scaled(20))
        _, ready = d.notify.wait_for("READY", "1", after=i + 1,
                                     timeout=scaled(20))
        self.assertIn("file rejected (2 problems)", ready.get("STATUS", ""))

    def test_file_removed_then_restored_and_touched(self):
        w, domains = daemon_world(self.tmp)
        sim, cfg = self.start(w)
        d = self.run_daemon(cfg)
        d.wait_pass()
        # removed (config management deleting before it writes)
        m = d.mark()
        os.unlink(cfg)
        d.wait("config.rejected", m, timeout=10)
        self.assertIsNone(d.proc.poll())
        self.assertEqual(d.named("pass.start", m), [])
        # back, with a change: reloaded, a pass
        m = d.mark()
        w.wanted[0]["domains"] = domains[:3]
        with open(cfg, "w") as f:
            f.write(w.yaml(sim.ca))
        d.wait("config.reload", m, timeout=10)
        p = d.wait_pass(m)
        self.assertEqual(bound(sim), set(domains[:3]))
        # touched (mtime only): no reload, no pass
        m = d.mark()
        os.utime(cfg)
        # a SIGHUP afterwards is the marker that the touch was handled
        time.sleep(0.6)  # longer than the 300 ms debounce
        d.signal(signal.SIGHUP)
        r = d.wait("config.reload", m, timeout=10)
        d.wait_pass(r)
        self.assertEqual(len(d.named("config.reload", m)), 1)
        self.assertEqual(len(d.named("pass.start", m)), 1)
        self.assertGreater(d.events.index(d.named("pass.start", m)[0]), r)
        self.assertGreater(r, p)

    def test_busy_directory_does_not_hold_a_reload_back(self):
        w, domains = daemon_world(self.tmp)
        sim, cfg = self.start(w)
        d = self.run_daemon(cfg)
        d.wait_pass()
        stop = threading.Event()

        def scribble():  # another file of the directory, written all the time
            with open(os.path.join(self.tmp, "busy.log"), "a") as f:
                while not stop.wait(0.05):
                    f.write("x\n")
                    f.flush()
        t = threading.Thread(target=scribble, daemon=True)
        t.start()
        try:
            m = d.mark()
            w.wanted[0]["domains"] = domains[:3]
            with open(cfg, "w") as f:
                f.write(w.yaml(sim.ca))
            d.wait("config.reload", m, timeout=8)
            d.wait_pass(m)
            self.assertEqual(bound(sim), set(domains[:3]))
        finally:
            stop.set()
            t.join()

    def test_changes_during_a_pass_start_exactly_one_more(self):
        w, domains = daemon_world(self.tmp)
        w.faults = {"latency": {"kind": "fixed", "ms": 700}}
        sim, cfg = self.start(w)
        d = self.run_daemon(cfg)
        d.wait("pass.start")
        # three changes while the first pass runs
        w.wanted[0]["domains"] = domains[:3]
        with open(cfg, "w") as f:
            f.write(w.yaml(sim.ca))
        r1 = d.wait("config.reload", timeout=10)
        w.wanted[0]["domains"] = domains[:4]
        rename_over(cfg, w.yaml(sim.ca))
        d.wait("config.reload", r1 + 1, timeout=10)
        d.signal(signal.SIGHUP)
        first = d.wait_pass()
        self.assertEqual(len(d.named("config.reload")), 3,
                         "all three reloads arrived during the first pass")
        second = d.wait_pass(first + 1)
        self.assertEqual(bound(sim), set(domains[:4]))
        self.assertEqual(len(d.named("pass.start")), 2)

        # a later SIGHUP starts the third pass; nothing ran in between
        sim.faults({"latency": {"kind": "none"}})
        m = d.mark()
        d.signal(signal.SIGHUP)
        r = d.wait("config.reload", m, timeout=10)
        d.wait_pass(r)
        starts = [i for i, e in enumerate(d.events) if e["event"] == "pass.start"]
        self.assertEqual(len(starts), 3)
        self.assertGreater(starts[2], r)
        self.assertGreater(starts[1], first)


class InputFilesTest(DaemonTestCase):
    """Issue 13 item 14: what was validated is the file AND the files it
    names (secret files, the CA file); a change to any of them makes the
    daemon validate again, with no edit of the file and no SIGHUP."""

    def wait_rejected(self, d, m, n, problems=1):
        """The reload that starts after event m / notify message n ends
        rejected: its summary is logged and systemd hears RELOADING=1, then
        READY=1 with the STATUS (the daemon's bookkeeping of the rejection
        is done by then). Both, since the log and the notify socket are
        read apart."""
        d.wait("config.rejected", m, timeout=10,
               pred=lambda e: "problem(s)" in e.get("msg", ""))
        i, _ = d.notify.wait_for("RELOADING", "1", after=n,
                                 timeout=scaled(20))
        _, ready = d.notify.wait_for("READY", "1", after=i + 1,
                                     timeout=scaled(20))
        self.assertEqual(ready.get("STATUS"),
                         "file rejected (%d problems); last good file in "
                         "force" % problems)

    def test_secret_chmod_rejected_then_fixed_without_an_edit(self):
        w, domains = daemon_world(self.tmp)
        sim, cfg = self.start(w)
        sk = os.path.join(self.tmp, "secrets", "prod-sk")
        # the next file, made now: World.yaml() rewrites the secret files,
        # which would be a change of its own while the daemon runs
        w.wanted[0]["domains"] = domains[:3]
        text = w.yaml(sim.ca)
        d = self.run_daemon(cfg)
        d.wait_pass(timeout=30)
        # the secret becomes group-readable: the file in force is validated
        # again and rejected; the last good file stays in force
        m = d.mark()
        n = len(d.notify.snapshot())
        os.chmod(sk, 0o640)
        self.wait_rejected(d, m, n)
        self.assertTrue(any(sk in e.get("msg", "") and "chmod 600" in e["msg"]
                            for e in d.named("config.rejected", m)))
        # an edit while the secret is still wrong: rejected too
        m = d.mark()
        n = len(d.notify.snapshot())
        rename_over(cfg, text)
        self.wait_rejected(d, m, n)
        # nothing it depends on changes: no new validation, no log spam
        # (a touch of the file, the secret replaced by the same bytes with
        # the same mode, another file written beside it)
        m = d.mark()
        os.utime(cfg)
        fd = os.open(sk + ".new", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, (w.accounts["prod"]["sk"] + "\n").encode())
        os.fchmod(fd, 0o640)
        os.close(fd)
        os.rename(sk + ".new", sk)
        with open(os.path.join(self.tmp, "secrets", "unrelated"), "w") as f:
            f.write("x\n")
        time.sleep(1.0)  # > the 300 ms debounce
        self.assertEqual(d.named("config.rejected", m), [])
        self.assertEqual(d.named("config.reload", m), [])
        self.assertEqual(len(d.named("pass.start")), 1)
        self.assertEqual(bound(sim), set(domains[:2]))
        # fixed outside the file: validated again, taken, a pass; no
        # edit of the file and no SIGHUP
        m = d.mark()
        os.chmod(sk, 0o600)
        d.wait("config.reload", m, timeout=10)
        d.wait_pass(m, timeout=30)
        self.assertEqual(bound(sim), set(domains[:3]))
        self.assertEqual(d.named("config.rejected", m), [])
        last = [f for f in d.notify.snapshot() if "STATUS" in f][-1]
        self.assertNotIn("rejected", last["STATUS"])

    def test_secret_directory_made_again_is_still_watched(self):
        w, domains = daemon_world(self.tmp)
        sim, cfg = self.start(w)
        d = self.run_daemon(cfg)
        d.wait_pass(timeout=30)
        # the secrets' directory is removed and made again with the same
        # files (a deploy tool, a credentials directory set up anew):
        # nothing the file depends on changed, but the old watch is dead
        secrets = os.path.join(self.tmp, "secrets")
        saved = {}
        for name in os.listdir(secrets):
            with open(os.path.join(secrets, name)) as f:
                saved[name] = f.read()
        m = d.mark()
        shutil.rmtree(secrets)
        os.mkdir(secrets, 0o700)
        for name, text in saved.items():
            fd = os.open(os.path.join(secrets, name),
                         os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, text.encode())
            os.close(fd)
        time.sleep(1.0)  # > the 300 ms debounce: the daemon looked again
        self.assertEqual(d.named("config.reload", m), [])
        self.assertEqual(d.named("config.rejected", m), [])
        # a change in the new directory is seen
        m = d.mark()
        n = len(d.notify.snapshot())
        os.chmod(os.path.join(secrets, "prod-sk"), 0o640)
        self.wait_rejected(d, m, n)

    def test_rejected_for_a_missing_secret_then_it_is_created(self):
        w, domains = daemon_world(self.tmp)
        sim, cfg = self.start(w)
        # the next file moves the secret key to a directory that does not
        # exist yet (config management writes the file before the secret)
        newdir = os.path.join(self.tmp, "creds")
        newsk = os.path.join(newdir, "prod-sk")
        old = os.path.join(self.tmp, "secrets", "prod-sk")
        w.wanted[0]["domains"] = domains[:3]
        text = w.yaml(sim.ca).replace(old, newsk)
        d = self.run_daemon(cfg)
        d.wait_pass(timeout=30)
        m = d.mark()
        rename_over(cfg, text)
        d.wait("config.rejected", m, timeout=10,
               pred=lambda e: newsk in e.get("msg", ""))
        self.assertEqual(d.named("pass.start", m), [])
        # the secret arrives: validated again, taken, a pass
        m = d.mark()
        os.mkdir(newdir, 0o700)
        fd = os.open(newsk + ".tmp", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, (w.accounts["prod"]["sk"] + "\n").encode())
        os.close(fd)
        os.rename(newsk + ".tmp", newsk)
        d.wait("config.reload", m, timeout=10)
        d.wait_pass(m, timeout=30)
        self.assertEqual(bound(sim), set(domains[:3]))


class StopTest(DaemonTestCase):
    def busy_world(self, latency):
        w = World(self.tmp)
        w.account("prod")
        gws = ["edge-0"]
        w.gateway("edge-0", "prod", [])
        for c in range(6):
            doms = ["d%d.c%d.example.com" % (i, c) for i in range(3)]
            w.gateways["edge-0"]["domains"] += doms
            w.certificate("cert-%d" % c, "prod", ["*.c%d.example.com" % c])
            w.want("cert-%d" % c, gws, doms)
        w.policy["batch_size"] = 1  # many writes, one per domain
        w.daemon["resync_interval_s"] = 3600
        w.faults = {"latency": latency}
        return w

    def wait_writes_in_flight(self, sim, d):
        deadline = time.monotonic() + scaled(20)
        while True:
            # every certificate read and shown (each pass shows every
            # certificate): what is in flight now is a write (each
            # certificate writes its 3 domains one after the other, 1-2 s
            # each, so writes stay in flight for seconds)
            st = sim.stats()
            answered = lambda op: sum(st["by_op"].get(op, {}).values())
            if st["in_flight"] > 0 and st["writes_total"] < 6 and \
                    answered("list") >= 6 and answered("show") >= 6:
                return
            self.assertLess(time.monotonic(), deadline, st)
            time.sleep(0.05)

    def test_sigterm_drains_in_flight_writes(self):
        w = self.busy_world({"kind": "uniform", "min_ms": 1000, "max_ms": 2000})
        sim, cfg = self.start(w)
        d = self.run_daemon(cfg)
        self.wait_writes_in_flight(sim, d)
        n = len(d.notify.snapshot())
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        d.notify.wait_for("STOPPING", "1", after=n, timeout=5)
        rc = d.wait_exit(30 + scaled(5))
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, "".join(d.raw[-30:]))
        # the drain deadline is 30 s; then the exit itself
        self.assertLess(took, 30 + scaled(3))
        st = sim.stats()
        self.assertEqual(st["in_flight"], 0)
        # every write the sim answered was heard by certbind (none cut off)
        attach = st["by_op"]["attach"]
        self.assertNotIn("0", attach, attach)
        answered = sum(attach.values())
        self.assertGreater(answered, 0)
        heard = d.named("write.ok") + d.named("write.retry") + d.named("write.failed")
        self.assertEqual(len(heard), answered, attach)
        # stopped early: no new writes after the signal
        self.assertLess(answered, 18)
        self.assertTrue(d.named("shutdown"))
        with open(os.path.join(self.tmp, "state", "status.json")) as f:
            outcome = json.load(f)["pass"]["outcome"]
        self.assertIn(outcome, ("interrupted", "partial"))

    def test_second_sigint_exits_at_once(self):
        w = self.busy_world({"kind": "fixed", "ms": 8000})
        sim, cfg = self.start(w)
        d = self.run_daemon(cfg)
        d.wait("pass.start")
        deadline = time.monotonic() + scaled(20)
        while sim.stats()["in_flight"] == 0:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        d.signal(signal.SIGINT)
        d.wait("shutdown", timeout=5)
        t0 = time.monotonic()
        d.signal(signal.SIGINT)
        rc = d.wait_exit(scaled(5))
        self.assertLess(time.monotonic() - t0, scaled(4))
        self.assertEqual(rc, 0, "".join(d.raw[-20:]))
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "state", "status.json")))

    def test_sigterm_when_idle_exits_0(self):
        w, domains = daemon_world(self.tmp)
        sim, cfg = self.start(w)
        d = self.run_daemon(cfg)
        d.wait_pass()
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(scaled(10)), 0)
        d.notify.wait_for("STOPPING", "1", timeout=2)


class ResyncTest(DaemonTestCase):
    def test_passes_at_the_jittered_interval_with_watchdog_pings(self):
        w, domains = daemon_world(self.tmp)
        w.daemon["resync_interval_s"] = 10  # the minimum
        sim, cfg = self.start(w)
        d = self.run_daemon(cfg, env={"WATCHDOG_USEC": "1000000"})
        d.notify.wait_for("READY", "1")
        first = d.wait_pass()
        # WATCHDOG=1 from the event loop, at half the interval systemd set
        i, _ = d.notify.wait_for("WATCHDOG", "1", timeout=5)
        d.notify.wait_for("WATCHDOG", "1", after=i + 1, timeout=5)
        start = d.wait("pass.start", first + 1, timeout=20)
        gap = ts(d.events[start]) - ts(d.events[first])
        self.assertGreaterEqual(gap, 8.9)  # 10 s - 10 %
        self.assertLess(gap, 11 + scaled(3))  # 10 s + 10 %, and a loaded box
        d.wait_pass(start)
        # nothing to do: the resync pass read, wrote nothing
        self.assertEqual(sim.stats()["writes_total"], 1)
        # the watchdog kept pinging through the 10 s wait
        self.assertGreaterEqual(d.notify.count("WATCHDOG", "1"), 12)

    def test_sigterm_during_a_rollout_soak_exits_at_once(self):
        w, domains = daemon_world(self.tmp, want=4)
        w.rollout = {"waves": [1, "100%"], "soak_s": 120,
                     "abort_failure_ratio": 0.5}
        w.policy["batch_size"] = 1
        sim, cfg = self.start(w)
        d = self.run_daemon(cfg)
        d.wait("wave.done", timeout=20)
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(scaled(10)), 0)
        self.assertLess(time.monotonic() - t0, scaled(8))
        self.assertEqual(len(bound(sim)), 1)  # the second wave never started
        self.assertEqual(d.named("wave.start", 0)[-1]["wave"], 1)
        with open(os.path.join(self.tmp, "state", "status.json")) as f:
            st = json.load(f)
        pending = [b for b in st["bindings"] if b["state"] == "pending"]
        self.assertEqual(len(pending), 3, st)


class MemoryTest(DaemonTestCase):
    def test_permanent_failure_is_not_resent_until_its_entry_changes(self):
        w, domains = daemon_world(self.tmp, extra_regs=())
        w.wanted[0]["domains"] = domains[:2] + ["bad.run.example.com"]
        sim, cfg = self.start(w)
        d = self.run_daemon(cfg)
        d.wait_pass()
        status = os.path.join(self.tmp, "state", "status.json")

        def attach_404():
            return sim.stats()["by_op"]["attach"].get("404", 0)

        def failed_in_status():
            with open(status) as f:
                return {b["domain"]: b for b in json.load(f)["bindings"]
                        if b["state"] == "failed"}

        tried = attach_404()
        self.assertGreater(tried, 0)
        self.assertEqual(set(failed_in_status()), {"bad.run.example.com"})

        # next pass (SIGHUP, same file): not re-sent, still failed
        m = d.mark()
        d.signal(signal.SIGHUP)
        d.wait_pass(m)
        self.assertEqual(attach_404(), tried)
        self.assertEqual(set(failed_in_status()), {"bad.run.example.com"})
        self.assertEqual(failed_in_status()["bad.run.example.com"]["error_code"],
                         "APIG.3020")

        # the entry changes (verify_client toggled): tried again
        m = d.mark()
        w.wanted[0]["verify_client"] = True
        rename_over(cfg, w.yaml(sim.ca))
        d.wait("config.reload", m, timeout=10)
        d.wait_pass(m)
        again = attach_404()
        self.assertGreater(again, tried)

        # unchanged again: held back again
        m = d.mark()
        d.signal(signal.SIGHUP)
        d.wait_pass(m)
        self.assertEqual(attach_404(), again)

        # the domain moves to another certificate: tried again
        m = d.mark()
        w.wanted[0]["domains"] = domains[:2]
        w.want("cert-b", ["edge-0"], ["bad.run.example.com"], verify=True)
        rename_over(cfg, w.yaml(sim.ca))
        d.wait("config.reload", m, timeout=10)
        d.wait_pass(m)
        self.assertGreater(attach_404(), again)
        self.assertEqual(set(failed_in_status()), {"bad.run.example.com"})
        self.assertEqual(bound(sim), set(domains[:2]))


if __name__ == "__main__":
    unittest.main()
