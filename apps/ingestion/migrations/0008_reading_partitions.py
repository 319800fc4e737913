"""ingestion_reading partitioned by month on ts (PostgreSQL declarative partitioning, issue #9).

The existing table is moved, not copied aside: renamed, a partitioned ingestion_reading created in its
place with the same columns, one partition per month that holds rows (back to 20 years) and for this month
and the three ahead, a DEFAULT partition for anything else (no row is ever refused for lack of a
partition: a month's partition made later takes its rows out of DEFAULT), the rows moved in
chunks of ids, the old table dropped, then the indexes, constraints, statistics and the one-way-in trigger
built on the new one under their old names. One migration, one transaction: a failure leaves the old table.

What a partitioned table changes:
- Unique constraints must contain the partition key: the identity (source, data item, ts) does; the primary
  key becomes (id, ts). Django still sees ``id`` as the primary key (ids stay unique: one sequence).
- A statement trigger on the parent fires only for statements naming the parent, so every partition gets
  the same one-way-in trigger (ingestion_reading_add_month below; test_partitions.py writes to a partition).
- Extended statistics are per table: each partition gets its own (park, source, item) dependencies, the
  planner's estimates of a partition scan come from them (migration 0006's reason).

``ingestion_reading_add_month(date)`` is the one way partitions are made, here and by the beat task
(apps/ingestion/partitions.py): rows of that month already in the DEFAULT partition move into the new one
before it is attached. The model's state does not change (Django knows nothing of partitions), so
makemigrations stays clean."""

from datetime import UTC, date, datetime

from django.db import migrations

CHUNK = 100_000
AHEAD = 3
OLDEST = 240  # months before now that may get their own partition at conversion; older rows go to DEFAULT

ADD_MONTH = """
CREATE OR REPLACE FUNCTION ingestion_reading_add_month(month date) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    first date := date_trunc('month', month)::date;
    lo timestamptz := first::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (first + interval '1 month')::timestamp AT TIME ZONE 'UTC';
    name text := 'ingestion_reading_' || to_char(first, 'YYYY_MM');
    writer text;
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE ingestion_reading INCLUDING DEFAULTS)', name);
    IF EXISTS (SELECT 1 FROM ingestion_reading_default WHERE ts >= lo AND ts < hi) THEN
        -- rows that arrived before their month had a partition: the pipeline's own rows, moved by the
        -- function the pipeline's schema owns (the guard lets it through for this statement only)
        writer := current_setting('carbonpark.writer', true);
        PERFORM set_config('carbonpark.writer', 'ingest_readings', true);
        EXECUTE format('WITH moved AS (DELETE FROM ingestion_reading_default WHERE ts >= $1 AND ts < $2 '
                       'RETURNING *) INSERT INTO %I SELECT * FROM moved', name) USING lo, hi;
        PERFORM set_config('carbonpark.writer', coalesce(writer, ''), true);
    END IF;
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (ts >= %L AND ts < %L)', name, name || '_range', lo, hi);
    EXECUTE format('ALTER TABLE ingestion_reading ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', name, name || '_range');
    PERFORM ingestion_reading_guard_partition(name);
    RETURN name;
END $$;

CREATE OR REPLACE FUNCTION ingestion_reading_guard_partition(name text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER ingestion_reading_one_way_in BEFORE INSERT OR UPDATE OR DELETE ON %I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION ingestion_reading_guard()', name);
    EXECUTE format('CREATE STATISTICS IF NOT EXISTS %I (dependencies) ON park_id, source_id, data_item_id FROM %I',
                   name || '_deps', name);
END $$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS ingestion_reading_add_month(date);
DROP FUNCTION IF EXISTS ingestion_reading_guard_partition(text);
"""

# The model's indexes and constraints (apps/ingestion/models.py), under Django's names.
INDEXES = """
ALTER TABLE ingestion_reading ADD CONSTRAINT uniq_reading_identity UNIQUE (source_id, data_item_id, ts);
CREATE INDEX reading_park_ts ON ingestion_reading (park_id, ts DESC) INCLUDE (source_id, data_item_id, flags);
CREATE INDEX reading_ts ON ingestion_reading (ts DESC);
CREATE INDEX reading_item_ts ON ingestion_reading (data_item_id, ts DESC);
CREATE INDEX reading_flagged_ts ON ingestion_reading (ts DESC) WHERE NOT (flags = 0);
CREATE STATISTICS IF NOT EXISTS reading_park_source_item (dependencies) ON park_id, source_id, data_item_id
    FROM ingestion_reading;
CREATE TRIGGER ingestion_reading_one_way_in BEFORE INSERT OR UPDATE OR DELETE ON ingestion_reading
    FOR EACH STATEMENT EXECUTE FUNCTION ingestion_reading_guard();
"""


def _month(d: datetime | date) -> date:
    return date(d.year, d.month, 1)


def _add(m: date, n: int) -> date:
    k = m.year * 12 + m.month - 1 + n
    return date(k // 12, k % 12 + 1, 1)


def _move(cur, source: str) -> int:
    """Rows of ``source`` into ingestion_reading, CHUNK ids at a time (ids are dense enough: one sequence)."""
    cur.execute(f"SELECT min(id), max(id), count(*) FROM {source}")
    lo, hi, count = cur.fetchone()
    if count:
        for start in range(lo, hi + 1, CHUNK):
            cur.execute(f"INSERT INTO ingestion_reading SELECT * FROM {source} WHERE id >= %s AND id < %s",
                        [start, start + CHUNK])
    return count


def _finish(cur, pk: str) -> None:
    """Sequence renamed to Django's name and moved past every id; keys, indexes, statistics, trigger."""
    cur.execute("SELECT pg_get_serial_sequence('ingestion_reading', 'id')")
    seq = cur.fetchone()[0]
    if seq.split(".")[-1].strip('"') != "ingestion_reading_id_seq":
        cur.execute(f"ALTER SEQUENCE {seq} RENAME TO ingestion_reading_id_seq")
    cur.execute("SELECT setval('ingestion_reading_id_seq', coalesce(max(id), 0) + 1, false) FROM ingestion_reading")
    cur.execute(f"ALTER TABLE ingestion_reading ADD CONSTRAINT ingestion_reading_pkey PRIMARY KEY ({pk})")
    cur.execute(INDEXES)
    cur.execute("ANALYZE ingestion_reading")


def partition(apps, schema_editor):
    with schema_editor.connection.cursor() as cur:
        cur.execute("ALTER TABLE ingestion_reading RENAME TO ingestion_reading_unpartitioned")
        cur.execute("DROP TRIGGER IF EXISTS ingestion_reading_one_way_in ON ingestion_reading_unpartitioned")
        cur.execute("DROP STATISTICS IF EXISTS reading_park_source_item")
        cur.execute("CREATE TABLE ingestion_reading (LIKE ingestion_reading_unpartitioned INCLUDING DEFAULTS "
                    "INCLUDING IDENTITY) PARTITION BY RANGE (ts)")
        cur.execute("CREATE TABLE ingestion_reading_default PARTITION OF ingestion_reading DEFAULT")
        cur.execute(ADD_MONTH)
        cur.execute("SELECT ingestion_reading_guard_partition('ingestion_reading_default')")
        now = _month(datetime.now(UTC))
        cur.execute("SELECT DISTINCT date_trunc('month', ts AT TIME ZONE 'UTC')::date "
                    "FROM ingestion_reading_unpartitioned")
        months = {m for (m,) in cur.fetchall() if _add(now, -OLDEST) <= m <= _add(now, AHEAD)}
        months |= {_add(now, k) for k in range(AHEAD + 1)}
        for m in sorted(months):
            cur.execute("SELECT ingestion_reading_add_month(%s)", [m])
        _move(cur, "ingestion_reading_unpartitioned")
        cur.execute("DROP TABLE ingestion_reading_unpartitioned")
        _finish(cur, "id, ts")


def unpartition(apps, schema_editor):
    with schema_editor.connection.cursor() as cur:
        cur.execute("ALTER TABLE ingestion_reading RENAME TO ingestion_reading_partitioned")
        cur.execute("DROP TRIGGER IF EXISTS ingestion_reading_one_way_in ON ingestion_reading_partitioned")
        cur.execute("DROP STATISTICS IF EXISTS reading_park_source_item")
        cur.execute("CREATE TABLE ingestion_reading (LIKE ingestion_reading_partitioned INCLUDING DEFAULTS "
                    "INCLUDING IDENTITY)")
        _move(cur, "ingestion_reading_partitioned")
        cur.execute("DROP TABLE ingestion_reading_partitioned CASCADE")  # its partitions and their statistics
        cur.execute(DROP_FUNCTIONS)
        _finish(cur, "id")


class Migration(migrations.Migration):
    dependencies = [("ingestion", "0007_index_budget")]
    operations = [migrations.RunPython(partition, unpartition, elidable=False)]
