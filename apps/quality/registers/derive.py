"""Consumption derived from cumulative registers (issue #12 item 2; R-9.1.2, R-9.3.2.1). docs/registers.md.

Per interval between two consecutive counted readings of a register (``RegisterSetting``), set-based, with
lag() over the readings' identity index (source, data item, ts):

- ``d = reading − reading before + Σ (old meter's last − new meter's first)`` over the meter replacements in the
  interval: a replacement books (old last − before) + (after − new first); kind "replacement".
- ``d ≥ 0``: booked as it is; kind "implausible" (still booked, flagged) when above the largest plausible
  advance for the time elapsed (``max_delta_per_hour``, else rated power × ``HEADROOM`` / (CT × PT), × hours).
- ``d < 0``: a rollover when the register has a rollover point M and the wrapped advance ``M + d`` is plausible
  (within the largest advance for the time elapsed; with no limit configured, within a tenth of M): booked
  ``M + d``. Otherwise a reset: the register was cleared and counted up from zero, booked as the new reading
  itself when that is plausible for the time elapsed (or no limit is configured), else 0. Both are flagged.
- consumption = advance × CT × PT. An interval longer than 1.5 × the source's expected interval is a gap; its
  consumption is spread like any other interval's, over the hours it spans in proportion to time: never a lump
  in one hour, never zeros.

Hours (park-local), then days from hours and months from days, each bucket recomputed whole.

What counts: the effective value (corrections' view ``corrections_effective_reading``: the latest approved
revision, else the value as received), finite, not flagged invalid, and within ±``REGISTER_MAX`` (a reading beyond
is no meter's register; skipping it keeps one hostile value from overflowing every later run). Raw readings are
never touched; derived rows live in quality_registerinterval and quality_consumption.

How it stays consistent: ``quality_register_dirty`` is fed by a trigger on the rollups' dirty log (migration
quality 0009). A run takes the queue, widens each range to the counted readings either side, deletes the
intervals ending in that window and derives them again, then recomputes whole every hour, day and month those
intervals (old and new) touch. Late data, backfills and corrections converge; a second run changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db import connection, transaction

from apps.ingestion.models import Flag

# pg_try_advisory_xact_lock key: "regs". Two runs never overlap.
LOCK = 0x72656773
HEADROOM = 1.2  # rated power may be exceeded by this much before an advance counts as implausible
GAP_FACTOR = 1.5  # an interval longer than this many expected intervals is a gap
REGISTER_MAX = 1e15

TEMP = """
CREATE TEMP TABLE IF NOT EXISTS reg_scope (setting_id bigint, park_id bigint, source_id bigint, data_item_id bigint,
    tz text, interval_s int, lo timestamptz, hi timestamptz, p timestamptz, n timestamptz) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS reg_touch (setting_id bigint, start timestamptz, "end" timestamptz)
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS reg_span (setting_id bigint, park_id bigint, source_id bigint, data_item_id bigint,
    tz text, ha timestamptz, hb timestamptz, da timestamptz, db timestamptz, ma timestamptz, mb timestamptz)
    ON COMMIT DELETE ROWS;
DELETE FROM reg_scope; DELETE FROM reg_touch; DELETE FROM reg_span;
"""

# The same of one reading row ``r`` (its effective value probed only for the candidates: the neighbour of a range
# is found walking the identity index from the range outwards, stopping at the first that counts).
_EFFECTIVE = "corrections_effective_value(r.source_id, r.data_item_id, r.ts, r.value)"
COUNTED_ROW = f"""r.value IS NOT NULL AND r.flags & {Flag.INVALID} = 0 AND {_EFFECTIVE} <> 'NaN'::float8
      AND abs({_EFFECTIVE}) <= {REGISTER_MAX}"""

# A source moved to another park takes its registers and what was derived from them along (the seam reads the park
# stored on these rows). Cheap: it compares the few settings with their sources.
FOLLOW_SOURCES = """
WITH moved AS (
    UPDATE quality_registersetting s SET park_id = d.park_id FROM sources_datasource d
    WHERE d.id = s.source_id AND s.park_id <> d.park_id
    RETURNING s.id, s.park_id
), intervals AS (
    UPDATE quality_registerinterval iv SET park_id = m.park_id FROM moved m WHERE iv.setting_id = m.id
)
UPDATE quality_consumption c SET park_id = m.park_id FROM moved m WHERE c.setting_id = m.id
"""

# The queue taken; a row of no source asks for every register whole.
TAKE = """
WITH taken AS (
    DELETE FROM quality_register_dirty RETURNING source_id, data_item_id, lo, hi
), wanted AS (
    SELECT source_id, data_item_id, lo, hi FROM taken WHERE source_id IS NOT NULL
    UNION ALL
    SELECT s.source_id, s.data_item_id, '-infinity', 'infinity' FROM quality_registersetting s
    WHERE EXISTS (SELECT 1 FROM taken WHERE source_id IS NULL)
)
INSERT INTO reg_scope (setting_id, park_id, source_id, data_item_id, tz, interval_s, lo, hi)
SELECT s.id, s.park_id, s.source_id, s.data_item_id, p.time_zone, d.expected_interval_s,
       min(coalesce(w.lo, '-infinity')), max(coalesce(w.hi, 'infinity'))
FROM wanted w
JOIN quality_registersetting s ON s.source_id = w.source_id AND s.data_item_id = w.data_item_id
JOIN accounts_park p ON p.id = s.park_id
JOIN sources_datasource d ON d.id = s.source_id
GROUP BY s.id, s.park_id, s.source_id, s.data_item_id, p.time_zone, d.expected_interval_s
"""

# Each range widened to the counted readings either side: the intervals ending in (p, n] are the ones to redo.
WIDEN = f"""
UPDATE reg_scope sc SET
    p = coalesce((SELECT r.ts FROM ingestion_reading r WHERE r.source_id = sc.source_id
                  AND r.data_item_id = sc.data_item_id AND r.ts < sc.lo AND {COUNTED_ROW}
                  ORDER BY r.ts DESC LIMIT 1), sc.lo),
    n = coalesce((SELECT r.ts FROM ingestion_reading r WHERE r.source_id = sc.source_id
                  AND r.data_item_id = sc.data_item_id AND r.ts > sc.hi AND {COUNTED_ROW}
                  ORDER BY r.ts LIMIT 1), sc.hi)
"""

DROP_OLD = """
WITH gone AS (
    -- one range scan of the (setting, end) index per register, fenced (OFFSET 0): flattened, the planner
    -- hash-joined every interval of every register (0.9 s for 100 registers' hour at 1 million intervals)
    DELETE FROM quality_registerinterval iv USING reg_scope sc CROSS JOIN LATERAL (
        SELECT i.id FROM quality_registerinterval i
        WHERE i.setting_id = sc.setting_id AND i."end" > sc.p AND i."end" <= sc.n OFFSET 0) x
    WHERE iv.id = x.id
    RETURNING iv.setting_id, iv.start, iv."end"
), touched AS (
    INSERT INTO reg_touch SELECT setting_id, min(start), max("end") FROM gone GROUP BY setting_id
)
SELECT count(*) FROM gone
"""

DERIVE = f"""
WITH fresh AS (
    INSERT INTO quality_registerinterval (setting_id, park_id, source_id, data_item_id, start, "end",
                                          reading_start, reading_end, delta, consumption, kind, gap)
    SELECT s.id, s.park_id, s.source_id, s.data_item_id, r.pts, r.ts, r.pv, r.v, dd.delta,
           dd.delta * s.ct_ratio * s.pt_ratio, k.kind,
           sc.interval_s > 0 AND x.hours * 3600 > sc.interval_s * {GAP_FACTOR}
    FROM reg_scope sc
    JOIN quality_registersetting s ON s.id = sc.setting_id
    CROSS JOIN LATERAL (
        SELECT e.ts, e.v, lag(e.ts) OVER w AS pts, lag(e.v) OVER w AS pv
        FROM (
            -- the effective value: the series' revisions in the window joined once (the latest per reading),
            -- not probed per reading; the same as the view corrections_effective_reading
            SELECT r.ts, coalesce(rv.value, r.value) AS v
            FROM ingestion_reading r
            LEFT JOIN (SELECT DISTINCT ON (v.ts) v.ts, v.value FROM corrections_revision v
                       WHERE v.source_id = sc.source_id AND v.data_item_id = sc.data_item_id
                         AND v.ts >= sc.p AND v.ts <= sc.n ORDER BY v.ts, v.id DESC) rv ON rv.ts = r.ts
            WHERE r.source_id = sc.source_id AND r.data_item_id = sc.data_item_id AND r.ts >= sc.p AND r.ts <= sc.n
              AND r.value IS NOT NULL AND r.flags & {Flag.INVALID} = 0
        ) e
        WHERE e.v <> 'NaN'::float8 AND abs(e.v) <= {REGISTER_MAX}
        WINDOW w AS (ORDER BY e.ts)
    ) r
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(m.old_last - m.new_first), 0) AS adj, count(*) AS swaps FROM quality_meterreplacement m
        WHERE m.setting_id = s.id AND m.ts > r.pts AND m.ts <= r.ts
    ) m
    CROSS JOIN LATERAL (
        SELECT r.v - r.pv + m.adj AS d, extract(epoch FROM r.ts - r.pts)::float8 / 3600 AS hours,
               coalesce(s.max_delta_per_hour, s.rated_power_kw * {HEADROOM} / (s.ct_ratio * s.pt_ratio)) AS per_hour
    ) x
    CROSS JOIN LATERAL (SELECT x.per_hour * x.hours AS allowed) a
    CROSS JOIN LATERAL (SELECT CASE
        WHEN x.d >= 0 THEN CASE WHEN a.allowed IS NOT NULL AND x.d > a.allowed THEN 'implausible'
                                WHEN m.swaps > 0 THEN 'replacement' ELSE 'ok' END
        WHEN s.modulus IS NOT NULL AND x.d + s.modulus >= 0
             AND x.d + s.modulus <= coalesce(a.allowed, s.modulus * 0.1) THEN 'rollover'
        ELSE 'reset' END AS kind) k
    CROSS JOIN LATERAL (SELECT CASE k.kind
        WHEN 'rollover' THEN x.d + s.modulus
        WHEN 'reset' THEN CASE WHEN r.v >= 0 AND r.v <= coalesce(a.allowed, 'Infinity'::float8) THEN r.v ELSE 0 END
        ELSE x.d END AS delta) dd
    WHERE r.pts IS NOT NULL
    RETURNING setting_id, start, "end"
), touched AS (
    INSERT INTO reg_touch SELECT setting_id, min(start), max("end") FROM fresh GROUP BY setting_id
)
SELECT count(*) FROM fresh
"""

# The park-local hours, days and months the old and new intervals touch.
SPAN = """
INSERT INTO reg_span
SELECT sc.setting_id, sc.park_id, sc.source_id, sc.data_item_id, sc.tz, t.ha, t.hb,
       date_trunc('day', t.ha, sc.tz), (date_trunc('day', (t.hb - interval '1 microsecond') AT TIME ZONE sc.tz)
                                        + interval '1 day') AT TIME ZONE sc.tz,
       date_trunc('month', t.ha, sc.tz), (date_trunc('month', (t.hb - interval '1 microsecond') AT TIME ZONE sc.tz)
                                          + interval '1 month') AT TIME ZONE sc.tz
FROM reg_scope sc
JOIN (SELECT setting_id, min(start) AS a, max("end") AS b FROM reg_touch GROUP BY setting_id) u USING (setting_id)
CROSS JOIN LATERAL (SELECT date_trunc('hour', u.a, sc.tz) AS ha,
                           date_trunc('hour', u.b, sc.tz) + interval '1 hour' AS hb) t
"""

CLEAR = """
DELETE FROM quality_consumption c USING reg_span sp
WHERE c.setting_id = sp.setting_id AND c.level = %(level)s AND c.bucket >= sp.{lo} AND c.bucket < sp.{hi}
"""

# Each interval's consumption over the hours it spans, in proportion to time. The intervals overlapping
# [ha, hb) are found by their end on the (setting, end) index: from ha up to the first interval ending at or
# after hb (intervals do not overlap, so none further can reach back into the span).
HOURS = """
INSERT INTO quality_consumption (setting_id, park_id, source_id, data_item_id, level, bucket, value, intervals,
                                 flagged, spread)
SELECT sp.setting_id, sp.park_id, sp.source_id, sp.data_item_id, 'hour', h.h,
       sum(iv.consumption * extract(epoch FROM least(iv."end", h.h + interval '1 hour') - greatest(iv.start, h.h))
           / extract(epoch FROM iv."end" - iv.start)),
       count(*), count(*) FILTER (WHERE iv.kind <> 'ok'), bool_or(iv.gap)
FROM reg_span sp
JOIN quality_registerinterval iv ON iv.setting_id = sp.setting_id AND iv."end" > sp.ha AND iv.start < sp.hb
     AND iv."end" <= coalesce((SELECT min(i2."end") FROM quality_registerinterval i2
                               WHERE i2.setting_id = sp.setting_id AND i2."end" >= sp.hb), 'infinity')
CROSS JOIN LATERAL generate_series(date_trunc('hour', greatest(iv.start, sp.ha), sp.tz),
                                   least(iv."end", sp.hb) - interval '1 microsecond', interval '1 hour') h(h)
GROUP BY sp.setting_id, sp.park_id, sp.source_id, sp.data_item_id, h.h
"""

# Days from hours, months from days, within the span.
UP = """
INSERT INTO quality_consumption (setting_id, park_id, source_id, data_item_id, level, bucket, value, intervals,
                                 flagged, spread)
SELECT sp.setting_id, sp.park_id, sp.source_id, sp.data_item_id, %(level)s, date_trunc(%(unit)s, c.bucket, sp.tz),
       sum(c.value), sum(c.intervals), sum(c.flagged), bool_or(c.spread)
FROM reg_span sp
JOIN quality_consumption c ON c.setting_id = sp.setting_id AND c.level = %(below)s
     AND c.bucket >= sp.{lo} AND c.bucket < sp.{hi}
GROUP BY sp.setting_id, sp.park_id, sp.source_id, sp.data_item_id, date_trunc(%(unit)s, c.bucket, sp.tz)
"""


@dataclass
class DeriveRun:
    series: int = 0
    dropped: int = 0
    derived: int = 0
    hours: int = 0
    busy: bool = False
    seconds: float = 0.0


def derive_consumption(*, full: bool = False) -> DeriveRun:
    """Derive consumption per interval, hour, day and month from the registers' readings queued since the last
    run (issue #12 item 2; R-9.1.2: continuous series, R-9.3.2.1: gaps spread, never booked as a lump), set-based
    (module docstring). ``full`` redoes every register whole. Idempotent; runs under an advisory lock: a run
    that finds another in progress returns ``busy`` and leaves the queue to it."""
    started = time.monotonic()
    out = DeriveRun()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK])
        if not cur.fetchone()[0]:
            out.busy = True
            out.seconds = time.monotonic() - started
            return out
        if full:
            cur.execute("INSERT INTO quality_register_dirty (source_id) VALUES (NULL)")
        # Short statements over a few rows each: JIT compiling them cost seconds (the planner, with no statistics
        # on the temporary tables, costed them high), and the temporary tables are analyzed once filled.
        cur.execute("SET LOCAL jit = off")
        cur.execute("SET LOCAL work_mem = '64MB'")  # a full run's hourly aggregate spilled to disk at the default
        cur.execute(FOLLOW_SOURCES)
        cur.execute(TEMP)
        cur.execute(TAKE)
        out.series = cur.rowcount
        if out.series:
            cur.execute("ANALYZE reg_scope")
            cur.execute(WIDEN)
            cur.execute(DROP_OLD)
            out.dropped = cur.fetchone()[0]
            cur.execute(DERIVE)
            out.derived = cur.fetchone()[0]
            cur.execute("ANALYZE reg_touch")
            cur.execute(SPAN)
            cur.execute("ANALYZE reg_span")
            cur.execute(CLEAR.format(lo="ha", hi="hb"), {"level": "hour"})
            cur.execute(HOURS)
            out.hours = cur.rowcount
            for level, below, unit, lo, hi in (("day", "hour", "day", "da", "db"),
                                               ("month", "day", "month", "ma", "mb")):
                cur.execute(CLEAR.format(lo=lo, hi=hi), {"level": level})
                cur.execute(UP.format(lo=lo, hi=hi), {"level": level, "below": below, "unit": unit})
    out.seconds = time.monotonic() - started
    return out


def queue_series(source_id: int, data_item_id: int) -> None:
    """Ask the next run to redo one register whole (its setting or replacements changed)."""
    with connection.cursor() as cur:
        cur.execute("INSERT INTO quality_register_dirty (source_id, data_item_id, lo, hi) "
                    "VALUES (%s, %s, '-infinity', 'infinity')", [source_id, data_item_id])
