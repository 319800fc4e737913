"""Reads of stored readings, always scoped to the caller's parks (interfaces.md §3 history query)."""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db.models import F, Q, QuerySet

from apps.accounts import access
from apps.accounts.access import Action
from apps.core import errors
from apps.core.errors import CarbonParkError
from apps.corrections import selectors as effective
from apps.ingestion.config import current_config
from apps.ingestion.models import Flag, Reading, Rollup
from apps.ingestion.normalize import Refused, parse_timestamp

FLAG_FILTERS = list(Flag.NAMES)
MAX_LIMIT = 5000
INTERVALS = {"hour": Rollup.Interval.HOUR, "day": Rollup.Interval.DAY, "month": Rollup.Interval.MONTH}


@dataclass
class ReadingQuery:
    """A history query of the caller: ``principal`` and ``action`` (view, or export for a download) scope
    it through the park-access seam; ``park_ids`` are the parks that leaves (None: every park)."""

    principal: object
    action: Action
    park_ids: list[int] | None
    source_pks: list[int] | None = None
    item_pks: list[int] | None = None
    start: datetime | None = None
    end: datetime | None = None
    flag: int | None = None
    interval: str | None = None  # Rollup.Interval: the query reads rollups, filtered on the bucket's start
    raw: bool = False  # ?view=raw: the values stored at ingest, without revisions (R-9.3.2.3)

    def visible(self, park_id: int | None) -> bool:
        return self.park_ids is None or park_id in self.park_ids

    @classmethod
    def from_params(cls, params, principal, action: Action = Action.VIEW) -> ReadingQuery:
        """Another park's source or data code is refused exactly like an unknown one (E1009)."""
        cfg = current_config()
        q = cls(principal=principal, action=action, park_ids=access.park_ids(principal, action))
        tz = None
        if params.get("sourceId"):
            q.source_pks = []
            for sid in params["sourceId"].split(","):
                src = cfg.sources.get(sid.strip())
                if src is None or not q.visible(src.park_id):
                    raise CarbonParkError(errors.E1009, param="sourceId", detail=f"unknown source {sid}")
                q.source_pks.append(src.pk)
                tz = cfg.parks[src.park_id].tz
        if tz is None and q.park_ids is not None and len(q.park_ids) == 1 and q.park_ids[0] in cfg.parks:
            tz = cfg.parks[q.park_ids[0]].tz
        if tz is None:
            import zoneinfo

            tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
        if params.get("dataCode"):
            q.item_pks = []
            for code in params["dataCode"].split(","):
                item = cfg.items.get(code.strip())
                if item is None or (item.park_id is not None and not q.visible(item.park_id)):
                    raise CarbonParkError(errors.E1009, param="dataCode", detail=f"unknown code {code}")
                q.item_pks.append(item.pk)
        for name in ("start", "end"):
            if params.get(name):
                try:
                    setattr(q, name, parse_timestamp(params[name], tz))
                except Refused as r:
                    raise CarbonParkError(errors.E1009, field=name, param=name,
                                          detail=r.error.message(**r.params)) from None
        if params.get("flag"):
            if params["flag"] not in Flag.NAMES:
                raise CarbonParkError(errors.E1009, param="flag", detail=f"one of {', '.join(Flag.NAMES)}")
            q.flag = Flag.NAMES[params["flag"]]
        if params.get("view") not in (None, "", "raw", "effective"):
            raise CarbonParkError(errors.E1009, param="view", detail="raw or effective")
        q.raw = params.get("view") == "raw"
        if params.get("interval"):
            if params["interval"] not in INTERVALS:
                raise CarbonParkError(errors.E1009, param="interval", detail=f"one of {', '.join(INTERVALS)}")
            if q.flag:  # a rollup counts the readings of every flag but invalid: there is nothing to filter
                raise CarbonParkError(errors.E1009, param="flag", detail="not with interval")
            if q.raw:  # rollups are kept of the effective values only (docs/rollups.md)
                raise CarbonParkError(errors.E1009, param="view", detail="not raw with interval")
            q.interval = INTERVALS[params["interval"]]
        return q

    def queryset(self) -> QuerySet[Reading]:
        if self.interval:
            return self.rollups()
        qs = access.restrict(Reading.objects.all(), self.principal, self.action)
        if self.source_pks is not None:
            qs = qs.filter(source_id__in=self.source_pks)
        if self.item_pks is not None:
            qs = qs.filter(data_item_id__in=self.item_pks)
        if self.start:
            qs = qs.filter(ts__gte=self.start)
        if self.end:
            qs = qs.filter(ts__lte=self.end)
        if self.flag == Flag.CORRECTED:  # a revision beside the reading, not a stored bit
            qs = qs.none() if self.raw else effective.only_revised(qs)
        elif self.flag:
            qs = qs.exclude(flags=0).alias(flag_bits=F("flags").bitand(self.flag)).exclude(flag_bits=0)
        return qs

    def fields(self) -> tuple[str, ...]:
        return FIELDS if self.raw else (*FIELDS, effective.REVISION_ANNOTATION)

    def rows(self, qs: QuerySet[Reading]) -> QuerySet:
        """``qs`` as the value rows RecordView reads: the effective value's revision beside each, unless raw."""
        return qs.values_list(*FIELDS) if self.raw else effective.with_latest_revision(qs).values_list(*self.fields())


    def rollups(self) -> QuerySet[Rollup]:
        """The rollups of the interval, scoped through the seam like readings (docs/rollups.md)."""
        qs = access.restrict(Rollup.objects.filter(interval=self.interval), self.principal, self.action)
        if self.source_pks is not None:
            qs = qs.filter(source_id__in=self.source_pks)
        if self.item_pks is not None:
            qs = qs.filter(data_item_id__in=self.item_pks)
        if self.start:
            qs = qs.filter(bucket__gte=self.start)
        if self.end:
            qs = qs.filter(bucket__lte=self.end)
        return qs


FIELDS = ("id", "park_id", "source_id", "data_item_id", "ts", "value", "text_value", "received_value",
          "received_unit", "status", "flags")


class RecordView:
    """Stored rows → the record shape of interfaces.md §1, with the platform's flags beside it."""

    def __init__(self):
        cfg = current_config()
        self.source_ids = {s.pk: s.source_id for s in cfg.sources.values()}
        self.items = {i.pk: i for i in cfg.items.values()}
        self.tz = {p.pk: p.tz for p in cfg.parks.values()}

    def record(self, row) -> dict:
        """A value no JSON can carry (Infinity or NaN, stored before ingest refused them: E2008, E2020)
        is shown as null, so that one such row never makes the whole history unreadable. ``value`` is the
        effective value (apps/corrections/selectors.py), ``rawValue`` the value stored at ingest."""
        _id, park_id, source_pk, item_pk, ts, raw, text, rv, ru, status, flags = row[:11]
        annotation = row[11] if len(row) > 11 else None
        value, revision = effective.split(raw, annotation)
        flags = effective.effective_flags(flags, annotation)
        if raw is not None and not math.isfinite(raw):
            raw = None
        if value is not None and not math.isfinite(value):
            value = None
        if rv is not None and not math.isfinite(rv):
            rv = None
        item = self.items[item_pk]
        out = {
            "sourceId": self.source_ids.get(source_pk, str(source_pk)),
            "dataCode": item.code,
            "timestamp": _local_text(ts, self.tz[park_id]),
            "value": value if text is None else text,
            "rawValue": raw if text is None else text,
            "revision": revision,
            "unit": item.unit,
            "status": status,
            "backfill": bool(flags & Flag.BACKFILL),
            "flags": Flag.names(flags),
        }
        if rv is not None or ru:
            out["receivedValue"] = raw if rv is None else rv
            out["receivedUnit"] = ru
        return out


    def rollup(self, row) -> dict:
        """A rollup row → {sourceId, dataCode, start, count, sum, min, max, last, lastTimestamp, unit}."""
        _id, park_id, source_pk, item_pk, bucket, count, total, low, high, last, last_ts = row
        tz = self.tz[park_id]
        item = self.items[item_pk]
        return {"sourceId": self.source_ids.get(source_pk, str(source_pk)), "dataCode": item.code,
                "start": _local_text(bucket, tz), "count": count, "sum": _finite(total), "min": _finite(low),
                "max": _finite(high), "last": _finite(last), "lastTimestamp": _local_text(last_ts, tz),
                "unit": item.unit}


ROLLUP_FIELDS = ("id", "park_id", "source_id", "data_item_id", "bucket", "count", "sum", "min", "max", "last",
                 "last_ts")


def _finite(x: float | None) -> float | None:
    """A sum past the float range is infinite: shown as null, as a non-finite reading is."""
    return x if x is not None and math.isfinite(x) else None


def _local_text(ts: datetime, tz) -> str:
    """``YYYY-MM-DD HH:MM:SS.SSS`` in the park's zone; in UTC for a time stored at the very end of the
    calendar (before ingest refused those, E2021), where the zone would leave it."""
    with contextlib.suppress(OverflowError):
        ts = ts.astimezone(tz)
    return ts.isoformat(sep=" ", timespec="milliseconds")[:23]


@dataclass
class Page:
    results: list[dict]
    next_cursor: str | None
    prev_cursor: str | None


def _encode(direction: str, ts: datetime, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{direction}|{ts.astimezone(UTC).isoformat()}|{pk}".encode()).decode()


def _decode(cursor: str):
    try:
        direction, ts, pk = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        when = datetime.fromisoformat(ts)
        if direction not in ("n", "p") or when.tzinfo is None:  # the cursors we hand out carry UTC
            raise ValueError
        return direction, when, int(pk)
    except (ValueError, UnicodeDecodeError):
        raise CarbonParkError(errors.E1009, param="cursor", detail="use the next/previous link as given") from None


def readings_page(query: ReadingQuery, *, cursor: str | None = None, limit=None) -> Page:
    """Keyset pagination over (ts, id), oldest first: fast at any depth, stable under inserts."""
    try:
        limit = min(int(limit or 500), MAX_LIMIT)
        if limit < 1:
            raise ValueError
    except ValueError:
        raise CarbonParkError(errors.E1009, param="limit", detail=f"a whole number 1–{MAX_LIMIT}") from None
    qs = query.queryset()
    key, fields = ("bucket", ROLLUP_FIELDS) if query.interval else ("ts", FIELDS)
    backwards = False
    if cursor:
        direction, ts, pk = _decode(cursor)
        if direction == "n":
            qs = qs.filter(Q(**{f"{key}__gt": ts}) | Q(**{key: ts, "id__gt": pk}))
        else:
            backwards = True
            qs = qs.filter(Q(**{f"{key}__lt": ts}) | Q(**{key: ts, "id__lt": pk}))
    order = (f"-{key}", "-id") if backwards else (key, "id")
    qs = qs.order_by(*order)
    rows = list((qs.values_list(*fields) if query.interval else query.rows(qs))[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    view = RecordView()
    results = [view.rollup(r) for r in rows] if query.interval else [view.record(r) for r in rows]
    next_cursor = prev_cursor = None
    if rows:  # [4]: ts of a reading, bucket of a rollup
        if more or backwards:
            next_cursor = _encode("n", rows[-1][4], rows[-1][0])
        if cursor and (not backwards or more):
            prev_cursor = _encode("p", rows[0][4], rows[0][0])
    return Page(results, next_cursor, prev_cursor)


CSV_HEADER = ["sourceId", "dataCode", "timestamp", "value", "unit", "status", "backfill", "flags",
              "receivedValue", "receivedUnit", "rawValue", "revision"]


ROLLUP_CSV_HEADER = ["sourceId", "dataCode", "start", "count", "sum", "min", "max", "last", "lastTimestamp", "unit"]


def readings_csv(query: ReadingQuery):
    """Every matching reading as CSV (the batch-file header of interfaces.md §7), streamed; with an interval,
    every matching rollup (ROLLUP_CSV_HEADER)."""
    if query.interval:
        yield from _rollups_csv(query)
        return
    view = RecordView()
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_HEADER)
    rows = query.rows(query.queryset().order_by("ts", "id")).iterator(chunk_size=5000)
    for n, row in enumerate(rows, 1):
        rec = view.record(row)
        writer.writerow([rec["sourceId"], rec["dataCode"], rec["timestamp"], rec["value"], rec["unit"],
                         rec["status"], "true" if rec["backfill"] else "false", ";".join(rec["flags"]),
                         rec.get("receivedValue", ""), rec.get("receivedUnit", ""), rec["rawValue"],
                         "" if rec["revision"] is None else rec["revision"]])
        if n % 1000 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _rollups_csv(query: ReadingQuery):
    view = RecordView()
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(ROLLUP_CSV_HEADER)
    rows = query.queryset().order_by("bucket", "id").values_list(*ROLLUP_FIELDS).iterator(chunk_size=5000)
    for n, row in enumerate(rows, 1):
        rec = view.rollup(row)
        writer.writerow(["" if rec[k] is None else rec[k] for k in ROLLUP_CSV_HEADER])
        if n % 1000 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
