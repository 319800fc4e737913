"""gunicorn as in production: started in its own session, stopped by its pid."""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """gunicorn carbonpark.wsgi -c carbonpark/gunicorn.conf.py, in its own session; stopped by its pid."""

    def __init__(self, url: str, port: int, workers: int | None, config: str = "carbonpark/gunicorn.conf.py"):
        self.port = port
        self.log = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
        env = dict(os.environ, DATABASE_URL=url, HOST="127.0.0.1", PORT=str(port), PYTHONUNBUFFERED="1")
        if workers:
            env["WEB_CONCURRENCY"] = str(workers)
        exe = Path(sys.executable).with_name("gunicorn")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "gunicorn"]
        cmd += ["carbonpark.wsgi", "-c", config]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, expected_workers: int, timeout: float = 60) -> None:
        import psutil

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}); see {self.log.name}:\n"
                                   + Path(self.log.name).read_text()[-3000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                if len(psutil.Process(self.proc.pid).children()) >= expected_workers:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn not ready after {timeout} s; see {self.log.name}")

    def workers(self):
        import psutil

        try:
            return psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful: finish the request in hand
            try:
                self.proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what we started
                self.proc.wait()
        self.log.close()


def worker_class(config: str) -> str:
    """The worker class a gunicorn configuration file names (sync when it names none)."""
    found = re.search(r"^worker_class\s*=\s*[\"'](\w+)[\"']", (ROOT / config).read_text(), re.MULTILINE)
    return found.group(1) if found else "sync"


def expected_workers(args) -> int:
    if args.workers:
        return args.workers
    if os.environ.get("WEB_CONCURRENCY"):
        return int(os.environ["WEB_CONCURRENCY"])
    return max(2, mp.cpu_count())  # carbonpark/gunicorn.conf.py's default
