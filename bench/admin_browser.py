#!/usr/bin/env python
"""Benchmark: the admin's readings browser with 10 million readings stored.

Loads N readings (default 10 000 000: 100 parks x 2 meters x 50 000 one-minute timestamps) server-side
into a dedicated database; then times the readings browser's pages as a logged-in superuser and as a
park-A administrator (issue #8: the park-access seam scopes every page) would open them (Django test client,
full admin rendering): unfiltered, by park, by source, by data code, by flag, by time range, and paging deep.
Both figures are printed side by side with their ratio (target: scoped <= 1.5x the superuser's).
Beside each figure it prints the baseline a stock Django admin would add to every page: an exact
COUNT(*) of the filtered rows. Target: every page well under 1 s.

    python bench/admin_browser.py [--readings 10000000] [--parks 100] [--keep]

--keep reuses an already loaded database. Uses DATABASE_URL's server (default 127.0.0.1:5432) with its
own database `carbonpark_bench_admin`; REDIS_URL default redis://127.0.0.1:6379/9.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = "carbonpark_bench_admin"


def setup_env():
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{DB_NAME}"))
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
    import psycopg

    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        return bool(exists), admin_url


PARK_CODE = "BENCH{:03d}"


def load(n: int, parks: int = 100, per_park: int = 2):
    """Parks and sources through the services; then the readings written server-side in time order,
    500 000 a statement (INSERT … SELECT generate_series under the one-way-in guard's set_config), with the
    table's indexes dropped during the load and rebuilt after: the bulk path of the raw COPY baseline
    (bench/http_ingest/raw.py) without shipping 10 million rows over the socket. Layout: ``parks`` parks x
    ``per_park`` meters x n / (parks x per_park) one-minute timestamps, 1 in 97 flagged backfill."""
    from django.db import connection, transaction
    from django.utils import timezone

    from apps.accounts.services import save_park
    from apps.catalog.models import DataItem
    from apps.ingestion.models import IngestBatch
    from apps.sources.services import save_source

    item = DataItem.objects.get(code="CS010201")
    t0 = time.perf_counter()
    sources = []
    for p in range(1, parks + 1):
        park = save_park(actor="bench", code=PARK_CODE.format(p), name_zh=f"基准园区 {p}", time_zone="Asia/Shanghai")
        for i in range(per_park):
            sources.append(save_source(actor="bench", source_id=f"{park.code}-EM-{i:04d}", park=park,
                                       name=f"meter {i}", data_items=[item]))
    batch = IngestBatch.objects.create(received_at=timezone.now(), channel="bench", actor_label="bench",
                                       total=n, accepted=n)
    print(f"{parks} parks, {len(sources)} sources in {time.perf_counter() - t0:.0f} s", flush=True)
    per_source = n // len(sources)
    # the months the load spans get their partitions (ingestion migration 0008), as the beat task makes them
    from datetime import UTC, date, datetime, timedelta

    from apps.ingestion.partitions import add_months, add_partition

    first_ts = datetime(2024, 12, 31, 16, tzinfo=UTC)  # 2025-01-01 00:00 +08, where the load starts
    last_ts = first_ts + timedelta(minutes=per_source)
    month = date(first_ts.year, first_ts.month, 1)
    while month <= last_ts.date():
        add_partition(month)
        month = add_months(month, 1)
    with connection.cursor() as cur:
        cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'ingestion_reading' "
                    "AND indexname NOT LIKE '%%pkey'")
        indexes = cur.fetchall()
        constraints = []
        cur.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = 'ingestion_reading'::regclass AND contype = 'u'")
        constraints = cur.fetchall()
        for name, _ in constraints:
            cur.execute(f"ALTER TABLE ingestion_reading DROP CONSTRAINT {name}")
        for name, _ in indexes:
            cur.execute(f"DROP INDEX IF EXISTS {name}")
    t0 = time.perf_counter()
    done, step = 0, max(1, 500_000 // len(sources))
    # one row per source in a VALUES list: (park, source, meter number within its park)
    values = ", ".join(f"({s.park_id}, {s.pk}, {n % per_park})" for n, s in enumerate(sources))
    # Time order, as a live stream stores them (minute by minute, every source): the heap follows ts, like
    # the readings of a real platform, so the browser's ts-ordered index scans read neighbouring pages.
    for first in range(0, per_source, step):
        last = min(per_source, first + step) - 1
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SELECT set_config('carbonpark.writer', 'ingest_readings', true)")
            cur.execute(
                "INSERT INTO ingestion_reading (park_id, source_id, data_item_id, ts, value, received_unit, status,"
                " flags, channel, batch_id, received_at) "
                "SELECT s.park, s.source, %s, timestamptz '2025-01-01 00:00:00+08' + m * interval '1 minute',"
                " (m %% 997 + s.i)::float8, '', 'N', CASE WHEN (m + s.i) %% 97 = 0 THEN 1 ELSE 0 END, 'bench', %s,"
                f" now() FROM generate_series(%s, %s) AS m CROSS JOIN (VALUES {values}) AS s(park, source, i)"
                " ORDER BY m, s.source",
                [item.pk, batch.pk, first, last])
        done += (last - first + 1) * len(sources)
        if done // 1_000_000 != (done - (last - first + 1) * len(sources)) // 1_000_000:
            print(f"  loaded {done:,} readings ({done / (time.perf_counter() - t0):,.0f}/s)", flush=True)
    print(f"loaded {done:,} readings in {time.perf_counter() - t0:.0f} s; rebuilding indexes", flush=True)
    t1 = time.perf_counter()
    with connection.cursor() as cur:
        for name, definition in constraints:
            cur.execute(f"ALTER TABLE ingestion_reading ADD CONSTRAINT {name} {definition}")
        for name, definition in indexes:
            if not any(name == c for c, _ in constraints):
                # a partitioned table's index is defined "ON ONLY" the parent: rebuilt on every partition
                cur.execute(definition.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1)
                            .replace(" ON ONLY ", " ON ", 1))
    print(f"indexes rebuilt in {time.perf_counter() - t1:.0f} s", flush=True)


def timed(fn, repeat=5):
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--readings", type=int, default=10_000_000)
    ap.add_argument("--parks", type=int, default=100)
    ap.add_argument("--keep", action="store_true", help="reuse the loaded database")
    args = ap.parse_args()
    exists, admin_url = setup_env()
    import psycopg

    if exists and not args.keep:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {DB_NAME} WITH (FORCE)")
        exists = False
    if not exists:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DB_NAME}")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from apps.ingestion.models import Reading

    if not exists or not Reading.objects.exists():
        load(args.readings, parks=args.parks)
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE ingestion_reading")
    from django.contrib.auth import get_user_model
    from django.test import Client

    from apps.accounts.models import Park
    from apps.accounts.services import set_membership

    park = Park.objects.get(code=PARK_CODE.format(1))
    users = get_user_model().objects
    root = users.filter(username="bench").first() or users.create_superuser(
        "bench", "bench@example.invalid", "bench-password-123")
    park_user = users.filter(username="bench-park-a").first() or users.create_user(
        "bench-park-a", "park-a@example.invalid", "bench-password-123")
    set_membership(actor="bench", user=park_user, park=park, role="admin")
    clients = {}
    for label, user in (("superuser", root), ("park-A admin", park_user)):
        clients[label] = Client()
        clients[label].force_login(user)
    with connection.cursor() as cur:
        cur.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = 'ingestion_reading'::regclass")
        estimate = cur.fetchone()[0]
    parks = Park.objects.count()
    print(f"\nreadings stored (planner estimate): {estimate:,} over {parks} parks; park A = {park.code}")
    src = f"{park.code}-EM-0001"
    pages = [
        ("unfiltered, newest first", "", {}),
        ("park", f"park={park.pk}", {"park_id": park.pk}),
        ("one source", f"source={src}", {"source__source_id": src}),
        ("data code", "code=CS010201", {"data_item__code": "CS010201"}),
        ("flag backfill", "flag=backfill", None),
        ("time range (1 day)", "start=2025-01-10%2000:00:00&end=2025-01-10%2023:59:59", None),
        ("source + range", f"source={src}&start=2025-01-10%2000:00:00&end=2025-01-11%2000:00:00", None),
        ("page 50", "p=50", {}),
    ]
    print(f"{'readings browser page':<26} {'superuser ms':>13} {'park-A admin ms':>16} {'ratio':>6}"
          f"   {'baseline: exact COUNT(*) ms':>28}")
    worst, worst_ratio = 0.0, 0.0
    for label, query, count_filter in pages:
        url = "/ingestion/reading/" + (f"?{query}" if query else "")
        for client in clients.values():
            resp = client.get(url)
            assert resp.status_code == 200, (url, resp.status_code)
        # alternated, so that other load on the machine falls on both figures alike
        samples = {who: [] for who in clients}
        for _ in range(7):
            for who, client in clients.items():
                t = time.perf_counter()
                client.get(url)
                samples[who].append((time.perf_counter() - t) * 1000)
        su, scoped = (statistics.median(samples[who]) for who in clients)
        worst, worst_ratio = max(worst, su, scoped), max(worst_ratio, scoped / su)
        base = "—"
        if count_filter is not None:
            base = f"{timed(lambda f=count_filter: Reading.objects.filter(**f).count(), repeat=3):.0f}"
        print(f"{label:<26} {su:>13.0f} {scoped:>16.0f} {scoped / su:>5.2f}x   {base:>28}")
    print(f"\nslowest page: {worst:.0f} ms (target: < 1000 ms with {estimate:,} readings); "
          f"worst scoped/superuser ratio {worst_ratio:.2f}x (target: <= 1.5x)")


if __name__ == "__main__":
    main()
