"""Two parks with a row of every model the portal shows, and one user per role (tests of the scoped portal).

Made through the services wherever one writes the model; the plumbing rows no service writes for a park
(idempotency keys, beat schedules, groups) directly."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model

PASSWORD = "s3cret-Portal-pw"
MEMBER_ROLES = ["viewer", "operator", "approver", "auditor", "admin"]
ROLES = [*MEMBER_ROLES, "system"]


@dataclass
class World:
    park_a: object
    park_b: object
    users: dict = field(default_factory=dict)  # role -> user (member of park A only; "system": a superuser)


def fill_park(park, n_sources: int = 2):
    from apps.accounts.services import issue_token
    from apps.catalog.models import DataItem
    from apps.catalog.services import save_catalog_class, save_data_item
    from apps.ingestion.services import ingest_readings
    from apps.quality.services import raise_alarm, save_rule
    from apps.sources.services import save_source
    from apps.sources.services.commands import create_command
    from apps.sources.services.keys import provision_key
    from apps.sources.services.state import record_status

    items = list(DataItem.objects.filter(code="CS010201"))
    sources = [save_source(actor="test", source_id=f"{park.code}-EM-{n:04d}", park=park, name=f"电表 {n}",
                           data_items=items) for n in range(1, n_sources + 1)]
    for source in sources:
        ingest_readings([
            {"sourceId": source.source_id, "timestamp": "2026-11-23 10:00:00", "value": 1.5},
            {"sourceId": source.source_id, "timestamp": "2026-11-23 10:05:00", "value": 2.5, "backfill": True},
            {"sourceId": source.source_id, "timestamp": "2026-11-23 10:05:00", "value": 2.5},  # duplicate
            {"sourceId": source.source_id, "timestamp": "2026-11-23 10:10:00", "value": -1},  # rejected, alarm
        ], channel="test", actor="test")
        create_command(actor="test", source=source, type="poll_now", params={})
        provision_key(actor="test", source=source)
        record_status(source=source, state="offline", reason="test")
        save_rule(actor="test", name=f"max {source.source_id}", kind="range", params={"max": 1000},
                  severity="flag", park=park, source=source)
        raise_alarm(park_id=park.pk, source_id=source.pk, kind="validation", code="E5202", message_zh="测试",
                    message_en="test")
    from apps.accounts.access import SystemPrincipal
    from apps.corrections.services import request_correction

    for n in (1, 2):  # several rows: the changelist's query-count guard needs them
        request_correction(actor=SystemPrincipal("test"), source_id=sources[0].source_id,
                           start="2026-11-23 10:00:00", end="2026-11-23 10:00:00", new_value=n, reason="test")
    code = {"TPA": "CS98", "TPB": "CS97"}.get(park.code, "CS96")
    save_catalog_class(actor="test", code=code, name_zh=f"{park.code} 自定义", park=park)
    save_catalog_class(actor="test", code=f"{code}01", name_zh=f"{park.code} 自定义小类", park=park)
    for n in (1, 2):
        save_data_item(actor="test", code=f"{code}010{n}", park=park, name_zh=f"{park.code} 自定义 {n}",
                       data_type="number", unit="kWh", methods=["realtime"])
        issue_token(actor="test", park=park, name=f"integrator {n}")
    from apps.accounts.access import SystemPrincipal
    from apps.entry.models import Form
    from apps.entry.services import copy_form, publish
    from apps.ingestion.rollups import refresh

    refresh()
    system = SystemPrincipal("test")
    form = copy_form(actor=system, source=Form.objects.get(code="engineered-sinks"), park=park,
                     code=f"{park.code.lower()}-sinks")
    publish(actor=system, form=form)
    from apps.entry.services.submissions import save_draft

    for quarter in ("2026-01-01", "2026-04-01"):  # submissions (drafts) of the park's form
        save_draft(actor=system, form=form, park=park, period=quarter, values={})
    import tempfile
    from pathlib import Path

    from apps.batch.loading import load_file

    with tempfile.TemporaryDirectory() as tmp:  # the load log: a file loaded, one refused whole
        for seq, header in ((1, "sourceId,dataCode,timestamp,value,unit,status"), (2, "sourceId,value")):
            name = f"{park.code}_CS_202611_20261201083000_{seq:03d}.csv"
            path = Path(tmp) / name
            path.write_text(f"{header}\n{sources[0].source_id},CS010201,2026-11-24 10:00:00,1.5,kWh,N\n")
            load_file(path, park=park, actor=system, filename=name, origin="command")
    from apps.ingestion import rollups
    from apps.quality.gaps import find_gaps

    rollups.refresh(budget=None)  # queues what was stored for the checks, as the beat does
    find_gaps()  # the file's reading a day after the others: a gap per park
    from apps.quality.postchecks import run_post_checks

    # checks after storage: 1.5 -> 2.5 -> 1.5, two jumps per park (several rows for the query-count guard)
    save_rule(actor="test", name=f"jump {park.code}", kind="jump", params={"absolute": 0.5}, severity="flag",
              park=park)
    if len(sources) > 1:  # a balance group: the first meter against the others
        from apps.quality.services import save_balance_group

        save_balance_group(actor="test", name=f"balance {park.code}", park=park, main_source=sources[0],
                           main_item=items[0], members=[(s, items[0]) for s in sources[1:]], tolerance_pct=5)
    run_post_checks(full=True)
    from apps.ingestion.services import ingest_readings
    from apps.quality.filling import fill_gaps
    from apps.quality.models import Gap

    # filled points: a half-hour hole the day before, interpolated (several rows for the query-count guard)
    ingest_readings([{"sourceId": sources[0].source_id, "timestamp": f"2026-11-22 10:{m:02d}:00", "value": 1.0}
                     for m in (0, 30)], channel="test", actor="test")
    refresh()
    find_gaps()
    fill_gaps(gap_ids=list(Gap.objects.filter(park=park, source=sources[0], missing=5).values_list("pk", flat=True)),
              force=True)
    pull_rows(park)
    import datetime as _dt

    from apps.quality.indicators.compute import refresh as indicators

    indicators(months=[_dt.date(2026, 11, 1)], parks=[park.pk])  # a row per source and item of the month
    register_rows(park, sources)
    platform_rows(park)
    return sources


def register_rows(park, sources):
    """Each source's kWh a register (a rollover point, a replacement each) and its consumption derived."""
    from apps.catalog.models import DataItem
    from apps.quality.registers.derive import derive_consumption
    from apps.quality.registers.services import save_register_setting, save_replacement

    item = DataItem.objects.get(code="CS010201")
    for source in sources:
        setting = save_register_setting(actor="test", source=source, data_item=item, modulus=1000.0)
        save_replacement(actor="test", setting=setting, ts="2026-11-23 10:02:00+08:00", old_last=2.0,
                         new_first=0.5)
    derive_consumption(full=True)


def pull_rows(park):
    """Two pull connectors per park and a run of each (a refused connection to a closed port: logged, failed)."""
    from apps.pulls.services import run_connector, save_connector

    mapping = {"sourceId": "/id", "timestamp": "/t", "value": "/v"}
    for n in (1, 2):
        c = save_connector(actor="test", park=park, name=f"{park.code} platform {n}", kind="rest",
                           settings={"url": "https://127.0.0.1:9/readings", "retries": 0, "connect_timeout": 1},
                           mapping=mapping, secret="token")
        run_connector(c.pk)


def platform_rows(park):
    """A third-party platform with a topic and two callback notices (one delivered, one dead letter)."""
    from django.utils import timezone

    from apps.accounts.access import SystemPrincipal
    from apps.catalog.models import DataItem
    from apps.ingestion.services import ingest_readings
    from apps.integrations.models import CallbackDelivery, Subscription
    from apps.integrations.services import register_platform
    from apps.sources.models import DataSource
    from apps.sources.services import save_source
    from tests.conftest import make_uscc

    platform, _secret = register_platform(
        actor=SystemPrincipal("test"), park=park, name=f"hub {park.code}", uscc=make_uscc("91110000MA01GRN0X"),
        base_url="https://hub.example", ip_whitelist=["192.0.2.0/24"], alert_email="ops@hub.example",
        callback_url="https://hub.example/cb")
    topic = f"{platform.app_id}.test"
    source = save_source(actor="test", source_id=topic, park=park, name=topic, kind=DataSource.Kind.THIRD_PARTY_TOPIC,
                         data_items=list(DataItem.objects.filter(code="CS010201")))
    # a topic that has pushed (its device state row exists, as for the park's other sources)
    ingest_readings([{"sourceId": topic, "timestamp": "2026-11-24 09:00:00", "value": 1}], channel="third_party",
                    actor=platform.audit_label)
    Subscription.objects.create(platform=platform, topic_code=topic, source=source, data_codes=["CS010201"])
    for state in ("delivered", "dead"):
        CallbackDelivery.objects.create(platform=platform, webhook_id=f"msg_{park.code}_{state}",
                                        url=platform.callback_url, event="anomaly", payload={"type": "anomaly"},
                                        state=state, attempts=1, next_at=timezone.now())


def plumbing_rows():
    from django.contrib.auth.models import Group
    from django.utils import timezone
    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        SolarSchedule,
    )

    from apps.core.services import bump_config_version
    from apps.ingestion.models import IdempotencyKey

    bump_config_version()
    Group.objects.get_or_create(name="portal-test")
    interval, _ = IntervalSchedule.objects.get_or_create(every=10, period="seconds")
    CrontabSchedule.objects.get_or_create(minute="5", hour="*")
    SolarSchedule.objects.get_or_create(event="sunrise", latitude=31.2, longitude=121.5)
    ClockedSchedule.objects.get_or_create(clocked_time=timezone.now())
    PeriodicTask.objects.get_or_create(name="portal-test", defaults={"task": "x.y", "interval": interval})
    IdempotencyKey.objects.get_or_create(scope="test", key="k1", defaults={"request_hash": "0" * 64,
                                                                           "created_at": timezone.now()})


def deadline_rows():
    """The working-day table (the platform's) and the reminder log: each park's meters, created today, have sent
    nothing for tomorrow, overdue the day after at 12:00 (reminded, made through the reminder service)."""
    from datetime import date, datetime, timedelta

    from django.utils import timezone

    from apps.accounts.access import SystemPrincipal
    from apps.quality.deadlines.services import save_workday_override, send_reminders

    system = SystemPrincipal("test")
    save_workday_override(actor=system, date=date(2099, 1, 3), is_workday=True, note="test")
    save_workday_override(actor=system, date=date(2099, 1, 6), is_workday=False, note="test")
    today = timezone.localdate()
    send_reminders(now=timezone.make_aware(datetime.combine(today + timedelta(days=2), datetime.min.time()))
                   + timedelta(hours=13))


def build_world() -> World:
    from apps.accounts.services import save_park, set_membership

    park_a = save_park(actor="test", code="TPA", name_zh="甲园区", name_en="Park A", time_zone="Asia/Shanghai")
    park_b = save_park(actor="test", code="TPB", name_zh="乙园区", name_en="Park B", time_zone="Asia/Shanghai")
    fill_park(park_a)
    fill_park(park_b)
    plumbing_rows()
    deadline_rows()
    world = World(park_a, park_b)
    users = get_user_model().objects
    for role in MEMBER_ROLES:
        world.users[role] = users.create_user(f"{role}-a", f"{role}@example.invalid", PASSWORD)
        set_membership(actor="test", user=world.users[role], park=park_a, role=role)
    # park B has staff of its own (its memberships are park B's rows)
    set_membership(actor="test", user=users.create_user("viewer-b", "vb@example.invalid", PASSWORD), park=park_b,
                   role="viewer")
    world.users["system"] = users.create_superuser("root", "root@example.invalid", PASSWORD)
    return world
