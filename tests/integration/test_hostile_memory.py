# SPDX-License-Identifier: MIT
"""Answers are bounded (issue 13 item 3): whatever a server answers to the
list reads, certbind's resident memory stays within 128 MB of what it needs
for the file, the certificate the answers are about fails with a clear
error, and the other certificates still converge.

A hostile endpoint (hostile.py) serves one certificate (cert-0) pages of
140,000 entries with a total of 30 such pages, pages over the limit asked,
a total that grows from page to page, a 64 MiB body, and endless full
pages; it serves cert-1 and cert-2 like APIG. The peak RSS of each run
(VmHWM) is compared with a run where cert-0 is served like the others. Under valgrind or ASan the RSS is theirs more than
certbind's (shadow memory, quarantine): only the errors are checked there.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import harness
import hostile
from harness import World, make_certs, scaled
from hostile import Answer, HostileServer

LIMIT = 500  # the page size certbind asks for
RSS_ABOVE_MAX = 128 << 20  # bytes above the baseline run

# the integration stage of scripts/test.sh runs certbind through a
# valgrind wrapper
UNDER_VALGRIND = "valgrind" in harness.CERTBIND


def built_with_asan(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


RSS_IS_CERTBINDS = not UNDER_VALGRIND and not built_with_asan(harness.CERTBIND)


def page(entries, total, pad=""):
    """A list page of compact entries (~46 bytes each: 140,000 of them fit
    in the 8 MiB certbind used to accept)."""
    items = ",".join('{"url_domain":"d%07d.x%s","instance_id":"i"}'
                     % (i, pad) for i in entries)
    return ('{"total":%d,"size":%d,"bound_domains":[%s]}'
            % (total, len(entries), items)).encode()


class Run:
    def __init__(self, rc, stdout, stderr, maxrss, elapsed):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.maxrss = maxrss  # bytes
        self.elapsed = elapsed

    def __repr__(self):
        return "rc=%d maxrss=%d MiB %.1f s\nstdout:\n%s\nstderr:\n%s" % (
            self.rc, self.maxrss >> 20, self.elapsed, self.stdout,
            self.stderr[-3000:])


def vm_hwm(pid):
    """The process's peak RSS so far in bytes (VmHWM), 0 once it is gone.
    Not getrusage: a child's ru_maxrss counts the memory of the Python
    process it was forked (vforked) from, before its exec."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def certbind_measured(*args, timeout):
    """Run certbind; its exit code, output and peak RSS: its VmHWM, read
    every 10 ms while it runs (a high-water mark: only a peak in its last
    10 ms could be missed)."""
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    env = dict(os.environ, NO_COLOR="1")
    t0 = time.monotonic()
    proc = subprocess.Popen([harness.CERTBIND, *args], stdout=out,
                            stderr=err, env=env)
    deadline = t0 + timeout
    hwm = 0
    while True:
        hwm = max(hwm, vm_hwm(proc.pid))
        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, _ = os.wait4(proc.pid, 0)
            break
        time.sleep(0.01)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here
    elapsed = time.monotonic() - t0
    with out, err:
        out.seek(0)
        err.seek(0)
        r = Run(proc.returncode, out.read().decode(errors="replace"),
                err.read().decode(errors="replace"), hwm, elapsed)
    harness.record_output("certbind", r.stdout + "\n" + r.stderr)
    return r


class HostileMemoryTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="certbind-memory-")
        self.tls = make_certs(self.tmp)
        self.server = HostileServer(self.tls)
        w = World(self.tmp)
        self.acct = w.account("prod")
        domains = ["api.c%d.example.com" % k for k in range(3)]
        w.gateway("edge-0", "prod", domains)
        for k in range(3):
            w.certificate("cert-%d" % k, "prod", ["*.c%d.example.com" % k])
            w.want("cert-%d" % k, ["edge-0"], [domains[k]])
        w.retry = {"max_attempts": 3, "base_delay_ms": 20, "max_delay_ms": 200}
        w.policy["confirm_timeout_s"] = 5
        w.endpoint = self.server.url
        self.world = w
        self.iid = w.gateways["edge-0"]["instance_id"]
        self.cfg = w.write_yaml(os.path.join(self.tls, "ca.pem"))
        self.bad_id = w.certs["cert-0"]["id"]
        self.domain_of = {w.certs["cert-%d" % k]["id"]: domains[k]
                          for k in range(3)}
        self.bound = set()  # certificate ids attached so far
        self.bad = None  # cert-0's list answer: (query) -> Answer
        self.server.handler = self.handle

    def tearDown(self):
        self.server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def handle(self, method, path, q):
        """cert-1 and cert-2 (and cert-0 when self.bad is None) as APIG:
        empty until attached, then their one binding."""
        cid = hostile.cert_of(path)
        op = hostile.op_of(method, path)
        if op == "list" and cid == self.bad_id and self.bad:
            return self.bad(q)
        if op == "list":
            if cid in self.bound:
                return Answer(body=json.dumps({
                    "total": 1, "size": 1, "bound_domains": [
                        {"url_domain": self.domain_of[cid],
                         "instance_id": self.iid}]}))
            return Answer(body='{"total":0,"size":0,"bound_domains":[]}')
        if op == "attach":
            self.bound.add(cid)
            return Answer(204)
        return Answer(404, b"{}")

    def apply(self):
        self.bound.clear()
        return certbind_measured("apply", "-c", self.cfg, "--log-format",
                                 "json", timeout=scaled(120))

    def status(self):
        with open(os.path.join(self.tmp, "state", "status.json")) as f:
            st = json.load(f)
        return {b["certificate"]: (b["state"], b.get("error_code"))
                for b in st["bindings"]}

    def baseline(self):
        self.bad = None
        r = self.apply()
        self.assertEqual(r.rc, 0, r)
        return r.maxrss

    def check_hostile(self, base, code, why):
        """cert-0 failed with code, the operator is told why, the others
        converged, and the peak RSS stayed within RSS_ABOVE_MAX of base."""
        r = self.apply()
        print("\n  %s: peak RSS %d MiB (baseline %d MiB), %.1f s" %
              (code, r.maxrss >> 20, base >> 20, r.elapsed))
        self.assertEqual(r.rc, 1, r)
        self.assertLess(r.elapsed, scaled(90), r)
        st = self.status()
        self.assertEqual(st["cert-0"], ("failed", code), r)
        self.assertEqual(st["cert-1"], ("converged", None), r)
        self.assertEqual(st["cert-2"], ("converged", None), r)
        self.assertRegex(r.stdout, "failed  certificate cert-0: live state "
                         "unreadable: " + code + " .*" + why)
        for line in r.stderr.splitlines():
            if line.strip():
                json.loads(line)
        out = r.stdout + r.stderr
        self.assertNotIn(self.acct["sk"], out)
        if RSS_IS_CERTBINDS:
            self.assertLess(r.maxrss, base + RSS_ABOVE_MAX,
                            "peak RSS %d MiB, baseline %d MiB" %
                            (r.maxrss >> 20, base >> 20))
        return r

    def test_hostile_pages_are_bounded_and_fail_their_certificate(self):
        base = self.baseline()
        with self.subTest("140,000 entries a page, 30 such pages"):
            huge = page(range(140000), 30 * 140000)
            self.bad = lambda q: Answer(body=huge)
            self.check_hostile(base, "response-too-large", "over 1048576")
            del huge
        with self.subTest("more entries than the limit, in a small body"):
            over = page(range(LIMIT + 1), LIMIT + 1)
            self.bad = lambda q: Answer(body=over)
            self.check_hostile(base, "bad-response",
                               "more entries in one page than the limit")
        with self.subTest("a total that grows from page to page"):
            full = {}

            def growing(q):
                off = int(q.get("offset", ["0"])[0])
                if off not in full:
                    full[off] = page(range(off, off + LIMIT), off + 2 * LIMIT)
                return Answer(body=full[off])
            self.bad = growing
            self.check_hostile(base, "bad-response", "total grew from")
        with self.subTest("a 64 MiB body"):
            chunk = b" " * (64 << 10)
            self.bad = lambda q: Answer(
                headers={"Content-Length": str(64 << 20),
                         "Content-Type": "application/json"},
                chunks=(chunk for _ in range(1024)))
            self.check_hostile(base, "response-too-large", "over 1048576")
        with self.subTest("full pages of long names, more than the file "
                          "explains"):
            pad = "." + "x" * 60 + ".example"
            long_page = page(range(LIMIT), 400 * LIMIT, pad)
            self.bad = lambda q: Answer(body=long_page)
            self.check_hostile(base, "live-state-too-large",
                               "the live state read exceeds")


if __name__ == "__main__":
    unittest.main()
