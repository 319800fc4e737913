"""A meter register and its derived consumption side by side on the source's chart page, in Debian's Chromium
(issue #12 items 2 and 6): the register as a line on the left axis, the hourly consumption as bars on a second,
right-hand axis (read from the ECharts instance's own option), a rollover hour and a gap's spread hours told apart.
The screenshot docs/screenshots/source-chart-register-zh.png comes from var/screenshots/ here (1 280 px wide)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.test_browser_admin import CHROMIUM, PASSWORD, SCREENSHOTS, collect_csp_violations, login, page  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason="Debian's Chromium is not installed"),
]

CODE = "CS010201"


def register_scene():
    """The main incoming meter over the last seven days, a reading every 15 minutes of a six-digit register that
    rolls over on the second day, with a six-hour hole; CT 40, PT 1."""
    from django.contrib.auth import get_user_model

    from apps.accounts.services import save_park, set_membership
    from apps.catalog.models import DataItem
    from apps.core.services import bump_config_version
    from apps.ingestion import rollups
    from apps.ingestion.services import ingest_readings
    from apps.quality.registers.derive import derive_consumption
    from apps.quality.registers.services import save_register_setting
    from apps.sources.services import save_source
    from tests.conftest import make_uscc
    from tests.test_source_chart import local

    bump_config_version()
    park = save_park(actor="test", code="JSTZ01", name_zh="苏州零碳产业园", name_en="Suzhou zero-carbon park",
                     time_zone="Asia/Shanghai", uscc=make_uscc("91320500MA1PARK01"))
    meter = save_source(actor="test", source_id="JSTZ01-EM-0001", park=park, name="1# 总进线电能表",
                        expected_interval_s=900, data_items=list(DataItem.objects.filter(code=CODE)))
    save_register_setting(actor="test", source=meter, data_item=meter.data_items.get(), modulus=1_000_000,
                          ct_ratio=40, pt_ratio=1, rated_power_kw=4000)
    now = timezone.now().replace(second=0, microsecond=0)
    end = now - timedelta(minutes=now.minute % 15)
    slots = [end - timedelta(minutes=15 * n) for n in range(7 * 96 - 4, 0, -1)]
    hole = set(range(420, 444))  # six hours
    register, records = 998_800.0, []
    for n, ts in enumerate(slots):
        hour = timezone.localtime(ts).hour
        register = (register + (6.0 if 8 <= hour <= 18 else 2.5) + 0.5 * (n % 3)) % 1_000_000
        if n not in hole:
            records.append({"sourceId": meter.source_id, "dataCode": CODE, "timestamp": local(ts),
                            "value": round(register, 2)})
    for i in range(0, len(records), 100):
        r = ingest_readings(records[i:i + 100], channel="http", actor="device", now=now)
        assert not r.rejected, r.rejected
    rollups.refresh(budget=None)
    derive_consumption()
    viewer = get_user_model().objects.create_user("wang.fang", "wang.fang@example.invalid", PASSWORD)
    set_membership(actor="test", user=viewer, park=park, role="viewer")
    return {"meter": meter, "first": records[0]["value"], "last": records[-1]["value"]}


OPTION = """() => {
  const chart = echarts.getInstanceByDom(document.getElementById('source-chart'));
  const o = chart.getOption();
  return {
    yAxis: o.yAxis.map(a => ({position: a.position || 'left', name: a.name || ''})),
    series: o.series.map(s => ({id: s.id, type: s.type, yAxisIndex: s.yAxisIndex || 0,
      data: s.data.map(d => Array.isArray(d) ? {value: d} : {value: d.value, flagged: d.flagged || 0,
                                                             spread: !!d.spread})})),
  };
}"""


def test_the_register_and_its_consumption_side_by_side(page):  # noqa: F811
    scene = register_scene()
    violations = collect_csp_violations(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    login(page, "wang.fang")
    page.goto(f"/sources/datasource/{scene['meter'].pk}/chart/?range=week")
    page.wait_for_selector("#source-chart[data-rendered=true] canvas")
    option = page.evaluate(OPTION)
    assert [a["position"] for a in option["yAxis"]] == ["left", "right"]
    assert "每小时用量" in option["yAxis"][1]["name"]
    series = {s["id"]: s for s in option["series"]}
    line, bars = series[f"item-{CODE}"], series[f"consumption-{CODE}"]
    assert (line["type"], line["yAxisIndex"]) == ("line", 0)
    assert (bars["type"], bars["yAxisIndex"]) == ("bar", 1)
    # one bar an hour over the seven days; the rollover's hour flagged, the hole's hours spread, none below zero
    assert 6 * 24 < len(bars["data"]) <= 7 * 24 + 1
    assert sum(1 for d in bars["data"] if d["flagged"]) == 1
    assert sum(1 for d in bars["data"] if d["spread"]) >= 6
    assert all(d["value"][1] >= 0 for d in bars["data"])
    # the bars add up to the register's advance (across its rollover) times CT
    total = sum(d["value"][1] for d in bars["data"])
    assert total == pytest.approx((scene["last"] + 1_000_000 - scene["first"]) * 40, rel=1e-6)
    assert "CS010201" in page.inner_text("#register-summary") and "40" in page.inner_text("#register-summary")
    assert violations == [], violations
    width = page.evaluate("() => [document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
    assert width[0] <= width[1], width
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "source-chart-register-zh.png"), full_page=True)
