"""Due dates (R-6.2.b–d) and the working-day calendar: across the 2026 Spring Festival, a working weekend, and a
year chinese-calendar does not cover (the override table then decides)."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from apps.quality.deadlines.calendar import add_workdays, is_workday
from apps.quality.deadlines.due import due_at, latest_due_period, period_bounds
from apps.quality.models import WorkdayOverride

SH = ZoneInfo("Asia/Shanghai")


def test_the_library_says_what_the_state_council_notice_says_for_2026():
    """The fixture facts below, checked against the library itself rather than trusted."""
    off = [date(2026, 2, d) for d in range(15, 24)]
    assert not any(chinese_calendar.is_workday(d) for d in off)
    assert chinese_calendar.is_workday(date(2026, 2, 14))  # a Saturday worked
    assert chinese_calendar.is_workday(date(2026, 2, 28))  # a Saturday worked
    assert chinese_calendar.is_workday(date(2026, 9, 20))  # a Sunday worked before the National Day holiday
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2099, 1, 5))


@pytest.mark.django_db
def test_manual_data_across_the_spring_festival():
    # produced Friday 13 Feb: Saturday 14th (worked) is day 1, then nine days off, Tue 24th, Wed 25th
    assert add_workdays(date(2026, 2, 13), 3) == date(2026, 2, 25)
    assert due_at("manual", date(2026, 2, 13), date(2026, 2, 13), SH) == datetime(2026, 2, 26, tzinfo=SH)
    # a month ending inside the holiday: 24th, 25th, 26th
    assert due_at("manual", date(2026, 2, 1), date(2026, 2, 16), SH) == datetime(2026, 2, 27, tzinfo=SH)


@pytest.mark.django_db
def test_manual_data_across_a_working_weekend():
    # Sunday 20 Sep 2026 is worked (the Mid-Autumn holiday's swap): from Fri 18 Sep, Sunday 20th counts.
    assert is_workday(date(2026, 9, 20)) and not is_workday(date(2026, 9, 19))
    assert add_workdays(date(2026, 9, 18), 3) == date(2026, 9, 22)  # Sun 20, Mon 21, Tue 22
    # Sat 28 Feb is worked: from Thu 26 Feb, Fri 27, Sat 28, Mon 2 Mar
    assert add_workdays(date(2026, 2, 26), 3) == date(2026, 3, 2)


@pytest.mark.django_db
def test_an_uncovered_year_uses_the_override_table_then_monday_to_friday():
    # 2099: the library does not know it. Mon 5 Jan .. Wed 7 Jan by Monday-to-Friday
    assert add_workdays(date(2099, 1, 2), 3) == date(2099, 1, 7)  # Fri 2 Jan -> Mon 5, Tue 6, Wed 7
    WorkdayOverride.objects.create(date=date(2099, 1, 6), is_workday=False, note="holiday")
    WorkdayOverride.objects.create(date=date(2099, 1, 3), is_workday=True, note="Saturday worked")
    assert not is_workday(date(2099, 1, 6)) and is_workday(date(2099, 1, 3))
    assert add_workdays(date(2099, 1, 2), 3) == date(2099, 1, 7)  # Sat 3, Mon 5, Wed 7
    assert due_at("manual", date(2099, 1, 2), date(2099, 1, 2), SH) == datetime(2099, 1, 8, tzinfo=SH)


@pytest.mark.django_db
def test_an_override_wins_over_the_library():
    assert is_workday(date(2026, 2, 24))
    WorkdayOverride.objects.create(date=date(2026, 2, 24), is_workday=False)
    assert not is_workday(date(2026, 2, 24))
    assert add_workdays(date(2026, 2, 13), 3) == date(2026, 2, 26)


def test_daily_monthly_and_stage_due_times():
    assert due_at("daily", date(2026, 2, 16), date(2026, 2, 16), SH) == datetime(2026, 2, 17, 12, tzinfo=SH)
    # the Spring Festival does not move calendar-day deadlines
    assert due_at("monthly", date(2026, 1, 1), date(2026, 1, 31), SH) == datetime(2026, 2, 6, tzinfo=SH)
    assert due_at("monthly", date(2026, 12, 1), date(2026, 12, 31), SH) == datetime(2027, 1, 6, tzinfo=SH)
    assert due_at("stage", date(2026, 1, 1), date(2026, 3, 31), SH) == datetime(2026, 4, 11, tzinfo=SH)
    assert due_at("stage", date(2026, 1, 1), date(2026, 12, 31), "UTC") == datetime(2027, 1, 11, tzinfo=ZoneInfo("UTC"))
    with pytest.raises(ValueError):
        due_at("weekly", date(2026, 1, 1), date(2026, 1, 1), SH)
    with pytest.raises(ValueError):
        due_at("daily", date(2026, 1, 2), date(2026, 1, 1), SH)


@pytest.mark.django_db
def test_latest_due_period():
    assert period_bounds("quarter", date(2026, 5, 9)) == (date(2026, 4, 1), date(2026, 6, 30))
    assert period_bounds("year", date(2026, 5, 9)) == (date(2026, 1, 1), date(2026, 12, 31))
    now = datetime(2026, 12, 5, 23, tzinfo=SH)  # November not due until the end of the 5th
    assert latest_due_period("month", "monthly", now, SH)[:2] == (date(2026, 10, 1), date(2026, 10, 31))
    now = datetime(2026, 12, 6, 0, 0, 1, tzinfo=SH)
    assert latest_due_period("month", "monthly", now, SH)[:2] == (date(2026, 11, 1), date(2026, 11, 30))
    now = datetime(2026, 2, 17, 11, 59, tzinfo=SH)
    assert latest_due_period("day", "daily", now, SH)[:2] == (date(2026, 2, 15), date(2026, 2, 15))
    assert latest_due_period("quarter", "stage", datetime(2026, 4, 10, tzinfo=SH), SH)[0] == date(2025, 10, 1)
