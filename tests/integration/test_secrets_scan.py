# SPDX-License-Identifier: MIT
"""The suite-wide secret scan (issue 4, "Secrets"): runs after every
other integration test (ctest DEPENDS, see CMakeLists.txt) and searches
every file the harness kept in CERTBIND_TEST_LOGS (certbind's stdout and
stderr, status/ledger/metrics/plan files, apig-sim's logs) for every secret
the suite generated (harness.record_secrets -> secrets.txt), for IAM tokens
of the simulator's format, and for request headers that carry credentials.

It fails when anything is found, and it refuses to pass vacuously: the log
directory, some certbind logs and some secrets must exist."""
import os
import re
import tempfile
import unittest

LOG_DIR = os.environ.get("CERTBIND_TEST_LOGS")

# What a leaked credential header or token looks like in any output.
PATTERNS = [
    re.compile(r"Authorization\s*:", re.I),
    re.compile(r"X-Auth-Token\s*[:=]", re.I),
    re.compile(r"X-Subject-Token\s*[:=]", re.I),
    re.compile(r"SDK-HMAC-SHA256\s+Access=", re.I),
    re.compile(r"Signature=[0-9a-f]{64}", re.I),
    re.compile(r"MIIsim[0-9a-f]{16,}"),  # apig-sim's IAM tokens
    # a private key in PEM (the test keys' base64 lines are in secrets.txt
    # too: harness.record_key_secret)
    re.compile(r"-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----"),
]


def load_secrets(log_dir):
    path = os.path.join(log_dir, "secrets.txt")
    with open(path) as f:
        return sorted({s.strip() for s in f if len(s.strip()) >= 8})


def log_files(log_dir):
    out = []
    for root, _, files in os.walk(log_dir):
        for fn in files:
            if fn != "secrets.txt":
                out.append(os.path.join(root, fn))
    return sorted(out)


def scan(log_dir, secrets):
    """[(file, what)] for every secret or credential pattern found."""
    found = []
    for path in log_files(log_dir):
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "replace")
        for i, s in enumerate(secrets):
            if s in data:  # never print the secret itself
                found.append((path, "secret #%d of secrets.txt" % i))
        for pat in PATTERNS:
            m = pat.search(data)
            if m:
                found.append((path, "pattern %r: %r" % (pat.pattern, m.group(0)[:30])))
    return found


class ScanSelfTest(unittest.TestCase):
    """The detector itself finds a planted secret and each pattern."""

    def test_detects_planted_leaks(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "secrets.txt"), "w") as f:
                f.write("SK-planted-s3cr3t\n")
            with open(os.path.join(d, "clean.log"), "w") as f:
                f.write('{"event":"write.ok","request_id":"abc"}\n')
            self.assertEqual(scan(d, load_secrets(d)), [])
            leaks = ["x SK-planted-s3cr3t y",
                     "Authorization: SDK-HMAC-SHA256 Access=AK, SignedHeaders=host",
                     "x-auth-token: abc",
                     "X-Subject-Token: abc",
                     "Signature=" + "ab" * 32,
                     "token MIIsim" + "0f" * 20,
                     "-----BEGIN PRIVATE KEY-----\nMIIE..."]
            for i, text in enumerate(leaks):
                with open(os.path.join(d, "leak%d.log" % i), "w") as f:
                    f.write(text + "\n")
            found = scan(d, load_secrets(d))
            self.assertEqual({os.path.basename(p) for p, _ in found},
                             {"leak%d.log" % i for i in range(len(leaks))})


@unittest.skipUnless(LOG_DIR, "CERTBIND_TEST_LOGS is not set (run through ctest)")
class SecretsScanTest(unittest.TestCase):
    def test_no_secret_in_any_output_of_the_suite(self):
        self.assertTrue(os.path.isdir(LOG_DIR), "no log directory: did the suite run?")
        secrets = load_secrets(LOG_DIR)
        files = log_files(LOG_DIR)
        # not vacuous: the suite ran certbind and generated secrets
        self.assertGreaterEqual(len(secrets), 5, "too few secrets recorded")
        certbind_logs = [p for p in files if os.path.basename(p).startswith("certbind-")]
        self.assertGreaterEqual(len(certbind_logs), 10, "too few certbind logs")
        state = [p for p in files if os.path.basename(p).startswith("state-")]
        self.assertTrue(state, "no status/ledger/metrics files kept")
        nbytes = sum(os.path.getsize(p) for p in files)
        print("\nscanned %d files (%d bytes) for %d secrets and %d patterns"
              % (len(files), nbytes, len(secrets), len(PATTERNS)))
        found = scan(LOG_DIR, secrets)
        self.assertEqual(found, [], "secrets leaked:\n" +
                         "\n".join("%s: %s" % f for f in found[:50]))


if __name__ == "__main__":
    unittest.main()
