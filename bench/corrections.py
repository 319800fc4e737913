#!/usr/bin/env python
"""Benchmark of corrections (issue #10 item 6): applying one correction of 100 000 readings (target <= 10 s), and
the effective readings query (latest revision, else raw) against the raw one with 1 % of readings revised
(target <= 1.2x).

Loads N readings (default 2 000 000: S sources x N/S one-minute timestamps, one park) server-side into a
dedicated database, revises 1 % of them through the services (request → approve → apply: revise_readings), then
times, alternating raw and effective in the same run:
  page   — the readings API's selector (apps/ingestion/selectors.readings_page), 5 000 rows of one source from
           random points in its history, SQL and record building included;
  sql    — the same page's SQL alone (rows fetched, no Python records);
  sum    — one source's whole history summed: raw value vs corrections_effective_value(…) (what rollups use);
and last the 100 000-reading correction, request + approve + apply, with apply's time alone.

    python bench/corrections.py [--readings 2000000] [--sources 20] [--keep]

Uses DATABASE_URL's server with its own database `carbonpark_bench_corrections`; REDIS_URL default db 6.
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "carbonpark_bench_corrections"
START = "2025-01-01 00:00:00+08"


def setup_env(keep: bool):
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{DB_NAME}"))
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/6")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
    os.environ.setdefault("CORRECTIONS_MAX_READINGS", "1000000")
    import psycopg

    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if exists and not keep:
            conn.execute(f"DROP DATABASE {DB_NAME} WITH (FORCE)")
        if not exists or not keep:
            conn.execute(f"CREATE DATABASE {DB_NAME}")
    return bool(exists) and keep


def load(n: int, n_sources: int):
    from datetime import UTC, date, datetime, timedelta

    from django.db import connection, transaction
    from django.utils import timezone

    from apps.accounts.services import save_park
    from apps.catalog.models import DataItem
    from apps.ingestion.models import IngestBatch
    from apps.ingestion.partitions import add_months, add_partition
    from apps.sources.services import save_source

    item = DataItem.objects.get(code="CS010201")
    park = save_park(actor="bench", code="BENCHC", name_zh="更正基准园区", time_zone="Asia/Shanghai")
    sources = [save_source(actor="bench", source_id=f"BENCHC-EM-{i:04d}", park=park, name=f"meter {i}",
                           data_items=[item]) for i in range(n_sources)]
    batch = IngestBatch.objects.create(received_at=timezone.now(), channel="bench", actor_label="bench", total=n,
                                       accepted=n)
    per_source = n // n_sources
    first_ts = datetime(2024, 12, 31, 16, tzinfo=UTC)
    month = date(first_ts.year, first_ts.month, 1)
    while month <= (first_ts + timedelta(minutes=per_source)).date():
        add_partition(month)
        month = add_months(month, 1)
    t0 = time.perf_counter()
    values = ", ".join(f"({s.park_id}, {s.pk})" for s in sources)
    step = max(1, 500_000 // n_sources)
    for first in range(0, per_source, step):
        last = min(per_source, first + step) - 1
        with transaction.atomic(), connection.cursor() as cur:
            # bench only: the bulk path of bench/admin_browser.py, under the one-way-in guard's declaration
            cur.execute("SELECT set_config('carbonpark.writer', 'ingest_readings', true)")
            cur.execute(
                "INSERT INTO ingestion_reading (park_id, source_id, data_item_id, ts, value, received_unit, status,"
                " flags, channel, batch_id, received_at) "
                f"SELECT s.park, s.source, %s, timestamptz '{START}' + m * interval '1 minute', (m %% 997)::float8,"
                " '', 'N', 0, 'bench', %s, now() "
                f"FROM generate_series(%s, %s) AS m CROSS JOIN (VALUES {values}) AS s(park, source) "
                "ORDER BY m, s.source",
                [item.pk, batch.pk, first, last])
    with connection.cursor() as cur:
        cur.execute("ANALYZE ingestion_reading")
    print(f"loaded {per_source * n_sources:,} readings in {time.perf_counter() - t0:.0f} s", flush=True)
    return park, sources, per_source


def people(park):
    from django.contrib.auth import get_user_model

    from apps.accounts.services import set_membership

    users = get_user_model().objects
    clerk = users.create_user("bench-clerk")
    approver = users.create_user("bench-approver")
    set_membership(actor="bench", user=clerk, park=park, role="operator")
    set_membership(actor="bench", user=approver, park=park, role="approver")
    return clerk, approver


def minute(m: int) -> str:
    from datetime import datetime, timedelta

    return (datetime.fromisoformat("2025-01-01 00:00:00") + timedelta(minutes=m)).strftime("%Y-%m-%d %H:%M:%S")


def correct(clerk, approver, source, first: int, count: int, **change):
    from apps.corrections import services

    c = services.request_correction(actor=clerk, source_id=source.source_id, start=minute(first),
                                    end=minute(first + count - 1), reason="bench", **change)
    services.approve_correction(actor=approver, correction_id=c.pk)
    t = time.perf_counter()
    c = services.apply_correction(c.pk)
    return c, time.perf_counter() - t


def revise_one_percent(clerk, approver, sources, per_source):
    """1 % of every source's readings, in ranges of 100 spread over its history."""
    t0 = time.perf_counter()
    total = 0
    rng = random.Random(7)
    for s in sources:
        ranges = max(1, per_source // 100 // 100)
        starts = sorted(rng.sample(range(0, per_source - 100, 100), ranges))
        for first in starts:
            c, _ = correct(clerk, approver, s, first, 100, factor=1.5)
            total += c.revised_count
    from django.db import connection

    with connection.cursor() as cur:
        # what autovacuum does soon after: the visibility map lets the probe read the index alone
        cur.execute("VACUUM ANALYZE corrections_revision")
    print(f"revised {total:,} readings ({total / (per_source * len(sources)):.2%}) in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)


def bench_queries(principal, sources, per_source, rounds: int):
    from django.db import connection

    from apps.accounts.access import Action
    from apps.corrections.selectors import effective_join_sql, effective_value_sql
    from apps.ingestion import selectors

    rng = random.Random(11)
    out = {k: {"raw": [], "effective": []} for k in ("page", "sql", "sum", "sum-join")}
    for _ in range(rounds):
        s = rng.choice(sources)
        first = rng.randrange(0, per_source - 5000)
        params = {"sourceId": s.source_id, "start": minute(first)}
        for view in ("raw", "effective") if rng.random() < 0.5 else ("effective", "raw"):
            q = selectors.ReadingQuery.from_params({**params, "view": view}, principal, Action.VIEW)
            t = time.perf_counter()
            page = selectors.readings_page(q, limit=5000)
            out["page"][view].append(time.perf_counter() - t)
            assert len(page.results) == 5000
            qs = q.rows(q.queryset().order_by("ts", "id"))[:5000]
            t = time.perf_counter()
            rows = list(qs)
            out["sql"][view].append(time.perf_counter() - t)
            assert len(rows) == 5000
            expr = "r.value" if view == "raw" else effective_value_sql("r")
            t = time.perf_counter()
            with connection.cursor() as cur:
                cur.execute(f"SELECT sum({expr}), count(*) FROM ingestion_reading r WHERE r.source_id = %s", [s.pk])
                cur.fetchone()
            out["sum"][view].append(time.perf_counter() - t)
            join = "" if view == "raw" else effective_join_sql("r", "rv", "rv.source_id = %s")
            expr = "r.value" if view == "raw" else "coalesce(rv.value, r.value)"
            t = time.perf_counter()
            with connection.cursor() as cur:
                cur.execute(f"SELECT sum({expr}), count(*) FROM ingestion_reading r {join} WHERE r.source_id = %s",
                            [s.pk] * (2 if join else 1))
                cur.fetchone()
            out["sum-join"][view].append(time.perf_counter() - t)
    print(f"\n{'query':6} {'raw median':>12} {'effective median':>18} {'ratio':>7}  (target <= 1.2x)")
    for name, d in out.items():
        raw, eff = statistics.median(d["raw"]), statistics.median(d["effective"])
        print(f"{name:6} {raw * 1000:10.1f}ms {eff * 1000:16.1f}ms {eff / raw:6.2f}x")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--readings", type=int, default=2_000_000)
    ap.add_argument("--sources", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--keep", action="store_true", help="reuse a loaded database (no load, no 1 % revisions)")
    args = ap.parse_args()
    kept = setup_env(args.keep)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    from apps.sources.models import DataSource

    if kept:
        sources = list(DataSource.objects.filter(source_id__startswith="BENCHC-").order_by("pk"))
        per_source = args.readings // args.sources
        clerk, approver = (get_user_model().objects.get(username=u) for u in ("bench-clerk", "bench-approver"))
    else:
        park, sources, per_source = load(args.readings, args.sources)
        clerk, approver = people(park)
        revise_one_percent(clerk, approver, sources, per_source)
    root = get_user_model().objects.filter(is_superuser=True).first() or \
        get_user_model().objects.create_superuser("bench-root")
    bench_queries(root, sources, per_source, args.rounds)
    # the 100 000-reading correction: a meter's CT ratio wrong over ~69 days
    target = sources[-1]
    n = min(100_000, per_source)
    t = time.perf_counter()
    c, apply_s = correct(clerk, approver, target, 0, n, factor=2.0)
    total = time.perf_counter() - t
    print(f"\ncorrection of {c.revised_count:,} readings: request+approve+apply {total:.2f} s, apply {apply_s:.2f} s "
          f"(target <= 10 s)")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
