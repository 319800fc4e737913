"""Rollups in a real browser (issue #9 item 4): a park administrator follows the readings browser's "daily" link
and sees the park-local days of their own source, never another park's. Screenshot (Chinese, 1 400 px) to
var/screenshots/rollups-daily-zh.png (a copy is committed in docs/screenshots/)."""

from pathlib import Path

import pytest

from tests.test_browser_admin import CHROMIUM, SCREENSHOTS, column_texts, login, page  # noqa: F401 - page fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's Chromium is not installed"),
]
PASSWORD = "s3cret-Portal-pw"


def test_park_admin_follows_the_daily_link_and_sees_local_days_of_their_park_only(page):  # noqa: F811
    from django.contrib.auth import get_user_model

    from apps.accounts.services import save_park, set_membership
    from apps.ingestion import rollups
    from apps.ingestion.services import ingest_readings
    from tests.conftest import add_source

    park = save_park(actor="test", code="TPA", name_zh="甲园区", time_zone="Asia/Shanghai")
    other = save_park(actor="test", code="TPB", name_zh="乙园区", time_zone="Asia/Shanghai")
    meter = add_source(park, "TPA-EM-0001", ["CS010201"])
    foreign = add_source(other, "TPB-EM-0001", ["CS010201"])
    # 23:30 UTC on the 23rd is 07:30 on the 24th in Shanghai: the daily bucket is the park's own day
    records = [{"sourceId": meter.source_id, "timestamp": f"2026-11-{d} {h}:00:00+00:00", "value": v}
               for d, h, v in (("22", "02", 1.5), ("22", "09", 2.5), ("23", "23", 4.0), ("24", "01", 3.0))]
    records.append({"sourceId": foreign.source_id, "timestamp": "2026-11-22 02:00:00+00:00", "value": 99.0})
    ingest_readings(records, channel="test", actor="test")
    rollups.refresh()
    user = get_user_model().objects.create_user("admin-a", "admin-a@example.invalid", PASSWORD)
    set_membership(actor="test", user=user, park=park, role="admin")

    page.set_viewport_size({"width": 1400, "height": 900})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    login(page, "admin-a", PASSWORD)
    page.goto(f"/ingestion/reading/?source={meter.source_id}")
    assert [page.inner_text(f"#rollups-{i}") for i in "hdm"] == ["按小时汇总", "按日汇总", "按月汇总"]
    with page.expect_navigation():
        page.click("#rollups-d")
    assert "interval__exact=d" in page.url
    assert column_texts(page, "bucket_local") == ["2026-11-24", "2026-11-22"]
    assert column_texts(page, "count") == ["2", "2"]
    assert column_texts(page, "sum") == ["7.0", "4.0"]
    page.screenshot(path=str(SCREENSHOTS / "rollups-daily-zh.png"), full_page=True)

    page.goto("/ingestion/rollup/?interval=d")  # no source filter: still only park A's rows
    assert "TPB-EM-0001" not in page.inner_text("#result_list")
