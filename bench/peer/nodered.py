"""The peer's processes: Node-RED instances running bench/peer/flow.json, each with its own userDir and a
free loopback port, all in one MQTT v5 shared subscription ($share/peer/...); stopped by their pids."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .install import PeerInstall


def free_port() -> int:
    """A free loopback port from the kernel (never a fixed one: 1880 may be someone's Node-RED)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NodeRed:
    """One Node-RED instance: ``node red.js --userDir <dir> --port <free> --settings bench/peer/settings.js``."""

    def __init__(self, inst: PeerInstall, user_dir: Path, client_id: str, broker, db_url: str):
        self.inst, self.user_dir, self.client_id = inst, user_dir, client_id
        self.broker, self.db_url = broker, db_url
        self.port = free_port()
        self.starts = 0
        self.proc = None
        self._log = None
        user_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(inst.flow, user_dir / "flow.json")
        # The function node's `libs`: Node-RED takes a module listed in <userDir>/package.json from
        # <userDir>/node_modules. pg is linked there from the npm install (nothing installed at run time).
        (user_dir / "package.json").write_text(json.dumps(
            {"name": "peer-userdir", "private": True, "dependencies": {"pg": inst.versions()["pg"]}}))
        (user_dir / "node_modules").mkdir(exist_ok=True)
        link = user_dir / "node_modules" / "pg"
        if not link.exists():
            link.symlink_to(inst.modules / "pg", target_is_directory=True)

    @property
    def log_path(self) -> Path:
        return self.user_dir / f"node-red-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        env = dict(os.environ, PEER_MQTT_HOST=self.broker.host, PEER_MQTT_PORT=str(self.broker.port),
                   PEER_CLIENT_ID=self.client_id, PEER_DATABASE_URL=self.db_url, NODE_ENV="production")
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed by stop()/kill()
        self.proc = subprocess.Popen(
            [str(self.inst.node), str(self.inst.red), "--userDir", str(self.user_dir), "--port", str(self.port),
             "--settings", str(self.inst.settings), "flow.json"],
            cwd=self.user_dir, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_connected(self, timeout: float = 60) -> None:
        """Until the broker node logs its connection (the subscription follows at once)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if "[error]" in log:
                break
            if "Connected to broker" in log:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"Node-RED {self.client_id} did not connect; {self.log_path}:\n{self.log()[-3000:]}")

    def psutil_processes(self):
        import psutil

        try:
            return [psutil.Process(self.proc.pid)]
        except (psutil.Error, AttributeError):
            return []

    def warnings(self) -> list[str]:
        return [line for line in self.log().splitlines()
                if any(w in line for w in ("[warn]", "[error]", "Error", "failed"))]

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        if self._log:
            self._log.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # stops the flows: MQTT disconnect, the pool's end()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what we started
                self.proc.wait()
        if self._log:
            self._log.close()


def start_peers(inst: PeerInstall, n: int, broker, db_url: str, tmp: Path) -> list[NodeRed]:
    out = [NodeRed(inst, tmp / f"peer-{i}", f"bench-peer-{i}", broker, db_url) for i in range(1, n + 1)]
    try:
        for p in out:
            p.start()
        for p in out:
            p.wait_connected()
    except BaseException:
        for p in out:
            p.stop()
        raise
    time.sleep(0.5)  # the SUBACKs
    return out
