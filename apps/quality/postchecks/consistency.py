"""Consistency checks after storage (R-9.2.2, R-9.1.3): balance groups, ratios of two data items, and the same
series arriving from two sources. docs/post-checks.md.

Balance groups and ratios judge whole park-local hours, days or months from the rollups (apps/ingestion/rollups.py;
the sums there count effective values, docs/rollups.md), one statement each for every group or rule:

- an interval is judged once it has ended and ``POST_CHECK_SETTLE_S`` more seconds have passed (late readings of
  a sub-meter are in by then). Each check keeps how far it has looked in ``quality_consistency_mark`` (one row
  per check): a run judges the intervals that ended since, and, again, the already judged intervals that a
  queued range (late data, a backfill, a correction) touches. A new check starts with the last interval ended.
- a balance group's main meter's value (sum or mean of its readings in the interval) against the sum of its
  sub-meters' values; an interval is judged only when every sub-meter has a rollup for it (a missing sub-meter
  is a gap, apps/quality/gaps.py, not an imbalance). An imbalance beyond the tolerance (the larger of the
  absolute one and the percentage of |main|) is a hit on the main meter's series for the interval.
- a ratio rule's numerator sum over its denominator sum, of the rule's source or of a whole park, outside
  [min, max]: a hit on the numerator's series (no source for a park) for the interval. A denominator of 0 or
  none is not judged.

The duplicate check reads readings: for every queued series in a duplicate rule's scope, a first pass over the
touched hours' rollups finds the other sources of the park whose hour has the same minimum and maximum within
``epsilon`` (a hash join on the minimum's cell of width 2 × epsilon and its two neighbours: near-linear in the
sources of a park, never every pair), then only those pairs' readings of the park-local day are joined on the
timestamp and counted. A day with at least ``min_points`` matching non-zero values, and at least ``share`` of the
common timestamps matching, is a hit on both sources for the day.

Hits go to quality_posthit with ``ts``/``until`` the interval or day, ON CONFLICT DO NOTHING: re-runs add nothing.
"""

from __future__ import annotations

from apps.quality import errors
from apps.quality.models import Alarm
from apps.quality.services import AlarmRaise

STEP = "CASE {iv} WHEN 'h' THEN interval '1 hour' WHEN 'd' THEN interval '1 day' ELSE interval '1 month' END"
FIELD = "CASE {iv} WHEN 'h' THEN 'hour' WHEN 'd' THEN 'day' ELSE 'month' END"
END = "(((({b}) AT TIME ZONE {tz}) + {step}) AT TIME ZONE {tz})"

MARKS = """
INSERT INTO quality_consistency_mark (check_key, checked_until)
SELECT k, now() - make_interval(secs => %(settle)s) FROM unnest(%(keys)s::text[]) AS k
ON CONFLICT (check_key) DO UPDATE SET checked_until = EXCLUDED.checked_until
"""

# --- balance groups ----------------------------------------------------------------------------------------------

BALANCE = f"""
WITH g AS (
    SELECT bg.id, bg.park_id, bg.name, bg.main_source_id, bg.main_item_id, bg.interval AS iv, bg.aggregate,
           bg.tolerance_pct, bg.tolerance_abs, bg.severity, p.time_zone AS tz, {STEP.format(iv="bg.interval")} AS step,
           {FIELD.format(iv="bg.interval")} AS unit, now() - make_interval(secs => %(settle)s) AS upto, m.checked_until
    FROM quality_balancegroup bg JOIN accounts_park p ON p.id = bg.park_id
    LEFT JOIN quality_consistency_mark m ON m.check_key = 'balance:' || bg.id
    WHERE bg.enabled AND EXISTS (SELECT 1 FROM quality_balancemember x WHERE x.group_id = bg.id)
), series AS (
    SELECT g.id AS gid, g.main_source_id AS source_id, g.main_item_id AS data_item_id FROM g
    UNION SELECT m.group_id, m.source_id, m.data_item_id FROM quality_balancemember m JOIN g ON g.id = m.group_id
), buckets AS (
    SELECT g.id AS gid, r.bucket FROM g JOIN ingestion_rollup r
      ON r.source_id = g.main_source_id AND r.data_item_id = g.main_item_id AND r.interval = g.iv
     AND r.bucket > coalesce(g.checked_until, g.upto - g.step) - g.step - interval '1 day' AND r.bucket <= g.upto
    WHERE {END.format(b="r.bucket", tz="g.tz", step="g.step")} > coalesce(g.checked_until, g.upto - g.step)
      AND {END.format(b="r.bucket", tz="g.tz", step="g.step")} <= g.upto
    UNION
    SELECT g.id, r.bucket FROM series s JOIN g ON g.id = s.gid
    JOIN quality_postcheck_scope sc ON sc.source_id = s.source_id AND sc.data_item_id = s.data_item_id
    JOIN ingestion_rollup r
      ON r.source_id = g.main_source_id AND r.data_item_id = g.main_item_id AND r.interval = g.iv
     AND r.bucket >= date_trunc(g.unit, sc.lo, g.tz) AND r.bucket <= sc.hi
    WHERE {END.format(b="r.bucket", tz="g.tz", step="g.step")} <= g.upto
), judged AS (
    SELECT g.*, b.bucket, {END.format(b="b.bucket", tz="g.tz", step="g.step")} AS until,
           CASE g.aggregate WHEN 'mean' THEN mr.sum / mr.count ELSE mr.sum END AS main,
           ms.total, ms.members, ms.present
    FROM buckets b JOIN g ON g.id = b.gid
    JOIN ingestion_rollup mr ON mr.source_id = g.main_source_id AND mr.data_item_id = g.main_item_id
     AND mr.interval = g.iv AND mr.bucket = b.bucket
    CROSS JOIN LATERAL (
        SELECT count(*) AS members, count(r.bucket) AS present,
               sum(CASE g.aggregate WHEN 'mean' THEN r.sum / r.count ELSE r.sum END) AS total
        FROM quality_balancemember m LEFT JOIN ingestion_rollup r
          ON r.source_id = m.source_id AND r.data_item_id = m.data_item_id AND r.interval = g.iv
         AND r.bucket = b.bucket
        WHERE m.group_id = g.id
    ) ms
), found AS (
    SELECT j.*, j.main - j.total AS difference,
           greatest(coalesce(j.tolerance_abs, 0), coalesce(j.tolerance_pct, 0) / 100 * abs(j.main)) AS tolerance
    FROM judged j WHERE j.present = j.members
), ins AS (
    INSERT INTO quality_posthit (park_id, source_id, data_item_id, ts, until, rule_id, group_id, kind, severity,
                                 value, reason, checked_at)
    SELECT park_id, main_source_id, main_item_id, bucket, until, NULL, id, 'balance', severity, main,
           jsonb_build_object('main', main, 'sum', total, 'difference', difference, 'tolerance', tolerance,
                              'tolerance_pct', tolerance_pct, 'tolerance_abs', tolerance_abs,
                              'members', members, 'interval', iv, 'aggregate', aggregate), now()
    FROM found WHERE abs(difference) > tolerance
    ORDER BY id, bucket
    ON CONFLICT (rule_id, group_id, source_id, data_item_id, ts) DO NOTHING
    RETURNING park_id, source_id, group_id, ts, reason
)
SELECT i.park_id, i.source_id, g.name, g.severity, count(*), min(i.ts),
       (array_agg(i.reason ORDER BY i.ts))[1]
FROM ins i JOIN quality_balancegroup g ON g.id = i.group_id
GROUP BY i.park_id, i.source_id, g.id, g.name, g.severity
"""

# --- ratios --------------------------------------------------------------------------------------------------------

RATIO = f"""
WITH rr AS (
    SELECT r.id, r.name, r.severity, r.park_id, r.source_id, n.id AS num, d.id AS den,
           (r.params->>'min')::float8 AS lo, (r.params->>'max')::float8 AS hi, iv,
           {STEP.format(iv="iv")} AS step, {FIELD.format(iv="iv")} AS unit,
           now() - make_interval(secs => %(settle)s) AS upto, m.checked_until
    FROM quality_rule r
    CROSS JOIN LATERAL (SELECT CASE r.params->>'interval' WHEN 'hour' THEN 'h' WHEN 'month' THEN 'm' ELSE 'd' END
                        AS iv) i
    JOIN catalog_dataitem n ON n.code = r.params->>'numerator'
    JOIN catalog_dataitem d ON d.code = r.params->>'denominator'
    LEFT JOIN quality_consistency_mark m ON m.check_key = 'ratio:' || r.id
    WHERE r.enabled AND r.kind = 'ratio'
), units AS (  -- the rule's source, or each park in its scope
    SELECT rr.*, p.id AS pid, p.time_zone AS tz FROM rr JOIN accounts_park p
      ON (rr.park_id IS NULL OR p.id = rr.park_id)
     AND (rr.source_id IS NULL OR p.id = (SELECT s.park_id FROM sources_datasource s WHERE s.id = rr.source_id))
), buckets AS (
    SELECT DISTINCT u.id, u.pid, r.bucket FROM units u JOIN ingestion_rollup r
      ON r.park_id = u.pid AND r.interval = u.iv
     AND r.bucket > coalesce(u.checked_until, u.upto - u.step) - u.step - interval '1 day' AND r.bucket <= u.upto
    WHERE r.data_item_id = u.num AND (u.source_id IS NULL OR r.source_id = u.source_id)
      AND {END.format(b="r.bucket", tz="u.tz", step="u.step")} > coalesce(u.checked_until, u.upto - u.step)
      AND {END.format(b="r.bucket", tz="u.tz", step="u.step")} <= u.upto
    UNION
    SELECT u.id, u.pid, r.bucket FROM units u
    JOIN quality_postcheck_scope sc ON sc.park_id = u.pid AND sc.data_item_id IN (u.num, u.den)
     AND (u.source_id IS NULL OR sc.source_id = u.source_id)
    JOIN ingestion_rollup r ON r.source_id = sc.source_id AND r.data_item_id = sc.data_item_id
     AND r.interval = u.iv AND r.bucket >= date_trunc(u.unit, sc.lo, u.tz) AND r.bucket <= sc.hi
    WHERE {END.format(b="r.bucket", tz="u.tz", step="u.step")} <= u.upto
), judged AS (
    SELECT u.*, b.bucket, {END.format(b="b.bucket", tz="u.tz", step="u.step")} AS until, v.numerator, v.denominator
    FROM buckets b JOIN units u ON u.id = b.id AND u.pid = b.pid
    CROSS JOIN LATERAL (
        SELECT sum(r.sum) FILTER (WHERE r.data_item_id = u.num) AS numerator,
               sum(r.sum) FILTER (WHERE r.data_item_id = u.den) AS denominator
        FROM ingestion_rollup r
        WHERE r.park_id = u.pid AND r.interval = u.iv AND r.bucket = b.bucket AND r.data_item_id IN (u.num, u.den)
          AND (u.source_id IS NULL OR r.source_id = u.source_id)
    ) v
), found AS (
    SELECT j.*, j.numerator / j.denominator AS ratio FROM judged j
    WHERE j.denominator <> 0 AND j.numerator IS NOT NULL
), ins AS (
    INSERT INTO quality_posthit (park_id, source_id, data_item_id, ts, until, rule_id, group_id, kind, severity,
                                 value, reason, checked_at)
    SELECT pid, source_id, num, bucket, until, id, NULL, 'ratio', severity, ratio,
           jsonb_build_object('numerator', numerator, 'denominator', denominator, 'ratio', ratio, 'min', lo,
                              'max', hi, 'interval', iv), now()
    FROM found WHERE ratio < coalesce(lo, '-infinity') OR ratio > coalesce(hi, 'infinity')
    ORDER BY id, pid, bucket
    ON CONFLICT (rule_id, group_id, source_id, data_item_id, ts) DO NOTHING
    RETURNING park_id, source_id, rule_id, ts, reason
)
SELECT i.park_id, i.source_id, r.name, r.severity, count(*), min(i.ts), (array_agg(i.reason ORDER BY i.ts))[1]
FROM ins i JOIN quality_rule r ON r.id = i.rule_id
GROUP BY i.park_id, i.source_id, r.id, r.name, r.severity
"""

# --- the same series from two sources -----------------------------------------------------------------------------

DUPLICATE = """
WITH work AS (
    SELECT r.id AS rule_id, r.severity, (r.params->>'min_points')::int AS need,
           coalesce((r.params->>'epsilon')::float8, 0) AS eps, coalesce((r.params->>'share')::float8, 0.9) AS share,
           sc.source_id, sc.data_item_id, sc.park_id, p.time_zone AS tz, sc.lo, sc.hi
    FROM quality_rule r JOIN quality_postcheck_scope sc
      ON (r.park_id IS NULL OR r.park_id = sc.park_id) AND (r.source_id IS NULL OR r.source_id = sc.source_id)
     AND (r.data_item_id IS NULL OR r.data_item_id = sc.data_item_id)
    JOIN accounts_park p ON p.id = sc.park_id
    WHERE r.enabled AND r.kind = 'duplicate'
), mine AS (  -- the touched hours of each queued series, their minimum's cell
    SELECT w.*, h.bucket, h.min, h.max, floor(h.min / greatest(2 * w.eps, 1e-300)) AS cell
    FROM work w JOIN ingestion_rollup h ON h.source_id = w.source_id AND h.data_item_id = w.data_item_id
     AND h.interval = 'h' AND h.bucket >= date_trunc('hour', w.lo, w.tz) AND h.bucket <= w.hi
    WHERE h.max <> 0 OR h.min <> 0
), theirs AS (  -- the other series of the park with the same item in those hours
    SELECT DISTINCT h.park_id, h.data_item_id, h.bucket, h.source_id, h.min, h.max,
           floor(h.min / greatest(2 * m.eps, 1e-300)) + o.o AS cell
    FROM (SELECT DISTINCT park_id, data_item_id, bucket, eps FROM mine) m
    JOIN ingestion_rollup h ON h.park_id = m.park_id AND h.interval = 'h' AND h.bucket = m.bucket
     AND h.data_item_id = m.data_item_id
    CROSS JOIN (VALUES (-1), (0), (1)) AS o(o)
), pairs AS (  -- candidate pairs and the park-local days to count
    SELECT DISTINCT m.rule_id, m.severity, m.need, m.eps, m.share, m.park_id, m.data_item_id, m.tz,
           m.source_id, t.source_id AS other, date_trunc('day', m.bucket, m.tz) AS day
    FROM mine m JOIN theirs t ON t.park_id = m.park_id AND t.data_item_id = m.data_item_id
     AND t.bucket = m.bucket AND t.cell = m.cell AND t.source_id <> m.source_id
    WHERE abs(t.min - m.min) <= m.eps AND abs(t.max - m.max) <= m.eps
), counted AS (
    SELECT p.*, ((p.day AT TIME ZONE p.tz) + interval '1 day') AT TIME ZONE p.tz AS until, c.*
    FROM pairs p CROSS JOIN LATERAL (
        SELECT count(*) AS common,
               count(*) FILTER (WHERE a.value <> 0 AND abs(a.value - b.value) <= p.eps) AS matched,
               min(a.ts) FILTER (WHERE a.value <> 0 AND abs(a.value - b.value) <= p.eps) AS first,
               max(a.ts) FILTER (WHERE a.value <> 0 AND abs(a.value - b.value) <= p.eps) AS last
        FROM ingestion_reading a JOIN ingestion_reading b
          ON b.source_id = p.other AND b.data_item_id = p.data_item_id AND b.ts = a.ts
        WHERE a.source_id = p.source_id AND a.data_item_id = p.data_item_id
          AND a.ts >= p.day AND a.ts < ((p.day AT TIME ZONE p.tz) + interval '1 day') AT TIME ZONE p.tz
          AND a.value IS NOT NULL AND b.value IS NOT NULL AND a.value NOT IN ('NaN', 'Infinity', '-Infinity')
    ) c
), found AS (
    SELECT DISTINCT ON (rule_id, s, data_item_id, day) rule_id, severity, park_id, data_item_id, day, until,
           s, o, matched, common, first, last, eps, need, share
    FROM counted CROSS JOIN LATERAL (VALUES (source_id, other), (other, source_id)) AS x(s, o)
    WHERE matched >= need AND matched >= share * common
    ORDER BY rule_id, s, data_item_id, day, o
), ins AS (
    INSERT INTO quality_posthit (park_id, source_id, data_item_id, ts, until, rule_id, group_id, kind, severity,
                                 value, reason, checked_at)
    SELECT f.park_id, f.s, f.data_item_id, f.day, f.until, f.rule_id, NULL, 'duplicate', f.severity, NULL,
           jsonb_build_object('other_source', f.o, 'other', ds.source_id, 'matched', f.matched,
                              'common', f.common, 'first', f.first, 'last', f.last, 'epsilon', f.eps,
                              'min_points', f.need, 'share', f.share), now()
    FROM found f JOIN sources_datasource ds ON ds.id = f.o
    ORDER BY f.rule_id, f.s, f.day
    ON CONFLICT (rule_id, group_id, source_id, data_item_id, ts) DO NOTHING
    RETURNING park_id, source_id, rule_id, ts, reason
)
SELECT i.park_id, i.source_id, r.name, r.severity, count(*), min(i.ts), (array_agg(i.reason ORDER BY i.ts))[1],
       s.source_id
FROM ins i JOIN quality_rule r ON r.id = i.rule_id JOIN sources_datasource s ON s.id = i.source_id
GROUP BY i.park_id, i.source_id, s.source_id, r.id, r.name, r.severity
"""


def _n(v) -> str:
    return "?" if not isinstance(v, (int, float)) else f"{v:.6g}"


def _local(ts, tz="Asia/Shanghai") -> str:
    from zoneinfo import ZoneInfo

    return ts.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def _rows(cur):
    """The statement's rows, the reason (jsonb, last but one column or last) decoded."""
    import json

    return [tuple(json.loads(v) if i == 6 and isinstance(v, str) else v for i, v in enumerate(row))
            for row in cur.fetchall()]


def run(cur, settle: float, hits: dict, timings: dict) -> list[AlarmRaise]:
    """The three consistency checks in the caller's transaction (the scope table taken already): each new hit
    logged, the alarms to raise returned, the marks of the period checks moved on."""
    import time

    problems = []
    t0 = time.monotonic()
    cur.execute(BALANCE, {"settle": settle})
    hits["balance"] = 0
    for park_id, source_id, name, severity, count, at, reason in _rows(cur):
        hits["balance"] += count
        msg = errors.E3013.messages(group=name, count=count, at=_local(at), main=_n(reason.get("main")),
                                    sum=_n(reason.get("sum")), difference=_n(reason.get("difference")),
                                    tolerance=_n(reason.get("tolerance")))
        problems.append(AlarmRaise(park_id, source_id, Alarm.Kind.VALIDATION, "E3013", msg["zh"], msg["en"], count,
                                   severity))
    timings["balance"] = time.monotonic() - t0
    t0 = time.monotonic()
    cur.execute(RATIO, {"settle": settle})
    hits["ratio"] = 0
    for park_id, source_id, name, severity, count, at, reason in _rows(cur):
        hits["ratio"] += count
        msg = errors.E3014.messages(rule=name, count=count, at=_local(at), ratio=_n(reason.get("ratio")),
                                    min=_n(reason.get("min")) if reason.get("min") is not None else "-∞",
                                    max=_n(reason.get("max")) if reason.get("max") is not None else "+∞")
        problems.append(AlarmRaise(park_id, source_id, Alarm.Kind.VALIDATION, "E3014", msg["zh"], msg["en"], count,
                                   severity))
    timings["ratio"] = time.monotonic() - t0
    cur.execute("SELECT 'balance:' || id FROM quality_balancegroup WHERE enabled UNION ALL "
                "SELECT 'ratio:' || id FROM quality_rule WHERE enabled AND kind = 'ratio'")
    keys = [k for (k,) in cur.fetchall()]
    if keys:
        cur.execute(MARKS, {"settle": settle, "keys": keys})
    t0 = time.monotonic()
    cur.execute(DUPLICATE)
    hits["duplicate"] = 0
    for park_id, source_id, name, severity, count, at, reason, code in _rows(cur):
        hits["duplicate"] += count
        msg = errors.E3015.messages(rule=name, count=count, source=code, other=reason.get("other", "?"),
                                    day=_local(at)[:10], matched=reason.get("matched", "?"))
        problems.append(AlarmRaise(park_id, source_id, Alarm.Kind.VALIDATION, "E3015", msg["zh"], msg["en"], count,
                                   severity))
    timings["duplicate"] = time.monotonic() - t0
    return problems
