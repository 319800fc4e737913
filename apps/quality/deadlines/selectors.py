"""What is overdue now (R-6.2.b–d, R-9.1.4), per park, through the access seam.

Two kinds of item:

- a data source (not a gateway, not a form's source: forms are judged as forms) with no reading at all in a
  period whose due time has passed (the most recent one, and older ones due within ``DEADLINE_LOOKBACK_DAYS``).
  The period is what the source's expected interval fills (up to
  a day: a day; up to 31 days: a month; up to 92 days: a quarter; longer: a year) and the deadline kind follows:
  a source collected by manual entry (``collection_method`` manual) is "manual" (3 working days), else the
  period says it (day: daily, month: monthly, quarter or year: stage). A source created after the period began
  is not expected for it.
- a published, active form and a park that owes it: a park's own form, or a platform form the park has used
  (one submission of it at least), whose submission for a due period (as for sources) is not submitted or approved
  (a draft, a returned one, or none). The deadline kind follows the form's period like a source's. A form first
  published after the period ended is not expected for it.

Set-based: one statement per (period, kind, zone) group of sources (an index probe per source, bound data item and
period: ``PRESENT_SQL``), a few for the forms, one for their submissions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import Min, Q
from django.utils import timezone

from apps.accounts import access
from apps.accounts.access import Action
from apps.quality.deadlines.due import Kind, due_periods, kind_for_period, period_for_interval

SKIPPED_SOURCE_KINDS = ("gateway", "form")


@dataclass(frozen=True)
class OverdueItem:
    park_id: int
    park_code: str
    item_kind: str  # "source" or "form"
    item_id: int
    item_code: str  # the source id or the form code
    item_name: str
    period: str  # day, month, quarter, year
    period_start: date
    period_end: date
    deadline_kind: str  # daily, monthly, stage, manual
    due_at: datetime
    state: str  # "missing" (a source with no reading, a form with no submission) or the submission's state

    def overdue_for(self, now: datetime) -> timedelta:
        return now - self.due_at


def _start_instant(day: date, tz) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def _source_kind(method: str, period: str) -> Kind:
    return Kind.MANUAL if method == "manual" else kind_for_period(period)


def lookback(now: datetime) -> datetime:
    """Items whose due time is older than ``DEADLINE_LOOKBACK_DAYS`` drop off the list (the most recent period of
    each item is always judged)."""
    return now - timedelta(days=settings.DEADLINE_LOOKBACK_DAYS)


# Which (source, period) pairs have a reading: one index probe each on the readings' identity index (source,
# data item, ts), per bound data item, however many readings a period holds. One statement per group.
PRESENT_SQL = """
SELECT s.id, p.i
FROM unnest(%s::bigint[]) AS s(id)
CROSS JOIN unnest(%s::timestamptz[], %s::timestamptz[]) WITH ORDINALITY AS p(lo, hi, i)
WHERE EXISTS (
    SELECT 1 FROM sources_datasource_data_items b
    WHERE b.datasource_id = s.id AND EXISTS (
        SELECT 1 FROM ingestion_reading r
        WHERE r.source_id = b.datasource_id AND r.data_item_id = b.dataitem_id AND r.ts >= p.lo AND r.ts < p.hi))
"""


def _present(source_ids: list[int], windows: list[tuple[datetime, datetime]]) -> set[tuple[int, int]]:
    """(source id, index into ``windows``) for each window [lo, hi) in which the source has a reading of one of
    its bound data items."""
    if not source_ids or not windows:
        return set()
    with connection.cursor() as cur:
        cur.execute(PRESENT_SQL, [source_ids, [w[0] for w in windows], [w[1] for w in windows]])
        return {(pk, i - 1) for pk, i in cur.fetchall()}


def overdue_sources(principal, *, now: datetime, within=None) -> list[OverdueItem]:
    from apps.sources.models import DataSource

    qs = access.restrict(DataSource.objects.filter(enabled=True).exclude(kind__in=SKIPPED_SOURCE_KINDS),
                         principal, Action.VIEW, within=within)
    rows = list(qs.values_list("pk", "source_id", "name", "park_id", "park__code", "park__time_zone",
                               "expected_interval_s", "collection_method", "created_at"))
    groups: dict[tuple[str, Kind, str], list[tuple]] = {}
    for row in rows:
        period = period_for_interval(row[6])
        groups.setdefault((period, _source_kind(row[7], period), row[5]), []).append(row)
    out = []
    for (period, kind, tz_name), members in groups.items():
        tz = ZoneInfo(tz_name)
        periods = due_periods(period, kind, now, tz, since=lookback(now))
        present = _present([r[0] for r in members], [(_start_instant(p[0], tz),
                                                      _start_instant(p[1] + timedelta(days=1), tz)) for p in periods])
        present = {(pk, periods[i][0]) for pk, i in present}
        for r in members:
            for start, end, due in periods:
                if r[8] < _start_instant(start, tz) and (r[0], start) not in present:
                    out.append(OverdueItem(r[3], r[4], "source", r[0], r[1], r[2], period, start, end, kind.value,
                                           due, "missing"))
    return out


def overdue_forms(principal, *, now: datetime, within=None) -> list[OverdueItem]:
    from apps.accounts.models import Park
    from apps.entry.models import Form, FormVersion, Submission

    forms = {f["pk"]: f for f in access.restrict(
        Form.objects.filter(is_active=True), principal, Action.VIEW, within=within
    ).annotate(first_published=Min("versions__published_at")).filter(first_published__isnull=False)
        .values("pk", "code", "name_zh", "park_id", "first_published")}
    if not forms:
        return []
    # the current version's period of each form (one query)
    periods = dict(FormVersion.objects.filter(form_id__in=forms).order_by("form_id", "-number")
                   .distinct("form_id").values_list("form_id", "definition__period"))
    # which parks owe which form: its own park, or (platform forms) the parks that have used it
    visible_parks = access.restrict(Park.objects.all(), principal, Action.VIEW, within=within).values("pk")
    pairs = {(pk, f["park_id"]) for pk, f in forms.items() if f["park_id"] is not None}
    pairs |= set(Submission.objects.filter(form_id__in=[pk for pk, f in forms.items() if f["park_id"] is None],
                                           park_id__in=visible_parks)
                 .values_list("form_id", "park_id").distinct())
    if not pairs:
        return []
    parks = dict(Park.objects.filter(pk__in={p for _f, p in pairs}).values_list("pk", "code"))
    zones = dict(Park.objects.filter(pk__in=parks).values_list("pk", "time_zone"))
    wanted = []
    since = lookback(now)
    for form_id, park_id in pairs:
        period = periods.get(form_id) or "month"
        kind = kind_for_period(period)
        tz = ZoneInfo(zones[park_id])
        for start, end, due in due_periods(period, kind, now, tz, since=since):
            if forms[form_id]["first_published"] >= _start_instant(end + timedelta(days=1), tz):
                break  # not yet published when the period ended (nor for the older ones)
            wanted.append((form_id, park_id, period, kind, start, end, due))
    if not wanted:
        return []
    cond = Q(pk__in=[])
    for form_id, park_id, _p, _k, start, _e, _d in wanted:
        cond |= Q(form_id=form_id, park_id=park_id, period_start=start)
    states = {(f, p, s): st for f, p, s, st in
              Submission.objects.filter(cond).values_list("form_id", "park_id", "period_start", "state")}
    done = (Submission.State.SUBMITTED, Submission.State.APPROVED)
    out = []
    for form_id, park_id, period, kind, start, end, due in wanted:
        state = states.get((form_id, park_id, start), "missing")
        if state in done:
            continue
        f = forms[form_id]
        out.append(OverdueItem(park_id, parks[park_id], "form", form_id, f["code"], f["name_zh"], period, start,
                               end, kind.value, due, state))
    return out


def overdue(principal, *, now: datetime | None = None, within=None) -> list[OverdueItem]:
    """Everything overdue now in the parks ``principal`` may view (``within``: narrowed to these park ids),
    oldest due first (R-6.2.b–d)."""
    now = now or timezone.now()
    items = overdue_sources(principal, now=now, within=within) + overdue_forms(principal, now=now, within=within)
    return sorted(items, key=lambda i: (i.due_at, i.park_code, i.item_kind, i.item_code))
