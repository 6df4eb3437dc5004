# SPDX-License-Identifier: MIT
"""A NOTIFY_SOCKET listener: what systemd hears from a Type=notify service.

The test creates a unix datagram socket, passes its path as NOTIFY_SOCKET
(and WATCHDOG_USEC/WATCHDOG_PID when wanted) to the daemon, and reads the
messages libsystemd's sd_notify() sends there. A background thread collects
them so a test can wait for a message without polling with sleeps.
"""
import os
import socket
import threading
import time

from harness import scaled


class NotifySocket:
    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []  # [(monotonic time, {key: value}, raw)]
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def env(self, watchdog_usec=None, pid=None):
        e = {"NOTIFY_SOCKET": self.path}
        if watchdog_usec:
            e["WATCHDOG_USEC"] = str(watchdog_usec)
            if pid is not None:
                e["WATCHDOG_PID"] = str(pid)
        return e

    def _loop(self):
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = {}
            for line in data.decode(errors="replace").split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields[k] = v
            with self.cond:
                self.messages.append((time.monotonic(), fields, data))
                self.cond.notify_all()

    def count(self, key, value=None):
        with self.cond:
            return sum(1 for _, f, _ in self.messages
                       if key in f and (value is None or f[key] == value))

    def wait_for(self, key, value=None, after=0, timeout=20):
        """Wait until message index >= after carries key (=value); return
        (index, fields), or raise AssertionError on timeout (stretched by
        harness.scaled())."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(after, len(self.messages)):
                    f = self.messages[i][1]
                    if key in f and (value is None or f[key] == value):
                        return i, f
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "no %s%s from the daemon within %ss; got %r" %
                        (key, "" if value is None else "=" + value, timeout,
                         [m[1] for m in self.messages]))
                self.cond.wait(left)

    def snapshot(self):
        with self.cond:
            return [m[1] for m in self.messages]

    def close(self):
        self.closed = True
        self.thread.join(2)
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass
