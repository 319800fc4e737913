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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import series_db  # noqa: E402

DB_NAME = os.environ.get("BENCH_POST_DB", "carbonpark_bench_post")
TARGET = 200_000  # readings/s
SPIKE_EVERY, FROZEN_EVERY, FROZEN_RUN = 5003, 7001, 6


def _rules(park):
    from apps.quality.services import save_rule

    for kind, params in (("jump", {"absolute": 100}), ("frozen", {"n": 5}), ("outlier", {"window": 12, "k": 6})):
        save_rule(actor="bench", name=f"{kind} {park.code}", kind=kind, params=params, severity="flag", park=park)


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

    from apps.quality.models import PostHit
    from apps.quality.postchecks import run_post_checks

    if not kept:
        call_command("migrate", verbosity=0)
        series_db.load(
            args.readings, code_prefix="PST", name_zh="存储后检查基准",
            value_sql="CASE WHEN (m + s.source * 11) %% %s < %s THEN 123.45"
                      " WHEN (m + s.source * 37) %% %s = 0 THEN 600 + ((m * 7919 + s.source * 31) %% 97) / 97.0"
                      " ELSE 100 + 5 * sin(m / 50.0) + ((m * 7919 + s.source * 31) %% 97) / 97.0 END",
            value_params=[FROZEN_EVERY, FROZEN_RUN, SPIKE_EVERY], queue_table="quality_postcheck_dirty",
            per_park=_rules)
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
    per_series = readings // series_db.SERIES
    spikes, frozen = series_db.SERIES * (per_series // SPIKE_EVERY), series_db.SERIES * (per_series // FROZEN_EVERY)
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
