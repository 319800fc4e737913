"""The consumers as in production: ``manage.py run_mqtt_ingest`` processes, each in its own session,
sharing the stream through the broker's shared subscription; stopped by their pids."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .common import REDIS_URL, ROOT


class Consumer:
    def __init__(self, broker_url: str, db_url: str, client_id: str, log_path: Path, batch_wait: float | None):
        self.client_id = client_id
        self.log_path = log_path
        env = dict(os.environ, DATABASE_URL=db_url, PYTHONUNBUFFERED="1")
        env.setdefault("REDIS_URL", REDIS_URL)
        cmd = [sys.executable, "manage.py", "run_mqtt_ingest", "--url", broker_url, "--client-id", client_id,
               "--shared"]
        if batch_wait is not None:
            cmd += ["--batch-wait", str(batch_wait)]
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_connected(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "MQTT connected" in self.log():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"consumer {self.client_id} did not connect; {self.log_path}:\n{self.log()[-3000:]}")

    def psutil_processes(self):
        import psutil

        try:
            return [psutil.Process(self.proc.pid)]
        except psutil.Error:
            return []

    def warnings(self) -> list[str]:
        """Lines of its log that say something went wrong (lost connection, failed batch ...)."""
        return [line for line in self.log().splitlines()
                if any(w in line for w in ("WARNING", "ERROR", "Traceback", "lost", "failed"))]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # finishes the batch in hand, then disconnects
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what we started
                self.proc.wait()
        self._log.close()


def start_consumers(n: int, broker_url: str, db_url: str, logdir: Path, batch_wait: float | None) -> list[Consumer]:
    out = []
    try:
        for i in range(1, n + 1):
            out.append(Consumer(broker_url, db_url, f"bench-c{i}", logdir / f"consumer-{i}.log", batch_wait))
        for c in out:
            c.wait_connected()
    except BaseException:
        for c in out:
            c.stop()
        raise
    time.sleep(0.5)  # the SUBACKs
    return out
