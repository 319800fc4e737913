"""A dedicated bench database of generated meter series, loaded server-side (bench/gaps.py, bench/post_checks.py).

``setup_env`` points DATABASE_URL at the bench's own database (created, or dropped and created again unless
``keep``). ``load`` makes the parks and meters through the services, the month partitions first, then stores the
readings with one INSERT ... SELECT generate_series under the one-way-in guard's set_config, the identity constraint
and the other reading indexes dropped during the load and only the identity constraint rebuilt after (what the
quality checks read), then VACUUM ANALYZE.
"""

from __future__ import annotations

import os
import time
from urllib.parse import urlsplit, urlunsplit

SERIES = 100
PER_PARK = 10
STEP_S = 300


def setup_env(db_name: str, keep: bool) -> bool:
    """DATABASE_URL → ``db_name`` on the same server; True when an existing database is kept (nothing to load)."""
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{db_name}"))
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
    import psycopg

    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db_name,)).fetchone()
        if exists and not keep:
            conn.execute(f"DROP DATABASE {db_name} WITH (FORCE)")
        if not exists or not keep:
            conn.execute(f"CREATE DATABASE {db_name}")
    return bool(exists) and keep


def load(n: int, *, code_prefix: str, name_zh: str, value_sql: str, value_params: list, where_sql: str = "",
         steps_factor: float = 1.0, queue_table: str, per_park=None) -> None:
    """About ``n`` readings of SERIES meters (PER_PARK per park, parks ``{code_prefix}000`` …) every 5 minutes from
    2025-01-01. ``value_sql``: the value, an SQL expression of ``m`` (the step) and ``s.source`` with
    ``value_params`` for its %s; ``where_sql``: a condition on them that leaves readings out (injected gaps), with
    ``steps_factor`` steps per reading asked for so that at least ``n`` are stored; ``queue_table``: the check's
    queue, emptied after the load (the bench runs the check itself); ``per_park(park)``: e.g. its rules."""
    from datetime import UTC, date, datetime

    from django.db import connection, transaction
    from django.utils import timezone

    from apps.accounts.services import save_park
    from apps.catalog.models import DataItem
    from apps.ingestion.models import IngestBatch
    from apps.ingestion.partitions import add_months, add_partition
    from apps.sources.services import save_source

    steps = int(n / SERIES * steps_factor) + 1
    months = (steps * STEP_S) // (31 * 86400) + 2
    item = DataItem.objects.get(code="CS010201")
    series = []
    for p in range(SERIES // PER_PARK):
        park = save_park(actor="bench", code=f"{code_prefix}{p:03d}", name_zh=f"{name_zh} {p}",
                         time_zone="Asia/Shanghai")
        for i in range(PER_PARK):
            src = save_source(actor="bench", source_id=f"{park.code}-EM-{i:04d}", park=park, name=f"meter {i}",
                              data_items=[item])
            series.append((park.pk, src.pk, item.pk))
        if per_park is not None:
            per_park(park)
    batch = IngestBatch.objects.create(received_at=timezone.now(), channel="bench", actor_label="bench")
    for k in range(months):
        add_partition(add_months(date(2025, 1, 1), k))
    t0 = time.perf_counter()
    values = ", ".join(f"({p}, {s}, {it})" for p, s, it in series)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = 'ingestion_reading'::regclass AND contype = 'u'")
        constraints = cur.fetchall()
        for name, _ in constraints:
            cur.execute(f"ALTER TABLE ingestion_reading DROP CONSTRAINT {name}")
        cur.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'ingestion_reading' "
                    "AND indexname NOT LIKE '%%pkey'")
        for (name,) in cur.fetchall():
            cur.execute(f"DROP INDEX IF EXISTS {name}")
        cur.execute("SET LOCAL synchronous_commit = off")
        cur.execute("SELECT set_config('carbonpark.writer', 'ingest_readings', true)")
        cur.execute(
            "INSERT INTO ingestion_reading (park_id, source_id, data_item_id, ts, value, received_unit, status, flags,"
            " channel, batch_id, received_at) "
            f"SELECT s.park, s.source, s.item, %s::timestamptz + m * interval '5 minutes', {value_sql},"
            " '', 'N', 0, 'bench', %s, now() FROM generate_series(0, %s) AS m CROSS JOIN (VALUES " + values + ")"
            " AS s(park, source, item)" + (f" WHERE {where_sql}" if where_sql else "") + " ORDER BY m, s.source",
            [datetime(2025, 1, 1, tzinfo=UTC), *value_params, batch.pk, steps - 1])
        stored = cur.rowcount
    print(f"loaded {stored:,} readings of {SERIES} series in {time.perf_counter() - t0:.0f} s", flush=True)
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '512MB'")
        for name, definition in constraints:
            cur.execute(f"ALTER TABLE ingestion_reading ADD CONSTRAINT {name} {definition}")
        cur.execute("RESET maintenance_work_mem")
        cur.execute(f"DELETE FROM {queue_table}")
    print(f"identity constraint rebuilt in {time.perf_counter() - t0:.0f} s", flush=True)
    t0 = time.perf_counter()
    connection.ensure_connection()
    old = connection.connection.autocommit
    connection.connection.autocommit = True
    with connection.cursor() as cur:
        cur.execute("VACUUM (ANALYZE) ingestion_reading")
    connection.connection.autocommit = old
    print(f"VACUUM ANALYZE in {time.perf_counter() - t0:.0f} s", flush=True)
