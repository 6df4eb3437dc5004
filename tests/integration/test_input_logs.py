# SPDX-License-Identifier: MIT
"""Input and logs against apig-sim over HTTPS (issue 15): secrets given as
systemd credentials from a real CREDENTIALS_DIRECTORY, domains written as
Unicode and with a trailing dot reaching APIG as A-labels, JSON numbers and
booleans as a person writes them, logfmt text lines, and the journal's
priority prefixes when stderr is the stream JOURNAL_STREAM names."""
import json
import os
import re
import signal
import subprocess
import time
import unittest

from harness import CERTBIND, SimTestCase, World, certbind, record_output, scaled

IDN_WRITTEN = "B\u00fccher.Example.com."  # "Bücher.Example.com." in the file
IDN_ALABEL = "xn--bcher-kva.example.com"
PRIORITY = {"debug": "7", "info": "6", "warn": "4", "error": "3"}


def idn_world(tmp, extra_domain=None):
    w = World(tmp)
    w.account("prod")
    w.gateway("edge", "prod", [IDN_ALABEL, "api.example.com"])
    w.certificate("star", "prod", ["*.example.com"])
    domains = [IDN_WRITTEN, "api.example.com."]
    if extra_domain:
        domains.append(extra_domain)
    w.want("star", ["edge"], domains)
    return w


def as_credentials(tmp, cfg, world):
    """Rewrite the file's { file: } secrets as { credential: certbind_NAME }
    and put their files, mode 0400, in a credentials directory (what
    LoadCredential=certbind:/etc/credstore/certbind/ makes)."""
    creds = os.path.join(tmp, "credentials")
    os.makedirs(creds, mode=0o700)
    with open(cfg) as f:
        text = f.read()
    acct = world.accounts["prod"]
    for name, value in (("prod-ak", acct["ak"]), ("prod-sk", acct["sk"])):
        path = os.path.join(creds, "certbind_" + name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        os.write(fd, (value + "\n").encode())
        os.close(fd)
        old = "{ file: %s }" % os.path.join(tmp, "secrets", name)
        assert old in text, old
        text = text.replace(old, "{ credential: certbind_%s }" % name)
    with open(cfg, "w") as f:
        f.write(text)
    return creds


class CredentialAndIdnTest(SimTestCase):
    def test_credentials_idn_and_json_numbers(self):
        w = idn_world(self.tmp)
        sim, cfg = self.start(w)
        creds = as_credentials(self.tmp, cfg, w)
        env = {"CREDENTIALS_DIRECTORY": creds}
        sk = w.accounts["prod"]["sk"]

        r = certbind("validate", "-c", cfg, env=env)
        self.assertEqual(r.rc, 0, r)

        # no credentials directory: exit 3 at the key, the secret never shown
        r = certbind("validate", "-c", cfg, env={"CREDENTIALS_DIRECTORY": ""})
        self.assertEqual(r.rc, 3, r)
        self.assertRegex(
            r.stderr, re.escape(cfg) + r":\d+:\d+: accounts\.prod\.auth\."
            r"access_key\.credential: \"certbind_prod-ak\" is a systemd "
            r"credential but \$CREDENTIALS_DIRECTORY is empty")
        self.assertNotIn(sk, r.stdout + r.stderr)

        # a credential readable by others is refused, naming it, not its value
        os.chmod(os.path.join(creds, "certbind_prod-sk"), 0o404)
        r = certbind("validate", "-c", cfg, env=env)
        self.assertEqual(r.rc, 3, r)
        self.assertIn('credential "certbind_prod-sk"', r.stderr)
        self.assertNotIn(sk, r.stdout + r.stderr)
        os.chmod(os.path.join(creds, "certbind_prod-sk"), 0o400)

        # the plan, and so APIG, sees only the A-label form, without the dot
        r = certbind("plan", "-c", cfg, "--json", env=env)
        self.assertEqual(r.rc, 2, r)
        doc = json.loads(r.stdout)
        iid = w.gateways["edge"]["instance_id"]
        got = {(c["op"], c["instance_id"], c["domain"]) for c in doc["changes"]}
        self.assertEqual(got, {("attach", iid, IDN_ALABEL),
                               ("attach", iid, "api.example.com")})

        r = certbind("apply", "-c", cfg, "--log-format", "json", env=env)
        self.assertEqual(r.rc, 0, r)
        cid = w.certs["star"]["id"]
        self.assertEqual(sim.state_set(), {(cid, iid, IDN_ALABEL, False),
                                           (cid, iid, "api.example.com", False)})
        self.assertNotIn("\u00fc", r.stdout + r.stderr)
        self.assertNotIn(sk, r.stdout + r.stderr)
        events = r.events()
        start = [e for e in events if e["event"] == "pass.start"]
        self.assertIs(start[0]["dry_run"], False)
        self.assertIn('"dry_run":false', r.stderr)
        # every latency: at most one decimal, no trailing zero
        lat = re.findall(r'"latency_ms":([^,}]*)', r.stderr)
        self.assertTrue(lat, r)
        for v in lat:
            self.assertRegex(v, r"^(0|[1-9][0-9]*)(\.[1-9])?$")

    def test_text_logs_are_logfmt(self):
        w = idn_world(self.tmp)
        _, cfg = self.start(w)
        creds = as_credentials(self.tmp, cfg, w)
        r = certbind("apply", "-c", cfg, "--log-format", "text",
                     "--log-level", "debug",
                     env={"CREDENTIALS_DIRECTORY": creds})
        self.assertEqual(r.rc, 0, r)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        self.assertTrue(lines, r)
        pair = r'[a-z_]+=(?:"(?:[^"\\]|\\.)*"|[^\s"=]+)'
        logfmt = re.compile(r"^ts=\S+Z level=(debug|info|warn|error) "
                            r"event=[a-z_.]+((?: %s)*)$" % pair)
        for line in lines:
            self.assertRegex(line, logfmt)
        start = [l for l in lines if " event=pass.start " in l]
        self.assertTrue(start, r)
        self.assertIn(" dry_run=false", start[0])
        self.assertRegex(start[0], r' msg="[^"]*"$')


class JournalTest(SimTestCase):
    def run_to_first_pass(self, cfg, env, log_path):
        """certbind run with stderr on log_path, until its first pass.done,
        then SIGTERM; returns the log's lines."""
        e = dict(os.environ, NO_COLOR="1", **env)
        e.pop("NOTIFY_SOCKET", None)
        with open(log_path, "w") as err:
            proc = subprocess.Popen(
                [CERTBIND, "run", "-c", cfg, "--log-format", "json"],
                stdout=subprocess.DEVNULL, stderr=err, env=e)
        try:
            deadline = time.monotonic() + scaled(60)
            while True:
                with open(log_path) as f:
                    if "pass.done" in f.read():
                        break
                self.assertIsNone(proc.poll(), "certbind run ended early")
                self.assertLess(time.monotonic(), deadline, "no pass.done")
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=scaled(60)), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        with open(log_path) as f:
            text = f.read()
        record_output("certbind-journal", text)
        return [l for l in text.splitlines() if l]

    def test_priority_prefix_when_stderr_is_the_journal(self):
        # one domain not on the gateway: its attach fails (warn/error lines)
        w = idn_world(self.tmp, extra_domain="absent.example.com")
        w.retry = {"max_attempts": 1, "base_delay_ms": 10, "max_delay_ms": 50}
        w.daemon = {"resync_interval_s": 3600}
        _, cfg = self.start(w)
        creds = as_credentials(self.tmp, cfg, w)
        log_path = os.path.join(self.tmp, "stderr.log")
        # the file exists before certbind starts: its device and inode are
        # what JOURNAL_STREAM carries (systemd.exec(5))
        open(log_path, "w").close()
        st = os.stat(log_path)
        env = {"CREDENTIALS_DIRECTORY": creds,
               "JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)}
        lines = self.run_to_first_pass(cfg, env, log_path)
        levels = set()
        for line in lines:
            m = re.match(r"^<([0-9])>(\{.*\})$", line)
            self.assertIsNotNone(m, line)
            ev = json.loads(m.group(2))
            self.assertEqual(m.group(1), PRIORITY[ev["level"]], line)
            levels.add(ev["level"])
        self.assertIn("info", levels)
        self.assertTrue(levels & {"warn", "error"}, levels)

        # JOURNAL_STREAM naming another file: plain lines
        other = os.path.join(self.tmp, "other")
        open(other, "w").close()
        st = os.stat(other)
        r = certbind("plan", "-c", cfg, "--log-format", "json",
                     env={"CREDENTIALS_DIRECTORY": creds,
                          "JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)})
        self.assertIn(r.rc, (0, 2), r)
        lines = [l for l in r.stderr.splitlines() if l]
        self.assertTrue(lines, r)
        for line in lines:
            self.assertTrue(line.startswith("{"), line)


if __name__ == "__main__":
    unittest.main()
