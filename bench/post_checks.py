#!/usr/bin/env python
"""Benchmark: checks after storage over stored readings (issue #12 item 1: the post checks >= 200 000 readings/s
on 10 million readings).

Loads (default) 10 million readings of 100 meters (10 parks x 10) at 5-minute intervals from 2025-01-01 into a
dedicated database, server-side the way bench/gaps.py does it (INSERT ... SELECT generate_series under the
one-way-in guard's set_config, month partitions first, the identity constraint dropped during the load and rebuilt
after), values a slow wave plus deterministic noise around 100, with problems injected: every 5 003 steps a spike
(+500, one reading) and every 7 001 steps a frozen run (6 readings of 123.45). Three post rules for every park:
jump (absolute 100), frozen (n 5), outlier (window 12, k 6). Then times a full run (``run_post_checks(full=True)``:
one statement per kind over every series) and an incremental run over one hour queued per series, and prints the
readings/s beside the target.

    python bench/post_checks.py [--readings 10000000] [--keep]

Uses DATABASE_URL's server with its own database `carbonpark_bench_post` (BENCH_POST_DB); --keep reuses it.
"""

import argparse
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = os.environ.get("BENCH_POST_DB", "carbonpark_bench_post")
TARGET = 200_000  # readings/s
SERIES = 100
PER_PARK = 10
SPIKE_EVERY, FROZEN_EVERY, FROZEN_RUN = 5003, 7001, 6


def setup_env(keep: bool) -> bool:
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{DB_NAME}"))
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
    import psycopg

    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if exists and not keep:
            conn.execute(f"DROP DATABASE {DB_NAME} WITH (FORCE)")
        if not exists or not keep:
            conn.execute(f"CREATE DATABASE {DB_NAME}")
    return bool(exists) and keep


def load(n: int):
    from datetime import UTC, date, datetime

    from django.db import connection, transaction
    from django.utils import timezone

    from apps.accounts.services import save_park
    from apps.catalog.models import DataItem
    from apps.ingestion.models import IngestBatch
    from apps.ingestion.partitions import add_months, add_partition
    from apps.quality.services import save_rule
    from apps.sources.services import save_source

    steps = n // SERIES + 1
    months = (steps * 300) // (31 * 86400) + 2
    item = DataItem.objects.get(code="CS010201")
    series = []
    for p in range(SERIES // PER_PARK):
        park = save_park(actor="bench", code=f"PST{p:03d}", name_zh=f"存储后检查基准 {p}", time_zone="Asia/Shanghai")
        for i in range(PER_PARK):
            src = save_source(actor="bench", source_id=f"{park.code}-EM-{i:04d}", park=park, name=f"meter {i}",
                              data_items=[item])
            series.append((park.pk, src.pk, item.pk))
        for kind, params in (("jump", {"absolute": 100}), ("frozen", {"n": 5}), ("outlier", {"window": 12, "k": 6})):
            save_rule(actor="bench", name=f"{kind} {park.code}", kind=kind, params=params, severity="flag", park=park)
    batch = IngestBatch.objects.create(received_at=timezone.now(), channel="bench", actor_label="bench")
    for k in range(months):
        add_partition(add_months(date(2025, 1, 1), k))
    t0 = time.perf_counter()
    values = ", ".join(f"({p}, {s}, {it})" for p, s, it in series)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = 'ingestion_reading'::regclass AND contype = 'u'")
        constraints = cur.fetchall()
        for name, _ in constraints:
            cur.execute(f"ALTER TABLE ingestion_reading DROP CONSTRAINT {name}")
        cur.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'ingestion_reading' "
                    "AND indexname NOT LIKE '%%pkey'")
        for (name,) in cur.fetchall():
            cur.execute(f"DROP INDEX IF EXISTS {name}")
        cur.execute("SET LOCAL synchronous_commit = off")
        cur.execute("SELECT set_config('carbonpark.writer', 'ingest_readings', true)")
        cur.execute(
            "INSERT INTO ingestion_reading (park_id, source_id, data_item_id, ts, value, received_unit, status, flags,"
            " channel, batch_id, received_at) "
            "SELECT s.park, s.source, s.item, %s::timestamptz + m * interval '5 minutes',"
            " CASE WHEN (m + s.source * 11) %% %s < %s THEN 123.45"
            "      WHEN (m + s.source * 37) %% %s = 0 THEN 600 + ((m * 7919 + s.source * 31) %% 97) / 97.0"
            "      ELSE 100 + 5 * sin(m / 50.0) + ((m * 7919 + s.source * 31) %% 97) / 97.0 END,"
            " '', 'N', 0, 'bench', %s, now() FROM generate_series(0, %s) AS m CROSS JOIN (VALUES " + values + ")"
            " AS s(park, source, item) ORDER BY m, s.source",
            [datetime(2025, 1, 1, tzinfo=UTC), FROZEN_EVERY, FROZEN_RUN, SPIKE_EVERY, batch.pk, steps - 1])
        stored = cur.rowcount
    print(f"loaded {stored:,} readings of {SERIES} series in {time.perf_counter() - t0:.0f} s", flush=True)
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '512MB'")
        for name, definition in constraints:
            cur.execute(f"ALTER TABLE ingestion_reading ADD CONSTRAINT {name} {definition}")
        cur.execute("RESET maintenance_work_mem")
        cur.execute("DELETE FROM quality_postcheck_dirty")
    print(f"identity constraint rebuilt in {time.perf_counter() - t0:.0f} s", flush=True)
    t0 = time.perf_counter()
    connection.ensure_connection()
    old = connection.connection.autocommit
    connection.connection.autocommit = True
    with connection.cursor() as cur:
        cur.execute("VACUUM (ANALYZE) ingestion_reading")
    connection.connection.autocommit = old
    print(f"VACUUM ANALYZE in {time.perf_counter() - t0:.0f} s", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=10_000_000)
    parser.add_argument("--keep", action="store_true", help="reuse the loaded database")
    args = parser.parse_args()
    kept = setup_env(args.keep)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from apps.quality.models import PostHit
    from apps.quality.postchecks import run_post_checks

    if not kept:
        call_command("migrate", verbosity=0)
        load(args.readings)
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM ingestion_reading")
        readings = cur.fetchone()[0]
    PostHit.objects.all().delete()
    run = run_post_checks(full=True)
    rate = readings / run.seconds
    verdict = ("met" if rate >= TARGET else "NOT met") if readings >= 10_000_000 else "not measured at 10 M"
    print(f"full run (jump, frozen, outlier): {readings:,} readings, {run.series} series, hits {run.hits} in "
          f"{run.seconds:.1f} s: {rate:,.0f} readings/s; target >= {TARGET:,} readings/s at 10,000,000: {verdict}")
    print("  per kind: " + ", ".join(f"{k} {v:.1f} s" for k, v in run.timings.items()))
    per_series = readings // SERIES
    spikes, frozen = SERIES * (per_series // SPIKE_EVERY), SERIES * (per_series // FROZEN_EVERY)
    print(f"check: ~{spikes:,} spikes injected (each two jumps and an outlier), ~{frozen:,} frozen runs of "
          f"{FROZEN_RUN}")
    again = run_post_checks(full=True)
    print(f"full re-run (nothing new): {again.seconds:.1f} s, {sum(again.hits.values())} new hits")
    with connection.cursor() as cur:  # an hour of every series stored since the last run
        cur.execute("INSERT INTO quality_postcheck_dirty (source_id, data_item_id, lo, hi) "
                    "SELECT source_id, data_item_id, max(ts) - interval '1 hour', max(ts) FROM ingestion_reading "
                    "GROUP BY source_id, data_item_id")
    inc = run_post_checks()
    print(f"incremental run, one hour queued for each of {inc.series} series: {inc.seconds * 1000:.0f} ms")


if __name__ == "__main__":
    main()
