"""Rollups: hourly, daily and monthly aggregates per source and data item, kept current from a dirty log
(docs/rollups.md, issue #9 item 4).

Every writer of readings queues, in its own transaction, the series and time range it touched
(``store.mark_rollups_dirty``: one row per series and batch in ``ingestion_rollup_dirty``). ``refresh``, run by
the beat every 10 s under one advisory lock, takes the oldest queued rows, recomputes the park-local hours they
touch from the readings themselves, then those hours' days from the hour rows and those days' months from the
day rows, all set-based. A bucket is always recomputed whole, never adjusted by a delta, so late data,
backfills, duplicates and repeated runs all converge to the same rows.

What is counted is decided in one place, ``COUNTED_READINGS``: numeric, finite values not flagged invalid, each
the effective one (the latest approved revision, else the value stored at ingest: the view
corrections_effective_reading). An applied correction queues its range like an ingest batch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.db import connection, transaction

from apps.ingestion.models import Flag

log = logging.getLogger(__name__)

# pg_try_advisory_xact_lock key: "roll". Two refreshes never overlap (a chunk's buckets are recomputed from
# one snapshot; an older snapshot committing last would undo a newer one).
LOCK = 0x726F6C6C
# A queued range longer than this is done in pieces, the rest queued again (oldest first, so next):
# one series queued over years (the upgrade's migration, a rebuild) never makes one huge transaction.
# Migration quality 0007's trigger copies each taken row up to a day past its start into the quality queues:
# change both together.
SPAN = "1 day"
DEFAULT_LIMIT = 20000
DEFAULT_BUDGET = 8.0

# THE readings a rollup counts: (park_id, source_id, data_item_id, ts, value). Text values have no aggregate; NaN and
# Infinity (stored before ingest refused them, E2008) would poison every sum; invalid-flagged readings are
# known wrong. The value is the effective one (ARCHITECTURE.md rule 1): the latest approved revision, else the
# value stored at ingest, from corrections' one view.
COUNTED = f"""raw_value IS NOT NULL AND effective_value <> 'NaN'::float8
      AND abs(effective_value) <> 'Infinity'::float8 AND flags & {Flag.INVALID} = 0"""
COUNTED_READINGS = f"""(
    SELECT park_id, source_id, data_item_id, ts, effective_value AS value FROM corrections_effective_reading
    WHERE {COUNTED}
)"""
# The same readings of one monthly partition (the bulk rebuild, apps/ingestion/rollup_rebuild.py): the same view,
# its ts range pruning the scan to that partition.
COUNTED_BETWEEN = f"""(
    SELECT park_id, source_id, data_item_id, ts, effective_value AS value FROM corrections_effective_reading
    WHERE {COUNTED} AND ts >= %(lo)s AND ts < %(hi)s
)"""

TEMP_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS rollup_chunk (
    park_id bigint, source_id bigint, data_item_id bigint, lo timestamptz, hi timestamptz) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS rollup_range (
    park_id bigint, source_id bigint, data_item_id bigint, tz text, lo timestamptz, hi timestamptz)
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS rollup_touched (
    level "char", park_id bigint, source_id bigint, data_item_id bigint, tz text, bucket timestamptz)
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS rollup_fresh (
    level "char", park_id bigint, source_id bigint, data_item_id bigint, tz text, bucket timestamptz, n int,
    s float8, lo float8, hi float8, last float8, last_ts timestamptz) ON COMMIT DELETE ROWS;
DELETE FROM rollup_chunk; DELETE FROM rollup_range; DELETE FROM rollup_touched; DELETE FROM rollup_fresh;
"""

# The oldest queued rows, taken (deleted) and cut to SPAN; the rest of a long range goes back in the queue
# with its original time, so the lag metric stays honest.
TAKE = f"""
WITH taken AS (
    DELETE FROM ingestion_rollup_dirty WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM ingestion_rollup_dirty ORDER BY queued_at LIMIT %(limit)s))
    RETURNING park_id, source_id, data_item_id, lo, hi, queued_at
), rest AS (
    INSERT INTO ingestion_rollup_dirty (park_id, source_id, data_item_id, lo, hi, queued_at)
    SELECT park_id, source_id, data_item_id, lo + interval '{SPAN}', hi, queued_at FROM taken
    WHERE hi >= lo + interval '{SPAN}'
)
INSERT INTO rollup_chunk SELECT park_id, source_id, data_item_id, lo, least(hi, lo + interval '{SPAN}') FROM taken
"""

# Each range widened to whole park-local hours, then the ranges of a series that overlap or touch packed into
# one (a running maximum of the ends, in start order): disjoint ranges, so no reading is counted twice.
RANGES = """
WITH aligned AS (
    SELECT c.park_id, c.source_id, c.data_item_id, p.time_zone AS tz, date_trunc('hour', c.lo, p.time_zone) AS lo,
           date_trunc('hour', c.hi, p.time_zone) + interval '1 hour' AS hi
    FROM rollup_chunk c JOIN accounts_park p ON p.id = c.park_id
), marked AS (
    SELECT *, CASE WHEN lo <= max(hi) OVER (PARTITION BY source_id, data_item_id ORDER BY lo, hi
                                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                   THEN 0 ELSE 1 END AS starts
    FROM aligned
), grouped AS (
    SELECT *, sum(starts) OVER (PARTITION BY source_id, data_item_id ORDER BY lo, hi) AS grp FROM marked
)
INSERT INTO rollup_range
SELECT min(park_id), source_id, data_item_id, min(tz), min(lo), max(hi) FROM grouped
GROUP BY source_id, data_item_id, grp
"""

# The hours of those ranges from the readings, each range read once through the identity index (source, item,
# ts): work in proportion to the readings, not to the hours a long range spans.
FRESH_HOURS = f"""
INSERT INTO rollup_fresh
SELECT 'h', g.park_id, g.source_id, g.data_item_id, g.tz, date_trunc('hour', r.ts, g.tz), count(*), sum(r.value),
       min(r.value), max(r.value), (array_agg(r.value ORDER BY r.ts DESC))[1], max(r.ts)
FROM rollup_range g CROSS JOIN LATERAL (
    SELECT v.ts, v.value FROM {COUNTED_READINGS} AS v
    WHERE v.source_id = g.source_id AND v.data_item_id = g.data_item_id AND v.ts >= g.lo AND v.ts < g.hi
    OFFSET 0
) AS r
GROUP BY g.park_id, g.source_id, g.data_item_id, g.tz, date_trunc('hour', r.ts, g.tz)
"""

# The hours touched: those with readings now, and those with a rollup row now (which may have lost theirs);
# one index range scan of the unique key per range (fenced: a hash join read every hour row, 0.4 s at 830 000).
HOURS = """
INSERT INTO rollup_touched
SELECT 'h', park_id, source_id, data_item_id, tz, bucket FROM rollup_fresh WHERE level = 'h'
UNION
SELECT 'h', g.park_id, g.source_id, g.data_item_id, g.tz, r.bucket
FROM rollup_range g CROSS JOIN LATERAL (
    SELECT r.bucket FROM ingestion_rollup r
    WHERE r.source_id = g.source_id AND r.data_item_id = g.data_item_id AND r.interval = 'h'
      AND r.bucket >= g.lo AND r.bucket < g.hi
    OFFSET 0
) AS r
"""

# The buckets of the next level up that the touched ones fall in ({field}: day or month).
UPPER = """
INSERT INTO rollup_touched
SELECT DISTINCT %(upper)s, park_id, source_id, data_item_id, tz, date_trunc(%(field)s, bucket, tz)
FROM rollup_touched WHERE level = %(lower)s
"""

# Those buckets from the rows of the level below ("last": the last of the one with the greatest time).
FRESH_UPPER = """
INSERT INTO rollup_fresh
SELECT %(upper)s, t.park_id, t.source_id, t.data_item_id, t.tz, t.bucket, sum(r.count), sum(r.sum), min(r.min),
       max(r.max), (array_agg(r.last ORDER BY r.last_ts DESC))[1], max(r.last_ts)
FROM rollup_touched t JOIN ingestion_rollup r
  ON r.source_id = t.source_id AND r.data_item_id = t.data_item_id AND r.interval = %(lower)s
 AND r.bucket >= t.bucket AND r.bucket < ((t.bucket AT TIME ZONE t.tz) + %(step)s::interval) AT TIME ZONE t.tz
WHERE t.level = %(upper)s
GROUP BY t.park_id, t.source_id, t.data_item_id, t.tz, t.bucket
"""

# Write one level: changed buckets updated (unchanged ones left alone), emptied ones deleted.
UPSERT = """
INSERT INTO ingestion_rollup (interval, park_id, source_id, data_item_id, bucket, count, sum, min, max, last,
                              last_ts, updated_at)
SELECT level, park_id, source_id, data_item_id, bucket, n, s, lo, hi, last, last_ts, now()
FROM rollup_fresh WHERE level = %(level)s
ON CONFLICT (source_id, data_item_id, interval, bucket) DO UPDATE SET
    park_id = EXCLUDED.park_id, count = EXCLUDED.count, sum = EXCLUDED.sum, min = EXCLUDED.min,
    max = EXCLUDED.max, last = EXCLUDED.last, last_ts = EXCLUDED.last_ts, updated_at = EXCLUDED.updated_at
WHERE (ingestion_rollup.park_id, ingestion_rollup.count, ingestion_rollup.sum, ingestion_rollup.min,
       ingestion_rollup.max, ingestion_rollup.last, ingestion_rollup.last_ts)
      IS DISTINCT FROM (EXCLUDED.park_id, EXCLUDED.count, EXCLUDED.sum, EXCLUDED.min, EXCLUDED.max, EXCLUDED.last,
                        EXCLUDED.last_ts)
"""
# EXCEPT, a hash set operation, and not NOT EXISTS: temporary tables have no statistics (autovacuum never
# analyses them), and the planner, taking thousands of rows for dozens, anti-joined them in a nested loop
# (0.9 s instead of a few ms for 2 000 series).
DELETE_EMPTIED = """
DELETE FROM ingestion_rollup r USING (
    SELECT source_id, data_item_id, bucket FROM rollup_touched WHERE level = %(level)s
    EXCEPT
    SELECT source_id, data_item_id, bucket FROM rollup_fresh WHERE level = %(level)s
) AS e
WHERE r.interval = %(level)s AND r.source_id = e.source_id AND r.data_item_id = e.data_item_id
  AND r.bucket = e.bucket
"""

LEVELS = [("h", "d", "day", "1 day"), ("d", "m", "month", "1 month")]


@dataclass
class RefreshResult:
    series: int = 0  # queued ranges taken
    hours: int = 0  # hour buckets recomputed
    rounds: int = 0
    busy: bool = False  # another refresh held the lock
    seconds: float = 0.0


def _chunk(cur, limit: int) -> tuple[int, int]:
    cur.execute(TEMP_TABLES)
    cur.execute(TAKE, {"limit": limit})
    taken = cur.rowcount
    if not taken:
        return 0, 0
    cur.execute(RANGES)
    # Statistics for the ranges (a temporary table has none, the planner assumes ~800 rows), and the
    # readings' subquery fenced (OFFSET 0): otherwise, with the readings' filter misestimated (flags & 2 = 0 at
    # 0.5 %), the planner hash-joined every reading of every partition (9 s at 10 million readings for 95
    # ranges, bench/admin_browser.py) instead of one index range scan per range.
    cur.execute("ANALYZE rollup_range")
    cur.execute(FRESH_HOURS)
    cur.execute(HOURS)
    hours = cur.rowcount
    for lower, upper, field, step in LEVELS:
        cur.execute(UPPER, {"lower": lower, "upper": upper, "field": field})
        _write(cur, lower)
        cur.execute(FRESH_UPPER, {"lower": lower, "upper": upper, "step": step})
    _write(cur, "m")
    return taken, hours


def _write(cur, level: str) -> None:
    cur.execute(UPSERT, {"level": level})
    cur.execute(DELETE_EMPTIED, {"level": level})


def refresh(limit: int = DEFAULT_LIMIT, budget: float | None = DEFAULT_BUDGET) -> RefreshResult:
    """Bring the rollups up to date with the dirty log (R-5.2.3.3: aggregates current within 60 s of ingest):
    chunks of at most ``limit`` queued ranges, one transaction each under the advisory lock, until the log is
    empty or ``budget`` seconds are spent (None: until empty). Returns at once, ``busy``, when another
    refresh holds the lock."""
    out = RefreshResult()
    started = time.monotonic()
    while True:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK])
            if not cur.fetchone()[0]:
                out.busy = True
                break
            taken, hours = _chunk(cur, limit)
        out.rounds += 1
        out.series += taken
        out.hours += hours
        if not taken or (budget is not None and time.monotonic() - started >= budget):
            break
    out.seconds = time.monotonic() - started
    if out.series:
        log.info("rollups refreshed: %d ranges, %d hours in %.2f s", out.series, out.hours, out.seconds)
    return out


def lag() -> tuple[int, float]:
    """(queued ranges, age in seconds of the oldest): how far the rollups are behind ingest."""
    with connection.cursor() as cur:
        cur.execute("SELECT count(*), coalesce(extract(epoch FROM now() - min(queued_at)), 0) "
                    "FROM ingestion_rollup_dirty")
        n, age = cur.fetchone()
    return n, float(age)


def rebuild(park_id: int | None = None, limit: int = DEFAULT_LIMIT) -> RefreshResult:
    """Recompute every rollup (of one park) from the readings stored now, one month partition per transaction
    with set-based statements (apps/ingestion/rollup_rebuild.py), then refresh what is queued. See there."""
    from apps.ingestion.rollup_rebuild import rebuild as bulk

    return bulk(park_id, limit=limit)
