#!/usr/bin/env python
"""Benchmark: the admin's readings browser with 10 million readings stored.

Loads N readings (default 10 000 000: 200 meters x 50 000 one-minute timestamps) through
ingest_readings itself, in 10 000-record batches, into a dedicated database; then times the readings
browser's pages as a logged-in administrator would open them (Django test client, full admin
rendering): unfiltered, by park, by source, by data code, by flag, by time range, and paging deep.
Beside each figure it prints the baseline a stock Django admin would add to every page: an exact
COUNT(*) of the filtered rows. Target: every page well under 1 s.

    python bench/admin_browser.py [--readings 10000000] [--keep]

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


def load(n: int, sources: int = 200):
    from datetime import datetime, timedelta

    from apps.accounts.services import save_park
    from apps.catalog.models import DataItem
    from apps.ingestion.services import ingest_readings
    from apps.sources.services import save_source

    park = save_park(actor="bench", code="BENCH01", name_zh="基准园区", time_zone="Asia/Shanghai")
    item = DataItem.objects.get(code="CS010201")
    for i in range(sources):
        save_source(actor="bench", source_id=f"BENCH01-EM-{i:04d}", park=park, name=f"meter {i}",
                    data_items=[item])
    per_source = n // sources
    start = datetime(2025, 1, 1)
    t0 = time.perf_counter()
    batch, done = [], 0
    for minute in range(per_source):
        ts = (start + timedelta(minutes=minute)).strftime("%Y-%m-%d %H:%M:%S")
        for i in range(sources):
            rec = {"sourceId": f"BENCH01-EM-{i:04d}", "timestamp": ts, "value": float(minute % 997 + i)}
            if (minute + i) % 97 == 0:
                rec["backfill"] = True
            batch.append(rec)
        if len(batch) >= 10_000:
            done += ingest_readings(batch, channel="bench", actor="bench").accepted
            batch = []
            if done % 1_000_000 < 10_000:
                rate = done / (time.perf_counter() - t0)
                print(f"  loaded {done:,} readings ({rate:,.0f}/s)", flush=True)
    if batch:
        done += ingest_readings(batch, channel="bench", actor="bench").accepted
    elapsed = time.perf_counter() - t0
    print(f"loaded {done:,} readings through ingest_readings in {elapsed:.0f} s ({done / elapsed:,.0f}/s)")


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
        load(args.readings)
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE ingestion_reading")
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.filter(username="bench").first() or get_user_model().objects.create_superuser(
        "bench", "bench@example.invalid", "bench-password-123")
    client = Client()
    client.force_login(user)
    from apps.accounts.models import Park

    park = Park.objects.get(code="BENCH01")
    with connection.cursor() as cur:
        cur.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = 'ingestion_reading'::regclass")
        estimate = cur.fetchone()[0]
    print(f"\nreadings stored (planner estimate): {estimate:,}")
    pages = [
        ("unfiltered, newest first", "", {}),
        ("park", f"park={park.pk}", {"park_id": park.pk}),
        ("one source", "source=BENCH01-EM-0042", {"source__source_id": "BENCH01-EM-0042"}),
        ("data code", "code=CS010201", {"data_item__code": "CS010201"}),
        ("flag backfill", "flag=backfill", None),
        ("time range (1 day)", "start=2025-01-10%2000:00:00&end=2025-01-10%2023:59:59", None),
        ("source + range", "source=BENCH01-EM-0042&start=2025-01-10%2000:00:00&end=2025-01-11%2000:00:00",
         None),
        ("page 50", "p=50", {}),
    ]
    print(f"{'readings browser page':<28} {'median ms':>10}   {'baseline: exact COUNT(*) ms':>28}")
    worst = 0.0
    for label, query, count_filter in pages:
        url = "/ingestion/reading/" + (f"?{query}" if query else "")
        resp = client.get(url)
        assert resp.status_code == 200, (url, resp.status_code)
        ms = timed(lambda url=url: client.get(url))
        worst = max(worst, ms)
        if count_filter is not None:
            base = timed(lambda f=count_filter: Reading.objects.filter(**f).count(), repeat=3)
            print(f"{label:<28} {ms:>10.0f}   {base:>28.0f}")
        else:
            print(f"{label:<28} {ms:>10.0f}   {'—':>28}")
    print(f"\nslowest page: {worst:.0f} ms (target: < 1000 ms with {estimate:,} readings)")


if __name__ == "__main__":
    main()
