"""The readings table partitioned by month (ingestion migration 0008, apps/ingestion/partitions.py): the
idempotent write path across partitions, the one-way-in guard on every partition, partitions made ahead,
retention that archives before it drops, and the migration that moves an existing table."""

import csv
import gzip
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from apps.core.models import AuditEntry
from apps.ingestion import partitions
from apps.ingestion.models import Reading
from apps.ingestion.services import ingest_readings


def where(ids=None) -> dict[str, int]:
    """Readings per partition."""
    with connection.cursor() as cur:
        cur.execute("SELECT tableoid::regclass::text, count(*) FROM ingestion_reading GROUP BY 1")
        return dict(cur.fetchall())


SHANGHAI = ZoneInfo("Asia/Shanghai")  # the test park's zone: records carry its wall clock


def send(meter, *stamps):
    return ingest_readings([{"sourceId": meter.source_id, "timestamp": ts.astimezone(SHANGHAI).strftime(
        "%Y-%m-%d %H:%M:%S") if isinstance(ts, datetime) else ts, "value": i} for i, ts in enumerate(stamps)],
        channel="test", actor="test")


def this_month() -> datetime:
    """Midnight UTC starting this month: the migration made its partition and the three after it."""
    now = datetime.now(UTC)
    return datetime(now.year, now.month, 1, tzinfo=UTC)


def name(m: date | datetime) -> str:
    return f"ingestion_reading_{m.year}_{m.month:02d}"


def test_a_batch_spanning_two_months_and_one_outside_every_partition_is_stored_once(meter):
    month = this_month()
    before = month - timedelta(seconds=30)
    partitions.add_partition(before)
    stamps = (before, month + timedelta(seconds=1), "2019-05-01 12:00:00")
    first = send(meter, *stamps)
    assert (first.accepted, first.duplicates) == (3, 0)
    assert where() == {name(before): 1, name(month): 1, "ingestion_reading_default": 1}
    again = send(meter, *stamps)
    assert (again.accepted, again.duplicates) == (0, 3)
    # The month of the stray reading gets its partition: the row moves out of DEFAULT, none lost or doubled.
    assert partitions.add_partition(date(2019, 5, 17)) == "ingestion_reading_2019_05"
    assert partitions.add_partition(date(2019, 5, 1)) is None
    assert where() == {name(before): 1, name(month): 1, "ingestion_reading_2019_05": 1}
    assert partitions.default_rows() == 0
    assert send(meter, stamps[2]).duplicates == 1


@pytest.mark.parametrize("table", ["this month", "ingestion_reading_default", "ingestion_reading"])
def test_every_partition_refuses_writers_other_than_the_pipeline(meter, table):
    month = this_month()
    table = name(month) if table == "this month" else table
    send(meter, month + timedelta(seconds=1), "2019-05-01 12:00:00")
    row = ("park_id, source_id, data_item_id, ts, value, received_unit, status, flags, channel, batch_id, "
           "received_at")
    ts = (month + timedelta(seconds=2)).isoformat() if table != "ingestion_reading_default" else "2018-01-01"
    for sql in (f"INSERT INTO {table} ({row}) SELECT park_id, source_id, data_item_id, '{ts}', 1, '', 'N', 0, "
                f"'sneaky', 0, now() FROM ingestion_reading LIMIT 1",
                f"UPDATE {table} SET value = 6", f"DELETE FROM {table}"):
        with pytest.raises(DatabaseError, match="only by ingest_readings"), transaction.atomic(), \
                connection.cursor() as cur:
            cur.execute("SELECT set_config('carbonpark.writer', '', true)")  # the test's transaction ingested
            cur.execute(sql)
    assert sorted(Reading.objects.values_list("value", flat=True)) == [0, 1]


def test_partitions_are_made_ahead_once(db):
    later = partitions.add_months(this_month().date(), 6)  # the migration made this month and 3 ahead
    now = datetime(later.year, later.month, 15, tzinfo=UTC)
    assert partitions.ensure_partitions(now=now, ahead=3) == [name(partitions.add_months(later, k)) for k in range(4)]
    assert partitions.ensure_partitions(now=now, ahead=3) == []
    months = [p.month for p in partitions.partitions()]
    assert partitions.add_months(later, 3) in months and partitions.add_months(later, 4) not in months
    assert partitions.add_months(later, -1) not in months


def test_retention_keeps_everything_unless_configured_then_archives_before_dropping(meter, tmp_path, settings):
    partitions.add_partition(date(2026, 6, 1))
    send(meter, "2026-06-10 12:00:00", "2026-06-20 12:00:00", "2026-12-01 09:00:00")
    settings.READINGS_RETENTION_MONTHS = None
    assert partitions.apply_retention(now=datetime(2026, 12, 15, tzinfo=UTC), archive_dir=tmp_path) == []
    assert Reading.objects.count() == 3

    # June ends 2026-07-01, over 3 months before December: it goes; December stays.
    [archive] = partitions.apply_retention(now=datetime(2026, 12, 15, tzinfo=UTC), months=3, archive_dir=tmp_path,
                                           actor="ops")
    assert archive == tmp_path / "ingestion_reading_2026_06.csv.gz"
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(archive.read_bytes()).decode())))
    assert sorted(float(r["value"]) for r in rows) == [0, 1]
    assert {r["source_id"] for r in rows} == {str(meter.pk)}
    assert Reading.objects.count() == 1
    assert date(2026, 6, 1) not in [p.month for p in partitions.partitions()]
    entry = AuditEntry.objects.get(action="readings.partition_archived")
    assert (entry.object_id, entry.actor_label, entry.before["rows"]) == ("ingestion_reading_2026_06", "ops", 2)
    assert entry.after["archive"] == str(archive)


CHECKSUM = "SELECT count(*), md5(string_agg(r::text, '|' ORDER BY id)) FROM ingestion_reading r"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_migration_moves_an_existing_table_without_losing_a_row():
    before, partitioned = ("ingestion", "0007_index_budget"), ("ingestion", "0008_reading_partitions")
    try:
        _move_there_and_back(before, partitioned)
    finally:  # the later migrations (rollups ...) back for the tests that follow: the database as migrate left it
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def _move_there_and_back(before, partitioned):
    MigrationExecutor(connection).migrate([before])
    with connection.cursor() as cur:
        cur.execute("SELECT relkind FROM pg_class WHERE relname = 'ingestion_reading'")
        assert cur.fetchone()[0] == "r"
        with transaction.atomic():
            cur.execute("SELECT set_config('carbonpark.writer', 'ingest_readings', true)")
            # 2 500 sources x 3 months of hourly readings (~5.4 million would take minutes: 1 in 97 hours kept),
            # plus one from 1901 and one from 2100 (outside every partition the migration makes).
            cur.execute("""
                INSERT INTO ingestion_reading (park_id, source_id, data_item_id, ts, value, text_value,
                    received_value, received_unit, status, flags, channel, batch_id, received_at)
                SELECT 1 + s % 7, s, 1 + s % 3, '2026-10-01'::timestamptz + h * interval '97 hours', s * h,
                       CASE WHEN h % 5 = 0 THEN 'text ' || s END, NULL, '', 'N', h % 2, 'test', 1, now()
                FROM generate_series(1, 2500) AS s, generate_series(0, 22) AS h""")
            cur.execute("""
                INSERT INTO ingestion_reading (park_id, source_id, data_item_id, ts, value, received_unit, status,
                    flags, channel, batch_id, received_at)
                VALUES (1, 1, 1, '1901-01-01', 1, 'kWh', 'N', 0, 'test', 1, now()),
                       (1, 1, 1, '2100-01-01', 2, '', 'N', 0, 'test', 1, now())""")
        cur.execute(CHECKSUM)
        old = cur.fetchone()
        assert old[0] == 2500 * 23 + 2
        cur.execute("SELECT max(id) FROM ingestion_reading")
        top = cur.fetchone()[0]

    MigrationExecutor(connection).migrate([partitioned])
    with connection.cursor() as cur:
        cur.execute("SELECT relkind FROM pg_class WHERE relname = 'ingestion_reading'")
        assert cur.fetchone()[0] == "p"
        cur.execute(CHECKSUM)
        assert cur.fetchone() == old
        assert set(where()) >= {"ingestion_reading_2026_10", "ingestion_reading_2026_12", "ingestion_reading_default"}
        assert where()["ingestion_reading_default"] == 2
        cur.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'ingestion_reading'")
        assert {r[0] for r in cur.fetchall()} == {"ingestion_reading_pkey", "uniq_reading_identity", "reading_park_ts",
                                                  "reading_ts", "reading_item_ts", "reading_flagged_ts"}
        with pytest.raises(DatabaseError, match="only by ingest_readings"), transaction.atomic():
            cur.execute("DELETE FROM ingestion_reading_2026_10")
        # the identity sequence carries on after the moved ids
        with transaction.atomic():
            cur.execute("SELECT set_config('carbonpark.writer', 'ingest_readings', true)")
            cur.execute("INSERT INTO ingestion_reading (park_id, source_id, data_item_id, ts, received_unit, status, "
                        "flags, channel, batch_id, received_at) VALUES (1, 1, 1, now(), '', 'N', 0, 't', 1, now()) "
                        "RETURNING id")
            assert cur.fetchone()[0] > top
            cur.execute("DELETE FROM ingestion_reading WHERE id > %s", [top])

    # and back: the reverse moves every row into one plain table again
    MigrationExecutor(connection).migrate([before])
    with connection.cursor() as cur:
        cur.execute("SELECT relkind FROM pg_class WHERE relname = 'ingestion_reading'")
        assert cur.fetchone()[0] == "r"
        cur.execute(CHECKSUM)
        assert cur.fetchone() == old
    MigrationExecutor(connection).migrate([partitioned])
    with connection.cursor() as cur:
        cur.execute(CHECKSUM)
        assert cur.fetchone() == old
