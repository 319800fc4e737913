"""The set-based statements of the filling (R-9.3.2.1) and of the repair of minor anomalies (R-9.3.1).

Each reads the effective values (corrections_effective_reading: the latest revision, else the value stored) and
treats as valid a value that is finite and not flagged invalid; a profile never takes a point that is itself a
fill. Everything is computed in PostgreSQL, one statement per step, whatever the number of gaps or points."""

from apps.ingestion.models import Flag


def valid(alias: str, *, fills_too: bool = True) -> str:
    bad = Flag.INVALID if fills_too else Flag.INVALID | Flag.PATCHED
    return (f"{alias}.flags & {bad} = 0 AND {alias}.effective_value IS NOT NULL "
            f"AND {alias}.effective_value NOT IN ('NaN', 'Infinity', '-Infinity')")


# The readings either side of each gap, as the basis of its fill.
NEIGHBOURS = f"""
SELECT g.id, a.id, a.effective_value, b.id, b.effective_value
FROM quality_gap g
JOIN corrections_effective_reading a ON a.source_id = g.source_id AND a.data_item_id = g.data_item_id
     AND a.ts = g.start
JOIN corrections_effective_reading b ON b.source_id = g.source_id AND b.data_item_id = g.data_item_id
     AND b.ts = g."end"
WHERE g.id = ANY(%(ids)s) AND {valid("a")} AND {valid("b")}
"""

# The third step: the same hours of the previous day (else of the previous week) of the same series, taken when
# the reference has a valid, real point within half an interval of every point of the gap and of both its ends.
# The profile is pinned to the real readings either side:
# - register mode (the reference rises monotonically and the gap's end is not below its start, as a cumulative
#   register does): value = start + (end - start) × (p - p0) / (pN - p0): the reference's increments, scaled so
#   that the fill ends exactly at the next real reading, every step non-negative; the gap's consumption is
#   exactly end - start, as the register says;
# - otherwise (instantaneous or interval values): the reference plus an offset running linearly from
#   (start - p0) to (end - pN): the reference's shape, continuous with both real neighbours.
PROFILE = f"""
WITH g AS (
    SELECT g.id, g.source_id, g.data_item_id, g.start, g."end", g.interval_s, g.missing,
           a.effective_value AS va, b.effective_value AS vb
    FROM quality_gap g
    JOIN corrections_effective_reading a ON a.source_id = g.source_id AND a.data_item_id = g.data_item_id
         AND a.ts = g.start
    JOIN corrections_effective_reading b ON b.source_id = g.source_id AND b.data_item_id = g.data_item_id
         AND b.ts = g."end"
    WHERE g.id = ANY(%(ids)s) AND g.state = 'open' AND g."end" - g.start <= make_interval(secs => %(span)s)
      AND {valid("a")} AND {valid("b")}
), pts AS (
    SELECT g.id, k, CASE WHEN k > g.missing THEN g."end"
                         ELSE g.start + k * make_interval(secs => g.interval_s) END AS ts
    FROM g CROSS JOIN LATERAL generate_series(0, g.missing + 1) AS k
), ref AS (
    SELECT p.id, p.k, p.ts, l.lag_s, l.pref, x.ts AS ref_ts, x.v
    FROM pts p JOIN g USING (id)
    CROSS JOIN unnest(%(lags)s::int[]) WITH ORDINALITY AS l(lag_s, pref)
    LEFT JOIN LATERAL (
        SELECT e.ts, e.effective_value AS v FROM corrections_effective_reading e
        WHERE e.source_id = g.source_id AND e.data_item_id = g.data_item_id
          AND e.ts BETWEEN p.ts - make_interval(secs => l.lag_s + g.interval_s / 2.0)
                       AND p.ts - make_interval(secs => l.lag_s - g.interval_s / 2.0)
          AND {valid("e", fills_too=False)}
        ORDER BY abs(extract(epoch FROM e.ts - (p.ts - make_interval(secs => l.lag_s)))) LIMIT 1
    ) x ON true
), chosen AS (
    SELECT DISTINCT ON (id) id, lag_s FROM ref GROUP BY id, lag_s, pref HAVING count(v) = count(*)
    ORDER BY id, pref
), steps AS (
    SELECT r.id, r.k, r.ts, r.ref_ts, r.v, r.lag_s, r.v - lag(r.v) OVER (PARTITION BY r.id ORDER BY r.k) AS step
    FROM ref r JOIN chosen c USING (id, lag_s)
), shape AS (
    SELECT s.id, bool_and(s.step IS NULL OR s.step >= 0) AS rising,
           min(s.v) FILTER (WHERE s.k = 0) AS p0, min(s.v) FILTER (WHERE s.k = g.missing + 1) AS pn
    FROM steps s JOIN g USING (id) GROUP BY s.id, g.missing
)
SELECT g.id, s.ts,
       CASE WHEN m.rising AND g.vb >= g.va AND m.pn > m.p0
            THEN g.va + (g.vb - g.va) * (s.v - m.p0) / (m.pn - m.p0)
            ELSE s.v + (g.va - m.p0) + ((g.vb - m.pn) - (g.va - m.p0))
                 * extract(epoch FROM s.ts - g.start) / extract(epoch FROM g."end" - g.start) END AS value,
       s.lag_s, s.ref_ts, s.v, (m.rising AND g.vb >= g.va AND m.pn > m.p0) AS register
FROM steps s JOIN shape m USING (id) JOIN g USING (id)
WHERE s.k BETWEEN 1 AND g.missing AND s.ts < g."end"
ORDER BY g.id, s.ts
"""

# The fill's side rows: one per point the batch stored (a point that met a real reading stored meanwhile was
# a duplicate, never stored: the real reading stays).
FILL_ROWS = """
INSERT INTO quality_fill (reading_id, park_id, source_id, data_item_id, ts, gap_id, method, value, basis,
                          filled_at)
SELECT r.id, r.park_id, r.source_id, r.data_item_id, r.ts, %(gap)s, %(method)s, u.v, u.b::jsonb, %(now)s
FROM unnest(%(t)s::timestamptz[], %(v)s::float8[], %(b)s::text[]) AS u(t, v, b)
JOIN ingestion_reading r ON r.source_id = %(source)s AND r.data_item_id = %(item)s AND r.ts = u.t
WHERE r.batch_id = %(batch)s
ON CONFLICT (reading_id) DO NOTHING
"""

# Minor anomalies: one reading a check after storage found suspect (severity "flag"), between two real,
# valid, unflagged neighbours no further than 1.5 intervals away that no check found suspect, never revised
# before. Its repair is the linear interpolation of the neighbours' effective values.
REPAIRS = f"""
WITH hit AS (
    SELECT DISTINCT h.source_id, h.data_item_id, h.ts FROM quality_posthit h
    WHERE h.severity = 'flag' AND h.checked_at >= %(since)s
)
SELECT r.park_id, r.source_id, r.data_item_id, r.ts, r.id, r.value,
       p.id, p.ts, p.effective_value, n.id, n.ts, n.effective_value,
       p.effective_value + (n.effective_value - p.effective_value)
           * extract(epoch FROM r.ts - p.ts) / extract(epoch FROM n.ts - p.ts) AS repaired
FROM hit h
JOIN sources_datasource s ON s.id = h.source_id
JOIN ingestion_reading r ON r.source_id = h.source_id AND r.data_item_id = h.data_item_id AND r.ts = h.ts
CROSS JOIN LATERAL (SELECT e.* FROM corrections_effective_reading e WHERE e.source_id = h.source_id
                    AND e.data_item_id = h.data_item_id AND e.ts < h.ts ORDER BY e.ts DESC LIMIT 1) p
CROSS JOIN LATERAL (SELECT e.* FROM corrections_effective_reading e WHERE e.source_id = h.source_id
                    AND e.data_item_id = h.data_item_id AND e.ts > h.ts ORDER BY e.ts LIMIT 1) n
WHERE r.value IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM corrections_revision v WHERE v.source_id = h.source_id
                  AND v.data_item_id = h.data_item_id AND v.ts = h.ts)
  AND {valid("p", fills_too=False)} AND {valid("n", fills_too=False)}
  AND p.flags & {Flag.SUSPECT} = 0 AND n.flags & {Flag.SUSPECT} = 0
  AND NOT EXISTS (SELECT 1 FROM quality_posthit x WHERE x.source_id = h.source_id
                  AND x.data_item_id = h.data_item_id AND x.ts IN (p.ts, n.ts) AND x.severity = 'flag')
  AND h.ts - p.ts <= make_interval(secs => s.expected_interval_s * 1.5)
  AND n.ts - h.ts <= make_interval(secs => s.expected_interval_s * 1.5)
ORDER BY r.source_id, r.data_item_id, r.ts
LIMIT %(limit)s
"""
