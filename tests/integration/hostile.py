# SPDX-License-Identifier: MIT
"""A small malicious APIG endpoint for test_hostile_server.py.

Python ssl + http.server over HTTPS on a free loopback port (certificate
from make-certs.sh). Every request is answered by the function set in
`handler` (method, path, query) -> Answer; requests are counted by op.
It verifies nothing: it only has to be hostile.
"""
import http.server
import re
import socketserver
import ssl
import threading
import time
import urllib.parse

CERT_IN_PATH = re.compile(r"/certificates/([^/]+)/")


class Answer:
    """status, headers, body; or raw bytes written as they are (then the
    connection is closed), for responses no well-behaved server sends."""

    def __init__(self, status=200, body=b"", headers=None, raw=None,
                 close=False, chunks=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode()
        self.headers = headers or {}
        self.raw = raw
        self.close = close
        self.chunks = chunks  # iterable of bytes written after the headers


def cert_of(path):
    """The certificate ID of a certificate call's path, or None."""
    m = CERT_IN_PATH.search(path)
    return m.group(1) if m else None


def op_of(method, path):
    if path.endswith("/attached-domains"):
        return "list"
    if path.endswith("/domains/attach"):
        return "attach"
    if path.endswith("/domains/detach"):
        return "detach"
    if path.startswith("/v3/auth/tokens"):
        return "token"
    return "other"


class HostileServer:
    def __init__(self, tls_dir):
        self.lock = threading.Lock()
        self.counts = {}
        self.by_cert = {}  # (op, certificate id) -> count
        self.times = []
        self.handler = lambda method, path, query: Answer(404, b"{}")
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls

            def log_message(self, *a):
                pass

            def _serve(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                u = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(u.query)
                op = op_of(self.command, u.path)
                key = (op, cert_of(u.path))
                with outer.lock:
                    outer.counts[op] = outer.counts.get(op, 0) + 1
                    outer.by_cert[key] = outer.by_cert.get(key, 0) + 1
                    outer.times.append((time.monotonic(), op))
                a = outer.handler(self.command, u.path, q)
                try:
                    if a.raw is not None:
                        self.wfile.write(a.raw)
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    self.send_response(a.status)
                    for k, v in a.headers.items():
                        self.send_header(k, v)
                    if "Content-Length" not in a.headers:
                        self.send_header("Content-Length", str(len(a.body)))
                    if "Content-Type" not in a.headers and a.body:
                        self.send_header("Content-Type", "application/json")
                    self.send_header("X-Request-Id", "0" * 31 + "1")
                    self.end_headers()
                    if a.chunks is not None:
                        for c in a.chunks:
                            self.wfile.write(c)
                    else:
                        self.wfile.write(a.body)
                    self.wfile.flush()
                    if a.close:
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    self.close_connection = True

            do_GET = _serve
            do_POST = _serve

        class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = S(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(tls_dir + "/server.pem", tls_dir + "/server.key")
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = "https://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def count(self, op, cert=None):
        """Requests of an op, of one certificate (its ID) when given."""
        with self.lock:
            if cert is not None:
                return self.by_cert.get((op, cert), 0)
            return self.counts.get(op, 0)

    def reset_counts(self):
        with self.lock:
            self.counts.clear()
            self.by_cert.clear()
            self.times.clear()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
