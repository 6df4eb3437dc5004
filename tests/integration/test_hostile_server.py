# SPDX-License-Identifier: MIT
"""Hostile input (issue 7): a malicious APIG endpoint (hostile.py, python ssl
+ http.server over HTTPS) answers list and attach with huge bodies, deep
JSON, wrong types, truncated responses, invalid UTF-8, endless pagination,
absurd Retry-After and plain garbage. certbind must end with a clear error
(exit 1), never crash, never hang, never print a secret. IDs that would
inject into URLs are refused at load (exit 3) before any request.

Each certbind run costs seconds under valgrind (the integration stage of
scripts/test.sh): variants of one answer are given to several certificates
of one run, each certificate checked on its own, rather than one run each.
"""
import json
import os
import signal
import subprocess
import tempfile
import shutil
import time
import unittest

import harness
import hostile
from harness import World, certbind, make_certs
from hostile import Answer, HostileServer

CERT = "cert-0"
DOMAIN = "api.c0.example.com"
BOUND_ONE = json.dumps({
    "total": 1, "size": 1,
    "bound_domains": [{"id": "0" * 32, "url_domain": DOMAIN, "status": 3,
                       "verified_client_certificate_enabled": False,
                       "instance_id": "f0fa1789-3b76-433b-a787-9892951c620e"}]})
EMPTY = json.dumps({"total": 0, "size": 0, "bound_domains": []})


def list_only(body=None, **kw):
    """A handler answering every list with the same Answer."""
    def h(method, path, q):
        if path.endswith("/attached-domains"):
            return Answer(body=body, **kw) if body is not None else Answer(**kw)
        return Answer(404, b'{"error_code":"APIG.0101","error_msg":"no"}')
    return h


class HostileTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="certbind-hostile-")
        self.tls = make_certs(self.tmp)
        self.server = HostileServer(self.tls)
        w = World(self.tmp)
        self.acct = w.account("prod")
        w.gateway("edge-0", "prod", [DOMAIN])
        w.certificate(CERT, "prod", ["*.c0.example.com"])
        w.want(CERT, ["edge-0"], [DOMAIN])
        w.retry = {"max_attempts": 3, "base_delay_ms": 20, "max_delay_ms": 200}
        w.policy["confirm_timeout_s"] = 2
        w.endpoint = self.server.url
        self.world = w
        self.cfg = w.write_yaml(os.path.join(self.tls, "ca.pem"))

    def tearDown(self):
        self.server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def certificates(self, n):
        """The file wants n certificates (cert-0 ... cert-<n-1>), one domain
        each on edge-0; their IDs, in order."""
        w = World(self.tmp)
        self.acct = w.account("prod")
        domains = ["api.c%d.example.com" % k for k in range(n)]
        w.gateway("edge-0", "prod", domains)
        for k in range(n):
            w.certificate("cert-%d" % k, "prod", ["*.c%d.example.com" % k])
            w.want("cert-%d" % k, ["edge-0"], [domains[k]])
        w.retry = dict(self.world.retry)
        w.policy = dict(self.world.policy)
        w.endpoint = self.server.url
        self.world = w
        self.cfg = w.write_yaml(os.path.join(self.tls, "ca.pem"))
        return [w.certs["cert-%d" % k]["id"] for k in range(n)]

    def status_of(self):
        """certificate name -> the states and error codes of its bindings"""
        with open(os.path.join(self.tmp, "state", "status.json")) as f:
            st = json.load(f)
        out = {}
        for b in st["bindings"]:
            out.setdefault(b["certificate"], []).append(
                (b["state"], b.get("error_code")))
        return out

    def apply(self, timeout=60):
        t0 = time.monotonic()
        r = certbind("apply", "-c", self.cfg, "--log-format", "json",
                     timeout=timeout)
        r.elapsed = time.monotonic() - t0
        return r

    def assert_clean_failure(self, r, wants=None, max_s=30):
        """exit 1 (not a signal, not a crash), bounded time, a clear error,
        no secret."""
        self.assertEqual(r.rc, 1, r)
        self.assertLess(r.elapsed, harness.scaled(max_s), r)
        out = r.stdout + r.stderr
        for s in (self.acct["sk"], self.acct["ak"]):
            self.assertNotIn(s, out)
        self.assertNotIn("AddressSanitizer", out)
        self.assertNotIn("runtime error", out)
        for line in r.stderr.splitlines():  # every log line is valid JSON
            if line.strip():
                json.loads(line)
        if wants:
            self.assertRegex(out, wants)
        # the operator is told why (pending: an endpoint that never answered
        # HTTP is unreachable, its bindings not reached)
        self.assertRegex(r.stdout, "(failed|pending)  ")
        with open(os.path.join(self.tmp, "state", "status.json")) as f:
            st = json.load(f)
        self.assertIn(st["pass"]["outcome"], ("failed", "partial"))


class HostileListTest(HostileTestCase):
    def test_huge_body_over_the_list_cap(self):
        # a list page is refused past 1 MiB (APIG_MAX_LIST_BODY), while it
        # arrives
        pad = "x" * (2 << 20)
        self.server.handler = list_only(
            '{"total":0,"size":0,"bound_domains":[],"pad":"%s"}' % pad)
        r = self.apply()
        self.assert_clean_failure(r, "response-too-large")
        self.assertLessEqual(self.server.count("list"), 3)

    def test_deep_json(self):
        self.server.handler = list_only("[" * 200000 + "]" * 200000)
        self.assert_clean_failure(self.apply(), "could not be read")

    def test_deep_json_inside_a_field(self):
        self.server.handler = list_only(
            '{"total":0,"bound_domains":[],"x":' + "{\"a\":" * 5000 + "1" +
            "}" * 5000 + "}")
        self.assert_clean_failure(self.apply(), "could not be read")

    def test_wrong_types(self):
        bodies = ['{"total":"1","size":1,"bound_domains":[]}',
                  '{"total":1,"size":1,"bound_domains":{"a":1}}',
                  '{"total":1,"size":1,"bound_domains":[{"url_domain":7,'
                  '"instance_id":"x"}]}',
                  '{"total":1,"size":1,"bound_domains":[{"url_domain":"a.b",'
                  '"instance_id":["x"]}]}',
                  '{"total":1,"size":1,"bound_domains":["a.b"]}',
                  '{"total":1,"size":1}',
                  '[]', 'null', '"bound_domains"', '']
        # one certificate per body, in one run
        ids = self.certificates(len(bodies))
        body_of = dict(zip(ids, bodies))

        def h(method, path, q):
            if path.endswith("/attached-domains"):
                return Answer(body=body_of[hostile.cert_of(path)])
            return Answer(404, b"{}")
        self.server.handler = h
        r = self.apply()
        self.assert_clean_failure(r, "could not be read")
        st = self.status_of()
        for k, body in enumerate(bodies):
            with self.subTest(body=body):
                self.assertEqual(st["cert-%d" % k], [("failed", "bad-response")])
                self.assertRegex(r.stdout, r"certificate cert-%d: live state "
                                 r"unreadable: bad-response the list response "
                                 r"could not be read" % k)
        self.assertEqual(self.server.count("attach"), 0)

    def test_truncated_response(self):
        body = BOUND_ONE[: len(BOUND_ONE) // 2]
        self.server.handler = list_only(
            body, headers={"Content-Length": str(len(BOUND_ONE))}, close=True)
        self.assert_clean_failure(self.apply())

    def test_truncated_json_complete_http(self):
        self.server.handler = list_only(BOUND_ONE[:-3])
        self.assert_clean_failure(self.apply(), "could not be read")

    def test_invalid_utf8(self):
        body = BOUND_ONE.replace(DOMAIN, "api.\xff\xfe.example.com")
        self.server.handler = list_only(body.encode("latin-1"))
        self.assert_clean_failure(self.apply(), "could not be read")

    def test_garbage_instead_of_http(self):
        self.server.handler = list_only(raw=b"\x00\xff garbage \r\n\r\n" * 50)
        self.assert_clean_failure(self.apply())

    def test_huge_header(self):
        self.server.handler = list_only(EMPTY, headers={"X-Bomb": "a" * 300000})
        self.assert_clean_failure(self.apply())

    def test_endless_pagination_same_page_forever(self):
        # total is never reached: the same one-entry page whatever the offset
        body = json.dumps({"total": 10 ** 12, "size": 1,
                           "bound_domains": json.loads(BOUND_ONE)["bound_domains"]})
        self.server.handler = list_only(body)
        r = self.apply(timeout=120)
        self.assert_clean_failure(r, "did not end", max_s=90)
        self.assertLessEqual(self.server.count("list"), 1000)
        self.assertEqual(self.server.count("attach"), 0)  # state unknown: no write

    def test_empty_pages_without_total_do_not_loop(self):
        # no total and full pages forever
        items = [{"url_domain": "d%d.c0.example.com" % i,
                  "instance_id": "f0fa1789-3b76-433b-a787-9892951c620e"}
                 for i in range(500)]
        body = json.dumps({"bound_domains": items})
        self.server.handler = list_only(body)
        r = self.apply(timeout=120)
        # the pages' entries pass what the file explains long before the
        # page limit
        self.assert_clean_failure(r, "did not end|live-state-too-large",
                                  max_s=90)

    def test_retry_after_overflow_is_ignored_not_wrapped(self):
        # one run, each attempt of the read answered with the next value:
        # every one is ignored (no pause, no wrapped or huge wait), so the
        # five attempts come back to back and the run ends at once
        values = ["18446744073709551616999", "-5", "1e9", "soon", "0x7fffffff"]
        self.world.retry["max_attempts"] = len(values)
        self.cfg = self.world.write_yaml(os.path.join(self.tls, "ca.pem"))
        sent = []

        def h(method, path, q):
            if path.endswith("/attached-domains"):
                v = values[len(sent) % len(values)]
                sent.append(v)
                return Answer(429, '{"error_code":"APIG.0308",'
                              '"error_msg":"throttled"}',
                              headers={"Retry-After": v})
            return Answer(404, b"{}")
        self.server.handler = h
        r = self.apply()
        self.assert_clean_failure(r, "APIG.0308", max_s=20)
        self.assertEqual(sent, values)
        self.assertFalse([e for e in r.events()
                          if e["event"] == "account.paused"], r)

    def test_retry_after_far_future_is_clamped_and_interruptible(self):
        self.server.handler = list_only(
            '{"error_code":"APIG.0308","error_msg":"throttled"}', status=429,
            headers={"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"})
        proc = subprocess.Popen(
            [harness.CERTBIND, "apply", "-c", self.cfg, "--log-format", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, NO_COLOR="1"))
        try:
            deadline = time.monotonic() + harness.scaled(10)
            while self.server.count("list") < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(self.server.count("list"), 1)
            time.sleep(1.5)  # waiting out the (clamped) floor, not spinning
            self.assertEqual(self.server.count("list"), 1)
            self.assertIsNone(proc.poll())
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=harness.scaled(15))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        harness.record_output("certbind", out + err)
        self.assertLess(time.monotonic() - t0, harness.scaled(10))
        self.assertIn(proc.returncode, (0, 1), err)
        self.assertNotIn(self.acct["sk"], out + err)
        with open(os.path.join(self.tmp, "state", "status.json")) as f:
            st = json.load(f)
        self.assertEqual(st["pass"]["outcome"], "interrupted")


class HostileWriteTest(HostileTestCase):
    def handler(self, attach):
        def h(method, path, q):
            if path.endswith("/attached-domains"):
                return Answer(body=EMPTY)
            if path.endswith("/domains/attach"):
                return attach()
            return Answer(404, b"{}")
        return h

    def test_attach_5xx_with_deep_and_huge_error_bodies(self):
        bodies = iter(["[" * 100000,
                       '{"error_code":"' + "A" * 100000 + '"}',
                       "\xff\xfe".encode("latin-1"),
                       "x" * (9 << 20)] * 10)
        self.server.handler = self.handler(
            lambda: Answer(500, next(bodies)))
        r = self.apply()
        self.assert_clean_failure(r)
        # an unknown outcome is re-read before any resend; attempts bounded
        self.assertLessEqual(self.server.count("attach"), 3)
        self.assertGreaterEqual(self.server.count("list"),
                                1 + self.server.count("attach") - 1)

    def test_attach_200_with_garbage_then_never_shows(self):
        self.server.handler = self.handler(
            lambda: Answer(200, b"\x00not json" * 1000))
        r = self.apply()
        self.assert_clean_failure(r, "confirm")
        self.assertEqual(self.server.count("attach"), 1)

    def test_attach_truncated_then_reset(self):
        self.server.handler = self.handler(
            lambda: Answer(400, b'{"error_code":"APIG.2',
                           headers={"Content-Length": "400"}, close=True))
        r = self.apply()
        self.assert_clean_failure(r)
        self.assertLessEqual(self.server.count("attach"), 3)


class InjectionAtLoadTest(unittest.TestCase):
    """IDs that would change the request URL are refused at load, exit 3,
    before any request is made."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="certbind-inject-")
        self.tls = make_certs(self.tmp)
        self.server = HostileServer(self.tls)

    def tearDown(self):
        self.server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def world(self):
        w = World(self.tmp)
        w.account("prod")
        w.gateway("edge-0", "prod", [DOMAIN])
        w.certificate(CERT, "prod", ["*.c0.example.com"])
        w.want(CERT, ["edge-0"], [DOMAIN])
        w.endpoint = self.server.url
        return w

    def test_injecting_ids_exit_3_without_a_request(self):
        # one file: each character in the project, certificate and instance
        # IDs and a domain of an account of its own. Validation reports
        # every problem at once: each of the 20 must be reported at its own
        # line, by every command, before any request.
        ca = os.path.join(self.tls, "ca.pem")
        good = "0123456789abcdef0123456789abcdef"
        w = World(self.tmp)
        w.endpoint = self.server.url
        bad_ids, bad_domains = [], []
        for k, bad in enumerate(("../", "?", "#", "%", "/")):
            bad_id = good[:-len(bad) - 1] + str(k) + bad
            bad_domain = "api" + bad + "x.c%d.example.com" % k
            bad_ids.append(bad_id)
            bad_domains.append(bad_domain)
            w.account("a%d" % k, project_id='"%s"' % bad_id)
            w.gateway("g%d" % k, "a%d" % k, [bad_domain])
            w.gateways["g%d" % k]["instance_id"] = '"%s"' % bad_id
            w.certificate("c%d" % k, "a%d" % k, ["*.c%d.example.com" % k])
            w.certs["c%d" % k]["id"] = '"%s"' % bad_id
            w.want("c%d" % k, ["g%d" % k], [bad_domain])
        cfg = w.write_yaml(ca, "inject.yaml")
        with open(cfg) as f:
            lines = f.read().splitlines()
        places = []  # (what, line)
        for n, l in enumerate(lines, 1):
            if any(b in l for b in bad_ids + bad_domains):
                places.append((l.strip(), n))
        self.assertEqual(len(places), 20, lines)  # 5 x 4 places
        for cmd in ("validate", "apply", "plan"):
            r = certbind(cmd, "-c", cfg)
            for what, n in places:
                with self.subTest(cmd=cmd, place=what):
                    self.assertEqual(r.rc, 3, r)
                    self.assertRegex(r.stderr, r"inject\.yaml:%d:\d+: " % n)
        self.assertEqual(sum(self.server.counts.values()), 0)

if __name__ == "__main__":
    unittest.main()
