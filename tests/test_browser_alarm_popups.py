"""The platform-down alarm as an in-portal pop-up (R-7.4.4.2), in a real browser: it shows for a park administrator
of that park on any page and not for another park's user; dismissed, it stays hidden on the next page.
Screenshot (Chinese, 1 280 px): docs/screenshots/platform-alarm-popup-zh.png."""

from pathlib import Path

import pytest

from tests.test_browser_admin import CHROMIUM, login, page  # noqa: F401 - page fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's Chromium is not installed"),
]
PASSWORD = "s3cret-Portal-pw"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def test_a_platform_down_alarm_pops_up_for_its_park_until_dismissed(page, settings):  # noqa: F811
    from django.contrib.auth import get_user_model

    from apps.accounts.services import save_park, set_membership
    from apps.integrations import health
    from apps.quality.models import Alarm
    from tests.fake_http import FakeHttp
    from tests.open_platform import new_platform

    settings.OPEN_ALLOW_HTTP_URLS = True  # the fake primary is a local http:// server
    park = save_park(actor="test", code="TPA", name_zh="甲园区", time_zone="Asia/Shanghai")
    other = save_park(actor="test", code="TPB", name_zh="乙园区", time_zone="Asia/Shanghai")
    users = get_user_model().objects
    set_membership(actor="test", user=users.create_user("boss-a", "a@example.invalid", PASSWORD), park=park,
                   role="admin")
    set_membership(actor="test", user=users.create_user("boss-b", "b@example.invalid", PASSWORD), park=other,
                   role="admin")
    with FakeHttp(status=503) as primary, FakeHttp() as backup:
        platform, _ = new_platform(park, name="省绿证交易平台", base_url=primary.url, backup_url=backup.url)
        assert health.probe(platform) is False
    alarm = Alarm.objects.get(park=park, kind="integration", state="open")

    page.set_viewport_size({"width": 1280, "height": 900})
    login(page, "boss-b", PASSWORD)
    assert page.locator("#alarm-popups").count() == 0  # another park's administrator sees nothing
    page.context.clear_cookies()

    login(page, "boss-a", PASSWORD)
    popup = page.locator("#alarm-popups")
    assert popup.is_visible() and "省绿证交易平台" in popup.inner_text() and "紧急告警" in popup.inner_text()
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / "platform-alarm-popup-zh.png"))
    page.goto("/integrations/platform/")
    assert page.locator("#alarm-popups").is_visible()  # on every portal page
    with page.expect_navigation():
        page.click("#alarm-popups-dismiss")
    assert page.url.endswith("/integrations/platform/") and page.locator("#alarm-popups").count() == 0
    page.goto("/")
    assert page.locator("#alarm-popups").count() == 0  # still dismissed on the next page
    page.goto(f"/quality/alarm/{alarm.pk}/change/")
    assert "E7420" in page.content()  # the pop-up's link leads to the alarm
