"""The quality queues fed when the rollup refresher takes the dirty log, not inside every ingest transaction.

Migrations 0004 and 0006 copied each stored batch's series and range from ``ingestion_rollup_dirty`` into
``quality_gap_dirty`` and ``quality_postcheck_dirty`` with two statement triggers AFTER INSERT: two trigger
calls in every transaction that stores readings (issue #9 counts that path's PostgreSQL CPU). Now one statement
trigger AFTER DELETE copies what the refresher takes (apps/ingestion/rollups.py ``TAKE``, every 10 s by the
beat) into both queues at once. The refresher takes a long range one day at a time and queues the rest again,
so each taken row is copied up to a day past its start (``SPAN`` there): every part of a range is queued once.
What the checks see is the same; it reaches them up to one refresh period later."""

from django.db import migrations

OLD = [
    ("quality_gap_queue", "quality_gap_dirty"),
    ("quality_postcheck_queue", "quality_postcheck_dirty"),
]


def old_trigger(function: str, table: str) -> list[str]:
    return [
        f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"INSERT INTO {table} (source_id, data_item_id, lo, hi) "
        "SELECT source_id, data_item_id, min(lo), max(hi) FROM queued WHERE queued_at >= now() "
        "GROUP BY source_id, data_item_id; "
        "RETURN NULL; END $$",
        f"CREATE TRIGGER {function} AFTER INSERT ON ingestion_rollup_dirty "
        f"REFERENCING NEW TABLE AS queued FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    ]


FORWARD = [
    *(s for function, _ in OLD for s in (f"DROP TRIGGER {function} ON ingestion_rollup_dirty",
                                         f"DROP FUNCTION {function}()")),
    "CREATE FUNCTION quality_queues_on_take() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "WITH q AS (SELECT source_id, data_item_id, min(lo) AS lo, max(least(hi, lo + interval '1 day')) AS hi "
    "FROM taken GROUP BY source_id, data_item_id), "
    "g AS (INSERT INTO quality_gap_dirty (source_id, data_item_id, lo, hi) SELECT * FROM q) "
    "INSERT INTO quality_postcheck_dirty (source_id, data_item_id, lo, hi) SELECT * FROM q; "
    "RETURN NULL; END $$",
    "CREATE TRIGGER quality_queues_on_take AFTER DELETE ON ingestion_rollup_dirty "
    "REFERENCING OLD TABLE AS taken FOR EACH STATEMENT EXECUTE FUNCTION quality_queues_on_take()",
]

BACKWARD = [
    "DROP TRIGGER quality_queues_on_take ON ingestion_rollup_dirty",
    "DROP FUNCTION quality_queues_on_take()",
    *(s for function, table in OLD for s in old_trigger(function, table)),
]


class Migration(migrations.Migration):

    dependencies = [
        ('quality', '0006_post_checks'),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
