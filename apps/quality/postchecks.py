"""Checks after storage (R-9.2.2): rule kinds of the post stage (apps/quality/rules.py: jump, frozen, outlier)
run over newly stored readings, each hit logged beside the reading with time, result and reason (R-9.2.3) in
quality_posthit, and alarmed. docs/post-checks.md.

What is checked: numeric data items bound to a source (the source-item bindings), in the ranges queued in
``quality_postcheck_dirty`` since the last run (a trigger copies every stored batch's series and range from the
rollups' dirty log when the rollup refresher takes it, every 10 s: migration quality 0007), each by the enabled
post rules whose park, source and data item scope match (an empty scope field matches all). Readings without a
finite value are skipped.

How it runs: the queue is taken once into a temporary scope table (one statement); then ONE statement per kind
(two for outliers: mean/stddev and the robust median/MAD) reads, for every (rule, series) pair, the queued range
widened by the neighbours a check needs (jump: one reading either side, frozen: n - 1, outlier: ``window`` before
and one after), in identity-index order, and finds the hits with window functions (lag, running sums, rolling
avg/stddev, the rolling window's median); hits are inserted with ON CONFLICT DO NOTHING on (rule, source, item,
ts), so a re-run, or a range queued twice, adds nothing and alarms nothing. The
alarm counts only new hits, one alarm per (park, source, code) through raise_alarms.

Stored readings are never touched (only ingest_readings writes them): "suspect" after storage is the hit row,
which the readings browser shows. A hit stays logged when later readings change the picture (a late reading
between two that made a jump): it records what the check saw then; the late reading is checked with its
neighbours on its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.db import connection, transaction

from apps.quality import errors
from apps.quality.models import Alarm
from apps.quality.services import AlarmRaise, raise_alarms

# pg_try_advisory_xact_lock key: "post". Two runs never overlap (the second finds the queue taken).
LOCK = 0x706F7374

SCOPE_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS quality_postcheck_scope (
    source_id bigint, data_item_id bigint, park_id bigint, lo timestamptz, hi timestamptz
) ON COMMIT DELETE ROWS
"""

TAKE = """
WITH taken AS (
    DELETE FROM quality_postcheck_dirty RETURNING source_id, data_item_id, lo, hi
), full_scan AS (
    SELECT EXISTS (SELECT 1 FROM taken WHERE source_id IS NULL) AS yes
), series AS (
    SELECT s.id AS source_id, b.dataitem_id AS data_item_id, s.park_id
    FROM sources_datasource s
    JOIN sources_datasource_data_items b ON b.datasource_id = s.id
    JOIN catalog_dataitem i ON i.id = b.dataitem_id
    WHERE i.data_type = 'number'
)
INSERT INTO quality_postcheck_scope (source_id, data_item_id, park_id, lo, hi)
SELECT se.source_id, se.data_item_id, se.park_id, '-infinity', 'infinity'
FROM series se WHERE (SELECT yes FROM full_scan)
UNION ALL
SELECT se.source_id, se.data_item_id, se.park_id, t.lo, t.hi FROM (
    SELECT source_id, data_item_id, min(lo) AS lo, max(hi) AS hi FROM taken WHERE source_id IS NOT NULL
    GROUP BY source_id, data_item_id
) t JOIN series se USING (source_id, data_item_id)
WHERE NOT (SELECT yes FROM full_scan)
"""

# The (rule, series) pairs of one kind: the rule's scope matches the series'.
WORK = """
work AS (
    SELECT r.id AS rule_id, r.severity, r.params, sc.source_id, sc.data_item_id, sc.park_id, sc.lo, sc.hi
    FROM quality_rule r JOIN quality_postcheck_scope sc
      ON (r.park_id IS NULL OR r.park_id = sc.park_id) AND (r.source_id IS NULL OR r.source_id = sc.source_id)
     AND (r.data_item_id IS NULL OR r.data_item_id = sc.data_item_id)
    WHERE r.enabled AND r.kind = %(kind)s AND coalesce((r.params->>'robust')::boolean, false) = %(robust)s
)"""

# The k-th stored reading before lo / after hi (k >= 1), or ±infinity when there are fewer: the window's ends.
BEFORE = """coalesce((SELECT r.ts FROM ingestion_reading r WHERE r.source_id = w.source_id
    AND r.data_item_id = w.data_item_id AND r.ts < w.lo ORDER BY r.ts DESC OFFSET {k} - 1 LIMIT 1), '-infinity')"""
AFTER = """coalesce((SELECT r.ts FROM ingestion_reading r WHERE r.source_id = w.source_id
    AND r.data_item_id = w.data_item_id AND r.ts > w.hi ORDER BY r.ts OFFSET {k} - 1 LIMIT 1), 'infinity')"""

READINGS = """SELECT r.ts, r.value FROM ingestion_reading r
        WHERE r.source_id = w.source_id AND r.data_item_id = w.data_item_id AND r.ts >= w.p AND r.ts <= w.n
          AND r.value IS NOT NULL AND r.value NOT IN ('NaN', 'Infinity', '-Infinity')"""

INSERT = """
, ins AS (
    INSERT INTO quality_posthit (park_id, source_id, data_item_id, ts, rule_id, kind, severity, value, reason,
                                 checked_at)
    SELECT park_id, source_id, data_item_id, ts, rule_id, %(kind)s, severity, value, reason, now() FROM found
    ORDER BY rule_id, source_id, data_item_id, ts
    ON CONFLICT (rule_id, source_id, data_item_id, ts) DO NOTHING
    RETURNING park_id, source_id, rule_id
)
SELECT i.park_id, i.source_id, i.rule_id, r.name, r.severity, count(*), (SELECT count(*) FROM win)
FROM ins i JOIN quality_rule r ON r.id = i.rule_id
GROUP BY i.park_id, i.source_id, i.rule_id, r.name, r.severity
UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, 0, (SELECT count(*) FROM win)
"""

# Jump: the change from the reading before (per per_s seconds when given) beyond absolute or relative × |before|.
JUMP = f"""
WITH {WORK}, params AS (
    SELECT w.*, (w.params->>'absolute')::float8 AS absolute, (w.params->>'relative')::float8 AS relative,
           (w.params->>'per_s')::float8 AS per_s FROM work w
), win AS (
    SELECT w.*, {BEFORE.format(k=1)} AS p, {AFTER.format(k=1)} AS n FROM params w
), found AS (
    SELECT w.park_id, w.source_id, w.data_item_id, w.rule_id, w.severity, x.ts, x.value,
           jsonb_build_object('previous', x.prev, 'previous_ts', x.prev_ts, 'change', x.change,
                              'absolute', w.absolute, 'relative', w.relative, 'per_s', w.per_s) AS reason
    FROM win w CROSS JOIN LATERAL (
        SELECT y.*, CASE WHEN w.per_s IS NULL THEN y.value - y.prev
                         ELSE (y.value - y.prev) * w.per_s / nullif(extract(epoch FROM y.ts - y.prev_ts), 0)
                    END AS change
        FROM (SELECT q.ts, q.value, lag(q.value) OVER o AS prev, lag(q.ts) OVER o AS prev_ts
              FROM ({READINGS}) q WINDOW o AS (ORDER BY q.ts)) y
    ) x
    WHERE x.prev IS NOT NULL AND x.ts >= w.lo
      AND ((w.absolute IS NOT NULL AND abs(x.change) > w.absolute)
           OR (w.relative IS NOT NULL AND x.prev <> 0 AND abs(x.change) > w.relative * abs(x.prev)))
){INSERT}"""

# Frozen: runs of identical non-zero values (a new run starts where the value differs from the one before), n or
# more long: each reading of the run is a hit.
FROZEN = f"""
WITH {WORK}, params AS (
    SELECT w.*, (w.params->>'n')::int AS need FROM work w
), win AS (
    SELECT w.*, {BEFORE.format(k="w.need - 1")} AS p, {AFTER.format(k="w.need - 1")} AS n FROM params w
), found AS (
    SELECT w.park_id, w.source_id, w.data_item_id, w.rule_id, w.severity, x.ts, x.value,
           jsonb_build_object('n', w.need, 'run', x.run, 'run_from', x.run_from, 'run_to', x.run_to) AS reason
    FROM win w CROSS JOIN LATERAL (
        SELECT z.ts, z.value, count(*) OVER g AS run, min(z.ts) OVER g AS run_from, max(z.ts) OVER g AS run_to
        FROM (SELECT y.ts, y.value, sum(y.brk) OVER (ORDER BY y.ts) AS grp
              FROM (SELECT q.ts, q.value, CASE WHEN q.value = lag(q.value) OVER (ORDER BY q.ts) THEN 0 ELSE 1 END
                           AS brk
                    FROM ({READINGS}) q) y) z
        WINDOW g AS (PARTITION BY z.grp)
    ) x
    WHERE x.value <> 0 AND x.run >= w.need
){INSERT}"""

# Outlier: |v - mean| > k × sample standard deviation of the `window` readings before (a full window only).
OUTLIER = f"""
WITH {WORK}, params AS (
    SELECT w.*, (w.params->>'window')::int AS size, (w.params->>'k')::float8 AS k FROM work w
), win AS (
    SELECT w.*, {BEFORE.format(k="w.size")} AS p, {AFTER.format(k=1)} AS n FROM params w
), found AS (
    SELECT w.park_id, w.source_id, w.data_item_id, w.rule_id, w.severity, x.ts, x.value,
           jsonb_build_object('mean', x.mean, 'stddev', x.sd, 'window', w.size, 'k', w.k,
                              'z', (x.value - x.mean) / x.sd) AS reason
    FROM win w CROSS JOIN LATERAL (
        SELECT q.ts, q.value, count(*) OVER o AS have, avg(q.value) OVER o AS mean, stddev_samp(q.value) OVER o AS sd
        FROM ({READINGS}) q
        WINDOW o AS (ORDER BY q.ts ROWS BETWEEN w.size PRECEDING AND 1 PRECEDING)
    ) x
    WHERE x.ts >= w.lo AND x.have = w.size AND x.sd > 0 AND abs(x.value - x.mean) > w.k * x.sd
){INSERT}"""

# Robust outlier: |v - median| > k × MAD × 1.4826 of the `window` readings before (the MAD scaled to a standard
# deviation for normal data), so one earlier spike in the window does not hide the next. Medians have no moving
# window aggregate: each reading's window is gathered (array_agg over the frame) and its median taken, still
# inside the one statement; dearer per reading than the mean/stddev variant.
OUTLIER_ROBUST = f"""
WITH {WORK}, params AS (
    SELECT w.*, (w.params->>'window')::int AS size, (w.params->>'k')::float8 AS k FROM work w
), win AS (
    SELECT w.*, {BEFORE.format(k="w.size")} AS p, {AFTER.format(k=1)} AS n FROM params w
), found AS (
    SELECT w.park_id, w.source_id, w.data_item_id, w.rule_id, w.severity, x.ts, x.value,
           jsonb_build_object('median', m.med, 'mad', d.mad, 'window', w.size, 'k', w.k, 'robust', true,
                              'z', (x.value - m.med) / d.mad) AS reason
    FROM win w CROSS JOIN LATERAL (
        SELECT q.ts, q.value, count(*) OVER o AS have, array_agg(q.value) OVER o AS prior
        FROM ({READINGS}) q
        WINDOW o AS (ORDER BY q.ts ROWS BETWEEN w.size PRECEDING AND 1 PRECEDING)
    ) x
    CROSS JOIN LATERAL (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY u) AS med FROM unnest(x.prior) u) m
    CROSS JOIN LATERAL (SELECT 1.4826 * percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(u - m.med)) AS mad
                        FROM unnest(x.prior) u) d
    WHERE x.ts >= w.lo AND x.have = w.size AND d.mad > 0 AND abs(x.value - m.med) > w.k * d.mad
){INSERT}"""

# (label, kind, robust, statement, code): one statement each per run.
STATEMENTS = [("jump", "jump", False, JUMP, errors.E3010), ("frozen", "frozen", False, FROZEN, errors.E3011),
              ("outlier", "outlier", False, OUTLIER, errors.E3012),
              ("outlier robust", "outlier", True, OUTLIER_ROBUST, errors.E3012)]


@dataclass
class PostRun:
    full: bool = False
    series: int = 0
    checked: dict = field(default_factory=dict)  # statement -> (rule, series) pairs checked
    hits: dict = field(default_factory=dict)  # kind -> new hits
    timings: dict = field(default_factory=dict)  # statement -> seconds
    busy: bool = False
    seconds: float = 0.0


def run_post_checks(*, full: bool = False) -> PostRun:
    """Run the checks after storage (R-9.2.2) over the readings stored since the last run: one set-based
    statement per kind (module docstring), each new hit logged with time, result and reason (R-9.2.3) and
    alarmed through raise_alarms; ``full`` checks every stored reading instead. Idempotent. Runs under an
    advisory lock: a run that finds another in progress returns ``busy`` and leaves the queue to it."""
    started = time.monotonic()
    run = PostRun()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK])
        if not cur.fetchone()[0]:
            return PostRun(busy=True, seconds=time.monotonic() - started)
        if full:
            cur.execute("INSERT INTO quality_postcheck_dirty (source_id) VALUES (NULL)")
        cur.execute(SCOPE_TABLE)
        cur.execute("DELETE FROM quality_postcheck_scope")
        cur.execute(TAKE)
        run.series = cur.rowcount
        run.full = full or bool(run.series and _was_full(cur))
        problems = []
        for label, kind, robust, sql, code in STATEMENTS:
            t0 = time.monotonic()
            cur.execute(sql, {"kind": kind, "robust": robust})
            rows = cur.fetchall()
            run.timings[label] = time.monotonic() - t0
            run.checked[label] = rows[0][6] if rows else 0
            run.hits.setdefault(kind, 0)
            for park_id, source_id, _rule_id, name, severity, count, _pairs in rows:
                if park_id is None:
                    continue
                run.hits[kind] += count
                msg = code.messages(count=count, rule=name)
                problems.append(AlarmRaise(park_id, source_id, Alarm.Kind.VALIDATION, code.code, msg["zh"],
                                           msg["en"], count, severity))
        raise_alarms(problems)
    run.seconds = time.monotonic() - started
    return run


def _was_full(cur) -> bool:
    cur.execute("SELECT bool_or(lo = '-infinity') FROM quality_postcheck_scope")
    return bool(cur.fetchone()[0])
