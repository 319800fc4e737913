"""The official Chinese working-day calendar (R-6.2.d: manual data within 3 working days).

Order of precedence for a day: a ``WorkdayOverride`` row (the platform's table, for corrections and for years the
library does not know yet), then ``chinese_calendar`` (the State Council's yearly notice: holidays and the
weekend days worked in their place), then, for a year the library does not cover, Monday to Friday."""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar

MAX_WORKDAYS = 366  # add_workdays refuses more: a deadline is days away, never years


def _overrides(start: date, end: date) -> dict[date, bool]:
    from apps.quality.models import WorkdayOverride

    return dict(WorkdayOverride.objects.filter(date__range=(start, end)).values_list("date", "is_workday"))


def _library(day: date) -> bool:
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:  # a year the library does not cover: Monday to Friday
        return day.weekday() < 5


def is_workday(day: date, *, overrides: dict[date, bool] | None = None) -> bool:
    """Is ``day`` a working day (R-6.2.d)? ``overrides``: the override rows already read (else one query)."""
    table = _overrides(day, day) if overrides is None else overrides
    if day in table:
        return table[day]
    return _library(day)


def add_workdays(day: date, n: int) -> date:
    """The ``n``-th working day after ``day`` (``day`` itself not counted; n >= 1), R-6.2.d. One query for
    the override rows of the span, however long."""
    if not 1 <= n <= MAX_WORKDAYS:
        raise ValueError(f"n must be 1..{MAX_WORKDAYS}")
    # n working days fit in n*2 + 30 calendar days even across the Spring Festival (9 days off at most)
    table = _overrides(day + timedelta(days=1), day + timedelta(days=2 * n + 30))
    current, left = day, n
    while left:
        current += timedelta(days=1)
        if is_workday(current, overrides=table):
            left -= 1
    return current
