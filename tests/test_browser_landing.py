"""The landing page in Debian's Chromium (issue #8): a data-entry clerk and an auditor each see their parks'
figures and a chart per park, drawn under the Content Security Policy (no violation). The screenshots in
docs/screenshots/ (landing-clerk.png, landing-auditor.png, roles.png) come from var/screenshots/ here."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from apps.accounts.access import ROLES
from tests.test_browser_admin import CHROMIUM, PASSWORD, SCREENSHOTS, collect_csp_violations, login, page  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason="Debian's Chromium is not installed"),
]

SHANGHAI = ZoneInfo("Asia/Shanghai")


def zh(label) -> str:
    from django.utils import translation

    with translation.override("zh-hans"):
        return str(label)


def landing_scene():
    """Two parks as a morning looks: meters pushing over HTTP, a heat meter and a wastewater monitor over MQTT
    every 15 minutes since local midnight, a few records rejected, one meter offline, one gone silent."""
    from django.contrib.auth import get_user_model

    from apps.accounts.services import save_park, set_membership
    from apps.catalog.models import DataItem
    from apps.core.services import bump_config_version
    from apps.ingestion.services import ingest_readings
    from apps.sources.models import DeviceState
    from apps.sources.services import save_source
    from apps.sources.services.state import flag_silent_sources, record_status
    from tests.conftest import make_uscc

    bump_config_version()
    a = save_park(actor="test", code="JSTZ01", name_zh="苏州零碳产业园", name_en="Suzhou zero-carbon park",
                  time_zone="Asia/Shanghai", uscc=make_uscc("91320500MA1PARK01"))
    b = save_park(actor="test", code="JSTZ02", name_zh="泰州滨江工业园", name_en="Taizhou riverside park",
                  time_zone="Asia/Shanghai", uscc=make_uscc("91321200MA1PARK02"))
    items = {d.code: d for d in DataItem.objects.filter(code__in=["CS010201", "CS010301", "CS030201"])}
    plan = [  # park, source id, name, code, channel, protocol, base value
        (a, "JSTZ01-EM-0001", "1# 总进线电表", "CS010201", "http", "http", 420.0),
        (a, "JSTZ01-EM-0002", "2# 车间电表", "CS010201", "http", "http", 180.0),
        (a, "JSTZ01-EM-0003", "3# 办公楼电表", "CS010201", "http", "http", 35.0),
        (a, "JSTZ01-HM-0001", "热力计量表", "CS010301", "mqtt", "mqtt_json", 2.4),
        (a, "JSTZ01-WW-0001", "污水处理站流量计", "CS030201", "mqtt", "mqtt_json", 12.0),
        (b, "JSTZ02-EM-0001", "总降压站电表", "CS010201", "mqtt", "mqtt_json", 950.0),
        (b, "JSTZ02-EM-0002", "空压站电表", "CS010201", "mqtt", "mqtt_json", 260.0),
        (b, "JSTZ02-WW-0001", "污水排口流量计", "CS030201", "http", "http", 30.0),
    ]
    now = timezone.now()
    start = timezone.localtime(now, SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    slots = []
    t = start
    while t <= now - timedelta(minutes=1):
        slots.append(t)
        t += timedelta(minutes=15)
    sources = {}
    for park, sid, name, code, channel, protocol, base in plan:
        sources[sid] = save_source(actor="test", source_id=sid, park=park, name=name, protocol=protocol,
                                   data_items=[items[code]])
        records = []
        for n, ts in enumerate(slots):
            if sid == "JSTZ01-EM-0002" and n > len(slots) - 6:
                break  # went offline a while ago
            hour = timezone.localtime(ts, SHANGHAI).hour
            value = round(base * (1.0 + 0.35 * (8 <= hour <= 18) + 0.05 * (n % 3)), 2)
            records.append({"sourceId": sid, "dataCode": code, "timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"),
                            "value": value})
        if sid in ("JSTZ01-EM-0001", "JSTZ02-WW-0001") and records:
            records[len(records) // 2]["value"] = -records[len(records) // 2]["value"]  # rejected: negative
        if sid == "JSTZ01-HM-0001" and records:
            records[-1]["unit"] = "m3"  # rejected: a heat meter reporting in a unit that is no energy
        for i in range(0, len(records), 20):  # batches as a device would send them
            ingest_readings(records[i:i + 20], channel=channel, actor=f"device:{sid}", now=now)
    for sid, src in sources.items():
        record_status(source=src, state="offline" if sid == "JSTZ01-EM-0002" else "online", at=now)
    DeviceState.objects.filter(source__source_id__in=["JSTZ01-EM-0003", "JSTZ02-EM-0002"]).update(
        last_seen_at=now - timedelta(hours=1))  # heard from an hour ago, nothing since: silent
    flag_silent_sources(now=now)

    users = get_user_model().objects
    clerk = users.create_user("zhang.wei", "zhang.wei@example.invalid", PASSWORD, is_staff=True,
                              first_name="伟", last_name="张")
    set_membership(actor="test", user=clerk, park=a, role="operator")
    auditor = users.create_user("li.na", "li.na@example.invalid", PASSWORD, is_staff=True,
                                first_name="娜", last_name="李")
    set_membership(actor="test", user=auditor, park=a, role="auditor")
    set_membership(actor="test", user=auditor, park=b, role="auditor")
    return {"a": a, "b": b}


def _landing(page, username, expected_parks, shot):  # noqa: F811 (the browser fixture)
    violations = collect_csp_violations(page)
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, username)
    assert page.inner_text("#content h1") == "碳数据平台"
    cards = page.locator(".park-card")
    assert sorted(cards.evaluate_all("els => els.map(e => e.dataset.park)")) == expected_parks
    for code in expected_parks:  # ECharts drew each park's chart: a canvas inside the chart box
        page.wait_for_selector(f"#park-{code} .chart[data-rendered=true] canvas")
    # The figures come before the list of sections, and the page fits 1 400 px.
    width = page.evaluate("() => [document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
    assert width[0] <= width[1], width
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / shot), full_page=True)
    assert violations == [], violations


def test_clerk_lands_on_its_parks_figures_and_chart(page):  # noqa: F811
    landing_scene()
    _landing(page, "zhang.wei", ["JSTZ01"], "landing-clerk.png")
    assert "JSTZ02" not in page.inner_text("#content")
    assert page.locator(".role-badge").first.inner_text() == zh(ROLES["operator"].label)
    names = page.locator(".shortcuts a").evaluate_all("els => els.map(e => e.dataset.name)")
    assert "admin:ingestion_reading_changelist" in names and "swagger-ui" in names
    assert "admin:core_auditentry_changelist" not in names
    assert "读数" in page.inner_text(".shortcuts")
    card = page.locator("#park-JSTZ01")
    assert "HTTP" in card.inner_text() and "MQTT" in card.inner_text()
    # The role matrix, the clerk's row highlighted.
    page.click("#user-tools a[href='/roles/']")
    assert page.locator("#role-matrix tr.mine th").inner_text().lower().startswith(zh(ROLES["operator"].label).lower())
    page.screenshot(path=str(SCREENSHOTS / "roles.png"), full_page=True)


def test_auditor_lands_on_both_parks_with_the_audit_trail(page):  # noqa: F811
    landing_scene()
    _landing(page, "li.na", ["JSTZ01", "JSTZ02"], "landing-auditor.png")
    audit = page.locator(".shortcuts a[data-name='admin:core_auditentry_changelist']")
    assert audit.get_attribute("href") == "/core/auditentry/" and audit.is_visible()
