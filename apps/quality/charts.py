"""The data of a source's chart page (issue #12 item 6): each data item's points over a time range, each told
apart as raw, suspect, invalid, repaired, patched or corrected, and the source's open gaps as spans.

Read in a bounded number of queries whatever the number of items or points (tests/test_source_chart.py): the
items, the readings counted per item, the readings of the items under ``ROLLUP_ABOVE`` points (their effective
value from apps/corrections/selectors.py beside the stored one), the hourly rollups of the others, the open
gaps. Everything is scoped through the park-access seam."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Count, Q
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from apps.accounts import access
from apps.accounts.access import Action
from apps.corrections import selectors as effective
from apps.ingestion.models import Flag, Reading, Rollup
from apps.quality.models import Gap, RegisterSetting
from apps.quality.registers.selectors import hourly_for_chart

RANGES = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=31)}
DEFAULT_RANGE = "week"
ROLLUP_ABOVE = 5000  # points of one item in the range above which the page draws hourly rollups instead

# The kinds of point the chart tells apart, in precedence order: a corrected point shows its correction first.
KINDS = ("corrected", "patched", "repaired", "invalid", "suspect", "raw")


def kind_of(flags: int, corrected: bool) -> str:
    if corrected:
        return "corrected"
    for name, bit in (("patched", Flag.PATCHED), ("repaired", Flag.REPAIRED), ("invalid", Flag.INVALID),
                      ("suspect", Flag.SUSPECT)):
        if flags & bit:
            return name
    return "raw"


@dataclass
class ChartRange:
    name: str
    start: datetime
    end: datetime


def range_labels():
    return [("day", _("last day")), ("week", _("last 7 days")), ("month", _("last 31 days"))]


def labels() -> dict[str, str]:
    """The chart's words, translated here (the page's JavaScript has no catalog)."""
    return {"suspect": str(_("suspect")), "invalid": str(_("invalid")), "repaired": str(_("repaired")),
            "patched": str(_("patched")), "corrected": str(_("corrected")),
            "correctedRaw": str(_("value before correction")), "rollup": str(_("hourly average")),
            "gap": str(_("open gap")), "empty": str(_("No readings in this range.")),
            "zoom": str(_("Zoom to a box")), "zoomBack": str(_("Undo zoom")), "restore": str(_("Reset")),
            "missing": str(_("missing points")), "consumption": str(_("hourly consumption")),
            "consumptionFlagged": str(_("includes a rollover, reset, replacement or implausible advance")),
            "consumptionSpread": str(_("spread over a gap")), "register": str(_("register"))}


def chart_range(name: str | None, now: datetime | None = None) -> ChartRange:
    """The range picked (``day``, ``week``, ``month``); anything else is the default (last 7 days)."""
    name = name if name in RANGES else DEFAULT_RANGE
    end = now or timezone.now()
    return ChartRange(name, end - RANGES[name], end)


def _finite(x):
    return x if x is not None and isinstance(x, float | int) and math.isfinite(x) else None


def source_chart(principal, source, rng: ChartRange) -> dict:
    """The chart data of ``source`` over ``rng`` for ``principal`` (who must be able to view the source: the
    caller found it through the seam; every read here is restricted again). Times are the park's local wall
    clock, "YYYY-MM-DD HH:MM:SS", which the browser draws as they are."""
    tz = ZoneInfo(source.park.time_zone)
    english = (translation.get_language() or "").startswith("en")

    def local(ts: datetime) -> str:
        return timezone.localtime(ts, tz).strftime("%Y-%m-%d %H:%M:%S")

    items = list(source.data_items.order_by("code"))
    readings = access.restrict(Reading.objects.all(), principal, Action.VIEW).filter(
        source_id=source.pk, ts__gte=rng.start, ts__lte=rng.end)
    counts = dict(readings.values_list("data_item_id").annotate(n=Count("id")).order_by())
    rolled = {i.pk for i in items if counts.get(i.pk, 0) > ROLLUP_ABOVE}
    raw_pks = [i.pk for i in items if i.pk not in rolled and counts.get(i.pk)]

    points: dict[int, list] = {i.pk: [] for i in items}
    if raw_pks:
        rows = effective.with_latest_revision(readings.filter(data_item_id__in=raw_pks).exclude(value=None))
        for item_pk, ts, raw, flags, revision in rows.order_by("data_item_id", "ts").values_list(
                "data_item_id", "ts", "value", "flags", effective.REVISION_ANNOTATION):
            value, revision_id = effective.split(raw, revision)
            value, raw = _finite(value), _finite(raw)
            flags = effective.effective_flags(flags, revision)
            # a repair draws as repaired, a real reading that replaced a fill by its own flags: not corrections
            corrected = revision_id is not None and value != raw and bool(flags & Flag.CORRECTED)
            points[item_pk].append([local(ts), value, kind_of(flags, corrected), raw if corrected else None])
    if rolled:
        rollups = access.restrict(Rollup.objects.filter(interval=Rollup.Interval.HOUR), principal, Action.VIEW)
        for item_pk, bucket, total, count, low, high in rollups.filter(
                source_id=source.pk, data_item_id__in=list(rolled), bucket__gte=rng.start - timedelta(hours=1),
                bucket__lte=rng.end).order_by("data_item_id", "bucket").values_list(
                "data_item_id", "bucket", "sum", "count", "min", "max"):
            mean = _finite(total / count) if count else None
            points[item_pk].append([local(bucket), mean, "rollup", None, _finite(low), _finite(high)])

    gaps = access.restrict(Gap.objects.all(), principal, Action.VIEW).filter(
        Q(source_id=source.pk, state=Gap.State.OPEN, end__gte=rng.start, start__lte=rng.end)).order_by("start")
    spans: dict[int, list] = {i.pk: [] for i in items}
    for item_pk, start, end, missing in gaps.values_list("data_item_id", "start", "end", "missing"):
        if item_pk in spans:
            spans[item_pk].append([local(max(start, rng.start)), local(min(end, rng.end)), missing])

    # Items read as a meter register: their hourly consumption derived beside the register (issue #12 item 6).
    registers = {r.data_item_id: r for r in RegisterSetting.objects.filter(source_id=source.pk)}
    hourly = hourly_for_chart(principal, source, rng.start - timedelta(hours=1), rng.end) if registers else {}

    def register(item):
        r = registers.get(item.pk)
        if r is None:
            return None
        rows = hourly.get(item.pk, [])
        return {"ct": r.ct_ratio, "pt": r.pt_ratio, "modulus": r.modulus,
                "total": sum(v for _b, v, _f, _s in rows if v is not None),
                "flaggedHours": sum(1 for row in rows if row[2]),
                "consumption": [[local(b), v, f, sp] for b, v, f, sp in rows]}

    return {
        "range": rng.name, "start": local(rng.start), "end": local(rng.end), "rollupAbove": ROLLUP_ABOVE,
        "series": [{"code": i.code, "name": (i.name_en if english and i.name_en else i.name_zh), "unit": i.unit,
                    "rollup": i.pk in rolled, "count": counts.get(i.pk, 0), "points": points[i.pk],
                    "gaps": spans[i.pk], "kinds": _kinds(points[i.pk]), "register": register(i)} for i in items],
    }


def _kinds(points: list) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in points:
        out[p[2]] = out.get(p[2], 0) + 1
    return out
