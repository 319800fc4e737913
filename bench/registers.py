#!/usr/bin/env python
"""Benchmark: consumption derived from meter registers (issue #12 item 2; no target in the issue: the figure is
printed for the record, beside the gap detection's 10 M-in-30-s pace for scale).

Loads (default) 1 million register readings of 100 meters (10 parks x 10) every 5 minutes from 2025-01-01 into a
dedicated database (bench/series_db.py), every meter a register (six digits, so some roll over; CT 40), a gap of
(source id % 3) x 288 points every 20 011 steps. Times a full derivation (``derive_consumption(full=True)``), a
re-run over the same readings, and an incremental run with one hour queued per series, and checks the totals
reconcile to the registers.

    python bench/registers.py [--readings 1000000] [--keep]

Uses DATABASE_URL's server with its own database `carbonpark_bench_registers` (BENCH_REGISTERS_DB).
"""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import series_db  # noqa: E402

DB_NAME = os.environ.get("BENCH_REGISTERS_DB", "carbonpark_bench_registers")
PACE = 10_000_000 / 30  # the gap detection's target pace, for scale


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="reuse the loaded database")
    args = parser.parse_args()
    kept = series_db.setup_env(DB_NAME, args.keep)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from apps.catalog.models import DataItem
    from apps.quality.registers.derive import derive_consumption
    from apps.quality.registers.services import save_register_setting
    from apps.sources.models import DataSource

    def registers(park):
        item = DataItem.objects.get(code="CS010201")
        for src in DataSource.objects.filter(park=park):
            save_register_setting(actor="bench", source=src, data_item=item, modulus=1_000_000, ct_ratio=40,
                                  rated_power_kw=100_000)

    if not kept:
        call_command("migrate", verbosity=0)
        # 0.5 to 1.5 kWh per 5 minutes on the register, from a start near the rollover point for a third of them
        series_db.load(args.readings, code_prefix="REG", name_zh="寄存器基准",
                       value_sql="((s.source %% 3) * 330000 + m * (0.5 + (s.source %% 3) * 0.5)) %% 1000000",
                       value_params=[], where_sql="(m + s.source * 101) %% 20011 >= (s.source %% 3) * 288",
                       steps_factor=1.02, queue_table="quality_register_dirty", per_park=registers)
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM ingestion_reading")
        readings = cur.fetchone()[0]
    run = derive_consumption(full=True)
    print(f"full derivation: {readings:,} readings, {run.series} registers, {run.derived:,} intervals, "
          f"{run.hours:,} hours in {run.seconds:.1f} s ({readings / run.seconds:,.0f} readings/s; "
          f"for scale, the gap detection's target pace is {PACE:,.0f}/s)")
    again = derive_consumption(full=True)
    print(f"full re-run: {again.seconds:.1f} s")
    with connection.cursor() as cur:
        cur.execute("""
            SELECT count(*) FILTER (WHERE abs(c.total - e.expected) > 1e-6 * greatest(1, abs(e.expected)))
            FROM (SELECT setting_id, sum(value) AS total FROM quality_consumption WHERE level = 'month'
                  GROUP BY setting_id) c
            JOIN (SELECT s.id, 40 * sum(CASE WHEN d >= 0 THEN d ELSE d + 1000000 END) AS expected
                  FROM quality_registersetting s
                  JOIN (SELECT source_id, value - lag(value) OVER (PARTITION BY source_id ORDER BY ts) AS d
                        FROM ingestion_reading) r ON r.source_id = s.source_id
                  WHERE d IS NOT NULL GROUP BY s.id) e ON e.id = c.setting_id""")
        off = cur.fetchone()[0]
        print(f"check: monthly totals equal 40 x the registers' advance (rollovers added) for every register: "
              f"{'yes' if off == 0 else f'NO ({off} differ)'}")
        cur.execute("INSERT INTO quality_register_dirty (source_id, data_item_id, lo, hi) "
                    "SELECT source_id, data_item_id, max(ts) - interval '1 hour', max(ts) FROM ingestion_reading "
                    "GROUP BY source_id, data_item_id")
    inc = derive_consumption()
    print(f"incremental run, one hour queued for each of {inc.series} registers: {inc.seconds * 1000:.0f} ms")


if __name__ == "__main__":
    main()
