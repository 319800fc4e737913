"""Gap detection (R-9.1.2: time series continuous, gaps explicitly marked; the list R-9.3.2.1's filling works
from). docs/gaps.md.

A gap is two consecutive stored readings of one series (source, data item) further apart than the source's
expected interval × (1 + tolerance); it runs from the reading before (``start``) to the reading after (``end``)
and misses round((end - start) / interval) - 1 points.

What is checked: numeric data items (data_type "number") bound to a source whose collection method is not manual
entry. Text, enumeration and date items have no regular cadence worth checking; manual sources report when a
person fills a form (their timeliness is R-9.1.4's business, not a gap). Every stored reading counts as present,
flagged ones included (a reading flagged invalid is a quality problem of its own, not a hole in the series), and
so do patched fills: a filled gap stays listed, state "filled".

How it runs: ONE statement per run (``DETECT``). The series and ranges to look at come from
``quality_gap_dirty``, which a trigger fills from the rollups' dirty log (every writer of readings queues there
in its own transaction) when the rollup refresher takes it, every 10 s (migration quality 0007: off the ingest
path). Each queued range is widened to the stored readings either side
of it, the readings in between are read in identity-index order once, and lag(ts) finds the gaps. In that window:
gaps found are inserted or, when already listed and open, given their new end; open gaps listed there and no
longer found (a late reading filled them, or split them: the first part keeps its start, the rest is a new gap)
are removed: a real reading wins. Filled and ignored gaps are left as they are. A queued row with no source asks
for a full scan of every series (the migration queues one, ``find_gaps(full=True)`` another).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

from apps.ingestion.models import Flag

# pg_try_advisory_xact_lock key: "gaps". Two runs never overlap (the second finds the queue taken).
LOCK = 0x67617073
DEFAULT_TOLERANCE = 0.5

# The series gap detection checks (module docstring).
SERIES = """
SELECT s.id AS source_id, b.dataitem_id AS data_item_id, s.park_id, s.expected_interval_s AS interval_s
FROM sources_datasource s
JOIN sources_datasource_data_items b ON b.datasource_id = s.id
JOIN catalog_dataitem i ON i.id = b.dataitem_id
WHERE i.data_type = 'number' AND s.collection_method <> 'manual' AND s.expected_interval_s > 0
"""

DETECT = f"""
WITH taken AS (
    DELETE FROM quality_gap_dirty RETURNING source_id, data_item_id, lo, hi
), full_scan AS (
    SELECT EXISTS (SELECT 1 FROM taken WHERE source_id IS NULL) AS yes
), series AS ({SERIES}
), scope AS (
    SELECT se.*, '-infinity'::timestamptz AS lo, 'infinity'::timestamptz AS hi
    FROM series se WHERE (SELECT yes FROM full_scan)
    UNION ALL
    SELECT se.*, t.lo, t.hi FROM (
        SELECT source_id, data_item_id, min(lo) AS lo, max(hi) AS hi FROM taken WHERE source_id IS NOT NULL
        GROUP BY source_id, data_item_id
    ) t JOIN series se USING (source_id, data_item_id)
    WHERE NOT (SELECT yes FROM full_scan)
), win AS (
    -- the range widened to the readings either side: a gap ending or starting inside it is seen whole
    SELECT sc.*,
           coalesce((SELECT max(r.ts) FROM ingestion_reading r WHERE r.source_id = sc.source_id
                     AND r.data_item_id = sc.data_item_id AND r.ts < sc.lo), '-infinity') AS p,
           coalesce((SELECT min(r.ts) FROM ingestion_reading r WHERE r.source_id = sc.source_id
                     AND r.data_item_id = sc.data_item_id AND r.ts > sc.hi), 'infinity') AS n
    FROM scope sc
), found AS (
    SELECT w.park_id, w.source_id, w.data_item_id, w.interval_s, x.prev AS start, x.ts AS "end"
    FROM win w CROSS JOIN LATERAL (
        SELECT r.ts, lag(r.ts) OVER (ORDER BY r.ts) AS prev FROM ingestion_reading r
        WHERE r.source_id = w.source_id AND r.data_item_id = w.data_item_id AND r.ts >= w.p AND r.ts <= w.n
    ) x
    WHERE x.prev IS NOT NULL AND x.ts - x.prev > make_interval(secs => w.interval_s * (1 + %(tolerance)s))
), removed AS (
    DELETE FROM quality_gap g USING win w
    WHERE g.source_id = w.source_id AND g.data_item_id = w.data_item_id AND g.state = 'open'
      AND g.start >= w.p AND g."end" <= w.n
      AND NOT EXISTS (SELECT 1 FROM found f WHERE f.source_id = g.source_id AND f.data_item_id = g.data_item_id
                      AND f.start = g.start)
    RETURNING 1
), upserted AS (
    INSERT INTO quality_gap AS g (park_id, source_id, data_item_id, start, "end", interval_s, missing, state,
                                  found_at, updated)
    SELECT park_id, source_id, data_item_id, start, "end", interval_s,
           round(extract(epoch FROM "end" - start) / interval_s) - 1, 'open', now(), now()
    FROM found
    ON CONFLICT (source_id, data_item_id, start) DO UPDATE
        SET "end" = EXCLUDED."end", interval_s = EXCLUDED.interval_s, missing = EXCLUDED.missing,
            updated = EXCLUDED.updated
        WHERE g.state = 'open' AND (g."end", g.interval_s) IS DISTINCT FROM (EXCLUDED."end", EXCLUDED.interval_s)
    RETURNING (xmax = 0) AS inserted
)
SELECT (SELECT yes FROM full_scan), (SELECT count(*) FROM win),
       (SELECT count(*) FILTER (WHERE inserted) FROM upserted),
       (SELECT count(*) FILTER (WHERE NOT inserted) FROM upserted),
       (SELECT count(*) FROM removed)
"""


@dataclass
class GapRun:
    full: bool = False
    series: int = 0
    opened: int = 0
    changed: int = 0
    closed: int = 0
    busy: bool = False
    seconds: float = 0.0


def find_gaps(*, full: bool = False, tolerance: float = DEFAULT_TOLERANCE) -> GapRun:
    """Find and list the gaps of the data stored since the last run (R-9.1.2, for R-9.3.2.1's filling).

    One set-based statement over the queued ranges (module docstring); ``full`` scans every series instead
    (the first run does by itself). Idempotent: a second run over the same readings changes nothing. Runs under
    an advisory lock: a run that finds another in progress returns ``busy`` and leaves the queue to it."""
    started = time.monotonic()
    if not 0 <= tolerance <= 100:
        raise ValueError("tolerance must be between 0 and 100")
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK])
        if not cur.fetchone()[0]:
            return GapRun(busy=True, seconds=time.monotonic() - started)
        if full:
            cur.execute("INSERT INTO quality_gap_dirty (source_id) VALUES (NULL)")
        cur.execute(DETECT, {"tolerance": float(tolerance)})
        is_full, series, opened, changed, closed = cur.fetchone()
    return GapRun(full=is_full, series=series, opened=opened, changed=changed, closed=closed,
                  seconds=time.monotonic() - started)


# Linear interpolation of open gaps no longer than a span, from the effective values either side (R-9.3.2.1's
# second step), both valid: finite and not flagged invalid. A point every expected interval from the start.
INTERPOLATION = f"""
SELECT g.id, g.source_id, g.data_item_id, x.ts,
       a.effective_value + (b.effective_value - a.effective_value)
           * extract(epoch FROM x.ts - g.start) / extract(epoch FROM g."end" - g.start) AS value
FROM quality_gap g
JOIN corrections_effective_reading a ON a.source_id = g.source_id AND a.data_item_id = g.data_item_id
     AND a.ts = g.start
JOIN corrections_effective_reading b ON b.source_id = g.source_id AND b.data_item_id = g.data_item_id
     AND b.ts = g."end"
CROSS JOIN LATERAL generate_series(1, g.missing) AS k
CROSS JOIN LATERAL (SELECT g.start + k * make_interval(secs => g.interval_s) AS ts) x
WHERE g.id = ANY(%(ids)s) AND g.state = 'open' AND g."end" - g.start <= make_interval(secs => %(span)s)
  AND a.flags & {Flag.INVALID} = 0 AND b.flags & {Flag.INVALID} = 0
  AND a.effective_value IS NOT NULL AND b.effective_value IS NOT NULL
  AND a.effective_value NOT IN ('NaN', 'Infinity', '-Infinity')
  AND b.effective_value NOT IN ('NaN', 'Infinity', '-Infinity')
  AND x.ts < g."end"
ORDER BY g.id, x.ts
"""
DEFAULT_INTERPOLATION_SPAN_S = 3600


@dataclass(frozen=True)
class FillPoint:
    gap_id: int
    source_id: int
    data_item_id: int
    ts: datetime
    value: float


def interpolation_plan(gap_ids, *, span_s: int = DEFAULT_INTERPOLATION_SPAN_S) -> list[FillPoint]:
    """The points linear interpolation would fill in the given open gaps no longer than ``span_s`` (R-9.3.2.1,
    second step), computed set-based in one query; nothing is stored here: apps/quality/filling stores them
    (docs/gaps.md, "Filling")."""
    with connection.cursor() as cur:
        cur.execute(INTERPOLATION, {"ids": list(gap_ids), "span": int(span_s)})
        return [FillPoint(*row) for row in cur.fetchall()]
