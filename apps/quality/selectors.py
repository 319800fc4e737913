"""Reads for the portal's landing page: per park, how its sources stand, its open alarms and today's readings
and rejections by channel (R-8.1.2.1, R-9.1.4, R-9.3.1), scoped through ``apps.accounts.access``.

A constant number of queries whatever the number of parks (five, plus the principal's memberships once):
parks, source states, open alarms, today's readings by park × channel × local hour, today's rejections by
park × channel. "Today" is each park's own calendar day in its time zone, so one query covers parks in
different zones with one (park, day) range each; each range is an index range on ``reading_park_ts``.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, F, Func, IntegerField, Q
from django.utils import timezone

from apps.accounts import access
from apps.accounts.access import Action
from apps.accounts.models import Park
from apps.ingestion.models import Reading, Rejection
from apps.quality.models import Alarm
from apps.sources.models import DataSource, DeviceState


@dataclass
class ParkFigures:
    park: Park
    day_start: datetime  # the park's local midnight (aware)
    sources: int = 0
    online: int = 0
    offline: int = 0
    unknown: int = 0
    silent: int = 0  # online by its status topic (or unknown) but no data for three expected intervals
    alarms: int = 0
    alarms_by_severity: dict[str, int] = field(default_factory=dict)
    alarms_by_kind: dict[str, int] = field(default_factory=dict)
    readings: int = 0
    readings_by_channel: dict[str, int] = field(default_factory=dict)
    hourly: dict[str, list[int]] = field(default_factory=dict)  # channel -> 24 counts, local hours 0..23
    rejections: int = 0
    rejections_by_channel: dict[str, int] = field(default_factory=dict)

    @property
    def activity(self) -> int:
        """How much there is to look at: what ranks parks when there are too many to show as cards."""
        return self.readings + self.rejections + 100 * self.alarms

    @property
    def rejection_rate(self) -> float | None:
        """Rejected records as a share of all records received today (percent), None when none came."""
        received = self.readings + self.rejections
        return round(100.0 * self.rejections / received, 1) if received else None

    @property
    def channels(self) -> list[str]:
        return sorted(set(self.readings_by_channel) | set(self.rejections_by_channel))

    def channel_rows(self) -> list[tuple[str, int, int]]:
        return [(c, self.readings_by_channel.get(c, 0), self.rejections_by_channel.get(c, 0)) for c in self.channels]

    def chart(self) -> dict:
        """The data of the park's chart (readings per local hour today, one series per channel)."""
        return {"park": self.park.code, "hours": [f"{h:02d}" for h in range(24)],
                "series": [{"name": c, "data": self.hourly[c]} for c in sorted(self.hourly)]}


def _day_bounds(tz_name: str, now: datetime) -> tuple[datetime, datetime]:
    try:
        tz = zoneinfo.ZoneInfo(tz_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = timezone.get_default_timezone()
    local = now.astimezone(tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    # The next local midnight (23 or 25 hours away on a daylight-saving day).
    end = (start + timedelta(days=1, hours=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, end


class LocalHour(Func):
    """The hour of ``ts`` on the wall clock of the park's time zone (0..23)."""

    template = "EXTRACT(HOUR FROM %(expressions)s)"
    arg_joiner = " AT TIME ZONE "
    output_field = IntegerField()


def landing_figures(principal, park_ids: list[int] | None = None, *, now: datetime | None = None
                    ) -> list[ParkFigures]:
    """The landing page's figures for the parks ``principal`` may view (R-7.3.3), limited to ``park_ids``
    when given (the portal's park switcher: ``access.portal_park_ids``). Ordered by park code."""
    now = now or timezone.now()
    parks = access.restrict(Park.objects.all(), principal, Action.VIEW)
    if park_ids is not None:
        parks = parks.filter(pk__in=park_ids)
    figures = {}
    for p in parks.order_by("code"):
        start, _end = _day_bounds(p.time_zone, now)
        figures[p.pk] = ParkFigures(park=p, day_start=start)
    if not figures:
        return []
    ids = list(figures)
    days = {pk: _day_bounds(f.park.time_zone, now) for pk, f in figures.items()}

    # Source states: gateways are left out (they send no data, their liveness is the Last Will).
    sources = (access.restrict(DataSource.objects.filter(park__in=ids, enabled=True), principal, Action.VIEW)
               .exclude(kind=DataSource.Kind.GATEWAY)
               .values("park_id", "device_state__state", "device_state__silent").annotate(n=Count("pk")))
    for row in sources.order_by():
        f = figures[row["park_id"]]
        f.sources += row["n"]
        # Each source counts once: offline (its status topic or Last Will said so), else silent (no data
        # for three expected intervals, whatever its status says), else online, else unknown.
        state = row["device_state__state"] or DeviceState.State.UNKNOWN
        if state == DeviceState.State.OFFLINE:
            f.offline += row["n"]
        elif row["device_state__silent"]:
            f.silent += row["n"]
        elif state == DeviceState.State.ONLINE:
            f.online += row["n"]
        else:
            f.unknown += row["n"]

    alarms = (access.restrict(Alarm.objects.filter(park__in=ids, state=Alarm.State.OPEN), principal, Action.VIEW)
              .values("park_id", "severity", "kind").annotate(n=Count("pk")))
    for row in alarms.order_by():
        f = figures[row["park_id"]]
        f.alarms += row["n"]
        f.alarms_by_severity[row["severity"]] = f.alarms_by_severity.get(row["severity"], 0) + row["n"]
        f.alarms_by_kind[row["kind"]] = f.alarms_by_kind.get(row["kind"], 0) + row["n"]

    # One (park, local day) range per park: each is an index range scan on reading_park_ts (park, -ts).
    today = Q()
    for pk, (start, end) in days.items():
        today |= Q(park_id=pk, ts__gte=start, ts__lt=end)
    readings = (access.restrict(Reading.objects.filter(today), principal, Action.VIEW)
                .annotate(hour=LocalHour(F("ts"), F("park__time_zone")))
                .values("park_id", "channel", "hour").annotate(n=Count("pk")))
    for row in readings.order_by():
        f = figures[row["park_id"]]
        f.readings += row["n"]
        f.readings_by_channel[row["channel"]] = f.readings_by_channel.get(row["channel"], 0) + row["n"]
        f.hourly.setdefault(row["channel"], [0] * 24)[int(row["hour"])] += row["n"]

    rejected_today = Q()
    for pk, (start, end) in days.items():
        rejected_today |= Q(park_id=pk, received_at__gte=start, received_at__lt=end)
    rejections = (access.restrict(Rejection.objects.filter(rejected_today), principal, Action.VIEW)
                  .values("park_id", "batch__channel").annotate(n=Count("pk")))
    for row in rejections.order_by():
        f = figures[row["park_id"]]
        f.rejections += row["n"]
        channel = row["batch__channel"]
        f.rejections_by_channel[channel] = f.rejections_by_channel.get(channel, 0) + row["n"]
    return list(figures.values())


def totals(figures: list[ParkFigures]) -> dict[str, int]:
    """Sums over the parks shown, for the headline row."""
    keys = ["sources", "online", "offline", "unknown", "silent", "alarms", "readings", "rejections"]
    return {k: sum(getattr(f, k) for f in figures) for k in keys}

