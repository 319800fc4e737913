"""A small local SMTP server for tests (ARCHITECTURE.md rule 10: SMTP as a small local fake over a real
connection). Speaks enough of RFC 5321 for Django's SMTP backend: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

from __future__ import annotations

import socketserver
import threading
import time


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        box = self.server.box
        self.wfile.write(b"220 fake ESMTP\r\n")
        mail_from, rcpt = None, []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.wfile.write(b"250-fake\r\n250 8BITMIME\r\n" if verb == b"EHLO" else b"250 fake\r\n")
            elif verb == b"MAIL":
                mail_from, rcpt = line.split(b":", 1)[1].strip().split(b" ")[0].strip(b"<>").decode(), []
                self.wfile.write(b"250 ok\r\n")
            elif verb == b"RCPT":
                rcpt.append(line.split(b":", 1)[1].strip().strip(b"<>").decode())
                self.wfile.write(b"250 ok\r\n")
            elif verb == b"DATA":
                self.wfile.write(b"354 go\r\n")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                box.append((mail_from, rcpt, data))
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:  # RSET, NOOP and anything else
                self.wfile.write(b"250 ok\r\n")


class SmtpFake:
    def __init__(self):
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.box = []
        self.port = self.server.server_address[1]

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def wait(self, n: int, timeout: float = 5.0) -> list:
        deadline = time.monotonic() + timeout
        while len(self.server.box) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.server.box)



