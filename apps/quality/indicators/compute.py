"""Computing the monthly quality indicators (R-9.1, R-9.1.1–R-9.1.4). docs/quality-indicators.md.

ONE statement per month (``REFRESH``, after ``SERIES`` has put the month's series into an analysed temporary table),
over every series (a source and a numeric data item bound to it; gateways
left out) of the parks asked for, each in its park's local calendar month:

- completeness (R-9.1.2): points expected from the source's interval over the stretch of the month judged (from
  the month's start, or from the series' first reading or the source's creation when later, to the month's end or
  now), points present from the monthly rollup (valid numeric values), seconds in gaps (the listed gaps not
  ignored, minus one interval each, clipped to the stretch, plus the silence after the series' last reading when
  it is longer than the gap detector's tolerance), patched points (``Flag.PATCHED``);
- timeliness (R-9.1.4): each stored reading's receipt (``received_at``) against its collection time ``ts``:
  real-time and third-party data within 5 minutes; batch and remote-sensing data within 2 hours after the end of
  their period (the source's interval, counted from the month's start in the park's zone); manual and field data
  by the end of the first working day after the day collected (apps/quality/deadlines/calendar.py). Patched
  points are not collected, so not judged;
- consistency (R-9.1.3): readings flagged suspect or invalid at ingest, and readings a check after storage hit
  (quality_posthit), each counted once;
- accuracy (R-9.1.1): the source's accuracy class against what GB 17167-2006 requires of its instrument type
  (apps/sources/accuracy.py);
- automatic collection: the source's collection method is not manual entry.

Every reading of the month is read once: one grouped join of the month's partition with the series (a sequential
read when the whole platform is refreshed, index probes when one park is); the gaps, hits and rollups by index
probes. The month's rows are replaced whole in one transaction (readers see the old rows until it commits),
under an advisory lock, so a refresh converges whatever arrived late."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from apps.ingestion.models import Flag
from apps.quality.deadlines.calendar import add_workdays
from apps.quality.gaps import DEFAULT_TOLERANCE
from apps.sources.accuracy import REQUIRED, meets_sql

LOCK = 0x71696E64  # "qind": two refreshes never interleave their deletes and inserts

REALTIME_S = 5 * 60  # real-time data on the platform within 5 minutes of collection
BATCH_S = 2 * 3600  # ... batch data within 2 hours after its period
MANUAL_WORKDAYS = 1  # ... manual data within 1 working day
REALTIME_METHODS = ("realtime", "third_party")
BATCH_METHODS = ("batch", "remote_sensing")
MANUAL_METHODS = ("manual", "field_measurement")

REQUIRED_SQL = "CASE s.instrument_type " + " ".join(
    f"WHEN '{t.value}' THEN '{c}'" for t, c in REQUIRED.items()) + " ELSE '' END"

# The series of the month, in a temporary table analysed before the statement that reads the readings: with the
# true number of series the planner joins a whole month's partition by hash when every park is refreshed, and
# probes the identity index when one park is (a CTE's estimate made it probe 1 000 series one index scan each).
SERIES_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS quality_indicator_series (
    source_id bigint, data_item_id bigint, park_id bigint, collection_method text, iv int, created_at timestamptz,
    instrument_type text, accuracy_class text, req text, tz text, ms timestamptz, me timestamptz, rule int
) ON COMMIT DELETE ROWS
"""

SERIES = f"""
INSERT INTO quality_indicator_series
SELECT s.id, b.dataitem_id, s.park_id, s.collection_method, s.expected_interval_s, s.created_at, s.instrument_type,
       s.accuracy_class, {REQUIRED_SQL}, p.time_zone,
       (%(month)s::timestamp AT TIME ZONE p.time_zone),
       ((%(month)s::timestamp + interval '1 month') AT TIME ZONE p.time_zone),
       CASE WHEN s.collection_method = ANY(%(manual)s) THEN 2 WHEN s.collection_method = ANY(%(batch)s) THEN 1
            ELSE 0 END
FROM sources_datasource s
JOIN accounts_park p ON p.id = s.park_id
JOIN sources_datasource_data_items b ON b.datasource_id = s.id
JOIN catalog_dataitem i ON i.id = b.dataitem_id
WHERE i.data_type = 'number' AND s.kind <> 'gateway' AND s.expected_interval_s > 0
  AND (%(parks)s::bigint[] IS NULL OR s.park_id = ANY(%(parks)s::bigint[]))
  AND (%(month)s::timestamp AT TIME ZONE p.time_zone) < %(now)s::timestamptz
"""

REFRESH = f"""
WITH cal AS (
    SELECT c.day, c.due FROM unnest(%(cal_days)s::date[], %(cal_due)s::date[]) AS c(day, due)
), rd AS (
    -- the month's readings of every series in one pass
    SELECT r.source_id, r.data_item_id, count(*) AS readings, min(r.ts) AS first_ts,
           max(r.ts) FILTER (WHERE r.ts < %(now)s::timestamptz) AS last_ts,
           count(*) FILTER (WHERE r.flags & {Flag.PATCHED} <> 0) AS patched,
           count(*) FILTER (WHERE r.flags & {Flag.SUSPECT | Flag.INVALID} <> 0) AS flagged,
           count(*) FILTER (WHERE r.flags & {Flag.PATCHED} = 0 AND CASE k.rule
               WHEN 2 THEN r.received_at < (
                   (SELECT c.due FROM cal c WHERE c.day = (r.ts AT TIME ZONE k.tz)::date) + 1
               )::timestamp AT TIME ZONE k.tz
               WHEN 1 THEN r.received_at <= date_bin(make_interval(secs => k.iv), r.ts, k.ms)
                                            + make_interval(secs => k.iv + %(batch_s)s)
               ELSE r.received_at <= r.ts + make_interval(secs => %(realtime_s)s) END) AS timely
    FROM quality_indicator_series k
    JOIN ingestion_reading r ON r.source_id = k.source_id AND r.data_item_id = k.data_item_id
     AND r.ts >= k.ms AND r.ts < k.me
    WHERE r.ts >= %(scan_lo)s AND r.ts < %(scan_hi)s
    GROUP BY r.source_id, r.data_item_id
), judged AS (
    -- the stretch judged: from the month's start, or, for a series that began in the month (no monthly rollup
    -- before it), from its first reading or the source's creation if earlier; to the month's end or now
    SELECT k.*, coalesce(x.readings, 0) AS readings, coalesce(x.patched, 0) AS patched,
           coalesce(x.flagged, 0) AS flagged, coalesce(x.timely, 0) AS timely, x.last_ts,
           greatest(k.ms, least(k.created_at, CASE WHEN EXISTS (
               SELECT 1 FROM ingestion_rollup e WHERE e.source_id = k.source_id AND e.data_item_id = k.data_item_id
                 AND e.interval = 'm' AND e.bucket < k.ms) THEN k.ms ELSE x.first_ts END)) AS lo,
           least(k.me, %(now)s::timestamptz) AS hi
    FROM quality_indicator_series k
    LEFT JOIN rd x ON x.source_id = k.source_id AND x.data_item_id = k.data_item_id
), kept AS (
    SELECT * FROM judged WHERE lo < hi
), gp AS (
    SELECT k.source_id, k.data_item_id, count(*) FILTER (WHERE o.s > 0) AS gaps, coalesce(sum(o.s), 0) AS gap_s
    FROM kept k
    JOIN quality_gap g ON g.source_id = k.source_id AND g.data_item_id = k.data_item_id AND g.state <> 'ignored'
     AND g."end" > k.lo AND g.start < k.hi
    CROSS JOIN LATERAL (SELECT greatest(0, extract(epoch FROM least(g."end", k.hi)
                               - greatest(g.start + make_interval(secs => g.interval_s), k.lo))) AS s) o
    WHERE k.rule <> 2
    GROUP BY 1, 2
), ht AS (
    SELECT k.source_id, k.data_item_id, count(DISTINCT h.ts) AS hit,
           count(DISTINCT h.ts) FILTER (WHERE coalesce(r.flags, 0) & {Flag.SUSPECT | Flag.INVALID} = 0) AS hit_only
    FROM kept k
    JOIN quality_posthit h ON h.source_id = k.source_id AND h.data_item_id = k.data_item_id
     AND h.ts >= k.ms AND h.ts < k.me
    LEFT JOIN ingestion_reading r ON r.source_id = h.source_id AND r.data_item_id = h.data_item_id AND r.ts = h.ts
    GROUP BY 1, 2
), full_rows AS (
    SELECT k.*, coalesce(u.count, 0) AS present,
           coalesce(gp.gaps, 0) AS gaps, coalesce(gp.gap_s, 0) AS gap_s,
           coalesce(ht.hit, 0) AS hit, coalesce(ht.hit_only, 0) AS hit_only,
           -- the silence after the series' last reading, when longer than the gap detector allows: a gap whose
           -- end has not come yet, so not listed
           CASE WHEN k.rule = 2 THEN 0
                WHEN k.last_ts IS NULL OR k.last_ts < k.lo THEN extract(epoch FROM k.hi - k.lo)
                WHEN k.hi - k.last_ts > make_interval(secs => k.iv * (1 + %(tolerance)s))
                    THEN extract(epoch FROM k.hi - (k.last_ts + make_interval(secs => k.iv)))
                ELSE 0 END AS tail_s
    FROM kept k
    LEFT JOIN ingestion_rollup u ON u.source_id = k.source_id AND u.data_item_id = k.data_item_id
     AND u.interval = 'm' AND u.bucket = k.ms
    LEFT JOIN gp ON gp.source_id = k.source_id AND gp.data_item_id = k.data_item_id
    LEFT JOIN ht ON ht.source_id = k.source_id AND ht.data_item_id = k.data_item_id
), removed AS (
    DELETE FROM quality_indicator_month q
    WHERE q.month = %(month)s::date AND (%(parks)s::bigint[] IS NULL OR q.park_id = ANY(%(parks)s::bigint[]))
    RETURNING 1
), ins AS (
    INSERT INTO quality_indicator_month (
        park_id, source_id, data_item_id, month, collection_method, automatic, interval_s, period_s, expected,
        present, gap_s, gaps, patched, readings, timely, flagged, hit, inconsistent, instrument_type,
        accuracy_class, required_class, accuracy_ok, computed_at)
    SELECT s.park_id, s.source_id, s.data_item_id, %(month)s::date, s.collection_method,
           s.collection_method <> 'manual', s.iv, round(extract(epoch FROM s.hi - s.lo))::bigint,
           ceil(extract(epoch FROM s.hi - s.lo) / s.iv)::int, s.present,
           round(least(s.gap_s + s.tail_s, extract(epoch FROM s.hi - s.lo)))::bigint,
           s.gaps + (s.tail_s > 0)::int, s.patched, s.readings, s.timely, s.flagged, s.hit,
           s.flagged + s.hit_only, s.instrument_type, s.accuracy_class, s.req,
           {meets_sql("s.accuracy_class", "s.req")}, %(now)s::timestamptz
    FROM full_rows s
    RETURNING 1
)
SELECT (SELECT count(*) FROM removed), (SELECT count(*) FROM ins)
"""


@dataclass(frozen=True)
class IndicatorRun:
    month: date
    rows: int = 0
    removed: int = 0
    seconds: float = 0.0


def month_start(value: date | datetime) -> date:
    return date(value.year, value.month, 1)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def previous_month(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def _manual_deadlines(month: date) -> tuple[list[date], list[date]]:
    """For each day that can fall in ``month`` in some park's zone, the working day by whose end a manual
    reading collected that day is due (R-9.1.4: within 1 working day)."""
    day, end = month - timedelta(days=1), next_month(month) + timedelta(days=1)
    days, due = [], []
    while day <= end:
        days.append(day)
        due.append(add_workdays(day, MANUAL_WORKDAYS))
        day += timedelta(days=1)
    return days, due


def refresh_month(month: date, *, parks: list[int] | None = None, now: datetime | None = None) -> IndicatorRun:
    """Recompute the quality indicators of ``month`` (R-9.1, R-9.1.1–R-9.1.4) for every series of ``parks``
    (None: every park), replacing the month's rows in one set-based statement (module docstring)."""
    started = time.monotonic()
    month = month_start(month)
    now = now or timezone.now()
    days, due = _manual_deadlines(month)
    params = {"month": month, "parks": list(parks) if parks is not None else None, "now": now,
              "cal_days": days, "cal_due": due, "manual": list(MANUAL_METHODS), "batch": list(BATCH_METHODS),
              "batch_s": BATCH_S, "realtime_s": REALTIME_S, "tolerance": float(DEFAULT_TOLERANCE),
              # every zone's month lies within these (UTC+14 .. UTC-12): the partitions pruned at planning
              "scan_lo": datetime(month.year, month.month, 1, tzinfo=UTC) - timedelta(hours=14),
              "scan_hi": datetime(next_month(month).year, next_month(month).month, 1, tzinfo=UTC)
              + timedelta(hours=12)}
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK])
        cur.execute(SERIES_TABLE)
        cur.execute("TRUNCATE quality_indicator_series")  # ON COMMIT empties it; not so inside an outer atomic
        cur.execute(SERIES, params)
        cur.execute("ANALYZE quality_indicator_series")
        cur.execute("SET LOCAL jit = off")  # compiling took ~0.2 s a month and saved less than that
        cur.execute(REFRESH, params)
        removed, rows = cur.fetchone()
    return IndicatorRun(month, rows=rows, removed=removed, seconds=time.monotonic() - started)


def months_with_data(parks: list[int] | None = None) -> list[date]:
    """The park-local months that have a monthly rollup (every month with a counted reading), oldest first."""
    with connection.cursor() as cur:
        cur.execute("""SELECT DISTINCT date_trunc('month', u.bucket AT TIME ZONE p.time_zone)::date
                       FROM ingestion_rollup u JOIN accounts_park p ON p.id = u.park_id
                       WHERE u.interval = 'm' AND (%(parks)s::bigint[] IS NULL OR u.park_id = ANY(%(parks)s))
                       ORDER BY 1""", {"parks": parks})
        return [row[0] for row in cur.fetchall()]


def refresh(*, months: list[date] | None = None, full: bool = False, parks: list[int] | None = None,
            now: datetime | None = None) -> list[IndicatorRun]:
    """R-9.1: the indicators of ``months``; by default this month and the last one (late data, a manual
    reading's working day across the month's end); ``full``: every month with data."""
    now = now or timezone.now()
    if full:
        months = months_with_data(parks)
    elif months is None:
        current = month_start(timezone.localtime(now))
        months = [previous_month(current), current]
    return [refresh_month(m, parks=parks, now=now) for m in months]
