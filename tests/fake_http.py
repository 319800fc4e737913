"""A small local HTTP server for tests (ARCHITECTURE.md rule 10: third-party servers as small local fakes over real
connections): records what it receives and answers as told, one behaviour at a time: ``(status, headers, delay)``
or "hang" (never answers within the client's read timeout)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _serve(self):
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake.received.append((self.command, self.path, dict(self.headers), body))
        status, headers, delay = fake.behaviour()
        if status == "hang":
            fake.released.wait(30)
            return
        if delay:
            time.sleep(delay)
        payload = fake.body
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve


class FakeHttp:
    def __init__(self, status=200, headers=None, delay=0.0):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.fake = self
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.received = []
        self.body = b"{}"
        self.released = threading.Event()
        self.answer(status, headers, delay)

    def answer(self, status=200, headers=None, delay=0.0):
        self._answer = (status, headers, delay)

    def behaviour(self):
        return self._answer

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    """An address where nothing listens (connection refused at once)."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"
