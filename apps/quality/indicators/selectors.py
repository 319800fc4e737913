"""Reads of the monthly quality indicators (R-9.1), scoped through the park-access seam: the rows, their ratios,
and sums over any set of rows (a park, a source, a month) computed from the counts, never averaged ratios."""

from __future__ import annotations

import re
from datetime import date

from django.db.models import Count, Q, Sum
from django.db.models.functions import Least

from apps.accounts import access
from apps.accounts.access import Action
from apps.quality.models import IndicatorMonth

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_month(text: str) -> date | None:
    """``"2026-11"`` → 2026-11-01; None for anything else."""
    m = MONTH_RE.match(text or "")
    return date(int(m.group(1)), int(m.group(2)), 1) if m else None


def rows(principal, action: Action = Action.VIEW, *, within=None) -> object:
    """The indicator rows ``principal`` may ``action`` (``within``: park ids to narrow to, the park switcher)."""
    return access.restrict(IndicatorMonth.objects.all(), principal, action, within=within)


def _ratio(num, den):
    return None if not den else num / den


def ratios(r: IndicatorMonth) -> dict:
    """One row's indicators (R-9.1.1–R-9.1.4), 0..1; None where there is nothing to judge."""
    return {
        "completeness": _ratio(min(r.present, r.expected), r.expected),
        "continuity": None if r.collection_method in ("manual", "field_measurement") or not r.period_s
        else 1 - r.gap_s / r.period_s,
        "fillRate": _ratio(r.patched, r.readings),
        "timeliness": _ratio(r.timely, r.readings - r.patched),
        "consistency": None if not r.readings else 1 - r.inconsistent / r.readings,
    }


AGGREGATES = {
    "rows": Count("id"),
    "expected": Sum("expected"), "presentCapped": Sum(Least("present", "expected")), "present": Sum("present"),
    "readings": Sum("readings"), "patched": Sum("patched"), "timely": Sum("timely"),
    "inconsistent": Sum("inconsistent"), "hits": Sum("hit"), "flagged": Sum("flagged"),
    "gaps": Sum("gaps"),
    "gapSeconds": Sum("gap_s", filter=~Q(collection_method__in=["manual", "field_measurement"])),
    "periodSeconds": Sum("period_s", filter=~Q(collection_method__in=["manual", "field_measurement"])),
    "automaticReadings": Sum("readings", filter=Q(automatic=True)),
    "sources": Count("source_id", distinct=True),
    "accuracyMet": Count("source_id", distinct=True, filter=Q(accuracy_ok=True)),
    "accuracyJudged": Count("source_id", distinct=True, filter=Q(accuracy_ok__isnull=False)),
}


# ORM aliases may not shadow the model's fields: the sums are computed as "n_<key>" and renamed after.
_ALIASED = {f"n_{k}": v for k, v in AGGREGATES.items()}


def _with_ratios(row: dict) -> dict:
    t = {k[2:]: (row[k] or 0) for k in _ALIASED}
    t["completeness"] = _ratio(t["presentCapped"], t["expected"])
    t["continuity"] = None if not t["periodSeconds"] else 1 - t["gapSeconds"] / t["periodSeconds"]
    t["fillRate"] = _ratio(t["patched"], t["readings"])
    t["timeliness"] = _ratio(t["timely"], t["readings"] - t["patched"])
    t["consistency"] = None if not t["readings"] else 1 - t["inconsistent"] / t["readings"]
    t["automaticShare"] = _ratio(t["automaticReadings"], t["readings"])
    t["accuracy"] = _ratio(t["accuracyMet"], t["accuracyJudged"])
    t["accuracyUnknown"] = t["sources"] - t["accuracyJudged"]
    return t


def summarize(qs) -> dict:
    """The indicators over the rows of ``qs`` (already scoped): sums of the counts, then the ratios. Accuracy
    counts sources: those meeting the class GB 17167 requires among those whose class and type are known."""
    return _with_ratios(qs.aggregate(**_ALIASED))


def summarize_by(qs, *fields) -> list[dict]:
    """``summarize`` per value of ``fields`` (e.g. ``"month"`` for a trend, ``"source__source_id"`` per
    source), one query."""
    return [_with_ratios(r) | {f: r[f] for f in fields}
            for r in qs.values(*fields).annotate(**_ALIASED).order_by(*fields)]
