"""A data source's chart page in Debian's Chromium (issue #12 item 6): a patched hole is drawn in a different
style from raw readings (read from the ECharts instance's own option), the chart zooms, and nothing breaks the
Content Security Policy. The screenshots docs/screenshots/source-chart-zh.png and -en.png come from
var/screenshots/ here (1 280 px wide)."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from tests.test_browser_admin import CHROMIUM, PASSWORD, SCREENSHOTS, collect_csp_violations, login, page  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason="Debian's Chromium is not installed"),
]

SHANGHAI = ZoneInfo("Asia/Shanghai")
CODE = "CS010201"


def chart_scene():
    """A workshop meter over the last seven days, a reading every 15 minutes: a hole of an hour and a half filled by
    six patched points, one suspect spike, two repaired readings, three corrected ones, and an open gap of
    three hours that nothing filled."""
    from django.contrib.auth import get_user_model

    from apps.accounts.services import save_park, set_membership
    from apps.catalog.models import DataItem
    from apps.core.services import bump_config_version
    from apps.corrections import services as corrections
    from apps.ingestion.models import Flag
    from apps.ingestion.services import ingest_readings
    from apps.quality.models import Gap
    from apps.sources.services import save_source
    from tests.conftest import make_uscc
    from tests.test_source_chart import local, write_flagged

    bump_config_version()
    park = save_park(actor="test", code="JSTZ01", name_zh="苏州零碳产业园", name_en="Suzhou zero-carbon park",
                     time_zone="Asia/Shanghai", uscc=make_uscc("91320500MA1PARK01"))
    meter = save_source(actor="test", source_id="JSTZ01-EM-0002", park=park, name="2# 车间电表",
                        data_items=list(DataItem.objects.filter(code=CODE)))
    now = timezone.now().replace(second=0, microsecond=0)
    end = now - timedelta(minutes=now.minute % 15)
    slots = [end - timedelta(minutes=15 * n) for n in range(7 * 96 - 4, 0, -1)]
    patched, gap = set(range(400, 406)), set(range(520, 532))
    suspect, repaired = 300, {160, 161}

    def value(n: int, ts) -> float:
        hour = timezone.localtime(ts, SHANGHAI).hour
        return round(45.0 * (1.0 + 0.8 * (8 <= hour <= 18)) + 3.0 * (n % 4), 1)

    records = [{"sourceId": meter.source_id, "dataCode": CODE, "timestamp": local(ts), "value": value(n, ts)}
               for n, ts in enumerate(slots) if n not in patched | gap | {suspect} | repaired]
    for i in range(0, len(records), 50):
        r = ingest_readings(records[i:i + 50], channel="http", actor="device", now=now)
        assert not r.rejected, r.rejected
    for n in patched:
        write_flagged(meter, CODE, slots[n], value(n, slots[n]), Flag.PATCHED)
    for n in repaired:
        write_flagged(meter, CODE, slots[n], value(n, slots[n]), Flag.REPAIRED)
    write_flagged(meter, CODE, slots[suspect], 240.0, Flag.SUSPECT)
    item = meter.data_items.get()
    Gap.objects.create(park=park, source=meter, data_item=item, start=slots[min(gap) - 1], end=slots[max(gap) + 1],
                       interval_s=900, missing=len(gap), found_at=now, updated=now)

    users = get_user_model().objects
    operator = users.create_user("zhang.wei", "zhang.wei@example.invalid", PASSWORD, is_staff=True)
    approver = users.create_user("li.na", "li.na@example.invalid", PASSWORD, is_staff=True)
    viewer = users.create_user("wang.fang", "wang.fang@example.invalid", PASSWORD, is_staff=True)
    set_membership(actor="test", user=operator, park=park, role="operator")
    set_membership(actor="test", user=approver, park=park, role="approver")
    set_membership(actor="test", user=viewer, park=park, role="viewer")
    c = corrections.request_correction(actor=operator, source_id=meter.source_id, start=local(slots[600]),
                                       end=local(slots[602]), factor=1.2, reason="CT ratio set wrong")
    corrections.approve_correction(actor=approver, correction_id=c.pk)
    corrections.apply_correction(c.pk)
    return {"meter": meter, "patched": [local(slots[n]) for n in sorted(patched)],
            "raw": local(slots[10]), "suspect": local(slots[suspect])}


OPTION = """() => {
  const chart = echarts.getInstanceByDom(document.getElementById('source-chart'));
  const o = chart.getOption();
  return {
    series: o.series.map(s => ({id: s.id, type: s.type, symbol: s.symbol || null, itemStyle: s.itemStyle || {},
      lineStyle: s.lineStyle || {}, data: s.data.map(d => Array.isArray(d) ? d : d.value),
      markArea: (s.markArea && s.markArea.data || []).length})),
    dataZoom: o.dataZoom.map(z => ({type: z.type, start: z.start, end: z.end})),
  };
}"""


def zoom_to_the_last_days(tab):
    tab.evaluate("() => echarts.getInstanceByDom(document.getElementById('source-chart'))"
                  ".dispatchAction({type: 'dataZoom', start: 55, end: 100})")


def test_a_patched_gap_is_drawn_in_a_different_style(page):  # noqa: F811
    scene = chart_scene()
    violations = collect_csp_violations(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    login(page, "wang.fang")
    page.goto("/sources/datasource/")
    page.click(f"a[href='/sources/datasource/{scene['meter'].pk}/chart/']")
    page.wait_for_selector("#source-chart[data-rendered=true] canvas")
    option = page.evaluate(OPTION)
    series = {s["id"]: s for s in option["series"]}
    line, marks = series[f"item-{CODE}"], series["kind-patched"]
    values = {d[0]: d[1] for d in line["data"]}
    # The patched points: hollow circles with a dashed rim, not the line's plain filled circles; the solid
    # line stops at them and a dashed line bridges the hole.
    assert sorted(d[0] for d in marks["data"]) == scene["patched"]
    assert (marks["type"], marks["symbol"], marks["itemStyle"]["borderType"]) == ("scatter", "emptyCircle", "dashed")
    assert line["symbol"] == "circle" and line["itemStyle"].get("borderType") != "dashed"
    assert all(values[ts] is None for ts in scene["patched"]) and values[scene["raw"]] is not None
    bridge = series[f"patched-line-{CODE}"]
    assert bridge["lineStyle"]["type"] == "dashed" and line["lineStyle"]["type"] == "solid"
    assert all(d[1] is not None for d in bridge["data"] if d[0] in scene["patched"])
    # The raw reading is in no marked series; the suspect one is orange; corrections show both values.
    assert all(scene["raw"] not in [d[0] for d in s["data"]] for k, s in series.items() if k.startswith("kind-"))
    assert [d[0] for d in series["kind-suspect"]["data"]] == [scene["suspect"]]
    assert series["kind-suspect"]["itemStyle"]["color"] != marks["itemStyle"]["color"]
    assert len(series["kind-corrected"]["data"]) == len(series["kind-correctedRaw"]["data"]) == 3
    assert len(series["kind-repaired"]["data"]) == 2
    assert line["markArea"] == 1  # the open gap, shaded
    # Zoom: the mouse wheel inside and the slider below, and it moves.
    assert sorted(z["type"] for z in option["dataZoom"]) == ["inside", "slider"]
    page.evaluate("() => echarts.getInstanceByDom(document.getElementById('source-chart'))"
                  ".dispatchAction({type: 'dataZoom', start: 60, end: 90})")
    assert {(z["start"], z["end"]) for z in page.evaluate(OPTION)["dataZoom"]} == {(60, 90)}
    assert violations == [], violations
    width = page.evaluate("() => [document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
    assert width[0] <= width[1], width
    zoom_to_the_last_days(page)  # the screenshots: the patched hole, the open gap and the corrections
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "source-chart-zh.png"), full_page=True)
    assert "图表" in page.inner_text(".breadcrumbs") and "已补齐" in page.inner_text("#chart-summary")

    with page.expect_navigation():
        page.select_option("#language-select", "en")
    page.wait_for_selector("#source-chart[data-rendered=true] canvas")
    zoom_to_the_last_days(page)
    assert "Chart" in page.inner_text(".breadcrumbs") and "patched" in page.inner_text("#chart-summary").lower()
    page.screenshot(path=str(SCREENSHOTS / "source-chart-en.png"), full_page=True)
    # The range picker: the last day has fewer readings than the week.
    page.click(".chart-range[data-range=day]")
    page.wait_for_selector("#source-chart[data-rendered=true] canvas")
    assert page.locator(".chart-range.current").get_attribute("data-range") == "day"
    assert len(page.evaluate(OPTION)["series"][0]["data"]) < len(line["data"])


def test_above_the_threshold_the_chart_draws_hourly_rollups(page, monkeypatch):  # noqa: F811
    from apps.ingestion import rollups
    from apps.quality import charts

    scene = chart_scene()
    rollups.refresh()
    monkeypatch.setattr(charts, "ROLLUP_ABOVE", 100)  # the live server runs in this process
    violations = collect_csp_violations(page)
    login(page, "wang.fang")
    page.goto(f"/sources/datasource/{scene['meter'].pk}/chart/")
    page.wait_for_selector("#source-chart[data-rendered=true] canvas")
    assert CODE in page.inner_text("#chart-rollup-note") and "100" in page.inner_text("#chart-rollup-note")
    series = {s["id"]: s for s in page.evaluate(OPTION)["series"]}
    # one point an hour (the mean of the hour), with its minimum and maximum beside; no marks of single readings
    assert 150 < len(series[f"item-{CODE}"]["data"]) < 7 * 24 + 2
    assert {f"range-{CODE}", f"range-low-{CODE}"} <= set(series)
    assert not [k for k in series if k.startswith("kind-")]
    assert violations == [], violations
