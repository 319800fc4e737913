"""Checks after storage of single readings (R-9.2.2): the post-stage rule kinds jump, frozen and outlier
(apps/quality/rules.py) over newly stored readings, each hit logged beside the reading with time, result and reason
(R-9.2.3) in quality_posthit. docs/post-checks.md.

What is checked: numeric data items bound to a source (the source-item bindings), in the ranges queued in
``quality_postcheck_dirty`` since the last run (a trigger copies every stored batch's series and range from the
rollups' dirty log when the rollup refresher takes it: migration quality 0007), each by the enabled post rules
whose park, source and data item scope match (an empty scope field matches all).
Readings without a finite value are skipped.

How it runs: the queue is taken once into a temporary scope table (one statement, ``TAKE``); then ONE statement
(``ONE_PASS``) reads, for every queued series, the range widened by the most neighbours any of its rules needs,
once, in identity-index order, and judges each reading by each of the series' rules with window functions (lag,
run positions, rolling avg/stddev); the robust outlier variant (median/MAD) is a statement of its own. Hits are
inserted with ON CONFLICT DO NOTHING on the check and the reading, so a re-run, or a range queued twice, adds
nothing and alarms nothing; the alarm counts only new hits, one alarm per (park, source, code).

Stored readings are never touched (only ingest_readings writes them): "suspect" after storage is the hit row,
which the readings browser shows. A hit stays logged when later readings change the picture (a late reading
between two that made a jump): it records what the check saw then; the late reading is checked with its
neighbours on its own.
"""

from __future__ import annotations

from apps.quality import errors

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
    ON CONFLICT (rule_id, group_id, source_id, data_item_id, ts) DO NOTHING
    RETURNING park_id, source_id, rule_id
)
SELECT i.park_id, i.source_id, i.rule_id, r.name, r.severity, count(*), (SELECT count(*) FROM win)
FROM ins i JOIN quality_rule r ON r.id = i.rule_id
GROUP BY i.park_id, i.source_id, i.rule_id, r.name, r.severity
UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, 0, (SELECT count(*) FROM win)
"""

# Jump, frozen and outlier (mean/stddev) in ONE pass over the readings (issue #12: a full run read the interleaved
# series once per kind before). Per queued series, the range widened by the most neighbours any of its rules needs
# is read once in identity-index order; one level of window functions over that order gives the reading before
# (jump), the run breaks (frozen) and the rolling count/avg/stddev of each distinct outlier window size (a WINDOW
# clause per size, all over the same order: one sort, one scan); one more level over the same order gives each
# reading's position in its run (no sort by run): a run's length is known at its last reading, and a frozen run
# found there is expanded to its readings by one index range read (runs are rare). Each scanned
# reading is then judged by each rule of the series: a join with the rules, not another read.
# Jump and outlier hits: from lo, and the one reading after the range whose neighbour before may have changed.
# Frozen hits: every reading of a run of n or more that ends in or after the range and starts in or before it.
ONE_PASS = """
WITH rules AS (
    SELECT r.id AS rule_id, r.kind, r.severity, r.park_id AS r_park, r.source_id AS r_source,
           r.data_item_id AS r_item, (r.params->>'absolute')::float8 AS absolute,
           (r.params->>'relative')::float8 AS relative, (r.params->>'per_s')::float8 AS per_s,
           (r.params->>'n')::int AS need, (r.params->>'window')::int AS size, (r.params->>'k')::float8 AS k
    FROM quality_rule r
    WHERE r.enabled AND (r.kind IN ('jump', 'frozen')
                         OR (r.kind = 'outlier' AND NOT coalesce((r.params->>'robust')::boolean, false)))
), work AS (
    SELECT sc.source_id, sc.data_item_id, sc.park_id, sc.lo, sc.hi,
           max(CASE ru.kind WHEN 'jump' THEN 1 WHEN 'frozen' THEN ru.need - 1 ELSE ru.size END) AS before_k,
           max(CASE ru.kind WHEN 'frozen' THEN ru.need - 1 ELSE 1 END) AS after_k,
           array_agg(ru.rule_id) AS rule_ids, array_agg(ru.kind) AS kinds, array_agg(ru.severity) AS severities,
           array_agg(ru.absolute) AS absolutes, array_agg(ru.relative) AS relatives, array_agg(ru.per_s) AS per_ss,
           array_agg(ru.need) AS needs, array_agg(ru.size) AS sizes, array_agg(ru.k) AS ks
    FROM quality_postcheck_scope sc JOIN rules ru
      ON (ru.r_park IS NULL OR ru.r_park = sc.park_id) AND (ru.r_source IS NULL OR ru.r_source = sc.source_id)
     AND (ru.r_item IS NULL OR ru.r_item = sc.data_item_id)
    GROUP BY sc.source_id, sc.data_item_id, sc.park_id, sc.lo, sc.hi
), win AS (
    SELECT w.*, {before} AS p, {after} AS n FROM work w
{scan}), judged AS (
    SELECT s.source_id, s.data_item_id, s.park_id, s.lo, s.hi, s.ts, s.value, s.prev, s.prev_ts, s.run,
           s.run_from, s.next IS DISTINCT FROM s.value AS run_end, ru.rule_id, ru.kind, ru.severity, ru.absolute,
           ru.relative, ru.per_s, ru.need, ru.size, ru.k,
           CASE WHEN ru.per_s IS NULL THEN s.value - s.prev
                ELSE (s.value - s.prev) * ru.per_s / nullif(extract(epoch FROM s.ts - s.prev_ts), 0) END AS change,
           {have} AS have, {mean} AS mean, {sd} AS sd
    -- the series' rules unnested beside each scanned reading (a lateral reference: the readings are scanned once
    -- per series, never once per rule)
    FROM scan s CROSS JOIN LATERAL unnest(s.rule_ids, s.kinds, s.severities, s.absolutes, s.relatives, s.per_ss,
                                          s.needs, s.sizes, s.ks)
         AS ru(rule_id, kind, severity, absolute, relative, per_s, need, size, k)
), found AS (
    SELECT park_id, source_id, data_item_id, rule_id, kind, severity, ts, value, run_from,
           CASE kind
               WHEN 'jump' THEN jsonb_build_object('previous', prev, 'previous_ts', prev_ts, 'change', change,
                                                   'absolute', absolute, 'relative', relative, 'per_s', per_s)
               WHEN 'frozen' THEN jsonb_build_object('n', need, 'run', run, 'run_from', run_from, 'run_to', ts)
               ELSE jsonb_build_object('mean', mean, 'stddev', sd, 'window', size, 'k', k, 'z', (value - mean) / sd)
           END AS reason
    FROM judged
    WHERE CASE kind
        WHEN 'jump' THEN prev IS NOT NULL AND ts >= lo AND (ts <= hi OR prev_ts <= hi)
             AND ((absolute IS NOT NULL AND abs(change) > absolute)
                  OR (relative IS NOT NULL AND prev <> 0 AND abs(change) > relative * abs(prev)))
        -- frozen: judged at the last reading of each run (its length known there), expanded below
        WHEN 'frozen' THEN run_end AND value <> 0 AND run >= need AND ts >= lo AND run_from <= hi
        WHEN 'outlier' THEN ts >= lo AND (ts <= hi OR prev_ts <= hi) AND have = size AND sd > 0
             AND abs(value - mean) > k * sd
        ELSE false
    END
), hits AS (  -- a frozen run's every reading, by one index range read per run found (runs are rare)
    SELECT f.park_id, f.source_id, f.data_item_id, f.rule_id, f.kind, f.severity, e.ts, e.value, f.reason
    FROM found f CROSS JOIN LATERAL (
        SELECT r.ts, r.value FROM ingestion_reading r
        WHERE f.kind = 'frozen' AND r.source_id = f.source_id AND r.data_item_id = f.data_item_id
          AND r.ts >= f.run_from AND r.ts <= f.ts
        UNION ALL SELECT f.ts, f.value WHERE f.kind <> 'frozen'
    ) e
), ins AS (
    INSERT INTO quality_posthit (park_id, source_id, data_item_id, ts, rule_id, kind, severity, value, reason,
                                 checked_at)
    SELECT park_id, source_id, data_item_id, ts, rule_id, kind, severity, value, reason, now() FROM hits
    ORDER BY rule_id, source_id, data_item_id, ts
    ON CONFLICT (rule_id, group_id, source_id, data_item_id, ts) DO NOTHING
    RETURNING park_id, source_id, rule_id, kind
)
SELECT i.park_id, i.source_id, i.rule_id, r.name, r.severity, count(*), (SELECT count(*) FROM win), i.kind
FROM ins i JOIN quality_rule r ON r.id = i.rule_id
GROUP BY i.park_id, i.source_id, i.rule_id, r.name, r.severity, i.kind
UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, 0, (SELECT count(*) FROM win), NULL
"""


# Incremental: each queued series' range read through the identity index.
SCAN_SERIES = """), scan AS (
    SELECT w.source_id, w.data_item_id, w.park_id, w.lo, w.hi, w.rule_ids, w.kinds, w.severities, w.absolutes,
           w.relatives, w.per_ss, w.needs, w.sizes, w.ks, x.*
    FROM win w CROSS JOIN LATERAL (
        SELECT y.*, y.rn - max(CASE WHEN y.brk = 1 THEN y.rn END) OVER o2 + 1 AS run,
               max(CASE WHEN y.brk = 1 THEN y.ts END) OVER o2 AS run_from
        FROM (SELECT q.ts, q.value, lag(q.value) OVER o AS prev, lag(q.ts) OVER o AS prev_ts,
                     lead(q.value) OVER o AS next, row_number() OVER o AS rn,
                     CASE WHEN q.value = lag(q.value) OVER o THEN 0 ELSE 1 END AS brk{stats}
              FROM ({readings}) q WINDOW o AS (ORDER BY q.ts){windows}) y
        WINDOW o2 AS (ORDER BY y.ts)
    ) x
"""

def one_pass_sql(sizes: list[int]) -> str:
    """ONE_PASS with a rolling window per distinct outlier ``sizes`` (whole numbers 3..1000, validated with the
    rule: safe to write into the statement)."""
    sizes = sorted({int(v) for v in sizes})
    stats = "".join(f", count(*) OVER o{w} AS have_{w}, avg(q.value) OVER o{w} AS mean_{w},"
                    f" stddev_samp(q.value) OVER o{w} AS sd_{w}" for w in sizes)
    windows = "".join(f", o{w} AS (ORDER BY q.ts ROWS BETWEEN {w} PRECEDING AND 1 PRECEDING)" for w in sizes)

    def pick(col, cast):
        if not sizes:
            return f"NULL::{cast}"
        return "CASE ru.size " + " ".join(f"WHEN {w} THEN s.{col}_{w}" for w in sizes) + " END"

    scan = SCAN_SERIES.format(stats=stats, readings=READINGS, windows=windows)
    return ONE_PASS.format(before=BEFORE.format(k="w.before_k"), after=AFTER.format(k="w.after_k"), scan=scan,
                           have=pick("have", "bigint"), mean=pick("mean", "float8"), sd=pick("sd", "float8"))


CODES = {"jump": errors.E3010, "frozen": errors.E3011, "outlier": errors.E3012}
SIZES = """SELECT DISTINCT (params->>'window')::int FROM quality_rule WHERE enabled AND kind = 'outlier'
           AND NOT coalesce((params->>'robust')::boolean, false)"""


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
STATEMENTS = [("outlier robust", "outlier", True, OUTLIER_ROBUST, errors.E3012)]
