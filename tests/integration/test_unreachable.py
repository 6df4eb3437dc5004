# SPDX-License-Identifier: MIT
"""A dead or silent endpoint bounds the pass (issue 13 item 6): an account
whose endpoint accepts TCP and never speaks TLS is unreachable for the pass
once its lone first request has failed max_attempts times: nothing else is
sent to it, its 500 certificates' bindings stay pending with the reason,
another account converges, and the pass ends (exit 1) in about
max_attempts x the connect timeout instead of once per certificate.
"""
import json
import os
import socket
import threading
import time
import unittest

from harness import SimTestCase, World, certbind, scaled

# certbind's connect timeout (TCP + TLS handshake, net/http.c): each
# attempt against a silent endpoint lasts this long. Not a setting.
CONNECT_TIMEOUT_S = 10


class SilentListener:
    """Accepts TCP connections on loopback and never sends a byte."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(c)

    def accepted(self):
        with self.lock:
            return len(self.conns)

    def stop(self):
        self.sock.close()
        with self.lock:
            for c in self.conns:
                c.close()


class UnreachableTest(SimTestCase):
    def test_silent_endpoint_ends_the_pass_after_max_attempts(self):
        ncerts = 500
        attempts = 2
        w = World(self.tmp)
        w.account("dead")
        w.account("live")
        dead_domains = ["api.c%d.dead.example.com" % k for k in range(ncerts)]
        w.gateway("dead-edge", "dead", dead_domains)
        for k in range(ncerts):
            w.certificate("dead-%d" % k, "dead", ["*.c%d.dead.example.com" % k])
            w.want("dead-%d" % k, ["dead-edge"], [dead_domains[k]])
        w.gateway("live-edge", "live", ["api.live.example.com"])
        w.certificate("live-0", "live", ["*.live.example.com"])
        w.want("live-0", ["live-edge"], ["api.live.example.com"])
        w.retry = {"max_attempts": attempts, "base_delay_ms": 20,
                   "max_delay_ms": 200}
        sim, cfg = self.start(w)
        silent = SilentListener()
        self.addCleanup(silent.stop)
        # the dead account's endpoint is the silent listener
        with open(cfg) as f:
            text = f.read()
        head, _, rest = text.partition("  dead:\n")
        rest = rest.replace("endpoint: " + sim.url,
                            "endpoint: https://127.0.0.1:%d" % silent.port, 1)
        with open(cfg, "w") as f:
            f.write(head + "  dead:\n" + rest)

        t0 = time.monotonic()
        r = certbind("apply", "-c", cfg, "--log-format", "json",
                     timeout=scaled(300))
        elapsed = time.monotonic() - t0
        self.assertEqual(r.rc, 1, r)
        # the lone first request, max_attempts times: not once per
        # certificate
        self.assertEqual(silent.accepted(), attempts, r)
        # bounded by what the settings imply: max_attempts connect timeouts
        # and the backoffs between them (<= 2 x 20 ms here), plus start-up
        # and the other account (generous, scaled)
        self.assertLess(elapsed, attempts * CONNECT_TIMEOUT_S + scaled(20), r)
        with open(os.path.join(self.tmp, "state", "status.json")) as f:
            st = json.load(f)
        dead = [b for b in st["bindings"] if b["account"] == "dead"]
        live = [b for b in st["bindings"] if b["account"] == "live"]
        self.assertEqual(len(dead), ncerts)
        for b in dead:
            self.assertEqual(b["state"], "pending", b)
            self.assertEqual(b["error_code"], "unreachable", b)
            self.assertIn("account dead unreachable", b["error_msg"])
        self.assertEqual([b["state"] for b in live], ["converged"], live)
        self.assertIn((w.certs["live-0"]["id"],
                       w.gateways["live-edge"]["instance_id"],
                       "api.live.example.com", False), sim.state_set())
        # one line for the account, not 500
        self.assertRegex(r.stdout, r"pending  %d certificates not read: "
                         r"unreachable account dead unreachable: its first "
                         r"request failed %d times" % (ncerts, attempts))
        ev = r.events()
        self.assertEqual(len([e for e in ev
                              if e["event"] == "account.unreachable"]), 1, r)
        self.assertEqual(st["pass"]["outcome"], "partial", st["pass"])
        print("\nsilent endpoint, %d certificates, max_attempts %d: %d "
              "connections, %.1f s" % (ncerts, attempts, silent.accepted(),
                                       elapsed))


if __name__ == "__main__":
    unittest.main()
