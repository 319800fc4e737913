"""Monthly partitions of ingestion_reading (ingestion migration 0008): made ahead, and retired by policy.

Partitions are UTC calendar months named ``ingestion_reading_YYYY_MM``; a DEFAULT partition takes any
reading whose month has none, so the write path never fails for lack of one. Every partition is made by the
database function ``ingestion_reading_add_month`` (migration 0008), which moves that month's rows out of the
DEFAULT partition first and gives the new one the one-way-in trigger and its statistics.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.core.services import record_change

log = logging.getLogger(__name__)

PARENT = "ingestion_reading"
NAME = re.compile(r"^ingestion_reading_(\d{4})_(\d{2})$")


def _month(d: datetime | date) -> date:
    return date(d.year, d.month, 1)


def add_months(m: date, n: int) -> date:
    k = m.year * 12 + m.month - 1 + n
    return date(k // 12, k % 12 + 1, 1)


@dataclass(frozen=True)
class Partition:
    name: str
    month: date  # first day of its UTC month
    rows_estimate: int


def partitions() -> list[Partition]:
    """The monthly partitions attached now, oldest first (the DEFAULT partition is not one of them)."""
    with connection.cursor() as cur:
        cur.execute("SELECT c.relname, c.reltuples::bigint FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = %s::regclass", [PARENT])
        rows = cur.fetchall()
    out = []
    for name, tuples in rows:
        if m := NAME.match(name):
            out.append(Partition(name, date(int(m[1]), int(m[2]), 1), max(tuples, 0)))
    return sorted(out, key=lambda p: p.month)


def default_rows() -> int:
    """Readings in the DEFAULT partition (months without a partition of their own; normally none)."""
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM ingestion_reading_default")
        return cur.fetchone()[0]


def ensure_partitions(now: datetime | None = None, ahead: int | None = None) -> list[str]:
    """Partitions for this month and ``ahead`` months after it (READINGS_PARTITIONS_AHEAD, default 3), so that
    live readings never land in the DEFAULT partition (R-5.2.3.3: the write path does no DDL). Rows of a
    new month already in DEFAULT move into it. Returns the names created. Idempotent; the beat task runs it
    daily (carbonpark/celery.py)."""
    now = now or timezone.now()
    ahead = settings.READINGS_PARTITIONS_AHEAD if ahead is None else ahead
    first = _month(now.astimezone(UTC))
    created = []
    with transaction.atomic(), connection.cursor() as cur:
        for k in range(ahead + 1):
            cur.execute("SELECT ingestion_reading_add_month(%s)", [add_months(first, k)])
            name = cur.fetchone()[0]
            if name:
                created.append(name)
    if created:
        log.info("readings partitions created: %s", ", ".join(created))
    return created


def add_partition(month: date) -> str | None:
    """A partition for ``month`` (any month, e.g. a backfill's, whose rows sit in DEFAULT); None if it exists."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT ingestion_reading_add_month(%s)", [_month(month)])
        return cur.fetchone()[0]


def apply_retention(now: datetime | None = None, months: int | None = None,
                    archive_dir: str | os.PathLike | None = None, actor: object = "system") -> list[Path]:
    """Retire the partitions older than READINGS_RETENTION_MONTHS months (a partition goes once its whole month
    is that old): detach it, write its rows to ``<archive_dir>/ingestion_reading_YYYY_MM.csv.gz`` (CSV with a
    header, every column), then drop it, with an audit record of what went where. The default keeps
    everything: stored data is never destroyed unless the operator configured it (R-9.3.2.3), and never
    without its archive. One partition per transaction: a failure leaves that partition attached."""
    months = settings.READINGS_RETENTION_MONTHS if months is None else months
    if not months:
        return []
    archive_dir = Path(archive_dir or settings.READINGS_ARCHIVE_DIR)
    archive_dir.mkdir(parents=True, exist_ok=True)
    now = now or timezone.now()
    cutoff = add_months(_month(now.astimezone(UTC)), -months)  # partitions whose month ends by then
    written = []
    for part in partitions():
        if add_months(part.month, 1) > cutoff:
            continue
        written.append(_archive_and_drop(part, archive_dir, months, actor))
    return written


def _archive_and_drop(part: Partition, archive_dir: Path, months: int, actor) -> Path:
    target = archive_dir / f"{part.name}.csv.gz"
    partial = target.with_suffix(".gz.partial")
    with transaction.atomic():
        connection.ensure_connection()
        cur = connection.connection.cursor()  # psycopg's own, for COPY TO STDOUT
        ident = connection.ops.quote_name(part.name)
        cur.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {ident}")
        rows = 0
        with open(partial, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as gz:
            with cur.copy(f"COPY {ident} TO STDOUT (FORMAT csv, HEADER)") as copy:
                for chunk in copy:
                    gz.write(chunk)
            gz.close()
            raw.flush()
            os.fsync(raw.fileno())
        cur.execute(f"SELECT count(*) FROM {ident}")
        rows = cur.fetchone()[0]
        os.replace(partial, target)
        cur.execute(f"DROP TABLE {ident}")
        record_change(actor=actor, action="readings.partition_archived", object_type="ingestion.reading_partition",
                      object_id=part.name, before={"partition": part.name, "month": part.month.isoformat(),
                                                   "rows": rows},
                      after={"archive": str(target), "bytes": target.stat().st_size},
                      reason=f"retention: readings older than {months} months (READINGS_RETENTION_MONTHS)")
    log.info("readings partition %s archived to %s (%d rows) and dropped", part.name, target, rows)
    return target


def maintain() -> dict:
    """The beat task's work: partitions ahead, then the retention policy (if configured)."""
    created = ensure_partitions()
    archived = apply_retention()
    return {"created": created, "archived": [str(p) for p in archived]}
