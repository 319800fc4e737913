#!/usr/bin/env python
"""Benchmark: gap detection over all stored readings (issue #12 item 3: <= 30 s at 10 million readings).

Loads (default) 10 million readings of 100 meters (10 parks x 10) at 5-minute intervals from 2025-01-01 into a
dedicated database, server-side (INSERT ... SELECT generate_series under the one-way-in guard's set_config, the
month partitions made first, the identity constraint dropped during the load and rebuilt after; the other
reading indexes are not rebuilt: detection reads the identity index alone), with gaps injected: every 4 001
steps each series misses (source id % 5) x 3 points (none, 15 min, 30 min, 45 min, 60 min) and every 20 011
steps (source id % 3) x 288 points (none, a day, two days). Then times a full scan (``find_gaps(full=True)``, one
statement) and an incremental run over one hour queued per series, and prints both beside the target.

    python bench/gaps.py [--readings 10000000] [--keep]

Uses DATABASE_URL's server with its own database `carbonpark_bench_gaps` (BENCH_GAPS_DB); --keep reuses it.
"""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import series_db  # noqa: E402

DB_NAME = os.environ.get("BENCH_GAPS_DB", "carbonpark_bench_gaps")
TARGET_S = 30.0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=10_000_000)
    parser.add_argument("--keep", action="store_true", help="reuse the loaded database")
    args = parser.parse_args()
    kept = series_db.setup_env(DB_NAME, args.keep)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from apps.quality.gaps import find_gaps
    from apps.quality.models import Gap

    if not kept:
        call_command("migrate", verbosity=0)
        # every 4 001 steps (source % 5) x 3 points missing, every 20 011 steps (source % 3) x 288; the gaps take
        # ~1.6 % of the steps: 1.02 steps per reading asked for stores at least that many
        series_db.load(args.readings, code_prefix="GAP", name_zh="缺口基准", value_sql="m::float8", value_params=[],
                       where_sql="(m + s.source * 37) %% 4001 >= (s.source %% 5) * 3"
                                 " AND (m + s.source * 101) %% 20011 >= (s.source %% 3) * 288",
                       steps_factor=1.02, queue_table="quality_gap_dirty")
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM ingestion_reading")
        readings = cur.fetchone()[0]
    Gap.objects.all().delete()
    run = find_gaps(full=True)
    rate = readings / run.seconds
    verdict = ("met" if run.seconds <= TARGET_S else "NOT met") if readings >= 10_000_000 else "not measured"
    print(f"full scan: {readings:,} readings, {run.series} series, {run.opened:,} gaps listed in "
          f"{run.seconds:.1f} s ({rate:,.0f} readings/s); target <= {TARGET_S:.0f} s at 10,000,000: {verdict}"
          + ("" if readings >= 10_000_000 else f" (at this size; 10 M extrapolated: {10_000_000 / rate:.1f} s)"))
    with connection.cursor() as cur:  # the same count the plain way, as a check of the listing
        cur.execute("SELECT count(*) FROM (SELECT ts - lag(ts) OVER (PARTITION BY source_id, data_item_id ORDER BY ts)"
                    " AS step FROM ingestion_reading) x WHERE step > interval '450 seconds'")
        expected = cur.fetchone()[0]
    print(f"check: a plain window query counts {expected:,} steps over 1.5 intervals"
          f" ({'same' if expected == Gap.objects.count() else 'DIFFERENT'})")
    again = find_gaps(full=True)
    print(f"full re-scan (nothing new): {again.seconds:.1f} s, {again.opened} opened, {again.changed} changed, "
          f"{again.closed} closed")
    with connection.cursor() as cur:  # an hour of every series stored since the last run
        cur.execute("INSERT INTO quality_gap_dirty (source_id, data_item_id, lo, hi) "
                    "SELECT source_id, data_item_id, max(ts) - interval '1 hour', max(ts) FROM ingestion_reading "
                    "GROUP BY source_id, data_item_id")
    inc = find_gaps()
    print(f"incremental run, one hour queued for each of {inc.series} series: {inc.seconds * 1000:.0f} ms")


if __name__ == "__main__":
    main()
