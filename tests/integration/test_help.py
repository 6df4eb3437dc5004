# SPDX-License-Identifier: MIT
"""Getting help: every command's --help (its own options, its exit codes),
`certbind help COMMAND`, one-line usage errors with "did you mean", and
--version with the commit and the libraries' versions. Offline: no
simulator is needed."""
import os
import re
import subprocess
import unittest

from harness import certbind

# Each command's own options (besides --log-format, --log-level, --help),
# as docs/cli.md lists them.
OWN_OPTIONS = {
    "validate": ["--config"],
    "plan": ["--config", "--json", "--out"],
    "apply": ["--config", "--plan", "--dry-run", "--force", "--yes"],
    "run": ["--config"],
    "status": ["--state-dir", "--json", "--all"],
    "adopt": ["--config", "--certificate"],
    "import": ["--config", "--certificate"],
    "verify": ["--config", "--json"],
}
EVERY_OPTION = sorted({o for opts in OWN_OPTIONS.values() for o in opts})
COMMON = ["--log-format", "--log-level", "--help"]
HINT = re.compile(r"^try 'certbind (\w+ )?--help'")


# A command's help, run once per command and test file: several tests
# compare against it, and under valgrind each certbind process costs about
# a second of CPU before it prints anything.
_HELP = {}


def command_help(cmd):
    """The Result of `certbind CMD --help` (one run, then kept)."""
    if cmd not in _HELP:
        _HELP[cmd] = certbind(cmd, "--help")
    return _HELP[cmd]


def options_listed(help_text):
    """The long options of the help's "options:" section."""
    section = help_text.split("\noptions:\n", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"^\s+(?:-\w, )?(--[a-z-]+)", section, re.M))


class HelpTest(unittest.TestCase):
    def usage_error(self, *args):
        """The usage error of args: exit 64, one line then the hint;
        returns the line."""
        r = certbind(*args)
        self.assertEqual(r.rc, 64, r)
        self.assertEqual(r.stdout, "", r)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 2, r)
        self.assertTrue(lines[0].startswith("certbind: "), r)
        self.assertRegex(lines[1], HINT)
        return lines[0]

    def test_every_command_has_its_own_help(self):
        for cmd, own in OWN_OPTIONS.items():
            with self.subTest(cmd=cmd):
                r = command_help(cmd)
                self.assertEqual(r.rc, 0, r)
                self.assertEqual(r.stderr, "", r)
                self.assertTrue(
                    r.stdout.startswith("usage: certbind %s " % cmd), r)
                # its options and the common ones, and no other command's
                self.assertEqual(options_listed(r.stdout), set(own + COMMON))
                self.assertIn("\nexit codes:\n", r.stdout)
                self.assertRegex(r.stdout, r"\n  64  usage error")
                self.assertEqual(certbind(cmd, "-h").stdout, r.stdout)
                self.assertEqual(certbind("--help", cmd).stdout, r.stdout)
        # a command's own exit codes: plan's 2, which apply has not
        self.assertRegex(command_help("plan").stdout, r"\n  2   ")
        self.assertNotRegex(command_help("apply").stdout, r"\n  2   ")
        # import takes --certificate many times and needs it
        self.assertIn("usage: certbind import -c FILE --certificate ID...",
                      command_help("import").stdout)

    def test_help_command_prints_the_same(self):
        for cmd in list(OWN_OPTIONS) + ["help"]:
            with self.subTest(cmd=cmd):
                a, b = certbind("help", cmd), command_help(cmd)
                self.assertEqual(a.rc, 0, a)
                self.assertEqual(a.stdout, b.stdout)
        overview = certbind("--help")
        self.assertEqual(overview.rc, 0, overview)
        self.assertEqual(certbind("help").stdout, overview.stdout)
        self.assertEqual(certbind("-h").stdout, overview.stdout)
        section = overview.stdout.split("\ncommands:\n", 1)[1].split("\n\n")[0]
        listed = re.findall(r"^  (\w+)  ", section, re.M)
        self.assertEqual(listed, list(OWN_OPTIONS) + ["help"])
        self.assertIn("--version", overview.stdout)

    def test_unknown_command_suggests_the_close_one(self):
        line = self.usage_error("plna")
        self.assertIn("'plna'", line)
        self.assertIn("did you mean 'plan'?", line)
        line = self.usage_error("help", "stauts")
        self.assertIn("did you mean 'status'?", line)
        # nothing close: no suggestion
        line = self.usage_error("frobnicate")
        self.assertIn("'frobnicate'", line)
        self.assertNotIn("did you mean", line)

    def test_missing_value_is_one_line_without_the_binary_path(self):
        for args, word in ((("plan", "-c"), "'-c'"),
                           (("plan", "--config"), "'--config'"),
                           (("apply", "-c", "x.yaml", "--plan"), "'--plan'")):
            with self.subTest(args=args):
                line = self.usage_error(*args)
                self.assertIn(word, line)
                self.assertIn("needs", line)
                self.assertNotIn("/", line)

    def test_unknown_option_suggests_the_close_one(self):
        line = self.usage_error("apply", "-c", "x.yaml", "--dry-rn")
        self.assertIn("'--dry-rn'", line)
        self.assertIn("did you mean '--dry-run'?", line)
        line = self.usage_error("status", "--stat-dir", "/tmp")
        self.assertIn("did you mean '--state-dir'?", line)
        line = self.usage_error("plan", "-c", "x.yaml", "--bogus")
        self.assertNotIn("did you mean", line)
        line = self.usage_error("plan", "-c", "x.yaml", "-x")
        self.assertIn("'-x'", line)
        # the hint names the command
        r = certbind("apply", "--dry-rn")
        self.assertIn("try 'certbind apply --help'", r.stderr)

    def test_options_of_other_commands_are_one_line_errors(self):
        line = self.usage_error("apply", "-c", "x.yaml", "--json")
        self.assertIn("--json", line)
        self.assertIn("plan, status", line)
        self.usage_error("status", "-c", "x.yaml")
        self.usage_error("plan")  # needs -c
        self.usage_error("import", "-c", "x.yaml")  # needs --certificate
        line = self.usage_error("adopt", "-c", "x.yaml", "--certificate", "a",
                                "--certificate", "b")
        self.assertIn("one --certificate", line)
        self.usage_error("plan", "-c", "x.yaml", "--json=yes")
        self.usage_error("plan", "-c", "x.yaml", "extra")
        self.usage_error("help", "plan", "extra")
        self.usage_error()

    def test_version_names_the_commit_and_the_libraries(self):
        r = certbind("--version")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.stderr, "", r)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r"^certbind \d+\.\d+\.\d+$")
        fields = dict(l.split(None, 1) for l in lines[1:])
        self.assertEqual(
            sorted(fields),
            sorted(["commit", "libcurl", "OpenSSL", "libuv", "yajl", "libyaml"]))
        for lib in ("libcurl", "OpenSSL", "libuv", "yajl", "libyaml"):
            self.assertRegex(fields[lib], r"^\d+\.\d+(\.\d+)?", lib)
        commit = fields["commit"]
        self.assertRegex(commit, r"^([0-9a-f]{7,40}(-dirty)?|unknown)$")
        # built from this checkout: a commit of its history (the build may
        # have been configured before the newest commits)
        src = os.path.dirname(os.path.abspath(__file__))
        git = subprocess.run(["git", "-C", src, "rev-parse", "--git-dir"],
                             capture_output=True, text=True)
        if git.returncode == 0:
            sha = commit.split("-")[0]
            self.assertNotEqual(commit, "unknown")
            known = subprocess.run(["git", "-C", src, "cat-file", "-e",
                                    sha + "^{commit}"], capture_output=True)
            self.assertEqual(known.returncode, 0, commit)
        # as an option of a command, too
        self.assertEqual(certbind("plan", "--version").stdout, r.stdout)


if __name__ == "__main__":
    unittest.main()
