"""Corrections and backfills from third-party platforms (R-7.4.3.1, R-7.4.3.3).

A record pushed again for the same (source, data code, timestamp) with another value within
OPEN_CORRECTION_WINDOW_S (5 min) of the first push is a correction: ingest keeps the first value as received
(first value wins), and the new value becomes the effective one, a revision written by the one revision writer
(apps/corrections/services.py ``revise_readings``) under a correction the platform makes (kind "resubmission"),
flagged corrected and audited; the answer lists it under ``corrected``. Later it is refused (E7422): a park's
correction request is the way then.

A record flagged ``backfill: true`` is accepted within OPEN_BACKFILL_WINDOW_S (24 h) after the platform's
recovery (the end of its last outage as the health probe recorded it, or its resumption after a suspension);
otherwise refused (E7421)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection

from apps.integrations import errors

# The stored reading and its effective value (the latest revision, else the value as received) for each
# (source, data item, ts) of a batch: one statement, the readings' unique index and the revisions' latest index.
STORED = """
SELECT k.i, r.received_at,
       COALESCE((SELECT v.value FROM corrections_revision v
                 WHERE v.source_id = k.s AND v.data_item_id = k.d AND v.ts = k.t ORDER BY v.id DESC LIMIT 1),
                r.value)
FROM unnest(%(s)s::bigint[], %(d)s::bigint[], %(t)s::timestamptz[], %(i)s::int[]) AS k(s, d, t, i)
JOIN ingestion_reading r ON r.source_id = k.s AND r.data_item_id = k.d AND r.ts = k.t
"""


@dataclass
class Resubmissions:
    corrections: list = field(default_factory=list)   # normalized rows to revise (indexes of the ingest batch)
    late: dict = field(default_factory=dict)          # ingest index → first push time (refused, E7422)


def find(rows, now: datetime) -> Resubmissions:
    """Rows of a prepared batch that repeat a stored reading with another numeric value: corrections within
    the window, refusals after it. One query."""
    found = Resubmissions()
    numeric = [r for r in rows if r.value is not None]
    if not numeric:
        return found
    with connection.cursor() as cur:
        cur.execute(STORED, {"s": [r.source_pk for r in numeric], "d": [r.item_pk for r in numeric],
                             "t": [r.ts for r in numeric], "i": [r.index for r in numeric]})
        stored = {i: (received, value) for i, received, value in cur.fetchall()}
    window = timedelta(seconds=settings.OPEN_CORRECTION_WINDOW_S)
    for r in numeric:
        if r.index not in stored:
            continue
        received, value = stored[r.index]
        if value is not None and value == r.value:
            continue  # a plain repeat: ingest counts it as a duplicate
        if now - received <= window:
            found.corrections.append(r)
        else:
            found.late[r.index] = received
    return found


def late_refusal(received: datetime) -> tuple:
    return errors.E7422, {"minutes": settings.OPEN_CORRECTION_WINDOW_S // 60, "first": received.isoformat()}


def backfill_refusal(platform, now: datetime) -> tuple | None:
    """None when a backfill is accepted now (R-7.4.3.3), else the refusal (code, params)."""
    recovered = platform.recovered_at
    if recovered is not None and timedelta(0) <= now - recovered <= timedelta(
            seconds=settings.OPEN_BACKFILL_WINDOW_S):
        return None
    return errors.E7421, {"hours": settings.OPEN_BACKFILL_WINDOW_S // 3600,
                          "recovered": recovered.isoformat() if recovered else "-"}


def apply(platform, rows, now: datetime) -> int:
    """Revise the readings the rows correct (R-7.4.3.1): per series, one system correction and one call of the
    revision writer with the rows' values, flagged corrected. Runs in the caller's transaction."""
    from apps.corrections.models import Correction
    from apps.corrections.services import revise_readings
    from apps.ingestion.models import Flag
    from apps.quality.filling.services import _audit_system_correction, _system_correction

    series = defaultdict(list)
    for r in rows:
        series[(r.park_id, r.source_pk, r.item_pk)].append(r)
    count = 0
    label = platform.audit_label
    for (park_id, source_pk, item_pk), new in series.items():
        start, end = min(r.ts for r in new), max(r.ts for r in new)
        correction = _system_correction(Correction.Kind.RESUBMISSION, park_id, source_pk, item_pk, start, end,
                                        len(new), label, now,
                                        "corrected values re-pushed by the third-party platform (R-7.4.3.1)")
        n = revise_readings(correction, written_by=label, now=now,
                            values=[(r.ts, r.value, r.flags | Flag.CORRECTED) for r in new])
        _audit_system_correction(correction, n, [{"ts": r.ts.isoformat(), "value": r.value} for r in new])
        count += n
    return count
