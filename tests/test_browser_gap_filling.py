"""Filled gaps on a source's chart in Debian's Chromium (issue #12 item 3 with item 6): points stored by the
filling (apps/quality/filling) are drawn as patched, a repaired spike as repaired, and the gap list offers the
park administrator its actions. The screenshot docs/screenshots/source-chart-filled-zh.png comes from
var/screenshots/ here (1 280 px wide)."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from tests.test_browser_admin import CHROMIUM, PASSWORD, SCREENSHOTS, collect_csp_violations, login, page  # noqa: F401
from tests.test_browser_chart import OPTION

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason="Debian's Chromium is not installed"),
]

SHANGHAI = ZoneInfo("Asia/Shanghai")
CODE = "CS010201"


def filled_scene():
    """A workshop meter's active energy register over the last three days, a reading every 15 minutes: a
    45-minute hole (interpolated), a 5-hour hole (filled from the previous day's profile), one spike
    repaired by interpolation."""
    from django.contrib.auth import get_user_model

    from apps.accounts.services import save_park, set_membership
    from apps.catalog.models import DataItem
    from apps.core.services import bump_config_version
    from apps.ingestion.services import ingest_readings
    from apps.quality.filling import fill_gaps
    from apps.quality.postchecks import run_post_checks
    from apps.quality.services import save_rule
    from apps.sources.services import save_source
    from tests.conftest import make_uscc
    from tests.test_source_chart import local

    bump_config_version()
    park = save_park(actor="test", code="JSTZ01", name_zh="苏州零碳产业园", name_en="Suzhou zero-carbon park",
                     time_zone="Asia/Shanghai", uscc=make_uscc("91320500MA1PARK01"))
    meter = save_source(actor="test", source_id="JSTZ01-EM-0003", park=park, name="3# 车间电表",
                        data_items=list(DataItem.objects.filter(code=CODE)), expected_interval_s=900)
    now = timezone.now().replace(second=0, microsecond=0)
    end = now - timedelta(minutes=now.minute % 15)
    slots = [end - timedelta(minutes=15 * n) for n in range(3 * 96, -1, -1)]
    hour = [timezone.localtime(ts, SHANGHAI).hour for ts in slots]
    values, v = [], 5000.0
    for n in range(len(slots)):
        values.append(round(v, 2))
        v += (30.0 if 8 <= hour[n] < 18 else 8.0) / 4 * (1 + 0.1 * (n % 3))
    short = set(range(len(slots) - 60, len(slots) - 57))  # 45 minutes: 3 points
    long = set(range(len(slots) - 40, len(slots) - 20))  # 5 hours: 20 points
    spike = len(slots) - 100
    save_rule(actor="test", name="outlier", kind="outlier", params={"window": 12, "k": 5, "robust": True},
              severity="flag", park=park)
    records = [{"sourceId": meter.source_id, "dataCode": CODE, "timestamp": local(ts),
                "value": values[n] * (1.3 if n == spike else 1.0)}
               for n, ts in enumerate(slots) if n not in short | long]
    for i in range(0, len(records), 100):
        r = ingest_readings(records[i:i + 100], channel="http", actor="device", now=now)
        assert not r.rejected, r.rejected
    from apps.ingestion.rollups import refresh

    refresh(budget=None)  # what the beat does every 10 s (it may feed the quality queues)
    run_post_checks()
    run = fill_gaps()
    assert (run.linear, run.profile, run.points, run.repaired) == (1, 1, 23, 1), run

    users = get_user_model().objects
    admin = users.create_user("zhao.lei", "zhao.lei@example.invalid", PASSWORD, is_staff=True)
    set_membership(actor="test", user=admin, park=park, role="admin")
    return {"meter": meter, "patched": sorted(local(slots[n]) for n in short | long),
            "repaired": local(slots[spike])}


def test_filled_points_are_drawn_as_patched_and_the_repair_as_repaired(page):  # noqa: F811
    scene = filled_scene()
    violations = collect_csp_violations(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    login(page, "zhao.lei")
    page.goto(f"/sources/datasource/{scene['meter'].pk}/chart/?range=day")
    page.wait_for_selector("#source-chart[data-rendered=true] canvas")
    series = {s["id"]: s for s in page.evaluate(OPTION)["series"]}
    marks = series["kind-patched"]
    in_range = {d[0] for d in series[f"item-{CODE}"]["data"]}
    assert sorted(d[0] for d in marks["data"]) == [ts for ts in scene["patched"] if ts in in_range]
    assert len(marks["data"]) >= 20 and marks["symbol"] == "emptyCircle"
    assert series[f"patched-line-{CODE}"]["lineStyle"]["type"] == "dashed"
    assert "已补齐" in page.inner_text("#chart-summary")
    assert violations == [], violations
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "source-chart-filled-zh.png"), full_page=True)
    page.goto(f"/sources/datasource/{scene['meter'].pk}/chart/?range=week")
    page.wait_for_selector("#source-chart[data-rendered=true] canvas")
    series = {s["id"]: s for s in page.evaluate(OPTION)["series"]}
    assert [d[0] for d in series["kind-repaired"]["data"]] == [scene["repaired"]]
    # the gap list: both gaps filled with their method; the administrator has the two actions
    page.goto("/quality/gap/")
    text = page.inner_text("#result_list")
    assert text.count("已补齐") == 2 and "linear" in text and "profile_day" in text
    options = page.locator("select[name=action] option").all_inner_texts()
    assert "立即补齐所选缺口" in options and "忽略所选缺口" in options
