"""Reads of derived consumption (issue #12 item 2), scoped through the park-access seam: per register interval, or
per park-local hour, day or month. Another park's source answers like an unknown one (E1009)."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from django.db.models import Q

from apps.accounts import access
from apps.accounts.access import Action
from apps.catalog.models import DataItem
from apps.core import errors
from apps.core.errors import CarbonParkError
from apps.ingestion.normalize import Refused, parse_timestamp
from apps.quality.models import Consumption, RegisterInterval, RegisterSetting
from apps.sources.models import DataSource

INTERVALS = ("interval", "hour", "day", "month")
MAX_LIMIT = 5000
TEXT_MAX = 64


def _clean(value) -> str:
    return str(value or "")[:TEXT_MAX].replace("\x00", "").strip()


@dataclass
class ConsumptionQuery:
    principal: object
    source: DataSource
    items: list[DataItem]
    interval: str
    tz: ZoneInfo
    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def from_params(cls, params, principal) -> ConsumptionQuery:
        """``source`` (required), ``code`` (optional: every register of the source), ``interval`` (interval,
        hour, day or month; hour when absent), ``from`` and ``to`` (inclusive, on the start of the bucket or the
        end of the interval; park-local ``YYYY-MM-DD HH:MM:SS`` or ISO 8601 with an offset)."""
        # interfaces.md's names (sourceId, dataCode, start, end) are accepted too; a refusal names the one used
        source_param = "source" if params.get("source") else "sourceId"
        code_param = "code" if params.get("code") else "dataCode"
        sid = _clean(params.get(source_param))
        if not sid:
            raise CarbonParkError(errors.E1009, param="source", detail="a source id is required")
        source = access.restrict(DataSource.objects.select_related("park"), principal, Action.VIEW) \
            .filter(source_id=sid).first()
        if source is None:
            raise CarbonParkError(errors.E1009, param=source_param, detail=f"unknown source {sid}")
        registers = RegisterSetting.objects.filter(source=source).select_related("data_item")
        code = _clean(params.get(code_param))
        if code:
            registers = registers.filter(data_item__code=code)
        items = [r.data_item for r in registers]
        if not items:
            raise CarbonParkError(errors.E1009, param=code_param if code else source_param,
                                  detail=f"no meter register {sid} {code}".strip())
        interval = params.get("interval") or "hour"
        if interval not in INTERVALS:
            raise CarbonParkError(errors.E1009, param="interval", detail=f"one of {', '.join(INTERVALS)}")
        q = cls(principal=principal, source=source, items=items, interval=interval,
                tz=ZoneInfo(source.park.time_zone))
        for name, attr in (("from", "start"), ("to", "end"), ("start", "start"), ("end", "end")):
            if params.get(name) and (name in ("from", "to") or not params.get({"start": "from", "end": "to"}[name])):
                try:
                    setattr(q, attr, parse_timestamp(str(params[name])[:TEXT_MAX], q.tz))
                except Refused as r:
                    raise CarbonParkError(errors.E1009, param=name, detail=r.error.message(**r.params)) from None
        return q

    def queryset(self):
        if self.interval == "interval":
            qs, key = RegisterInterval.objects.all(), "end"
        else:
            qs, key = Consumption.objects.filter(level=self.interval), "bucket"
        qs = access.restrict(qs, self.principal, Action.VIEW).filter(
            source=self.source, data_item__in=[i.pk for i in self.items])
        if self.start:
            qs = qs.filter(**{f"{key}__gte": self.start})
        if self.end:
            qs = qs.filter(**{f"{key}__lte": self.end})
        return qs, key


def _finite(x):
    return x if x is not None and math.isfinite(x) else None


def _encode(when: datetime, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{when.astimezone(UTC).isoformat()}|{pk}".encode()).decode()


def _decode(cursor: str):
    try:
        when, pk = base64.urlsafe_b64decode(cursor.encode()[:200]).decode().split("|")
        at = datetime.fromisoformat(when)
        if at.tzinfo is None:
            raise ValueError
        return at, int(pk)
    except (ValueError, UnicodeDecodeError):
        raise CarbonParkError(errors.E1009, param="cursor", detail="use the next link as given") from None


def consumption_page(query: ConsumptionQuery, *, cursor: str | None = None,
                     limit=None) -> tuple[list[dict], str | None]:
    """One page, oldest first, keyset over (time, id); the cursor of the next page or None."""
    try:
        limit = min(int(str(limit or 500)[:12]), MAX_LIMIT)
        if limit < 1:
            raise ValueError
    except ValueError:
        raise CarbonParkError(errors.E1009, param="limit", detail=f"a whole number 1–{MAX_LIMIT}") from None
    qs, key = query.queryset()
    if cursor:
        at, pk = _decode(cursor)
        qs = qs.filter(Q(**{f"{key}__gt": at}) | Q(**{key: at, "id__gt": pk}))
    rows = list(qs.order_by(key, "id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    codes = {i.pk: (i.code, i.unit) for i in query.items}

    def local(ts):
        return ts.astimezone(query.tz).strftime("%Y-%m-%d %H:%M:%S")

    out = []
    for r in rows:
        code, unit = codes[r.data_item_id]
        base = {"sourceId": query.source.source_id, "dataCode": code}
        if query.interval == "interval":
            base.update({"start": local(r.start), "end": local(r.end), "readingStart": _finite(r.reading_start),
                         "readingEnd": _finite(r.reading_end), "advance": _finite(r.delta),
                         "consumption": _finite(r.consumption), "kind": r.kind, "gap": r.gap, "unit": unit})
        else:
            base.update({"start": local(r.bucket), "consumption": _finite(r.value), "intervals": r.intervals,
                         "flagged": r.flagged, "spread": r.spread, "unit": unit})
        out.append(base)
    return out, (_encode(getattr(rows[-1], key), rows[-1].pk) if more else None)


def hourly_for_chart(principal, source, start: datetime, end: datetime) -> dict[int, list]:
    """Hourly consumption of each register of ``source`` between ``start`` and ``end`` for the source chart:
    {data item pk: [(bucket, value, flagged, spread)]}."""
    qs = access.restrict(Consumption.objects.filter(level=Consumption.Level.HOUR), principal, Action.VIEW).filter(
        source_id=source.pk, bucket__gte=start, bucket__lte=end).order_by("data_item_id", "bucket")
    out: dict[int, list] = {}
    for item_pk, bucket, value, flagged, spread in qs.values_list("data_item_id", "bucket", "value", "flagged",
                                                                  "spread"):
        out.setdefault(item_pk, []).append((bucket, _finite(value), flagged, spread))
    return out
