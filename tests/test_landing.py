"""The portal's landing page (issue #8): real figures per park, scoped to the user's parks, in a constant
number of queries; the role matrix page; the menu order (data and people first, plumbing last)."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from apps.accounts.access import ROLES
from apps.accounts.services import save_park, set_membership
from apps.ingestion.services import ingest_readings
from apps.quality.selectors import landing_figures
from apps.sources.models import DeviceState
from apps.sources.services.state import flag_silent_sources, record_status
from tests.conftest import add_source

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=SHANGHAI)
CODE = "CS010201"


def rec(source, ts, value=1.0, **extra):
    return {"sourceId": source, "dataCode": CODE, "timestamp": ts, "value": value, **extra}


@pytest.fixture
def scene(park, other_park):
    """Park TP01: 5 readings today (3 HTTP, 2 MQTT, one at 00:05 local = the previous day in UTC), one from
    yesterday, 2 records rejected over HTTP (one of them by the non-negative rule, which opens an alarm),
    one meter online, one offline (an alarm), one silent. Park TP02: 4 MQTT readings today, 1 rejected."""
    a1, a2, a3 = (add_source(park, f"TP01-EM-000{n}", [CODE], expected_interval_s=60) for n in (1, 2, 3))
    b1 = add_source(other_park, "TP02-EM-0001", [CODE])
    r = ingest_readings([rec(a1.source_id, "2026-11-23 00:05:00"), rec(a1.source_id, "2026-11-23 08:10:00"),
                         rec(a1.source_id, "2026-11-23 09:05:00"), rec(a1.source_id, "2026-11-23 09:10:00", "x"),
                         rec(a1.source_id, "2026-11-23 09:15:00", -1)], channel="http", actor="test", now=NOW)
    assert (r.accepted, len(r.rejected)) == (3, 2), r
    r = ingest_readings([rec(a2.source_id, "2026-11-23 10:00:00"), rec(a2.source_id, "2026-11-23 10:05:00"),
                         rec(a2.source_id, "2026-11-22 23:55:00", backfill=True)], channel="mqtt", actor="test",
                        now=NOW)
    assert r.accepted == 3, r
    r = ingest_readings([rec(b1.source_id, f"2026-11-23 11:0{m}:00") for m in range(4)]
                        + [rec(b1.source_id, "2026-11-23 11:30:00", "bad")], channel="mqtt", actor="test", now=NOW)
    assert r.accepted == 4, r
    record_status(source=a1, state="online", at=NOW)
    record_status(source=a2, state="offline", at=NOW)
    # a3 was heard from an hour ago and never since: more than three expected intervals.
    record_status(source=a3, state="online", at=NOW)
    DeviceState.objects.filter(pk=a3.pk).update(last_seen_at=datetime(2026, 11, 23, 11, 0, tzinfo=SHANGHAI))
    flag_silent_sources(now=NOW)
    return {"a": park, "b": other_park}


def user(name, park=None, role=None):
    u = get_user_model().objects.create_user(name, f"{name}@example.invalid", "pw-Landing-123", is_staff=True)
    if park is not None:
        set_membership(actor="test", user=u, park=park, role=role)
    return u


@pytest.mark.django_db
def test_figures_are_right_and_today_is_the_parks_day(scene):
    root = get_user_model().objects.create_superuser("root", "root@example.invalid", "pw-Landing-123")
    figures = {f.park.code: f for f in landing_figures(root, now=NOW)}
    a, b = figures["TP01"], figures["TP02"]
    assert (a.readings, a.readings_by_channel) == (5, {"http": 3, "mqtt": 2})
    assert (a.rejections, a.rejections_by_channel) == (2, {"http": 2})
    assert a.hourly["http"][0] == 1 and a.hourly["http"][8] == 1 and a.hourly["http"][9] == 1
    assert a.hourly["mqtt"][10] == 2 and sum(a.hourly["mqtt"]) == 2
    assert (a.sources, a.online, a.offline, a.silent, a.unknown) == (3, 1, 1, 1, 0)  # each source counted once
    # offline (E6001), silent (E6002) and the two rejected records (one validation alarm per code) are open.
    assert a.alarms_by_kind == {"offline": 1, "silent": 1, "validation": 2}
    assert a.alarms == 4 and sum(a.alarms_by_severity.values()) == 4
    assert (b.readings, b.readings_by_channel, b.rejections) == (4, {"mqtt": 4}, 1)
    assert (b.sources, b.unknown, a.rejection_rate, b.rejection_rate) == (1, 1, 28.6, 20.0)  # b1: no status yet
    # The next day, in the park's time zone, starts from zero.
    tomorrow = landing_figures(root, now=datetime(2026, 11, 24, 0, 1, tzinfo=SHANGHAI))
    assert [f.readings for f in tomorrow] == [0, 0]


@pytest.mark.django_db
def test_a_user_of_park_a_never_sees_park_b(scene, client):
    clerk = user("clerk", scene["a"], "operator")
    assert [f.park.code for f in landing_figures(clerk, now=NOW)] == ["TP01"]
    # Even when asked for park B's id (a stale switcher pick), B stays out.
    assert landing_figures(clerk, [scene["b"].pk], now=NOW) == []
    client.force_login(clerk)
    r = client.get("/")
    assert r.status_code == 200
    d = r.context["dashboard"]
    assert [c["f"].park.code for c in d["cards"]] == ["TP01"] and d["park_count"] == 1
    html = r.content.decode()
    assert "TP02" not in html and "另一园区" not in html
    assert 'id="landing-charts"' in html and f"chart-{scene['a'].pk}" in html
    names = [s["name"] for s in d["shortcuts"]]
    assert "admin:ingestion_reading_changelist" in names and "swagger-ui" in names
    assert "admin:core_auditentry_changelist" not in names and "admin:accounts_membership_changelist" not in names


@pytest.mark.django_db
def test_auditor_gets_the_audit_trail_and_system_admin_every_park(scene, client):
    auditor = user("auditor", scene["b"], "auditor")
    client.force_login(auditor)
    d = client.get("/").context["dashboard"]
    assert [c["f"].park.code for c in d["cards"]] == ["TP02"]
    assert d["audit_url"] in [s["url"] for s in d["shortcuts"]] and d["may_audit"]
    root = get_user_model().objects.create_superuser("root", "root@example.invalid", "pw-Landing-123")
    client.force_login(root)
    r = client.get("/")
    d = r.context["dashboard"]
    assert d["park_count"] == 2 and d["is_system"]
    html = r.content.decode()
    assert html.index('class="park-cards"') < html.index('class="app-grid"')  # figures first, sections below


@pytest.mark.django_db
def test_query_count_is_the_same_for_one_and_five_parks(park):
    parks = [park] + [save_park(actor="test", code=f"TQ{n:02d}", name_zh=f"园区{n}",
                                time_zone="Asia/Shanghai" if n % 2 else "Europe/Berlin") for n in range(4)]
    for p in parks:
        src = add_source(p, f"{p.code}-EM-1", [CODE])
        ingest_readings([rec(src.source_id, "2026-11-23 01:00:00"), rec(src.source_id, "2026-11-23 01:05:00", "x")],
                        channel="http", actor="test", now=NOW)
    one = user("one", parks[0], "viewer")
    five = user("five", parks[0], "viewer")
    for p in parks[1:]:
        set_membership(actor="test", user=five, park=p, role="auditor")
    counts = []
    for u in (one, five):
        with CaptureQueriesContext(connection) as ctx:
            figures = landing_figures(u, now=NOW)
        counts.append(len(ctx.captured_queries))
        assert all(f.readings == 1 and f.rejections == 1 for f in figures)
    assert len(figures) == 5
    assert counts[0] == counts[1] <= 6, counts


@pytest.mark.django_db
def test_many_parks_show_the_busiest_as_cards_and_all_as_a_paginated_table(park, client):
    for n in range(30):
        save_park(actor="test", code=f"TM{n:02d}", name_zh=f"园区{n}")
    busy = add_source(park, "TP01-EM-1", [CODE])
    ingest_readings([rec(busy.source_id, "2026-11-23 09:00:00")], channel="http", actor="test")
    root = get_user_model().objects.create_superuser("root", "root@example.invalid", "pw-Landing-123")
    client.force_login(root)
    d = client.get("/").context["dashboard"]
    assert d["many"] and len(d["cards"]) == 6 and d["park_count"] == 31
    assert len(d["rows"]) == 25 and d["page"].paginator.num_pages == 2
    d2 = client.get("/?page=2").context["dashboard"]
    assert len(d2["rows"]) == 6


@pytest.mark.django_db
def test_roles_page_marks_the_users_own_roles(park, client):
    client.force_login(user("clerk", park, "operator"))
    r = client.get("/roles/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert r.status_code == 200
    mine = [row["role"].code for row in r.context["rows"] if row["mine"]]
    assert mine == ["operator"]
    html = r.content.decode()
    with translation.override("zh-hans"):
        clerk_label = str(ROLES["operator"].label)
    assert 'class="role-operator mine"' in html and clerk_label in html
    assert len(r.context["rows"]) == 8 and len(r.context["actions"]) == 9


@pytest.mark.django_db
def test_menu_puts_data_and_people_first_and_plumbing_last(client):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.invalid", "pw-Landing-123"))
    apps = [a["app_label"] for a in client.get("/").context["app_list"]]
    assert apps[:3] == ["ingestion", "quality", "sources"]
    assert apps[-2:] == ["core", "django_celery_beat"]
    ingestion = client.get("/").context["app_list"][0]
    assert [m["object_name"] for m in ingestion["models"]][:3] == ["Reading", "Rollup", "Rejection"]


@pytest.mark.django_db
def test_the_park_switchers_pick_narrows_the_figures(scene, client):
    from apps.accounts.access import SESSION_PARK

    client.force_login(get_user_model().objects.create_superuser("root", "root@example.invalid", "pw-Landing-123"))
    session = client.session
    session[SESSION_PARK] = scene["b"].pk
    session.save()
    d = client.get("/").context["dashboard"]
    assert [c["f"].park.code for c in d["cards"]] == ["TP02"] and d["park_count"] == 1
