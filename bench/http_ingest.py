#!/usr/bin/env python
"""Benchmark: readings/s through POST /api/v1/readings, served as in production, against PostgreSQL,
next to the raw idempotent COPY rate of the same rows.

    .venv/bin/python bench/http_ingest.py            # 1 000 000 readings in 1 000-record batches
    .venv/bin/python bench/http_ingest.py --quick    # 100 000 readings
    .venv/bin/python bench/http_ingest.py --profile  # where the time of one batch goes (in-process)

What it does:

1. Database: DATABASE_URL if set (treated as disposable: its ingestion tables are truncated), else a
   dedicated ``carbonpark_bench`` on 127.0.0.1:5432, dropped and recreated. ``manage.py migrate``,
   then one park, ``--sources`` sources bound to CS010201 and one API token, through the services.
2. Data: N readings, ``sourceId`` round-robin over the sources, one minute apart per source, park
   local time; every request body is serialised with orjson before any clock starts.
3. HTTP: ``gunicorn carbonpark.wsgi -c carbonpark/gunicorn.conf.py`` (PORT/HOST/WEB_CONCURRENCY
   from the command line, a free port by default), ``--clients`` client processes (http.client;
   gunicorn's sync worker closes every connection, so each request opens a new one: that is
   production too). Warm-up with empty batches, then the clock runs from the first request to the
   last answer. Every answer must be 200 with accepted == batch size; the stored count must equal
   the readings sent.
4. Raw: the same rows as Python tuples (already normalized: UTC datetimes, floats), on a freshly
   truncated ingestion_reading (same indexes, same one-way-in trigger), psycopg 3 directly: per
   transaction ``SELECT set_config('carbonpark.writer','ingest_readings', true)`` (the same guard
   cost every ingest_readings transaction pays), binary COPY into a temp staging table, then
   ``INSERT INTO ingestion_reading ... SELECT ... ORDER BY source_id, data_item_id, ts
   ON CONFLICT (source_id, data_item_id, ts) DO NOTHING``, commit. Run in ``--batch``-row
   transactions (the HTTP path's unit) and in ``--raw-big-txn``-row ones, each with 1 and with
   <cores> loader connections (``--raw-conns``), each on a fresh table. The ratio HTTP/raw is taken
   against the best ``--batch``-row run (the machine's raw capacity at the HTTP path's commit
   granularity); the ratio against the best run of all is printed beside it.
   Not in the raw path: the ingestbatch log row, RETURNING, JSON, normalisation, auth.

Machine CPU is sampled with psutil during each phase: clients, gunicorn workers, PostgreSQL (our
database's backends and the server's helpers), and whatever else ran (other people's work skews
every figure: the run says so). Exit status 0 when nothing was lost or doubled (not on targets).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HTTP_TARGET = 50_000
RATIO_TARGET = 0.6
PARK_CODE = "BP01"
ITEM_CODE = "CS010201"
PARK_TZ = "Asia/Shanghai"
BENCH_DB = "carbonpark_bench"
URL_PATH = "/api/v1/readings"
# Readings start here, one minute apart per source: always in the past (the default rule library
# refuses timestamps more than 5 minutes ahead).
TS_BASE = datetime(2020, 1, 1, tzinfo=UTC)

STAGE_COLUMNS = ("park_id", "source_id", "data_item_id", "ts", "value", "text_value", "received_value",
                 "received_unit", "status", "flags", "channel", "batch_id", "received_at")
STAGE_TYPES = ("int8", "int8", "int8", "timestamptz", "float8", "text", "float8", "text", "text", "int2",
               "text", "int8", "timestamptz")
STAGE_DDL = ("CREATE TEMP TABLE reading_stage (" +
             ", ".join(f"{c} {t}" for c, t in zip(STAGE_COLUMNS, STAGE_TYPES)) + ") ON COMMIT DELETE ROWS")
RAW_INSERT = (f"INSERT INTO ingestion_reading ({', '.join(STAGE_COLUMNS)}) "
              f"SELECT {', '.join(STAGE_COLUMNS)} FROM reading_stage ORDER BY source_id, data_item_id, ts "
              "ON CONFLICT (source_id, data_item_id, ts) DO NOTHING")
INGEST_TABLES = ("ingestion_reading", "ingestion_ingestbatch", "ingestion_validationevent",
                 "ingestion_rejection", "ingestion_idempotencykey")


def say(msg: str = "") -> None:
    print(msg, flush=True)


def fmt(n: float) -> str:
    return f"{n:,.0f}"


# --------------------------------------------------------------------------------------------------
# database and fixtures


def pg_kwargs(url: str) -> dict:
    from carbonpark.dburl import parse_database_url

    cfg = parse_database_url(url)
    kw = {"dbname": cfg["NAME"], "user": cfg["USER"], "host": cfg["HOST"] or None, "port": cfg["PORT"] or None}
    if cfg["PASSWORD"]:
        kw["password"] = cfg["PASSWORD"]
    kw.update(cfg["OPTIONS"])
    return kw


def connect(url: str, **extra):
    import psycopg

    return psycopg.connect(**pg_kwargs(url), **extra)


def prepare_database(args) -> str:
    """The database URL to use; a fresh, migrated carbonpark_bench unless DATABASE_URL is set."""
    import psycopg

    url = os.environ.get("DATABASE_URL")
    if not url:
        url = f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}"
        with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {BENCH_DB}")
        say(f"database: {BENCH_DB} on 127.0.0.1:5432 (recreated)")
    else:
        say(f"database: DATABASE_URL ({pg_kwargs(url)['dbname']})")
    os.environ["DATABASE_URL"] = url
    t = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, check=True,
                   env=os.environ)
    say(f"migrated in {time.perf_counter() - t:.1f} s")
    with connect(url) as conn:
        stored = conn.execute("SELECT count(*) FROM ingestion_reading").fetchone()[0]
    if stored and not args.truncate_ok:
        sys.exit(f"ingestion_reading of {pg_kwargs(url)['dbname']} holds {stored:,} readings; the benchmark "
                 "truncates it. Pass --truncate-ok if that database is disposable.")
    return url


def setup_fixtures(n_sources: int) -> dict:
    """Park, sources bound to CS010201 and a token, through the services (as tests/conftest.py does)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
    django.setup()
    from django.db import connections

    from apps.accounts.models import Park
    from apps.accounts.services import issue_token, save_park
    from apps.catalog.models import DataItem
    from apps.sources.models import DataSource
    from apps.sources.services import save_source

    item = DataItem.objects.get(code=ITEM_CODE)
    park = Park.objects.filter(code=PARK_CODE).first() or save_park(
        actor="bench", code=PARK_CODE, name_zh="基准园区", name_en="Benchmark park", time_zone=PARK_TZ)
    existing = {s.source_id: s for s in DataSource.objects.filter(park=park)}
    t = time.perf_counter()
    sources = []
    for i in range(n_sources):
        sid = f"{PARK_CODE}-EM-{i:04d}"
        src = existing.get(sid) or save_source(actor="bench", source_id=sid, park=park, name=f"meter {i}",
                                               data_items=[item])
        sources.append((sid, src.pk))
    _token, key = issue_token(actor="bench", park=park, name=f"bench {datetime.now():%H:%M:%S}")
    say(f"fixtures: park {PARK_CODE}, {n_sources} sources bound to {ITEM_CODE}, one token "
        f"({time.perf_counter() - t:.1f} s)")
    connections.close_all()
    return {"park_pk": park.pk, "item_pk": item.pk, "sources": sources, "token": key, "tz": park.time_zone}


def reset_tables(url: str) -> None:
    """A fresh ingestion_reading for each phase: same indexes and trigger, no rows, then a checkpoint
    so that no phase pays for the previous one's dirty pages."""
    with connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(INGEST_TABLES)}")
        conn.execute("VACUUM ANALYZE ingestion_reading")
        conn.execute("CHECKPOINT")


def stored_count(url: str) -> int:
    with connect(url) as conn:
        return conn.execute("SELECT count(*) FROM ingestion_reading").fetchone()[0]


# --------------------------------------------------------------------------------------------------
# data


def reading_at(i: int, sources: list) -> tuple[str, int, datetime, float]:
    sid, pk = sources[i % len(sources)]
    ts = TS_BASE + timedelta(minutes=i // len(sources))
    return sid, pk, ts, (i % 100_000) * 0.125 + 1.5


def make_bodies(n: int, batch: int, fx: dict, offset: int = 0) -> list[bytes]:
    """Request bodies, serialised now so that no client spends time on JSON while the clock runs."""
    import zoneinfo

    import orjson

    tz = zoneinfo.ZoneInfo(fx["tz"])
    sources = fx["sources"]
    bodies = []
    local_of: dict[datetime, str] = {}
    for start in range(offset, offset + n, batch):
        records = []
        for i in range(start, min(start + batch, offset + n)):
            sid, _pk, ts, value = reading_at(i, sources)
            local = local_of.get(ts)
            if local is None:
                local = local_of[ts] = ts.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S.000")
            records.append({"sourceId": sid, "dataCode": ITEM_CODE, "timestamp": local, "value": value,
                            "unit": "kWh", "status": "N"})
        bodies.append(orjson.dumps(records))
    return bodies


def make_rows(n: int, batch: int, fx: dict, now: datetime) -> list[list[tuple]]:
    """The same readings as stored rows (what normalize makes of the bodies above), per batch."""
    sources = fx["sources"]
    park, item = fx["park_pk"], fx["item_pk"]
    out = []
    for b, start in enumerate(range(0, n, batch)):
        rows = []
        for i in range(start, min(start + batch, n)):
            _sid, pk, ts, value = reading_at(i, sources)
            rows.append((park, pk, item, ts, value, None, None, "", "N", 0, "http", b + 1, now))
        out.append(rows)
    return out


# --------------------------------------------------------------------------------------------------
# gunicorn


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


def expected_workers(args) -> int:
    if args.workers:
        return args.workers
    if os.environ.get("WEB_CONCURRENCY"):
        return int(os.environ["WEB_CONCURRENCY"])
    return mp.cpu_count() * 2 + 1  # carbonpark/gunicorn.conf.py's default


# --------------------------------------------------------------------------------------------------
# CPU accounting


class CpuProbe:
    """CPU seconds used by groups of processes between start() and stop(), plus the machine's."""

    def __init__(self, groups: dict):
        self.groups = groups  # name -> callable returning processes

    @staticmethod
    def _cpu(procs) -> dict:
        import psutil

        out = {}
        for p in procs:
            try:
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
            except psutil.Error:
                pass
        return out

    @staticmethod
    def _everything() -> dict:
        import psutil

        out = {}
        for p in psutil.process_iter(["name", "cpu_times"]):
            t = p.info["cpu_times"]
            if t is not None:
                out[p.pid] = (p.info["name"] or "?", t.user + t.system)
        return out

    def start(self):
        import psutil

        self.t0 = time.perf_counter()
        self.m0 = psutil.cpu_times()
        self.before = {g: self._cpu(f()) for g, f in self.groups.items()}
        self.all0 = self._everything()

    def stop(self) -> dict:
        import psutil

        wall = time.perf_counter() - self.t0
        m1 = psutil.cpu_times()
        all1 = self._everything()
        busy = lambda t: t.user + t.nice + t.system + t.irq + t.softirq + t.steal  # noqa: E731
        out = {"wall": wall, "machine": busy(m1) - busy(self.m0), "cores": psutil.cpu_count()}
        ours = {os.getpid(), *(c.pid for c in psutil.Process().children(recursive=True))}
        for g, f in self.groups.items():
            after = self._cpu(f())
            ours.update(after)
            out[g] = sum(v - self.before[g].get(pid, 0.0) for pid, v in after.items())
        # Whatever else ran meanwhile (other people's tests, browsers ...), by process name.
        foreign: dict[str, float] = {}
        for pid, (name, v) in all1.items():
            if pid not in ours:
                foreign[name] = foreign.get(name, 0.0) + v - self.all0.get(pid, (name, 0.0))[1]
        out["foreign"] = sorted(foreign.items(), key=lambda kv: -kv[1])[:3]
        return out


_POSTMASTER: list = []


def find_postmaster(url: str) -> None:
    """The server our DATABASE_URL reaches (other PostgreSQL servers on the machine are not ours)."""
    import psutil

    with connect(url) as conn:
        backend, dbname = conn.execute("SELECT pg_backend_pid(), current_database()").fetchone()
    try:
        _POSTMASTER[:] = [psutil.Process(backend).parent(), dbname]
    except psutil.Error:  # a server in a container or on another host: no PostgreSQL CPU figures
        _POSTMASTER[:] = []


def postgres_processes():
    """The postmaster, our database's backends, and the shared helpers (WAL writer, checkpointer ...);
    not the backends of other databases on the same server."""
    import psutil

    if not _POSTMASTER:
        return []
    pm, dbname = _POSTMASTER
    out = [pm]
    with contextlib.suppress(psutil.Error):
        for child in pm.children():
            with contextlib.suppress(psutil.Error):
                title = " ".join(child.cmdline())
                is_backend = "(" in title or "[local]" in title
                if not is_backend or f" {dbname} " in title:  # our backends and the shared helpers
                    out.append(child)
    return out


def machine_load(seconds: float = 1.0) -> float:
    """Share of the machine busy before we start: other people's work skews every figure."""
    import psutil

    return psutil.cpu_percent(interval=seconds) / 100


def cpu_report(c: dict, extra: dict) -> str:
    cap = c["wall"] * c["cores"]
    parts = [f"machine busy {c['machine'] / cap:.0%} of {c['cores']} cores"]
    for name, secs in extra.items():
        parts.append(f"{name} {secs / cap:.0%}")
    other = max(c["machine"] - sum(extra.values()), 0)
    foreign = ", ".join(f"{name} {secs / cap:.0%}" for name, secs in c.get("foreign", []) if secs / cap >= 0.01)
    parts.append(f"other {other / cap:.0%}" + (f" ({foreign})" if foreign and other / cap >= 0.03 else ""))
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------------
# HTTP clients


def client_main(cid, port, token, bodies, counter, start_evt, warmup, results):
    import http.client

    import orjson

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop (terminate())
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    headers = {"Content-Type": "application/json", "Authorization": f"Token {token}", "Accept-Language": "en"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(body):
        conn.request("POST", URL_PATH, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()

    errors = []
    for _ in range(warmup):
        status, data = post(b"[]")
        if status != 200:
            errors.append(f"warm-up: {status} {data[:300]!r}")
    results.put(("ready", cid, errors))
    start_evt.wait()
    cpu0 = time.process_time()
    sent = accepted = duplicates = rejected = 0
    latencies = []
    while True:
        with counter.get_lock():
            k = counter.value
            counter.value += 1
        if k >= len(bodies):
            break
        t = time.perf_counter()
        try:
            status, data = post(bodies[k])
        except (OSError, http.client.HTTPException) as exc:
            errors.append(f"batch {k}: {exc!r}")
            conn.close()
            continue
        latencies.append(time.perf_counter() - t)
        answer = orjson.loads(data) if data[:1] == b"{" else {}
        n = answer.get("accepted", 0)
        sent += 1
        accepted += n
        duplicates += answer.get("duplicates", 0)
        rejected += len(answer.get("rejected", []))
        if status != 200 and len(errors) < 20:
            errors.append(f"batch {k}: HTTP {status} {data[:300]!r}")
    results.put(("done", cid, {"requests": sent, "accepted": accepted, "duplicates": duplicates,
                               "rejected": rejected, "cpu": time.process_time() - cpu0,
                               "latencies": latencies, "errors": errors, "end": time.perf_counter()}))


def run_http(args, url: str, fx: dict, bodies: list[bytes]) -> dict:
    port = args.port or free_port()
    nworkers = expected_workers(args)
    reset_tables(url)
    server = Gunicorn(url, port, args.workers, args.gunicorn_config)
    procs = []
    try:
        server.wait_ready(nworkers)
        say(f"gunicorn: {nworkers} sync workers on 127.0.0.1:{port} (log {server.log.name})")
        ctx = mp.get_context("fork")  # the bodies are shared copy-on-write, not pickled
        counter, start_evt, results = ctx.Value("q", 0), ctx.Event(), ctx.Queue()
        warmup = max(2, (3 * nworkers) // args.clients + 1)
        for cid in range(args.clients):
            p = ctx.Process(target=client_main, args=(cid, port, fx["token"], bodies, counter, start_evt,
                                                      warmup, results), daemon=True)
            p.start()
            procs.append(p)
        for _ in procs:
            kind, cid, errors = results.get(timeout=120)
            if errors:
                raise RuntimeError(f"client {cid} warm-up failed: {errors[0]}")
        probe = CpuProbe({"gunicorn": server.workers, "postgres": postgres_processes})
        probe.start()
        t0 = time.perf_counter()
        start_evt.set()
        done = []
        while len(done) < len(procs):
            try:
                kind, cid, payload = results.get(timeout=1)
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in procs):
                    raise RuntimeError("a client process died; see its traceback above") from None
                continue
            done.append(payload)
        wall = max(d["end"] for d in done) - t0
        cpu = probe.stop()
        cpu["wall"] = wall
        for p in procs:
            p.join(timeout=10)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        server.stop()
    lat = sorted(x for d in done for x in d["latencies"])
    out = {
        "wall": wall, "requests": sum(d["requests"] for d in done), "accepted": sum(d["accepted"] for d in done),
        "duplicates": sum(d["duplicates"] for d in done), "rejected": sum(d["rejected"] for d in done),
        "client_cpu": sum(d["cpu"] for d in done), "errors": [e for d in done for e in d["errors"]],
        "cpu": cpu, "p50": lat[len(lat) // 2] if lat else 0, "p95": lat[int(len(lat) * 0.95)] if lat else 0,
        "max": lat[-1] if lat else 0, "workers": nworkers,
    }
    out["stored"] = stored_count(url)
    return out


# --------------------------------------------------------------------------------------------------
# raw COPY baseline


def _raw_loader(url, txns, counter, start_evt, finish_evt, results):
    """One connection: per transaction, the guard's set_config, binary COPY into the temp staging
    table, INSERT ... SELECT ... ON CONFLICT DO NOTHING, commit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop (terminate())
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    copy_sql = f"COPY reading_stage ({', '.join(STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    with connect(url) as conn:
        conn.execute(STAGE_DDL)
        conn.commit()
        results.put(("ready", 0.0, 0.0))
        start_evt.wait()
        cpu0 = time.process_time()
        with conn.cursor() as cur:
            while True:
                with counter.get_lock():
                    k = counter.value
                    counter.value += 1
                if k >= len(txns):
                    break
                cur.execute("SELECT set_config('carbonpark.writer', 'ingest_readings', true)")
                with cur.copy(copy_sql) as copy:
                    copy.set_types(STAGE_TYPES)
                    for row in txns[k]:
                        copy.write_row(row)
                cur.execute(RAW_INSERT)
                conn.commit()
        results.put(("done", time.process_time() - cpu0, time.perf_counter()))
        finish_evt.wait(60)  # keep the backend alive until its CPU time has been read


def run_raw(url: str, rows_by_batch: list[list[tuple]], rows_per_txn: int, conns: int) -> dict:
    """Same rows, fresh table; conns loader processes (one connection each) share the transactions."""
    reset_tables(url)
    # Regroup the (batch-sized) row lists into transactions of rows_per_txn rows.
    txns, cur_rows = [], []
    for rows in rows_by_batch:
        cur_rows.extend(rows)
        if len(cur_rows) >= rows_per_txn:
            txns.append(cur_rows)
            cur_rows = []
    if cur_rows:
        txns.append(cur_rows)
    ctx = mp.get_context("fork")  # the rows are shared copy-on-write, not pickled
    counter, start_evt, finish_evt, results = ctx.Value("q", 0), ctx.Event(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_raw_loader, args=(url, txns, counter, start_evt, finish_evt, results),
                         daemon=True)
             for _ in range(conns)]
    try:
        for p in procs:
            p.start()
        for _ in procs:
            results.get(timeout=60)
        probe = CpuProbe({"postgres": postgres_processes})
        probe.start()
        t0 = time.perf_counter()
        start_evt.set()
        done = [results.get(timeout=1800) for _ in procs]
        wall = max(d[2] for d in done) - t0
        cpu = probe.stop()
        cpu["wall"] = wall
        finish_evt.set()
        for p in procs:
            p.join(timeout=10)
    finally:
        finish_evt.set()
        for p in procs:
            if p.is_alive():
                p.terminate()
    n = sum(len(r) for r in txns)
    return {"wall": wall, "rows": n, "txns": len(txns), "rate": n / wall, "client_cpu": sum(d[1] for d in done),
            "cpu": cpu, "stored": stored_count(url), "conns": conns, "per_txn": rows_per_txn}


# --------------------------------------------------------------------------------------------------
# in-process profile of one batch


def run_profile(args, fx: dict) -> None:
    """Where the time of one batch goes, in this process (no HTTP server, no clients): each stage
    timed on its own over fresh batches (wall clock and this process's CPU), then cProfile of the
    whole request through Django's test client."""
    import cProfile
    import io
    import pstats
    import statistics

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
    django.setup()
    import orjson
    from django.db import connection, transaction
    from django.test import Client
    from django.utils import timezone
    from psycopg.adapt import PyFormat, Transformer

    from apps.accounts.authentication import ApiTokenAuthentication, TokenPrincipal
    from apps.accounts.models import ApiToken
    from apps.ingestion import store
    from apps.ingestion.config import current_config
    from apps.ingestion.normalize import normalize
    from apps.ingestion.services import ingest_readings

    nb = args.profile_batches
    reset_tables(os.environ["DATABASE_URL"])
    client = Client(HTTP_AUTHORIZATION=f"Token {fx['token']}", HTTP_ACCEPT_LANGUAGE="en")
    token = ApiToken.objects.select_related("park").get(prefix=fx["token"].split("_")[1])
    principal = TokenPrincipal(token)
    parks = frozenset([token.park_id])
    client.post(URL_PATH, b"[]", content_type="application/json")  # warm: imports, config, connection
    offset = [10_000_000]
    now = timezone.now()
    cfg = current_config()

    def fresh(count=nb):  # new identities for every stage, so that every insert really inserts
        bodies = make_bodies(count * args.batch, args.batch, fx, offset=offset[0])
        offset[0] += count * args.batch
        return bodies

    def fresh_rows():
        return [normalize(orjson.loads(b), cfg, allowed_parks=parks, now=now)[0] for b in fresh()]

    stages: dict[str, tuple] = {}

    def stage(name, fn, inputs):
        walls, cpus = [], []
        for x in inputs:
            t, c = time.perf_counter(), time.process_time()
            fn(x)
            cpus.append(time.process_time() - c)
            walls.append(time.perf_counter() - t)
        stages[name] = (statistics.median(walls) * 1000, statistics.median(cpus) * 1000)

    def params(rows):
        return [[r.park_id for r in rows], [r.source_pk for r in rows], [r.item_pk for r in rows],
                [r.ts for r in rows], [r.value for r in rows], [r.text for r in rows],
                [r.received_value for r in rows], [r.received_unit for r in rows], [r.status for r in rows],
                [r.flags for r in rows]]

    class FakeRequest:
        META = {"HTTP_AUTHORIZATION": f"Token {fx['token']}"}
        headers = {"authorization": META["HTTP_AUTHORIZATION"]}

    auth = ApiTokenAuthentication()
    stage("orjson.loads(body)", orjson.loads, fresh())
    stage("token authentication (1 query)", lambda _: auth.authenticate(FakeRequest()), range(nb))
    stage("current_config() (1 query: config version)", lambda _: current_config(), range(nb))
    stage("normalize(records)", lambda recs: normalize(recs, cfg, allowed_parks=parks, now=now),
          [orjson.loads(b) for b in fresh()])
    rows_list = fresh_rows()
    connection.ensure_connection()
    tx = Transformer(connection.connection)
    stage("  build the 10 column lists from Row objects", params, rows_list)
    stage("  psycopg: dump the 10 arrays (text format, as store.py does)",
          lambda rows: tx.dump_sequence(params(rows), [PyFormat.AUTO] * 10), rows_list)
    stage("  psycopg: dump the 10 arrays (binary format, %b)",
          lambda rows: tx.dump_sequence(params(rows), [PyFormat.BINARY] * 10), rows_list)
    commits = []

    def db_only(rows):
        atomic = transaction.atomic()
        atomic.__enter__()
        cur = store.raw_cursor()
        bid = store.insert_batch(cur, now=now, channel="http", actor_label="bench", park_id=fx["park_pk"],
                                 total=len(rows))
        inserted = store.insert_readings(cur, rows, batch_id=bid, channel="http", now=now)
        store.finish_batch(cur, bid, accepted=len(inserted), duplicates=0, rejected=0, flagged=0, warned=0)
        t = time.perf_counter()
        atomic.__exit__(None, None, None)
        commits.append(time.perf_counter() - t)

    stage("store: batch row + unnest INSERT ... RETURNING + finish + commit", db_only, fresh_rows())
    stages["  of which COMMIT (the 3 deferred FK checks per row run here, then the WAL flush)"] = (
        statistics.median(commits) * 1000, None)

    server_ms = []
    for rows in fresh_rows():
        with transaction.atomic():
            cur = store.raw_cursor()
            cur.execute("SELECT set_config('carbonpark.writer', 'ingest_readings', true)")
            cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + store.READING_INSERT, {
                "channel": "http", "batch": 1, "now": now,
                **dict(zip(("p", "s", "d", "t", "v", "tv", "rv", "ru", "st", "f"), params(rows)))})
            plan = cur.fetchone()[0]
            plan = (plan if isinstance(plan, list) else orjson.loads(plan))[0]
            server_ms.append(plan["Execution Time"] + plan.get("Planning Time", 0))
    stages["  of which the INSERT inside PostgreSQL (EXPLAIN ANALYZE)"] = (statistics.median(server_ms), None)

    def copy_path(rows):  # the alternative: binary COPY to a temp table, then the same idempotent INSERT
        with transaction.atomic():
            cur = store.raw_cursor()
            cur.execute("SELECT set_config('carbonpark.writer', 'ingest_readings', true)")
            with cur.copy(f"COPY reading_stage ({', '.join(STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(STAGE_TYPES)
                for r in rows:
                    cp.write_row((r.park_id, r.source_pk, r.item_pk, r.ts, r.value, r.text, r.received_value,
                                  r.received_unit, r.status, r.flags, "http", 1, now))
            cur.execute(RAW_INSERT + " RETURNING source_id, data_item_id, ts")
            cur.fetchall()

    def copy_path_rowcount(rows):
        with transaction.atomic():
            cur = store.raw_cursor()
            cur.execute("SELECT set_config('carbonpark.writer', 'ingest_readings', true)")
            with cur.copy(f"COPY reading_stage ({', '.join(STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(STAGE_TYPES)
                for r in rows:
                    cp.write_row((r.park_id, r.source_pk, r.item_pk, r.ts, r.value, r.text, r.received_value,
                                  r.received_unit, r.status, r.flags, "http", 1, now))
            cur.execute(RAW_INSERT)
            assert cur.rowcount == len(rows)

    binary_insert = store.READING_INSERT.replace("RETURNING source_id, data_item_id, ts", "")
    for name in ("p", "s", "d", "t", "v", "tv", "rv", "ru", "st", "f"):
        binary_insert = binary_insert.replace(f"%({name})s", f"%({name})b")

    def unnest_binary_rowcount(rows):
        with transaction.atomic():
            cur = store.raw_cursor()
            cur.execute("SELECT set_config('carbonpark.writer', 'ingest_readings', true)")
            cur.execute(binary_insert, {"channel": "http", "batch": 1, "now": now,
                                        **dict(zip(("p", "s", "d", "t", "v", "tv", "rv", "ru", "st", "f"),
                                                   params(rows)))})
            assert cur.rowcount == len(rows)

    with connection.cursor() as c:
        c.execute(STAGE_DDL)
    stage("(alternative) same unnest INSERT, binary params (%b), rowcount not RETURNING, + commit",
          unnest_binary_rowcount, fresh_rows())
    stage("(alternative) binary COPY to temp table + INSERT..SELECT RETURNING + commit", copy_path,
          fresh_rows())
    stage("(alternative) binary COPY to temp table + INSERT..SELECT, rowcount, + commit", copy_path_rowcount,
          fresh_rows())
    stage("ingest_readings(records): the whole service", lambda recs: ingest_readings(
        recs, channel="http", actor=principal, parks=[token.park_id]), [orjson.loads(b) for b in fresh()])
    stage("full request via Django test client (WSGI, middleware, DRF, auth)",
          lambda body: client.post(URL_PATH, body, content_type="application/json"), fresh())

    say(f"\nper {args.batch}-record batch, median over {nb} batches, in this process (ms):")
    say(f"  {'stage':<92} {'wall':>7} {'CPU':>7}")
    for name, (wall, cpu) in stages.items():
        say(f"  {name:<92} {wall:7.2f} {'' if cpu is None else f'{cpu:7.2f}':>7}")

    prof = cProfile.Profile()
    bodies = fresh()
    prof.enable()
    for b in bodies:
        client.post(URL_PATH, b, content_type="application/json")
    prof.disable()
    for key, title in (("tottime", "own time"), ("cumulative", "cumulative time")):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(key).print_stats(args.profile_top)
        say(f"\ncProfile of {nb} full requests (divide by {nb} for one batch), by {title}:")
        say(out.getvalue())


# --------------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readings", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000, help="records per request (default 1000)")
    ap.add_argument("--clients", type=int, default=6, help="concurrent client processes (default 6)")
    ap.add_argument("--workers", type=int, default=None,
                    help="gunicorn workers (default: carbonpark/gunicorn.conf.py's, 2 x cores + 1)")
    ap.add_argument("--quick", action="store_true", help="100 000 readings")
    ap.add_argument("--sources", type=int, default=300, help="data sources the readings spread over")
    ap.add_argument("--port", type=int, default=0, help="gunicorn port (default: a free one)")
    ap.add_argument("--gunicorn-config", default="carbonpark/gunicorn.conf.py",
                    help="gunicorn config (default: production's; another one e.g. to profile a worker)")
    ap.add_argument("--raw-big-txn", type=int, default=100_000,
                    help="rows per transaction of the bigger-transaction raw COPY runs (0: skip them)")
    ap.add_argument("--raw-conns", default=f"1,{mp.cpu_count()}",
                    help="comma-separated loader connection counts for the batch-sized raw runs "
                         "(default 1,<cores>); the best one is the baseline")
    ap.add_argument("--skip-raw", action="store_true", help="HTTP only")
    ap.add_argument("--truncate-ok", action="store_true",
                    help="with DATABASE_URL: allow truncating its ingestion tables when not empty")
    ap.add_argument("--profile", action="store_true",
                    help="instead of the benchmark: time each stage of a batch in-process and cProfile it")
    ap.add_argument("--profile-batches", type=int, default=100)
    ap.add_argument("--profile-top", type=int, default=30)
    args = ap.parse_args()
    if args.quick:
        args.readings = 100_000
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
    os.chdir(ROOT)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even if started with it ignored

    url = prepare_database(args)
    fx = setup_fixtures(args.sources)
    find_postmaster(url)
    load = machine_load()
    say(f"machine: {mp.cpu_count()} cores, {load:.0%} busy before the run"
        + ("  (WARNING: something else is running; figures will be low and noisy)" if load > 0.1 else ""))
    if args.profile:
        run_profile(args, fx)
        return 0

    t = time.perf_counter()
    bodies = make_bodies(args.readings, args.batch, fx)
    rows = None if args.skip_raw else make_rows(args.readings, args.batch, fx, datetime.now(UTC))
    mb = sum(map(len, bodies)) / 1e6
    say(f"data: {args.readings:,} readings in {len(bodies):,} bodies of {args.batch:,} "
        f"({mb:,.0f} MB JSON, {mb * 1e6 / args.readings:.0f} B/reading), prepared in {time.perf_counter() - t:.1f} s")

    say(f"\nHTTP: {args.clients} clients -> POST {URL_PATH} ...")
    h = run_http(args, url, fx, bodies)
    http_rate = h["accepted"] / h["wall"]
    c = h["cpu"]
    say(f"  {h['requests']:,} requests in {h['wall']:.2f} s, accepted {h['accepted']:,}, duplicates "
        f"{h['duplicates']:,}, rejected {h['rejected']:,}; latency p50 {h['p50'] * 1000:.0f} ms, "
        f"p95 {h['p95'] * 1000:.0f} ms, max {h['max'] * 1000:.0f} ms")
    say("  CPU: " + cpu_report(c, {"clients": h["client_cpu"], "gunicorn workers": c["gunicorn"],
                                   "postgres": c["postgres"]}))
    per_batch = lambda secs: secs / max(h["requests"], 1) * 1000  # noqa: E731
    say(f"  CPU per {args.batch}-record request: gunicorn worker {per_batch(c['gunicorn']):.1f} ms, "
        f"postgres {per_batch(c['postgres']):.1f} ms, client {per_batch(h['client_cpu']):.1f} ms")
    for e in h["errors"][:5]:
        say(f"  ERROR {e}")

    raws = []
    if not args.skip_raw:
        conns = sorted({int(x) for x in args.raw_conns.split(",") if x.strip()})
        plans = [(args.batch, c) for c in conns]
        if args.raw_big_txn and args.raw_big_txn != args.batch:
            ntxn = -(-args.readings // args.raw_big_txn)
            plans += [(args.raw_big_txn, c) for c in conns if c == conns[0] or c <= ntxn]
        for per_txn, nconn in plans:
            say(f"\nraw COPY: {args.readings:,} rows, {per_txn:,}-row transactions, {nconn} connection(s) ...")
            r = run_raw(url, rows, per_txn, nconn)
            rc = r["cpu"]
            say(f"  {r['txns']:,} transactions in {r['wall']:.2f} s = {fmt(r['rate'])} rows/s; stored "
                f"{r['stored']:,}" + ("" if r["stored"] == args.readings else "  MISMATCH"))
            say("  CPU: " + cpu_report(rc, {"loaders (psycopg)": r["client_cpu"], "postgres": rc["postgres"]}))
            say(f"  CPU per 1000 rows: postgres {rc['postgres'] / r['rows'] * 1e6:.1f} ms, "
                f"loader {r['client_cpu'] / r['rows'] * 1e6:.1f} ms")
            raws.append(r)

    ok = h["stored"] == args.readings and h["accepted"] == args.readings and not h["errors"]
    say("\n" + "=" * 100)
    say(f"HTTP  POST {URL_PATH}: {args.readings:,} readings in {h['wall']:.2f} s = {fmt(http_rate)} readings/s "
        f"(target ≥ {fmt(HTTP_TARGET)}) {'OK' if http_rate >= HTTP_TARGET else 'MISSED'}")
    say(f"      {h['workers']} gunicorn sync workers, {args.clients} clients, {args.batch:,}-record batches; "
        f"client CPU {h['client_cpu'] / (c['wall'] * c['cores']):.0%} of the machine")
    if raws:
        # The baseline: the best raw rate at the HTTP path's transaction size (1 or several connections).
        base = max((r for r in raws if r["per_txn"] == args.batch), key=lambda r: r["rate"])
        say(f"raw idempotent COPY:         {fmt(base['rate'])} readings/s ({base['per_txn']:,}-row transactions "
            f"like the HTTP path, {base['conns']} connection(s): the baseline)")
        for r in raws:
            if r is not base:
                say(f"                             {fmt(r['rate'])} readings/s ({r['per_txn']:,}-row transactions, "
                    f"{r['conns']} connection(s)); HTTP/this {http_rate / r['rate']:.2f}")
        ratio = http_rate / base["rate"]
        say(f"ratio HTTP/raw:              {ratio:.2f} (target ≥ {RATIO_TARGET}) "
            f"{'OK' if ratio >= RATIO_TARGET else 'MISSED'}  [vs the best raw rate of all: "
            f"{http_rate / max(r['rate'] for r in raws):.2f}]")
        ok = ok and all(r["stored"] == args.readings for r in raws)
    say(f"verified stored: {h['stored']:,} (expected {args.readings:,}) {'OK' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; gunicorn stopped", file=sys.stderr)
        sys.exit(130)
