# SPDX-License-Identifier: MIT
"""The command line as a user meets it: usage errors, --help/--version,
validate's summary and its FILE:LINE:COL errors (exit codes of docs/cli.md).
No simulator is needed: validate is offline."""
import os
import re
import shutil
import stat
import tempfile
import unittest

from harness import World, certbind


class CliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="certbind-cli-")
        self.w = World(self.tmp)
        self.w.endpoint = "https://127.0.0.1:9"
        self.w.account("prod")
        self.w.gateway("edge-1", "prod", [])
        self.w.certificate("star", "prod", ["*.example.com"])
        self.w.want("star", ["edge-1"], ["api.example.com", "www.example.com"])
        self.ca = os.path.join(self.tmp, "ca.pem")
        with open(self.ca, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_version_and_help(self):
        r = certbind("--version")
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.stdout, r"^certbind \d+\.\d+\.\d+")
        r = certbind("--help")
        self.assertEqual(r.rc, 0, r)
        for cmd in ("validate", "plan", "apply", "run", "status"):
            self.assertIn(cmd, r.stdout)

    def test_usage_errors_exit_64(self):
        cases = [
            (),
            ("frobnicate",),
            ("validate",),  # needs -c
            ("validate", "-c", "x.yaml", "--bogus"),
            ("validate", "-c", "x.yaml", "--log-format", "xml"),
            ("validate", "-c", "x.yaml", "--log-level", "loud"),
            ("apply", "-c", "x.yaml", "--json"),  # --json is plan/status only
            ("status", "-c", "x.yaml"),
            ("plan", "-c", "x.yaml", "extra"),
        ]
        for args in cases:
            with self.subTest(args=args):
                r = certbind(*args)
                self.assertEqual(r.rc, 64, r)
                self.assertIn("certbind:", r.stderr)

    def test_validate_summary(self):
        cfg = self.w.write_yaml(self.ca)
        r = certbind("validate", "-c", cfg)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("1 account, 1 gateway, 1 certificate, 2 bindings",
                      r.stdout)
        for secret in (self.w.accounts["prod"]["sk"],
                       self.w.accounts["prod"]["ak"]):
            self.assertNotIn(secret, r.stdout + r.stderr)

    def test_validate_reports_every_error_with_position(self):
        cfg = os.path.join(self.tmp, "bad.yaml")
        text = self.w.yaml(self.ca)
        text = text.replace("bindings:\n", "bindings:\n  - certificate: nope\n"
                            "    gateways: [edge-9]\n    domains: [bad..name]\n", 1)
        text = text.replace("policy:\n", "policy:\n  batch_size: 9000\n", 1)
        with open(cfg, "w") as f:
            f.write(text)
        r = certbind("validate", "-c", cfg)
        self.assertEqual(r.rc, 3, r)
        lines = [l for l in r.stderr.splitlines() if l.startswith(cfg + ":")]
        positioned = [l for l in lines if re.match(re.escape(cfg) + r":\d+:\d+: ", l)]
        # the undefined certificate, the undefined gateway, the bad domain and
        # the out-of-range batch size: all reported at once
        self.assertGreaterEqual(len(positioned), 4, r.stderr)
        joined = "\n".join(positioned)
        for needle in ("nope", "edge-9", "bad..name", "batch_size"):
            self.assertIn(needle, joined)

    def test_validate_refuses_a_readable_secret_file(self):
        cfg = self.w.write_yaml(self.ca)
        sk = os.path.join(self.tmp, "secrets", "prod-sk")
        os.chmod(sk, 0o644)
        r = certbind("validate", "-c", cfg)
        self.assertEqual(r.rc, 3, r)
        self.assertIn(sk, r.stderr)
        self.assertNotIn(self.w.accounts["prod"]["sk"], r.stderr + r.stdout)
        os.chmod(sk, stat.S_IRUSR | stat.S_IWUSR)
        self.assertEqual(certbind("validate", "-c", cfg).rc, 0)

    def test_two_names_for_one_instance_exit_3(self):
        # the repro: two certificates each want the domain on "their"
        # gateway, and both gateways are one instance (dashed and not, in
        # another case): passes would move the domain back and forth
        w = self.w
        w.certificate("other", "prod", ["*.example.com"])
        iid = w.gateways["edge-1"]["instance_id"]
        w.gateway("edge-1-again", "prod", [])
        w.gateways["edge-1-again"]["instance_id"] = iid.replace("-", "").upper()
        w.want("other", ["edge-1-again"], ["api.example.com"])
        cfg = w.write_yaml(self.ca)
        with open(cfg) as f:
            lines = f.read().splitlines()
        at = {}
        for n, line in enumerate(lines, 1):
            for gw in ("edge-1", "edge-1-again"):
                if line.startswith("  %s: " % gw):
                    at[gw] = "%s:%d:%d: gateways.%s.instance_id: " % (
                        cfg, n, line.index("instance_id: ") + 14, gw)
        for cmd in ("validate", "plan"):
            with self.subTest(cmd=cmd):
                r = certbind(cmd, "-c", cfg, timeout=60)
                self.assertEqual(r.rc, 3, r)
                self.assertIn(at["edge-1"] +
                              'the same instance as gateway "edge-1-again"',
                              r.stderr)
                self.assertIn(at["edge-1-again"] +
                              'the same instance as gateway "edge-1"',
                              r.stderr)

    def test_validate_missing_file(self):
        r = certbind("validate", "-c", os.path.join(self.tmp, "absent.yaml"))
        self.assertEqual(r.rc, 3, r)
        self.assertIn("absent.yaml", r.stderr)

    def test_status_without_a_pass(self):
        r = certbind("status", "--state-dir", self.tmp)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("status.json", r.stderr)


if __name__ == "__main__":
    unittest.main()
