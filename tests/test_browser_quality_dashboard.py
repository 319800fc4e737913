"""The quality dashboard in Debian's Chromium (issue #12 item 6, R-9.1): a park's month with its indicators, the
two charts drawn (read from the ECharts instances' own options), nothing refused by the Content Security Policy,
nothing wider than 1 280 px. The screenshot docs/screenshots/quality-dashboard-zh.png comes from var/screenshots/
here."""

from datetime import datetime, timedelta
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

# (source id, name, code, interval s, method, instrument type, class, share of hours missing, share late)
SOURCES = [
    ("JSTZ01-EM-0001", "园区总进线电表", "CS010201", 3600, "realtime", "electricity_ii", "0.5S", 0, 0.01),
    ("JSTZ01-EM-0002", "1# 车间电表", "CS010201", 3600, "realtime", "electricity_iii", "0.5S", 7, 0.02),
    ("JSTZ01-EM-0003", "2# 车间电表", "CS010201", 3600, "realtime", "electricity_iii", "1.0", 3, 0.05),
    ("JSTZ01-EM-0004", "空压站电表", "CS010201", 3600, "realtime", "electricity_iii", "2.0", 13, 0.12),
    ("JSTZ01-GM-0001", "天然气总表", "CS010101", 3600, "realtime", "gas_natural", "1.5", 2, 0.03),
    ("JSTZ01-WW-0001", "污水处理站流量计", "CS030201", 3600, "batch", "water_large", "2.5", 5, 0.04),
    ("JSTZ01-ST-0001", "蒸汽流量计", "CS010101", 3600, "realtime", "", "", 9, 0.02),
    ("JSTZ01-MN-0001", "屋顶光伏发电量（人工填报）", "CO010101", 86400, "manual", "", "", 0, 0.15),
]


def dashboard_scene(months: int = 6):
    """Park JSTZ01 with eight sources over the last ``months`` months, a reading an hour (a day for the manual
    one): hours missing at each source's own rate (in runs, so the gap detector finds them), a few of them
    patched, readings received late at each source's rate, a jump rule with its hits. Written set-based as the
    pipeline writes (the receipt time of each reading is the scene's), then rollups, gaps, post checks and the
    indicators computed as the beat would."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from apps.accounts.services import save_park, set_membership
    from apps.catalog.models import DataItem
    from apps.ingestion import rollups
    from apps.ingestion.models import Flag, IngestBatch
    from apps.quality.gaps import find_gaps
    from apps.quality.indicators import compute
    from apps.quality.postchecks import run_post_checks
    from apps.quality.services import save_rule
    from apps.sources.services import save_source
    from tests.conftest import make_uscc

    park = save_park(actor="test", code="JSTZ01", name_zh="苏州零碳产业园", name_en="Suzhou zero-carbon park",
                     time_zone="Asia/Shanghai", uscc=make_uscc("91320500MA1PARK01"))
    other = save_park(actor="test", code="JSTZ02", name_zh="无锡示范园区", time_zone="Asia/Shanghai")
    now = timezone.now()
    start = compute.month_start(timezone.localtime(now, SHANGHAI))
    for _i in range(months - 1):
        start = compute.previous_month(start)
    batch = IngestBatch.objects.create(received_at=now, channel="demo", actor_label="scene", park=park)
    made = []
    for n, (sid, name, code, iv, method, itype, cls, miss, late) in enumerate(SOURCES):
        s = save_source(actor="test", source_id=sid, park=park, name=name, expected_interval_s=iv,
                        collection_method=method, instrument_type=itype, accuracy_class=cls,
                        data_items=list(DataItem.objects.filter(code=code)))
        made.append((s, code, iv, miss, late, n))
    save_source(actor="test", source_id="JSTZ02-EM-0001", park=other, name="外园区电表",
                data_items=list(DataItem.objects.filter(code="CS010201")))
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT set_config('carbonpark.writer', 'ingest_readings', true)")
        for s, _code, iv, miss, late, n in made:
            item = s.data_items.get()
            # a run of missing hours where the hour's 97-cycle lands under the rate (per mille / 10); one in
            # five of those runs' hours patched; late where a hash of the hour falls under the late share
            cur.execute(f"""
                INSERT INTO ingestion_reading (park_id, source_id, data_item_id, ts, value, received_unit, status,
                                               flags, channel, batch_id, received_at)
                SELECT %(park)s, %(source)s, %(item)s, t.ts,
                       round((100 + 40 * sin(k / 3.8) + %(n)s * 7 + (k %% 5))::numeric, 1)::float8
                           * CASE WHEN k %% 701 = 350 THEN 6 ELSE 1 END,
                       '', 'N', CASE WHEN (k + %(n)s * 13) %% 97 < %(miss)s THEN {Flag.PATCHED} ELSE 0 END,
                       'demo', %(batch)s,
                       CASE WHEN %(iv)s >= 86400 THEN t.ts + interval '1 day 2 hours'
                                 + CASE WHEN abs(hashtext(k::text || %(sid)s)) %% 1000 < %(late)s * 1000
                                        THEN interval '2 days' ELSE interval '0' END
                            WHEN abs(hashtext(k::text || %(sid)s)) %% 1000 < %(late)s * 1000
                                 THEN t.ts + interval '9 minutes'
                            ELSE t.ts + interval '40 seconds' END
                FROM generate_series(0, (extract(epoch FROM %(now)s::timestamptz - %(start)s::timestamptz)
                                         / %(iv)s)::int - 1) AS k
                CROSS JOIN LATERAL (SELECT %(start)s::timestamptz + k * make_interval(secs => %(iv)s) AS ts) t
                WHERE NOT ((k + %(n)s * 13) %% 97 < %(miss)s AND k %% 5 <> 0) AND t.ts < %(now)s
                  AND t.ts < %(now)s - interval '2 hours' * (%(n)s %% 3)
            """, {"park": park.pk, "source": s.pk, "item": item.pk, "n": n, "miss": miss, "batch": batch.pk,
                  "iv": iv, "sid": s.source_id, "late": late, "now": now,
                  "start": datetime(start.year, start.month, 1, tzinfo=SHANGHAI)})
            cur.execute("INSERT INTO ingestion_rollup_dirty (park_id, source_id, data_item_id, lo, hi) "
                        "SELECT park_id, source_id, data_item_id, min(ts), max(ts) FROM ingestion_reading "
                        "WHERE source_id = %s GROUP BY 1, 2, 3", [s.pk])
        cur.execute("SELECT set_config('carbonpark.writer', '', true)")
    save_rule(actor="test", name="跳变", kind="jump", params={"relative": 3.0}, severity="flag", park=park)
    rollups.refresh(budget=None)
    find_gaps(full=True)
    run_post_checks(full=True)
    compute.refresh(full=True)

    users = get_user_model().objects
    admin = users.create_user("zhou.min", "zhou.min@example.invalid", PASSWORD, is_staff=True)
    viewer = users.create_user("wang.fang", "wang.fang@example.invalid", PASSWORD, is_staff=True)
    set_membership(actor="test", user=admin, park=park, role="admin")
    set_membership(actor="test", user=viewer, park=park, role="viewer")
    return {"park": park, "months": months}


OPTION = """(id) => {
  const o = echarts.getInstanceByDom(document.getElementById(id)).getOption();
  return {series: o.series.map(s => ({id: s.id, type: s.type, n: s.data.length,
                                      data: s.data.map(d => Array.isArray(d) ? d[1] : d)})),
          x: o.xAxis[0].data};
}"""


def test_the_dashboard_draws_its_charts_within_the_csp_at_1280(page):  # noqa: F811
    scene = dashboard_scene()
    violations = collect_csp_violations(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    login(page, "zhou.min")
    page.click("a.park-quality-link")
    page.wait_for_selector("#qd-chart-sources[data-rendered=true] canvas")
    page.wait_for_selector("#qd-chart-trend[data-rendered=true] canvas")
    sources = page.evaluate(OPTION, "qd-chart-sources")
    assert [s["id"] for s in sources["series"]] == ["completeness", "timeliness"]
    assert len(sources["x"]) == 8 and "JSTZ02-EM-0001" not in sources["x"]
    assert all(s["type"] == "bar" and all(v is None or 0 <= v <= 100 for v in s["data"]) for s in sources["series"])
    trend = page.evaluate(OPTION, "qd-chart-trend")
    assert len(trend["x"]) == scene["months"] and {s["type"] for s in trend["series"]} == {"line"}
    assert page.locator("#qd-table tbody tr").count() == 8
    assert "完整性" in page.inner_text("#kpi-completeness") and "%" in page.inner_text("#kpi-completeness")
    assert page.locator("#qd-export-csv").count() == 1
    assert violations == [], violations
    width = page.evaluate("() => [document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
    assert width[0] <= width[1], width
    # a month picked from the list (the last whole one: the screenshot); the source chart linked from the table
    last = (timezone.localtime(timezone.now(), SHANGHAI).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    with page.expect_navigation():
        page.select_option("#qd-month", last)
        page.click(".qd-pick button[type=submit]")
    page.wait_for_selector("#qd-chart-sources[data-rendered=true] canvas")
    assert page.locator("#qd-month").input_value() == last
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "quality-dashboard-zh.png"), full_page=True)
    with page.expect_navigation():
        page.locator("#qd-table tbody tr").first.locator("a").click()
    page.wait_for_selector("#source-chart[data-rendered=true] canvas")
    assert violations == [], violations
    # English
    page.goto(f"/quality/dashboard/?month={last}")
    with page.expect_navigation():
        page.select_option("#language-select", "en")
    page.wait_for_selector("#qd-chart-trend[data-rendered=true] canvas")
    assert "Completeness" in page.inner_text("#kpi-completeness")
    width = page.evaluate("() => [document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
    assert width[0] <= width[1], width
    page.screenshot(path=str(SCREENSHOTS / "quality-dashboard-en.png"), full_page=True)
