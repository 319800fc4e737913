"""The bulk rebuild of rollups: one monthly partition of readings at a time, set-based, straight from the
partition (docs/rollups.md "Rebuild and upgrade", issue #9 item 4).

The incremental refresh (apps/ingestion/rollups.py) reads each queued range through the identity index, which
is right for what ingest queues every few seconds and far too slow for a whole history (about 16 000
readings/s: hours for 50 million). A rebuild instead, per partition and in one transaction under the
refresh's advisory lock (the two never interleave; refreshes between partitions keep new readings current):

1. aggregates the partition's counted readings (``COUNTED_BETWEEN``: the refresh's own definition, the view
   corrections_effective_reading, over the partition's range) by series and park-local hour in one
   ``GROUP BY`` (a sequential scan of the partition, no index), upserts the hours lying wholly
   inside the partition's UTC month and deletes the hour rows there that no counted reading backs;
2. queues in the dirty log, for the refresh, the few hours that straddle the partition's edges (only in
   zones whose offset is not a whole number of hours);
3. recomputes from the hour rows every park-local day overlapping the partition's month, and from the day
   rows every local month overlapping it (a neighbour's days and months are recomputed again when that
   partition is rebuilt, so the last one done is whole), deleting those no row below backs.

What is pending is one row per partition in ``ingestion_rollup_rebuild`` (park NULL: every park; month NULL:
the DEFAULT partition, which goes through the dirty log as before, being normally empty). The upgrade
migration (ingestion 0012) records every partition there; the beat task ``rebuild-rollups`` builds one per
run, newest first (recent months matter first); ``manage.py rebuild_rollups`` queues and runs to the end.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db import connection, transaction

from apps.ingestion import rollups
from apps.ingestion.partitions import add_months, partitions

log = logging.getLogger(__name__)

# A partition already pending for every park, or for this one, is not queued twice.
QUEUE = """
INSERT INTO ingestion_rollup_rebuild (park_id, month) SELECT %(park)s, %(month)s
WHERE NOT EXISTS (SELECT 1 FROM ingestion_rollup_rebuild WHERE month IS NOT DISTINCT FROM %(month)s
                  AND (park_id IS NULL OR park_id = %(park)s))
"""
# The DEFAULT partition (normally empty): each series queued over its readings' span, for the refresh.
QUEUE_DEFAULT = """
INSERT INTO ingestion_rollup_dirty (park_id, source_id, data_item_id, lo, hi)
SELECT min(park_id), source_id, data_item_id, min(ts), max(ts) FROM ingestion_reading_default WHERE {park}
GROUP BY source_id, data_item_id
"""
NEXT = ("SELECT ctid, park_id, month FROM ingestion_rollup_rebuild "
        "ORDER BY month DESC NULLS LAST, queued_at LIMIT 1")

# Every counted reading of the partition, by series and park-local hour; "last" as the refresh takes it.
HOURS = """
INSERT INTO rollup_fresh
SELECT 'h', min(r.park_id), r.source_id, r.data_item_id, min(p.time_zone), date_trunc('hour', r.ts, p.time_zone),
       count(*), sum(r.value), min(r.value), max(r.value), (array_agg(r.value ORDER BY r.ts DESC))[1], max(r.ts)
FROM {counted} AS r JOIN accounts_park p ON p.id = r.park_id
WHERE {park}
GROUP BY r.source_id, r.data_item_id, date_trunc('hour', r.ts, p.time_zone)
"""
# Hours not wholly inside [lo, hi): part of their readings lie in the neighbouring partition. Both those with
# readings here and those with a rollup row go to the refresh, which reads them whole through the index.
EDGES = """
INSERT INTO ingestion_rollup_dirty (park_id, source_id, data_item_id, lo, hi)
SELECT park_id, source_id, data_item_id, bucket, bucket FROM rollup_fresh
WHERE level = 'h' AND (bucket < %(lo)s OR bucket > %(hi)s - interval '1 hour')
UNION
SELECT park_id, source_id, data_item_id, bucket, bucket FROM ingestion_rollup
WHERE interval = 'h' AND {park} AND ((bucket > %(lo)s - interval '1 hour' AND bucket < %(lo)s)
                                     OR (bucket > %(hi)s - interval '1 hour' AND bucket < %(hi)s))
"""
DROP_EDGES = "DELETE FROM rollup_fresh WHERE bucket < %(lo)s OR bucket > %(hi)s - interval '1 hour'"

# The days (months) overlapping [lo, hi) in the park's zone, from every row of the level below within the
# window (a local day spans at most 25 hours, a month at most 31 days and an hour).
UPPER = """
INSERT INTO rollup_fresh
SELECT %(upper)s, min(r.park_id), r.source_id, r.data_item_id, p.time_zone,
       date_trunc(%(field)s, r.bucket, p.time_zone),
       sum(r.count), sum(r.sum), min(r.min), max(r.max), (array_agg(r.last ORDER BY r.last_ts DESC))[1],
       max(r.last_ts)
FROM ingestion_rollup r JOIN accounts_park p ON p.id = r.park_id
WHERE r.interval = %(lower)s AND r.bucket >= %(lo)s - %(window)s::interval AND r.bucket < %(hi)s + %(window)s::interval
  AND {park}
GROUP BY r.source_id, r.data_item_id, p.time_zone, date_trunc(%(field)s, r.bucket, p.time_zone)
HAVING date_trunc(%(field)s, r.bucket, p.time_zone) < %(hi)s
   AND (date_trunc(%(field)s, r.bucket, p.time_zone) AT TIME ZONE p.time_zone + %(step)s::interval)
       AT TIME ZONE p.time_zone > %(lo)s
"""
# Rows of a level in the range just recomputed that nothing below backs any longer. EXCEPT, a hashed set
# operation, as in rollups.DELETE_EMPTIED: with NOT EXISTS the planner, having no statistics yet for rows this
# transaction wrote, anti-joined 370 000 hour rows in a nested loop (minutes instead of a second).
EMPTIED = """
DELETE FROM ingestion_rollup r USING (
    SELECT r.source_id, r.data_item_id, r.bucket FROM ingestion_rollup r JOIN accounts_park p ON p.id = r.park_id
    WHERE r.interval = %(level)s AND {park} AND r.bucket >= %(lo)s - %(window)s::interval AND r.bucket < %(hi)s
      AND ((r.bucket AT TIME ZONE p.time_zone) + %(step)s::interval) AT TIME ZONE p.time_zone {cmp} {edge}
    EXCEPT
    SELECT source_id, data_item_id, bucket FROM rollup_fresh WHERE level = %(level)s
) AS e
WHERE r.interval = %(level)s AND r.source_id = e.source_id AND r.data_item_id = e.data_item_id
  AND r.bucket = e.bucket
"""


@dataclass
class StepResult:
    month: date | None = None  # the partition built (None with ``done``: nothing pending; else DEFAULT)
    park_id: int | None = None
    readings: int = 0  # counted readings aggregated
    hours: int = 0  # hour rows written or kept
    edges: int = 0  # hours at the partition's edges queued for the refresh
    busy: bool = False  # a refresh or another step held the lock
    done: bool = False  # nothing was pending
    seconds: float = 0.0


def queue(park_id: int | None = None) -> int:
    """Record a rebuild of every monthly partition (and of the DEFAULT partition) as pending; returns how many
    were queued. The beat task or ``run`` then builds them."""
    months = [p.month for p in partitions()] + [None]
    with transaction.atomic(), connection.cursor() as cur:
        for month in months:
            cur.execute(QUEUE, {"park": park_id, "month": month})
    return len(months)


def pending() -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM ingestion_rollup_rebuild")
        return cur.fetchone()[0]


def step(wait: bool = False) -> StepResult:
    """Rebuild the newest pending partition, in one transaction under the rollups' advisory lock (R-5.2.3.3:
    aggregates rebuilt without holding new readings back for more than one partition). ``wait``: block for the
    lock (the command); else return ``busy`` at once (the beat)."""
    out = StepResult()
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cur:
        if wait:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [rollups.LOCK])
        else:
            cur.execute("SELECT pg_try_advisory_xact_lock(%s)", [rollups.LOCK])
            if not cur.fetchone()[0]:
                out.busy = True
                return out
        cur.execute(NEXT)
        row = cur.fetchone()
        if row is None:
            out.done = True
            return out
        ctid, out.park_id, out.month = row
        cur.execute("DELETE FROM ingestion_rollup_rebuild WHERE ctid = %s", [ctid])
        park = "true" if out.park_id is None else "r.park_id = %(park)s"
        if out.month is None:
            cur.execute(QUEUE_DEFAULT.format(park=park.replace("r.", "")), {"park": out.park_id})
        else:
            _partition(cur, out, park)
    out.seconds = time.monotonic() - started
    log.info("rollups rebuilt for %s: %d readings, %d hours in %.1f s", out.month or "DEFAULT", out.readings,
             out.hours, out.seconds)
    return out


def _partition(cur, out: StepResult, park: str) -> None:
    name = f"ingestion_reading_{out.month:%Y_%m}"
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    if not cur.fetchone()[0]:
        return  # retired since it was queued: its rollups outlive it
    nxt = add_months(out.month, 1)
    lo, hi = datetime(out.month.year, out.month.month, 1, tzinfo=UTC), datetime(nxt.year, nxt.month, 1, tzinfo=UTC)
    args = {"lo": lo, "hi": hi, "park": out.park_id}
    cur.execute(rollups.TEMP_TABLES)
    cur.execute(HOURS.format(counted=rollups.COUNTED_BETWEEN, park=park), args)
    cur.execute(EDGES.format(park=park.replace("r.", "")), args)
    out.edges = cur.rowcount
    cur.execute(DROP_EDGES, args)
    cur.execute("SELECT count(*), coalesce(sum(n), 0) FROM rollup_fresh")
    out.hours, out.readings = cur.fetchone()
    cur.execute("ANALYZE rollup_fresh")  # temporary tables get no statistics otherwise (see rollups.py)
    cur.execute(rollups.UPSERT, {"level": "h"})
    cur.execute(EMPTIED.format(park=park, cmp="<=", edge="%(hi)s"),
                {**args, "level": "h", "window": "0", "step": "1 hour", "edge": hi})
    for lower, upper, field, step_, window in (("h", "d", "day", "1 day", "2 days"),
                                               ("d", "m", "month", "1 month", "35 days")):
        cur.execute(UPPER.format(park=park), {**args, "lower": lower, "upper": upper, "field": field,
                                              "step": step_, "window": window})
        cur.execute("ANALYZE rollup_fresh")
        cur.execute(rollups.UPSERT, {"level": upper})
        cur.execute(EMPTIED.format(park=park, cmp=">", edge="%(lo)s"),
                    {**args, "level": upper, "window": window, "step": step_})


def run(wait: bool = True, limit: int = rollups.DEFAULT_LIMIT) -> list[StepResult]:
    """Build every pending partition, newest first, then refresh until the dirty log is empty (the edges and
    the DEFAULT partition go that way)."""
    done = []
    while True:
        r = step(wait=wait)
        if r.done or r.busy:
            break
        done.append(r)
    rollups.refresh(limit=limit, budget=None)
    return done


def rebuild(park_id: int | None = None, limit: int = rollups.DEFAULT_LIMIT) -> rollups.RefreshResult:
    """Recompute every rollup (of one park) from the readings stored now (R-5.2.3.3): after a park's time zone
    changed, or to check the rollups. Rollups of months whose partitions were retired stay as they are."""
    started = time.monotonic()
    queue(park_id)
    steps = run(limit=limit)
    return rollups.RefreshResult(series=len(steps), hours=sum(s.hours for s in steps), rounds=len(steps),
                                 seconds=time.monotonic() - started)
