"""A fake third-party REST platform for the pull connector's tests: a threaded HTTP server on a free port that
answers from a script the test writes (pages, failures, delays), and records every request it got."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class FakePlatform:
    """``handler(query) -> (status, headers, body bytes)``, set by the test; ``requests`` the calls received as
    (monotonic time, path, query dict, headers dict)."""

    def __init__(self):
        self.requests: list[tuple] = []
        self.handler = lambda query: (200, {}, b"[]")
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                fake.requests.append((time.monotonic(), parts.path, query, dict(self.headers)))
                status, headers, body = fake.handler(query)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/readings"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def page(items, next_token=None) -> tuple:
    return 200, {"Content-Type": "application/json"}, json.dumps({"data": items, "next": next_token}).encode()


def item(minute: int, value=1.5, source="TP01-EM-0001"):
    return {"meter": {"id": source}, "code": "CS010201", "time": f"2026-11-23 10:{minute:02d}:00",
            "reading": value, "u": "kWh"}


MAPPING = {"sourceId": "/meter/id", "dataCode": "code", "timestamp": "/time", "value": "reading", "unit": "u"}
