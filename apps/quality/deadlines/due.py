"""When data of a period is due (R-6.2.b–d), pure apart from the working-day table.

Periods are given by their first and last day (both inclusive, park-local dates). Choices where the standard's
words leave room (docs/deadlines.md):

- daily: before 12:00 of the next day (次日 12:00 前): due at 12:00 park-local of ``period_end + 1``.
- monthly: "before the 5th of the next month" (次月 5 日前) is read as including the 5th: due at the end of the
  5th of the month after ``period_end`` (00:00 of the 6th, park-local).
- stage (quarterly or yearly data): within 10 calendar days after the period (阶段结束后 10 日内): due at the end
  of ``period_end + 10 days`` (00:00 of the 11th day after the period, park-local).
- manual: within 3 working days of the data being produced (数据产生后 3 个工作日内), the data being produced
  when its period ends: due at the end of the 3rd working day after ``period_end`` (official calendar).

A time "at the end of day D" is 00:00 of D + 1: the due instant is when lateness starts."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from apps.quality.deadlines.calendar import add_workdays

MANUAL_WORKDAYS = 3
STAGE_DAYS = 10
MONTHLY_DAY = 5
DAILY_HOUR = 12


class Kind(StrEnum):
    DAILY = "daily"
    MONTHLY = "monthly"
    STAGE = "stage"
    MANUAL = "manual"


def _at(day: date, tz: ZoneInfo, hour: int = 0) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=tz)


def due_at(kind: Kind | str, period_start: date, period_end: date, tz) -> datetime:
    """The instant data of the period ``period_start``..``period_end`` (inclusive days) becomes overdue, in
    ``tz`` (the park's zone, a ZoneInfo or its name), R-6.2.b (daily, monthly), R-6.2.c (stage), R-6.2.d
    (manual)."""
    tz = ZoneInfo(tz) if isinstance(tz, str) else tz
    if period_end < period_start:
        raise ValueError("period_end before period_start")
    kind = Kind(kind)
    if kind is Kind.DAILY:
        return _at(period_end + timedelta(days=1), tz, DAILY_HOUR)
    if kind is Kind.MONTHLY:
        year, month = (period_end.year + 1, 1) if period_end.month == 12 else (period_end.year, period_end.month + 1)
        return _at(date(year, month, MONTHLY_DAY) + timedelta(days=1), tz)
    if kind is Kind.STAGE:
        return _at(period_end + timedelta(days=STAGE_DAYS + 1), tz)
    return _at(add_workdays(period_end, MANUAL_WORKDAYS) + timedelta(days=1), tz)


# --- periods ----------------------------------------------------------------------------------------------

PERIODS = ("day", "month", "quarter", "year")


def period_bounds(period: str, day: date) -> tuple[date, date]:
    """The first and last day of the ``period`` (day, month, quarter, year) containing ``day``."""
    if period == "day":
        return day, day
    if period == "month":
        first, months = day.replace(day=1), 1
    elif period == "quarter":
        first, months = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1), 3
    elif period == "year":
        first, months = date(day.year, 1, 1), 12
    else:
        raise ValueError(f"unknown period {period!r}")
    m = first.month - 1 + months
    return first, date(first.year + m // 12, m % 12 + 1, 1) - timedelta(days=1)


def latest_due_period(period: str, kind: Kind | str, now: datetime, tz) -> tuple[date, date, datetime]:
    """The most recent ``period`` whose due time (``kind``) has passed at ``now``: (first day, last day, due)."""
    tz = ZoneInfo(tz) if isinstance(tz, str) else tz
    start, _end = period_bounds(period, now.astimezone(tz).date())
    # The due time is at most ~2 months after a period's end (a few periods back for months and longer), but a day's
    # manual data is due 3 working days later: up to ~12 days across the Spring Festival, so days need more steps.
    for _ in range(40):
        start, end = period_bounds(period, start - timedelta(days=1))
        due = due_at(kind, start, end, tz)
        if due <= now:
            return start, end, due
    raise AssertionError("no due period found")  # pragma: no cover


def due_periods(period: str, kind: Kind | str, now: datetime, tz, *, since: datetime) -> list[tuple[date, date,
                                                                                             datetime]]:
    """Every ``period`` whose due time has passed at ``now`` and is after ``since`` (the look-back), newest
    first, and at least the most recent one: (first day, last day, due)."""
    tz = ZoneInfo(tz) if isinstance(tz, str) else tz
    start, end, due = latest_due_period(period, kind, now, tz)
    out = [(start, end, due)]
    while len(out) < 400:
        start, end = period_bounds(period, start - timedelta(days=1))
        due = due_at(kind, start, end, tz)
        if due <= since:
            break
        out.append((start, end, due))
    return out


def kind_for_period(period: str) -> Kind:
    """The kind of data a period's length says (R-6.2.b/c): a day daily, a month monthly, longer stage."""
    return {"day": Kind.DAILY, "month": Kind.MONTHLY}.get(period, Kind.STAGE)


def period_for_interval(seconds: int) -> str:
    """The period a source's expected interval fills: up to a day daily, up to a month monthly, up to a quarter
    quarterly, else yearly."""
    if seconds <= 86400:
        return "day"
    if seconds <= 31 * 86400:
        return "month"
    if seconds <= 92 * 86400:
        return "quarter"
    return "year"
