"""The benchmark database: a fresh, migrated carbonpark_bench (or DATABASE_URL), the fixtures (park,
sources, API token) and the per-phase reset of the ingestion tables."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime

from .common import BENCH_DB, INGEST_TABLES, ITEM_CODE, PARK_CODE, PARK_TZ, ROOT, say


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
