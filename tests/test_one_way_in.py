"""Only ingest_readings writes readings: the database refuses every other writer, and no module but the
pipeline's store names the readings table in a write."""

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction

from apps.ingestion.models import Reading
from apps.ingestion.services import ingest_readings

ROOT = Path(__file__).resolve().parent.parent


def test_orm_create_outside_the_pipeline_is_refused_by_the_database(meter):
    with pytest.raises(DatabaseError, match="only by ingest_readings"), transaction.atomic():
        Reading.objects.create(park=meter.park, source=meter, data_item=meter.data_items.get(),
                               ts=datetime(2026, 1, 1, tzinfo=UTC), value=1, channel="sneaky", batch_id=0,
                               received_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert Reading.objects.count() == 0


def test_raw_sql_update_and_delete_outside_the_pipeline_are_refused(meter):
    ingest_readings([{"sourceId": meter.source_id, "timestamp": "2026-11-23 10:00:00", "value": 5}],
                    channel="test", actor="test")
    assert Reading.objects.count() == 1
    # A fresh transaction has not declared itself the pipeline.
    for sql in ("UPDATE ingestion_reading SET value = 6", "DELETE FROM ingestion_reading"):
        with pytest.raises(DatabaseError, match="only by ingest_readings"), transaction.atomic(), \
                connection.cursor() as cur:
            cur.execute("SELECT set_config('carbonpark.writer', '', true)")
            cur.execute(sql)
    assert Reading.objects.get().value == 5


def test_the_pipeline_itself_can_write(meter):
    result = ingest_readings([{"sourceId": meter.source_id, "timestamp": "2026-11-23 10:00:00", "value": 5}],
                             channel="test", actor="test")
    assert result.accepted == 1


WRITE_PATTERNS = [
    re.compile(r"INSERT\s+INTO\s+ingestion_reading\b", re.I),
    re.compile(r"UPDATE\s+ingestion_reading\b", re.I),
    re.compile(r"DELETE\s+FROM\s+ingestion_reading\b", re.I),
    re.compile(r"COPY\s+ingestion_reading\b", re.I),
    # \b: another model whose name ends in Reading (SubmissionReading, the link of a submission to its readings)
    re.compile(r"\bReading\.objects\.(create|bulk_create|update|update_or_create|get_or_create|bulk_update)"),
    re.compile(r"set_config\('carbonpark\.writer', 'ingest_readings'"),
]


def test_no_other_module_writes_the_readings_table():
    allowed = {ROOT / "apps/ingestion/store.py"}
    offenders = []
    for path in (ROOT / "apps").rglob("*.py"):
        if "migrations" in path.parts or path in allowed:
            continue
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(ROOT)}: {p.pattern}" for p in WRITE_PATTERNS if p.search(text)]
    assert offenders == []
    store = (ROOT / "apps/ingestion/store.py").read_text()
    assert any(p.search(store) for p in WRITE_PATTERNS[:1])
