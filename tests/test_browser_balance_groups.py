"""The balance group's page in a real browser (Chromium, zh-hans, 1 280 px): a park administrator sees the group
of their park with its main meter, sub-meters and tolerance, and the page fits the width. The screenshot goes to
var/screenshots/balance-group-zh.png (a copy is committed in docs/screenshots/)."""

import pytest

from tests.test_browser_admin import PASSWORD, SCREENSHOTS, login, page  # noqa: F401 - page fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_park_admin_sees_the_balance_group_page(page):  # noqa: F811
    from django.contrib.auth import get_user_model

    from apps.accounts.services import save_park, set_membership
    from apps.catalog.models import DataItem
    from apps.quality.services import save_balance_group
    from tests.conftest import add_source

    park = save_park(actor="test", code="TPA", name_zh="甲园区", time_zone="Asia/Shanghai")
    other = save_park(actor="test", code="TPB", name_zh="乙园区", time_zone="Asia/Shanghai")
    item = DataItem.objects.get(code="CS010201")
    main = add_source(park, "TPA-EM-0001", ["CS010201"])
    subs = [add_source(park, f"TPA-EM-00{n}", ["CS010201"]) for n in (11, 12, 13)]
    add_source(other, "TPB-EM-0001", ["CS010201"])
    group = save_balance_group(actor="test", name="1 号配电室总表与分表", park=park, main_source=main, main_item=item,
                               members=[(s, item) for s in subs], tolerance_pct=3, tolerance_abs=0.5)
    user = get_user_model().objects.create_user("admin-a", "admin-a@example.invalid", PASSWORD)
    set_membership(actor="test", user=user, park=park, role="admin")

    page.set_viewport_size({"width": 1280, "height": 900})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    login(page, "admin-a", PASSWORD)
    page.goto(f"/quality/balancegroup/{group.pk}/change/")
    text = page.inner_text("#content")
    assert "总表" in text and "分表" in text and "允许偏差（%）" in text
    assert "TPA-EM-0011" in text and "TPB-EM-0001" not in text
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.screenshot(path=str(SCREENSHOTS / "balance-group-zh.png"), full_page=True)
    page.goto("/quality/balancegroup/")
    assert "1 号配电室总表与分表" in page.inner_text("#result_list")
