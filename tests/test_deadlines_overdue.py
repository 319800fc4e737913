"""The overdue list (R-6.2.b–d), its API and page, and the reminders (once per item and period, escalated to the
park's administrators), e-mailed over tests/smtp_fake.py."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model

from apps.accounts.access import SystemPrincipal
from apps.accounts.services import set_membership
from apps.entry.models import Form, Submission
from apps.entry.services import copy_form, publish
from apps.entry.services.submissions import save_draft
from apps.ingestion.services import ingest_readings
from apps.quality.deadlines.selectors import overdue
from apps.quality.deadlines.services import send_reminders
from apps.quality.models import DeadlineReminder
from apps.sources.models import DataSource
from tests.conftest import add_source

SH = ZoneInfo("Asia/Shanghai")
ROOT = SystemPrincipal("test")
PASSWORD = "s3cret-Deadline-pw"


def _age(*sources):
    DataSource.objects.filter(pk__in=[s.pk for s in sources]).update(created_at=datetime(2026, 1, 1, tzinfo=SH))


@pytest.fixture
def sources(park, other_park):
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])  # 300 s: daily
    monthly = add_source(park, "TP01-EM-0002", ["CS010201"], expected_interval_s=30 * 86400)
    other = add_source(other_park, "TP02-EM-0001", ["CS010201"])
    _age(meter, monthly, other)
    return meter, monthly, other


@pytest.mark.django_db
def test_a_source_without_readings_for_its_due_day_is_overdue(sources):
    meter, monthly, other = sources
    ingest_readings([{"sourceId": meter.source_id, "timestamp": "2026-11-22 23:55:00", "value": 1}],
                    channel="test", actor="test")
    before_noon = datetime(2026, 11, 23, 11, 59, tzinfo=SH)  # 22 Nov was delivered; 21 Nov was not
    items = {(i.item_code, i.period_start) for i in overdue(ROOT, now=before_noon)}
    assert (meter.source_id, date(2026, 11, 22)) not in items
    at_noon = datetime(2026, 11, 24, 12, 0, tzinfo=SH)  # 23 Nov due now, nothing came
    items = {i.item_code: i for i in overdue(ROOT, now=at_noon)}
    assert items[meter.source_id].period_start == date(2026, 11, 23)
    assert items[meter.source_id].deadline_kind == "daily"
    assert items[meter.source_id].due_at == at_noon
    # the monthly source: October due at the end of 5 Nov, no reading
    assert items[monthly.source_id].period == "month" and items[monthly.source_id].period_start == date(2026, 10, 1)
    ingest_readings([{"sourceId": monthly.source_id, "timestamp": "2026-10-31 23:00:00", "value": 1}],
                    channel="test", actor="test")
    assert monthly.source_id not in {i.item_code for i in overdue(ROOT, now=at_noon)}


@pytest.mark.django_db
def test_the_list_is_scoped_by_park(sources, park):
    meter, _monthly, other = sources
    viewer = get_user_model().objects.create_user("viewer", "v@example.invalid", PASSWORD)
    set_membership(actor="test", user=viewer, park=park, role="viewer")
    now = datetime(2026, 11, 24, 13, tzinfo=SH)
    codes = {i.item_code for i in overdue(viewer, now=now)}
    assert meter.source_id in codes and other.source_id not in codes
    assert other.source_id in {i.item_code for i in overdue(ROOT, now=now)}
    stranger = get_user_model().objects.create_user("nobody", "n@example.invalid", PASSWORD)
    assert overdue(stranger, now=now) == []


@pytest.fixture
def quarterly_form(park):
    form = copy_form(actor=ROOT, source=Form.objects.get(code="engineered-sinks"), park=park, code="tp01-sinks")
    publish(actor=ROOT, form=form)
    return form


@pytest.mark.django_db
def test_a_form_not_submitted_for_its_due_quarter_is_overdue(park, quarterly_form):
    # Q1 2027 is due at the end of 10 Apr 2027 (stage data: 10 days after the period)
    before = datetime(2027, 4, 10, 23, 59, tzinfo=SH)
    assert "tp01-sinks" not in {i.item_code for i in overdue(ROOT, now=before) if i.period_start.year == 2027}
    after = datetime(2027, 4, 11, 0, 0, tzinfo=SH)
    item = next(i for i in overdue(ROOT, now=after) if i.item_code == "tp01-sinks")
    assert (item.period_start, item.period_end, item.deadline_kind, item.state) == (
        date(2027, 1, 1), date(2027, 3, 31), "stage", "missing")
    sub, *_rest = save_draft(actor=ROOT, form=quarterly_form, park=park, period="2027-01-01", values={})
    item = next(i for i in overdue(ROOT, now=after) if i.item_code == "tp01-sinks")
    assert item.state == "draft"
    Submission.objects.filter(pk=sub.pk).update(state=Submission.State.SUBMITTED)  # submitted: off the list
    assert "tp01-sinks" not in {i.item_code for i in overdue(ROOT, now=after)}


@pytest.mark.django_db
def test_reminders_once_then_escalation_over_smtp(sources, park, settings):
    """Across the Spring Festival: the meter's Friday 13 Feb 2026 is due Sat 14 Feb 12:00 (a working Saturday);
    escalated one working day later, which is Tue 24 Feb 12:00 (15–23 Feb are off)."""
    import email
    from email.header import decode_header, make_header

    from tests.smtp_fake import SmtpFake

    users = get_user_model().objects
    for role, name in (("operator", "clerk"), ("admin", "boss"), ("viewer", "watcher")):
        user = users.create_user(name, f"{name}@example.invalid", PASSWORD)
        set_membership(actor="test", user=user, park=park, role=role)
    meter, monthly, other = sources
    DataSource.objects.filter(pk__in=[monthly.pk, other.pk]).update(enabled=False)
    DataSource.objects.filter(pk=meter.pk).update(created_at=datetime(2026, 2, 12, tzinfo=SH))
    settings.DEADLINE_ESCALATE_WORKDAYS = 1
    settings.DEADLINE_LOOKBACK_DAYS = 20
    # readings every day but the 13th
    ingest_readings([{"sourceId": meter.source_id, "timestamp": f"2026-02-{d:02d} 10:00:00", "value": 1}
                     for d in range(14, 26)], channel="test", actor="test")

    def subjects_and_rcpts(messages):
        return [(str(make_header(decode_header(email.message_from_bytes(d)["Subject"]))), r, d)
                for _f, r, d in messages]

    with SmtpFake() as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", smtp.port, False
        now = datetime(2026, 2, 14, 12, 0, tzinfo=SH)
        assert send_reminders(now=now) == {"remind": 1, "escalate": 0}
        first = smtp.wait(2)
        assert sorted(r[0] for _f, r, _d in first) == ["boss@example.invalid", "clerk@example.invalid"]
        assert send_reminders(now=now) == {"remind": 0, "escalate": 0}  # the second run sends nothing
        log = DeadlineReminder.objects.get(item_kind="source", item_id=meter.pk, step="remind")
        assert (log.period_start, log.deadline_kind) == (date(2026, 2, 13), "daily")
        assert sorted(log.recipients) == ["boss@example.invalid", "clerk@example.invalid"]  # not the viewer
        # during the holiday: still overdue, not yet escalated, nothing new sent
        assert send_reminders(now=datetime(2026, 2, 23, 23, tzinfo=SH)) == {"remind": 0, "escalate": 0}
        assert send_reminders(now=datetime(2026, 2, 24, 12, 0, tzinfo=SH)) == {"remind": 0, "escalate": 1}
        assert send_reminders(now=datetime(2026, 2, 24, 12, 15, tzinfo=SH)) == {"remind": 0, "escalate": 0}
        messages = smtp.wait(3)
        assert len(smtp.wait(4, timeout=0.5)) == 3
    (subject, rcpt, data), = [m for m in subjects_and_rcpts(messages) if "升级提醒" in m[0]]
    assert rcpt == ["boss@example.invalid"]
    assert meter.source_id in email.message_from_bytes(data).get_payload(decode=True).decode("utf-8")
    esc = DeadlineReminder.objects.get(item_kind="source", item_id=meter.pk, step="escalate")
    assert esc.recipients == ["boss@example.invalid"]


@pytest.mark.django_db
def test_the_list_takes_the_same_number_of_queries_for_many_sources(park, sources):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    now = datetime(2026, 11, 24, 13, tzinfo=SH)
    with CaptureQueriesContext(connection) as few:
        n_few = len(overdue(ROOT, now=now))
    more = [add_source(park, f"TP01-EM-01{n:02d}", ["CS010201"]) for n in range(8)]
    _age(*more)
    with CaptureQueriesContext(connection) as many:
        n_many = len(overdue(ROOT, now=now))
    assert n_many > n_few
    assert len(many.captured_queries) == len(few.captured_queries)


@pytest.mark.django_db
def test_the_working_day_table_is_written_by_system_administrators_only_and_audited(park):
    from apps.accounts.access import AccessDenied
    from apps.core.models import AuditEntry
    from apps.quality.deadlines.services import delete_workday_override, save_workday_override
    from apps.quality.models import WorkdayOverride

    admin = get_user_model().objects.create_user("boss", "b@example.invalid", PASSWORD)
    set_membership(actor="test", user=admin, park=park, role="admin")
    with pytest.raises(AccessDenied):
        save_workday_override(actor=admin, date=date(2099, 1, 5), is_workday=False)
    day = save_workday_override(actor=ROOT, date=date(2099, 1, 5), is_workday=False, note="test")
    save_workday_override(actor=ROOT, override=day, is_workday=True, note="changed")
    with pytest.raises(AccessDenied):
        delete_workday_override(actor=admin, override=day)
    delete_workday_override(actor=ROOT, override=day)
    assert not WorkdayOverride.objects.exists()
    entries = list(AuditEntry.objects.filter(object_type="quality.workdayoverride").order_by("pk")
                   .values_list("action", flat=True))
    assert entries == ["workday.create", "workday.update", "workday.delete"]
