"""Reminders of overdue data (R-6.2.b–d, R-9.1.4): to the park's responsible staff once per item and period, then
to the park's administrators when still overdue ``DEADLINE_ESCALATE_WORKDAYS`` working days after the due time.

The reminder log (``DeadlineReminder``, unique per item, period and step) is written in the same transaction as
the e-mail is sent: a second run, or two at once, sends nothing twice; a failed send leaves no row, so the next
run tries again. The portal shows the same: the overdue page, with each item's reminder and escalation."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from apps.accounts import access
from apps.accounts.access import Action, SystemPrincipal
from apps.quality.deadlines.calendar import add_workdays
from apps.quality.deadlines.selectors import OverdueItem, overdue
from apps.quality.models import DeadlineReminder

KIND_ZH = {"daily": "日报数据", "monthly": "月报数据", "stage": "阶段性数据", "manual": "手工录入数据"}


def _roles_with(action: Action) -> list[str]:
    return [code for code, role in access.ROLES.items() if role.kind == "member" and action in role.actions]


def recipients(item: OverdueItem, step: str) -> list[str]:
    """E-mail addresses to tell: for a reminder, the park's members who enter the form (``enter``) or send the
    source's readings (``push``); for an escalation, the park's administrators."""
    from apps.accounts.models import Membership

    if step == DeadlineReminder.Step.ESCALATE:
        roles = ["admin"]
    else:
        roles = _roles_with(Action.ENTER if item.item_kind == "form" else Action.PUSH)
    ids = Membership.objects.filter(park_id=item.park_id, role__in=roles).values("user_id")
    return sorted(get_user_model().objects.filter(pk__in=ids, is_active=True).exclude(email="")
                  .values_list("email", flat=True))


def escalates_at(item: OverdueItem, tz) -> datetime:
    """The due time moved on by ``DEADLINE_ESCALATE_WORKDAYS`` working days (same clock time, park-local)."""
    local = item.due_at.astimezone(tz)
    n = settings.DEADLINE_ESCALATE_WORKDAYS
    return local if n <= 0 else datetime.combine(add_workdays(local.date(), n), local.timetz())


def _digest(entries: list[tuple[OverdueItem, str]], zones: dict) -> tuple[str, str]:
    from zoneinfo import ZoneInfo

    escalations = sum(1 for _i, step in entries if step == DeadlineReminder.Step.ESCALATE)
    prefix = "[CarbonPark] 升级提醒 / Escalation: " if escalations else "[CarbonPark] "
    subject = f"{prefix}{len(entries)} 项数据已逾期 / {len(entries)} overdue"
    lines = []
    for item, step in entries:
        tz = ZoneInfo(zones[item.park_id])
        period = (f"{item.period_start:%Y-%m-%d}" if item.period_start == item.period_end
                  else f"{item.period_start:%Y-%m-%d} – {item.period_end:%Y-%m-%d}")
        mark = "【升级 / escalated】 " if step == DeadlineReminder.Step.ESCALATE else ""
        lines.append(f"{mark}{item.park_code} {item.item_code} {item.item_name} | 周期 / period {period} | "
                     f"{KIND_ZH.get(item.deadline_kind, item.deadline_kind)} ({item.deadline_kind}) | "
                     f"截止 / due {item.due_at.astimezone(tz):%Y-%m-%d %H:%M} | {item.state}")
    body = "\n".join(lines) + "\n\n请在平台“逾期数据”页面查看 / see the portal's overdue page.\n"
    return subject, body


REMINDER_LOCK = 0x43504444  # "CPDD": one reminder run at a time


def send_reminders(*, now: datetime | None = None) -> dict[str, int]:
    """Remind and escalate every overdue item of every park (R-6.2.b–d): one e-mail per person per run listing
    their new items; returns how many log rows of each step were written. Idempotent: an item, period and step
    already in the log is skipped; runs are serialised by an advisory lock and the log rows commit only with
    the e-mails sent (a failed send leaves no row: the next run tries again)."""
    from zoneinfo import ZoneInfo

    from django.core.mail import send_mass_mail
    from django.db import connection

    from apps.accounts.models import Park

    now = now or timezone.now()
    items = overdue(SystemPrincipal("deadline reminders"), now=now)
    zones = dict(Park.objects.values_list("pk", "time_zone"))
    counts = {"remind": 0, "escalate": 0}
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [REMINDER_LOCK])
        done = set(DeadlineReminder.objects.filter(period_start__in={i.period_start for i in items})
                   .values_list("item_kind", "item_id", "period_start", "step"))
        rows, by_address, people = [], {}, {}
        for item in items:
            steps = [DeadlineReminder.Step.REMIND]
            if escalates_at(item, ZoneInfo(zones[item.park_id])) <= now:
                steps.append(DeadlineReminder.Step.ESCALATE)
            for step in steps:
                if (item.item_kind, item.item_id, item.period_start, step.value) in done:
                    continue
                key = (item.park_id, item.item_kind, step.value)
                to = people.get(key)
                if to is None:
                    to = people[key] = recipients(item, step)
                rows.append(DeadlineReminder(
                    park_id=item.park_id, item_kind=item.item_kind, item_id=item.item_id,
                    item_label=f"{item.item_code} {item.item_name}"[:200], period_start=item.period_start,
                    period_end=item.period_end, deadline_kind=item.deadline_kind, due_at=item.due_at, step=step,
                    sent_at=now, recipients=to))
                for address in to:
                    by_address.setdefault(address, []).append((item, step))
                counts[step.value] += 1
        DeadlineReminder.objects.bulk_create(rows)
        messages = [(*_digest(entries, zones), settings.DEFAULT_FROM_EMAIL, [address])
                    for address, entries in sorted(by_address.items())]
        if messages:
            send_mass_mail(messages, fail_silently=False)
    return counts


def save_workday_override(*, actor, override=None, reason: str = "", **fields):
    """Create or change a day of the working-day table (R-6.2.d), audited; system administrators only (the
    table is the platform's)."""
    from django.forms.models import model_to_dict

    from apps.core.services import record_change
    from apps.quality.models import WorkdayOverride

    access.require(actor, Action.MANAGE, None)
    names = ["date", "is_workday", "note"]
    before = model_to_dict(override, fields=names) if override is not None and override.pk else None
    override = override or WorkdayOverride()
    for key, value in fields.items():
        setattr(override, key, value)
    override.full_clean()
    override.save()
    after = {k: str(v) for k, v in model_to_dict(override, fields=names).items()}
    record_change(actor=actor, action="workday.create" if before is None else "workday.update", obj=override,
                  before={k: str(v) for k, v in before.items()} if before else None, after=after, reason=reason)
    return override


def delete_workday_override(*, actor, override, reason: str = "") -> None:
    """Remove a day from the working-day table (the library's calendar, or Monday to Friday, applies again),
    audited; system administrators only."""
    from django.forms.models import model_to_dict

    from apps.core.services import record_change

    access.require(actor, Action.MANAGE, None)
    before = {k: str(v) for k, v in model_to_dict(override, fields=["date", "is_workday", "note"]).items()}
    pk = override.pk
    override.delete()
    record_change(actor=actor, action="workday.delete", object_type="quality.workdayoverride", object_id=str(pk),
                  before=before, reason=reason)
