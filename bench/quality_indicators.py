#!/usr/bin/env python
"""Benchmark: monthly quality indicators for 1 000 sources over a year (issue #12: <= 60 s).

Loads, into a dedicated database, 1 000 sources (10 parks x 100) over the twelve months of 2025 (Asia/Shanghai),
server-side as bench/series_db.py does (INSERT ... SELECT generate_series under the one-way-in guard's set_config,
the month partitions made first, the reading indexes dropped during the load and only the identity constraint
rebuilt, then VACUUM ANALYZE): real-time meters reading every hour, every 20th source a batch source (hourly),
every 50th a manual one (daily). Hours go missing in runs at each source's rate (0-3 in every 997), one reading in
1 009 is patched, one in 2 003 flagged suspect, one in 20 late (received 10 minutes after collection), and one in
1 000 has a post-check hit. The rollups are built by the bulk rebuild and the gaps by a full detection run, as after
an upgrade (both timed, not part of the figure). Then the figure: ``compute.refresh`` of the twelve months of 2025
(one statement per month, every series of every park), printed beside the target.

    python bench/quality_indicators.py [--sources 1000] [--keep]

Uses DATABASE_URL's server with its own database `carbonpark_bench_indicators` (BENCH_INDICATORS_DB); --keep
reuses it (the load, rollups and gaps are kept; only the indicators are computed again).
"""

import argparse
import os
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import series_db  # noqa: E402

DB_NAME = os.environ.get("BENCH_INDICATORS_DB", "carbonpark_bench_indicators")
TARGET_S = 60.0
PARKS = 10


def load(n_sources: int) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from apps.accounts.services import save_park
    from apps.catalog.models import DataItem
    from apps.ingestion.models import Flag, IngestBatch
    from apps.ingestion.partitions import add_months, add_partition
    from apps.quality.services import save_rule
    from apps.sources.services import save_source

    item = DataItem.objects.get(code="CS010201")
    per_park = max(1, n_sources // PARKS)
    rows = []
    for p in range(PARKS):
        park = save_park(actor="bench", code=f"QI{p:03d}", name_zh=f"指标基准 {p}", time_zone="Asia/Shanghai")
        for i in range(per_park):
            k = p * per_park + i
            method, interval = ("manual", 86400) if k % 50 == 49 else ("batch", 3600) if k % 20 == 19 else (
                "realtime", 3600)
            src = save_source(actor="bench", source_id=f"{park.code}-EM-{i:04d}", park=park, name=f"meter {i}",
                              data_items=[item], collection_method=method, expected_interval_s=interval,
                              instrument_type="electricity_iii" if k % 3 else "", accuracy_class="0.5S" if k % 4
                              else "2.0")
            rows.append((park.pk, src.pk, item.pk, interval))
    rule = save_rule(actor="bench", name="bench jump", kind="jump", params={"absolute": 1e9}, severity="flag")
    batch = IngestBatch.objects.create(received_at=timezone.now(), channel="bench", actor_label="bench")
    for k in range(-1, 14):
        add_partition(add_months(date(2025, 1, 1), k))
    start = datetime(2024, 12, 31, 16, 0, tzinfo=UTC)  # 2025-01-01 00:00 in Shanghai
    t0 = time.perf_counter()
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
        stored = 0
        for interval in (3600, 86400):
            values = ", ".join(f"({p}, {s}, {it})" for p, s, it, iv in rows if iv == interval)
            if not values:
                continue
            steps = 365 * 86400 // interval
            cur.execute(
                "INSERT INTO ingestion_reading (park_id, source_id, data_item_id, ts, value, received_unit, status,"
                " flags, channel, batch_id, received_at) "
                "SELECT s.park, s.source, s.item, t.ts, (m %% 97)::float8, '', 'N', "
                f" CASE WHEN (m + s.source) %% 1009 = 0 THEN {Flag.PATCHED}"
                f"      WHEN (m + s.source) %% 2003 = 0 THEN {Flag.SUSPECT} ELSE 0 END, 'bench', %s,"
                " t.ts + CASE WHEN (m * 7 + s.source) %% 20 = 0 THEN interval '10 minutes'"
                "             ELSE interval '30 seconds' END "
                "FROM generate_series(0, %s) AS m CROSS JOIN (VALUES " + values + ") AS s(park, source, item)"
                " CROSS JOIN LATERAL (SELECT %s::timestamptz + m * make_interval(secs => %s) AS ts) t"
                " WHERE (m + s.source * 37) %% 997 >= s.source %% 4 ORDER BY m, s.source",
                [batch.pk, steps - 1, start, interval])
            stored += cur.rowcount
        cur.execute("INSERT INTO quality_posthit (park_id, source_id, data_item_id, ts, rule_id, kind, severity,"
                    " value, reason, checked_at) SELECT park_id, source_id, data_item_id, ts, %s, 'jump', 'flag',"
                    " value, '{}', now() FROM ingestion_reading WHERE (extract(epoch FROM ts)::bigint / 3600"
                    " + source_id) %% 1000 = 0", [rule.pk])
        hits = cur.rowcount
    print(f"loaded {stored:,} readings of {len(rows)} sources and {hits:,} post-check hits in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '512MB'")
        for name, definition in constraints:
            cur.execute(f"ALTER TABLE ingestion_reading ADD CONSTRAINT {name} {definition}")
        cur.execute("RESET maintenance_work_mem")
        for table in ("quality_gap_dirty", "quality_postcheck_dirty", "ingestion_rollup_dirty"):
            cur.execute(f"DELETE FROM {table}")
    print(f"identity constraint rebuilt in {time.perf_counter() - t0:.0f} s", flush=True)
    connection.ensure_connection()
    old = connection.connection.autocommit
    connection.connection.autocommit = True
    with connection.cursor() as cur:
        cur.execute("VACUUM (ANALYZE) ingestion_reading")
    connection.connection.autocommit = old


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="reuse the loaded database")
    args = parser.parse_args()
    kept = series_db.setup_env(DB_NAME, args.keep)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from apps.ingestion import rollup_rebuild
    from apps.quality.gaps import find_gaps
    from apps.quality.indicators import compute

    if not kept:
        call_command("migrate", verbosity=0)
        load(args.sources)
        t0 = time.perf_counter()
        rollup_rebuild.rebuild()
        print(f"rollups built (bulk rebuild) in {time.perf_counter() - t0:.0f} s", flush=True)
        run = find_gaps(full=True)
        print(f"gaps found (full scan): {run.opened:,} in {run.seconds:.0f} s", flush=True)
    with connection.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT source_id) FROM ingestion_reading")
        readings, sources = cur.fetchone()
        cur.execute("ANALYZE")
    months = [date(2025, m, 1) for m in range(1, 13)]
    now = datetime(2026, 1, 10, tzinfo=UTC)
    t0 = time.perf_counter()
    runs = compute.refresh(months=months, now=now)
    seconds = time.perf_counter() - t0
    rows = sum(r.rows for r in runs)
    slowest = max(runs, key=lambda r: r.seconds)
    verdict = ("met" if seconds <= TARGET_S else "NOT met") if sources >= 1000 else "not measured at 1 000"
    print(f"readings: {readings:,} of {sources} sources over 2025 ({rows:,} indicator rows, 12 months)")
    print(f"monthly indicators of a year: {seconds:.1f} s (target <= {TARGET_S:.0f} s for 1 000 sources: {verdict}); "
          f"{readings / seconds:,.0f} readings/s; slowest month {slowest.month:%Y-%m} {slowest.seconds:.1f} s")
    with connection.cursor() as cur:
        cur.execute("SELECT round(avg(present::numeric / nullif(expected, 0)), 4), sum(gaps), sum(hit), "
                    "round(sum(timely)::numeric / nullif(sum(readings - patched), 0), 4), "
                    "count(*) FILTER (WHERE accuracy_ok) FROM quality_indicator_month")
        avg, gaps, hits, timely, ok = cur.fetchone()
        print(f"check: completeness avg {avg}, gaps {gaps}, hits {hits}, timeliness {timely}, "
              f"rows meeting accuracy {ok}")


if __name__ == "__main__":
    main()
