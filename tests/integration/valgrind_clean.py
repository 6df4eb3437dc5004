#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Check the valgrind logs of an integration run (CERTBIND_TEST_VALGRIND=ON).

Each certbind process wrote valgrind-logs/vg.<pid>.log; with -q a clean run
leaves it empty. Fails when any log has content (an error or a definite or
indirect leak: printed here) or when there is no log at all (certbind never
ran under valgrind, so the stage proved nothing)."""
import os
import sys


def main(logdir):
    try:
        logs = sorted(f for f in os.listdir(logdir) if f.startswith("vg."))
    except FileNotFoundError:
        logs = []
    if not logs:
        print("valgrind: no certbind process ran under valgrind in %s" % logdir)
        return 1
    dirty = []
    for name in logs:
        with open(os.path.join(logdir, name), errors="replace") as f:
            text = f.read()
        if text.strip():
            dirty.append(name)
            print("==== %s\n%s" % (name, text))
    print("valgrind: %d certbind processes, %d with reports" % (len(logs), len(dirty)))
    return 1 if dirty else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
