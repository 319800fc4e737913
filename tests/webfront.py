"""The web server as production runs it, for tests and benchmarks: gunicorn with carbonpark/gunicorn.conf.py and
Debian's nginx with a configuration rendered from deploy/nginx/, each a child process on free ports of 127.0.0.1
(never 80/443/8000), stopped by its pid. Plus slow clients that trickle a request a byte at a time.

    with Gunicorn(database_url, redis_url) as app, Nginx(tmp_path, app.port, cert, key) as front:
        front.https_port, front.http_port
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.brokers import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx" / "carbonpark.conf.template"
RENDER = ROOT / "deploy" / "nginx" / "render.py"


def find_nginx() -> str | None:
    """Debian puts nginx in /usr/sbin, often not on a user's PATH (scripts/install-nginx installs it)."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                          if os.access(p, os.X_OK)), None)


def _stop(proc: subprocess.Popen, timeout: float = 25) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what we started
            proc.wait()


class Gunicorn:
    """``gunicorn carbonpark.wsgi -c carbonpark/gunicorn.conf.py`` (the production configuration), on a free port."""

    def __init__(self, database_url: str, redis_url: str, log_path, *, config: str = "carbonpark/gunicorn.conf.py",
                 workers: int | None = None, extra_args: tuple[str, ...] = (), env: dict | None = None):
        self.port = free_port()
        self.log_path = Path(log_path)
        self.config = config
        self.workers = workers
        self.extra_args = extra_args
        self.env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, CARBONPARK_HOST="127.0.0.1",
                        CARBONPARK_PORT=str(self.port), PYTHONUNBUFFERED="1", **(env or {}))
        if workers:
            self.env["WEB_CONCURRENCY"] = str(workers)
        self.proc: subprocess.Popen | None = None

    def __enter__(self):
        exe = Path(sys.executable).with_name("gunicorn")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "gunicorn"]
        # --no-control-socket: two instances on one machine must not share gunicorn's control socket.
        cmd += ["carbonpark.wsgi", "-c", self.config, "--no-control-socket", *self.extra_args]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            wait_for_port("127.0.0.1", self.port, timeout=60, proc=self.proc)
            self.wait_workers()
        except BaseException:
            self.__exit__()
            raise
        return self

    def wait_workers(self, timeout: float = 120) -> None:
        """Until every worker has imported the application (post_worker_init logs "Worker ready")."""
        expected = self.workers or int(self.env.get("WEB_CONCURRENCY") or 0) or max(2, os.cpu_count() or 1)
        deadline = time.monotonic() + timeout
        while self.log().count("Worker ready") < expected:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn's {expected} workers not ready:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __exit__(self, *exc_info) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None
            self._log.close()


def render_nginx(target: Path, *, upstream_port: int, https_port: int, http_port: int, cert: Path, key: Path,
                 server_name: str = "localhost") -> Path:
    """deploy/nginx/render.py: the shipped site template with this run's ports and certificate."""
    subprocess.run([sys.executable, str(RENDER), "--upstream", f"127.0.0.1:{upstream_port}",
                    "--https-port", str(https_port), "--http-port", str(http_port), "--listen", "127.0.0.1",
                    "--server-name", server_name, "--cert", str(cert), "--key", str(key), "--output", str(target)],
                   check=True, capture_output=True, timeout=30)
    return target


class Nginx:
    """Debian's nginx in the foreground, unprivileged: a main configuration of its own (pid, temp paths and logs
    under ``workdir``) that includes the site rendered from deploy/nginx/carbonpark.conf.template."""

    def __init__(self, workdir, upstream_port: int, cert: Path, key: Path, *, site_edit=None,
                 worker_connections: int = 4096):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.https_port, self.http_port = free_port(), free_port()
        self.site = render_nginx(self.workdir / "carbonpark.conf", upstream_port=upstream_port,
                                 https_port=self.https_port, http_port=self.http_port, cert=cert, key=key)
        if site_edit is not None:  # a control run of a test changes the rendered site, never the template
            self.site.write_text(site_edit(self.site.read_text()))
        w = self.workdir
        self.conf = w / "nginx.conf"
        self.conf.write_text(f"""
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile {worker_connections * 2 + 64};
pid {w}/nginx.pid;
error_log {w}/error.log warn;
events {{ worker_connections {worker_connections}; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {w}/access.log;
    client_body_temp_path {w}/client_body;
    proxy_temp_path {w}/proxy;
    fastcgi_temp_path {w}/fastcgi;
    uwsgi_temp_path {w}/uwsgi;
    scgi_temp_path {w}/scgi;
    include {self.site};
}}
""")
        self.proc: subprocess.Popen | None = None

    def check(self) -> subprocess.CompletedProcess:
        return subprocess.run([find_nginx(), "-t", "-p", str(self.workdir), "-c", str(self.conf), "-e",
                               str(self.workdir / "error.log")], capture_output=True, text=True, timeout=30)

    def __enter__(self):
        binary = find_nginx()
        if binary is None:
            raise RuntimeError("nginx not found (apt-get install nginx; see scripts/install-nginx)")
        self._out = open(self.workdir / "stderr.log", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen([binary, "-p", str(self.workdir), "-c", str(self.conf), "-e",
                                      str(self.workdir / "error.log")], stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            wait_for_port("127.0.0.1", self.https_port, proc=self.proc)
        except BaseException:
            self.__exit__()
            raise
        return self

    def error_log(self) -> str:
        p = self.workdir / "error.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def __exit__(self, *exc_info) -> None:
        if self.proc is not None:
            _stop(self.proc, timeout=10)
            self.proc = None
            self._out.close()


# --- clients ----------------------------------------------------------------------------------------------------

def http_get(host: str, port: int, path: str, *, timeout: float, tls: ssl.SSLContext | None = None,
             server_hostname: str = "localhost") -> tuple[int, dict, bytes]:
    """One HTTP/1.1 GET on a fresh connection; (status, headers, body). Raises on timeout."""
    import http.client

    if tls is None:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    else:
        conn = http.client.HTTPSConnection(server_hostname, port, timeout=timeout, context=tls)
        conn._create_connection = lambda *_a, **_k: socket.create_connection((host, port), timeout)  # noqa: SLF001
    try:
        conn.request("GET", path, headers={"Accept-Language": "en"})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


class Tricklers:
    """``count`` connections that send a request one byte every ``interval`` seconds and never finish it:
    the slow-client (slowloris) attack. ``body=True`` completes the headers and trickles the body instead
    (with ``token``, an authenticated push: the API would read that body)."""

    def __init__(self, host: str, port: int, count: int, *, tls: ssl.SSLContext | None = None,
                 interval: float = 0.5, body: bool = False, token: str | None = None):
        self.host, self.port, self.count, self.tls, self.interval = host, port, count, tls, interval
        head = "POST /api/v1/readings HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        if token:  # authenticated: the API reads the body instead of answering 401 at once
            head += f"Authorization: Token {token}\r\n"
        if body:  # the headers at once, then the body a byte at a time
            head = (head + "Content-Length: 100000\r\n\r\n").encode()
            self.request, self._offset = head + b"[" + b" " * 99_998 + b"]", len(head) + 1
        else:
            self.request = (head + "".join(f"X-Slow-{i}: {'x' * 40}\r\n" for i in range(200)) + "\r\n").encode()
            self._offset = 1
        self.socks: list[socket.socket] = []
        self.sent = 0  # bytes, all connections together
        self.dropped = 0  # connections the server closed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tricklers", daemon=True)

    def _connect(self, offset: int) -> socket.socket:
        s = socket.create_connection((self.host, self.port), timeout=10)
        if self.tls is not None:
            s = self.tls.wrap_socket(s, server_hostname="localhost")
        s.sendall(self.request[:offset])
        return s

    def __enter__(self):
        self.socks = [self._connect(self._offset) for _ in range(self.count)]
        self._thread.start()
        return self

    def _run(self):
        """A byte to every connection per interval; one the server closed is opened again (an attacker would)."""
        while not self._stop.wait(self.interval) and self._offset < len(self.request) - 1:
            chunk = self.request[self._offset:self._offset + 1]
            for i, s in enumerate(self.socks):
                try:
                    s.sendall(chunk)
                    self.sent += 1
                except OSError:
                    self.dropped += 1
                    with contextlib.suppress(OSError):
                        s.close()
                    with contextlib.suppress(OSError):
                        self.socks[i] = self._connect(self._offset + 1)
            self._offset += 1

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for s in self.socks:
            with contextlib.suppress(OSError):
                s.close()
