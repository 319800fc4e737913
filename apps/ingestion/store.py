"""Set-based writes of one ingest batch: readings, rejections, events, counts, alarms, idempotency.

Every statement sends whole columns as PostgreSQL arrays (one round trip per table, never row by
row). Readings are inserted in identity order with ON CONFLICT DO NOTHING, so two batches that
carry the same readings at the same moment neither deadlock nor store anything twice: the second
waits for the first's commit, then finds the identities taken (R-8.4.2.4).
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from django.db import connection, transaction

from apps.core.text import pg_safe

# Readings travel by binary COPY into a per-connection staging table, then one set-based INSERT
# moves them in identity order. Binary COPY costs the worker about a tenth of spelling 10 arrays
# out as text, and the database parses nothing.
STAGE_CREATE = """
CREATE TEMP TABLE IF NOT EXISTS ingestion_reading_stage (
    i int4, p int8, s int8, d int8, t timestamptz, v float8, tv text, rv float8, ru text, st text, f int2
) ON COMMIT DELETE ROWS
"""
STAGE_COPY = "COPY ingestion_reading_stage (i, p, s, d, t, v, tv, rv, ru, st, f) FROM STDIN (FORMAT BINARY)"
STAGE_TYPES = ["int4", "int8", "int8", "int8", "timestamptz", "float8", "text", "float8", "text", "text", "int2"]
READING_INSERT = """
INSERT INTO ingestion_reading (park_id, source_id, data_item_id, ts, value, text_value, received_value,
                               received_unit, status, flags, channel, batch_id, received_at)
SELECT p, s, d, t, v, tv, rv, ru, st, f, %s, %s, %s FROM ingestion_reading_stage
ORDER BY s, d, t
ON CONFLICT (source_id, data_item_id, ts) DO NOTHING
"""
# Only when some rows were not inserted: which ones, by their index in the batch.
STAGE_DUPLICATES = """
SELECT st.i, r.flags & 16 <> 0 FROM ingestion_reading_stage st
JOIN ingestion_reading r ON r.source_id = st.s AND r.data_item_id = st.d AND r.ts = st.t
WHERE r.batch_id <> %s
"""

# Of the rows a batch found stored before, those whose stored reading is a fill not yet replaced by a real one
# (R-9.3.2.1: a real reading wins over a fill; apps/quality/filling.py). Run only for batches with repeats.
PATCHED_OF = """
SELECT r.source_id, r.data_item_id, r.ts
FROM unnest(%(s)s::bigint[], %(d)s::bigint[], %(t)s::timestamptz[]) AS u(s, d, t)
JOIN ingestion_reading r ON r.source_id = u.s AND r.data_item_id = u.d AND r.ts = u.t
WHERE r.flags & 16 <> 0
  AND NOT EXISTS (SELECT 1 FROM quality_fill f WHERE f.reading_id = r.id AND f.superseded_at IS NOT NULL)
"""

REJECTION_INSERT = """
INSERT INTO ingestion_rejection (batch_id, index, park_id, source_ref, data_code, code, field, message_zh,
                                 message_en, raw, raw_bytes, received_at)
SELECT %(batch)s, i, p, sr, dc, c, f, mz, me, r, rb, %(now)s
FROM unnest(%(i)s::int[], %(p)s::bigint[], %(sr)s::text[], %(dc)s::text[], %(c)s::text[], %(f)s::text[],
            %(mz)s::text[], %(me)s::text[], %(r)s::text[], %(rb)s::bytea[]) AS u(i, p, sr, dc, c, f, mz, me, r, rb)
"""

EVENT_INSERT = """
INSERT INTO ingestion_validationevent (batch_id, index, kind, code, source_ref, data_code, ts, value_repr,
                                       message_zh, message_en, rule_id)
SELECT %(batch)s, i, k, c, sr, dc, t, v, mz, me, r
FROM unnest(%(i)s::int[], %(k)s::text[], %(c)s::text[], %(sr)s::text[], %(dc)s::text[], %(t)s::timestamptz[],
            %(v)s::text[], %(mz)s::text[], %(me)s::text[], %(r)s::bigint[]) AS u(i, k, c, sr, dc, t, v, mz, me, r)
"""


# One row per series of the batch with the range of times it brought: the rollups' dirty log
# (apps/ingestion/rollups.py). Text values have no aggregate; every other row counts, duplicates too (a
# bucket recomputed for nothing is cheaper than telling them apart here).
DIRTY_FROM_STAGE = """
INSERT INTO ingestion_rollup_dirty (park_id, source_id, data_item_id, lo, hi)
SELECT p, s, d, min(t), max(t) FROM ingestion_reading_stage WHERE v IS NOT NULL GROUP BY p, s, d
"""


def mark_rollups_dirty(cur, sql: str = DIRTY_FROM_STAGE, params=None) -> None:
    """Queue the series and time ranges whose rollups must be recomputed, in the writer's transaction (so
    the queue entry commits with the readings or not at all). ``sql``: an INSERT INTO ingestion_rollup_dirty
    (park_id, source_id, data_item_id, lo, hi) SELECT ... of the writer's own rows; the default reads the
    ingest staging table. The revision writer (issue #10) calls it with its own statement; a single reading
    queues its own row inside ONE_READING_INSERT."""
    cur.execute(sql, params)


def raw_cursor() -> psycopg.Cursor:
    """A server-side-binding cursor on Django's own connection (so inside its transaction): arrays
    travel as parameters instead of being spelled out as SQL literals."""
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def claim_idempotency_key(cur, scope: str, key: str, request_hash: str, now: datetime):
    """Take the key for this transaction, or return (status, response, hash) of the request that took
    it first. A concurrent request with the same key waits here until the first one commits."""
    cur.execute(
        "INSERT INTO ingestion_idempotencykey (scope, key, request_hash, created_at) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (scope, key) DO NOTHING RETURNING id",
        (scope, key, request_hash, now),
    )
    row = cur.fetchone()
    if row is not None:
        return row[0], None
    cur.execute("SELECT status_code, response, request_hash FROM ingestion_idempotencykey "
                "WHERE scope = %s AND key = %s", (scope, key))
    return None, cur.fetchone()


def save_idempotent_response(cur, key_id: int, status: int, response: dict, batch_id: int | None) -> None:
    from psycopg.types.json import Jsonb

    cur.execute("UPDATE ingestion_idempotencykey SET status_code = %s, response = %s, batch_id = %s "
                "WHERE id = %s", (status, Jsonb(response), batch_id, key_id))


# The batch's id is taken from its sequence first, in the statement that declares this transaction the one that
# may write readings (the database's one-way-in guard, ingestion migration 0002: a statement trigger checks
# carbonpark.writer); its log row is written once, with its final counts, after the readings (insert_batch).
# The foreign keys pointing at it (rejections, events, Idempotency-Keys) are deferred to the commit.
# The same statement reads the ingestion configuration's version (apps.core.selectors.config_version), so that a
# batch costs no query of its own to learn whether the configuration it was checked against is still current.
BATCH_OPEN = ("SELECT nextval(pg_get_serial_sequence('ingestion_ingestbatch', 'id')), "
              "set_config('carbonpark.writer', 'ingest_readings', true), "
              "(SELECT version FROM core_configversion WHERE name = %s)")
BATCH_COLUMNS = ("id, received_at, channel, actor_label, park_id, total, accepted, duplicates, rejected, flagged, "
                 "warned")
BATCH_INSERT = f"INSERT INTO ingestion_ingestbatch ({BATCH_COLUMNS}) VALUES ({', '.join(['%s'] * 11)})"
# One reading (the common case over HTTP: a device pushing one reading per request): the row and the batch's log
# row in one statement, no staging table. The batch counts the reading as accepted or as a duplicate of an
# earlier batch (ON CONFLICT: the identity is taken), which the statement returns. A stored numeric reading queues
# its series and time for the rollups in the same statement (what mark_rollups_dirty does for a staged batch).
ONE_READING_INSERT = f"""
WITH r AS (
    INSERT INTO ingestion_reading (park_id, source_id, data_item_id, ts, value, text_value, received_value,
                                   received_unit, status, flags, channel, batch_id, received_at)
    VALUES (%(p)s, %(s)s, %(d)s, %(t)s, %(v)s, %(tv)s, %(rv)s, %(ru)s, %(st)s, %(f)s, %(channel)s, %(batch)s, %(now)s)
    ON CONFLICT (source_id, data_item_id, ts) DO NOTHING
    RETURNING park_id, source_id, data_item_id, ts, value
), dirty AS (
    INSERT INTO ingestion_rollup_dirty (park_id, source_id, data_item_id, lo, hi)
    SELECT park_id, source_id, data_item_id, ts, ts FROM r WHERE value IS NOT NULL
), n AS (SELECT count(*)::int AS stored FROM r)
INSERT INTO ingestion_ingestbatch ({BATCH_COLUMNS})
SELECT %(batch)s, %(now)s, %(channel)s, %(actor)s, %(park)s, %(total)s, n.stored, %(duplicates)s + 1 - n.stored,
       %(rejected)s, %(flagged)s, %(warned)s
FROM n
RETURNING accepted
"""


def open_batch(cur) -> tuple[int, int]:
    """The batch's id and the ingestion configuration's version (0: never bumped), this transaction declared the
    one that may write readings, in one statement."""
    from apps.core.services import INGEST_CONFIG

    cur.execute(BATCH_OPEN, (INGEST_CONFIG,))
    batch_id, _writer, version = cur.fetchone()
    return batch_id, version or 0


def insert_batch(cur, batch_id: int, *, now, channel, actor_label, park_id, total, accepted, duplicates,
                 rejected, flagged, warned) -> None:
    """The batch's log row, with its final counts (once: no update after the readings)."""
    cur.execute(BATCH_INSERT, (batch_id, now, channel, actor_label[:150], park_id, total, accepted, duplicates,
                               rejected, flagged, warned))


def insert_one_reading(cur, row, *, batch_id: int, channel: str, now: datetime, actor_label: str, park_id,
                       total: int, duplicates: int, rejected: int, flagged: int, warned: int) -> bool:
    """Store one row and the batch's log row together; False when the reading was stored before (a duplicate of
    an earlier batch, kept as first received). ``duplicates``: the batch's other duplicates (E4002)."""
    cur.execute(ONE_READING_INSERT, {
        "p": row.park_id, "s": row.source_pk, "d": row.item_pk, "t": row.ts, "v": row.value, "tv": row.text,
        "rv": row.received_value, "ru": row.received_unit, "st": row.status, "f": row.flags, "channel": channel,
        "batch": batch_id, "now": now, "actor": actor_label[:150], "park": park_id, "total": total,
        "duplicates": duplicates, "rejected": rejected, "flagged": flagged, "warned": warned})
    return cur.fetchone()[0] == 1


def insert_readings(cur, rows, *, batch_id: int, channel: str, now: datetime, patched: set | None = None) -> set[int]:
    """Insert rows (unique identities within the batch); return the batch indexes of those that were
    already stored (duplicates of an earlier batch, kept as first received). ``patched``: a set given is filled
    with those of them whose stored reading is flagged "patched" (a fill, which a real reading may replace)."""
    if not rows:
        return set()
    conn = cur.connection
    if not getattr(conn, "_carbonpark_stage", False):
        cur.execute(STAGE_CREATE)
        # Remembered only once committed: a rolled-back transaction takes the table with it.
        transaction.on_commit(lambda: setattr(conn, "_carbonpark_stage", True))
    with cur.copy(STAGE_COPY) as copy:
        copy.set_types(STAGE_TYPES)
        write = copy.write_row
        for r in rows:
            write((r.index, r.park_id, r.source_pk, r.item_pk, r.ts, r.value, r.text, r.received_value,
                   r.received_unit, r.status, r.flags))
    cur.execute(READING_INSERT, (channel, batch_id, now))
    inserted = cur.rowcount
    duplicates = set()
    if inserted < len(rows):
        cur.execute(STAGE_DUPLICATES, (batch_id,))
        for i, is_fill in cur.fetchall():
            duplicates.add(i)
            if is_fill and patched is not None:
                patched.add(i)
    if inserted:
        mark_rollups_dirty(cur)
    # Emptied now, not only at commit: a caller may ingest several batches in one transaction (a batch file loads
    # whole or not at all, apps/batch/loading.py). There, DELETE would leave every earlier batch's rows dead in the
    # staging table until the commit, and each batch would scan them all again (quadratic over a file); TRUNCATE
    # gives the table a fresh, empty file. Alone in its transaction, a batch keeps the cheaper DELETE.
    nested = bool(connection.savepoint_ids)
    cur.execute("TRUNCATE ingestion_reading_stage" if nested else "DELETE FROM ingestion_reading_stage")
    return duplicates


def insert_rejections(cur, problems, raws, *, batch_id: int, now: datetime, raw_bytes=None) -> None:
    """``raws``: the storable text of each rejected record; ``raw_bytes``: the exact bytes beside it, or
    None, where the text is not exact. Every text is made storable here: a sender's NUL or lone
    surrogate must never turn the rejection itself into a database error (R-9.3.1)."""
    if not problems:
        return
    msgs = [p.messages() for p in problems]
    cur.execute(REJECTION_INSERT, {
        "batch": batch_id, "now": now, "i": [p.index for p in problems], "p": [p.park_id for p in problems],
        "sr": [pg_safe(p.source_ref)[:100] for p in problems], "dc": [pg_safe(p.data_code)[:40] for p in problems],
        "c": [p.error.code for p in problems], "f": [pg_safe(p.field)[:40] for p in problems],
        "mz": [pg_safe(m[0]) for m in msgs], "me": [pg_safe(m[1]) for m in msgs], "r": [pg_safe(r) for r in raws],
        "rb": list(raw_bytes) if raw_bytes is not None else [None] * len(problems),
    })


def insert_events(cur, events, *, batch_id: int) -> None:
    """events: (index, kind, code, source_ref, data_code, ts, value_repr, message_zh, message_en, rule_pk)."""
    if not events:
        return
    cols = list(zip(*events))
    safe = [pg_safe(x) for x in cols[3]], [pg_safe(x) for x in cols[4]], [pg_safe(x) for x in cols[6]]
    cur.execute(EVENT_INSERT, {"batch": batch_id, "i": list(cols[0]), "k": list(cols[1]), "c": list(cols[2]),
                               "sr": safe[0], "dc": safe[1], "t": list(cols[5]), "v": safe[2],
                               "mz": [pg_safe(x) for x in cols[7]], "me": [pg_safe(x) for x in cols[8]],
                               "r": list(cols[9])})
