"""The platform-down alarm as an in-portal pop-up (R-7.4.4.2), in a real browser: it shows for a park administrator
of that park on any page and not for another park's user; dismissed, it stays hidden on the next page.
Screenshot (Chinese, 1 280 px): docs/screenshots/platform-alarm-popup-zh.png."""

from pathlib import Path

import pytest

from tests.test_browser_admin import CHROMIUM, page  # noqa: F401 - page fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's Chromium is not installed"),
]
DOCS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def signed_in(tab, user, live_server_url):
    """The browser signed in as ``user`` through a session cookie (the login form has its own tests)."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    tab.context.clear_cookies()
    tab.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                              "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                              "url": live_server_url}])
    tab.goto("/")


def test_a_platform_down_alarm_pops_up_for_its_park_until_dismissed(page, settings, live_server):  # noqa: F811
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
    boss_a = users.create_user("boss-a", "a@example.invalid")  # signed in by cookie: no password to hash
    boss_b = users.create_user("boss-b", "b@example.invalid")
    set_membership(actor="test", user=boss_a, park=park, role="admin")
    set_membership(actor="test", user=boss_b, park=other, role="admin")
    with FakeHttp(status=503) as primary, FakeHttp() as backup:
        platform, _ = new_platform(park, name="省绿证交易平台", base_url=primary.url, backup_url=backup.url)
        assert health.probe(platform) is False
    alarm = Alarm.objects.get(park=park, kind="integration", state="open")

    page.set_viewport_size({"width": 1280, "height": 900})
    signed_in(page, boss_b, live_server.url)
    assert page.locator("#site-name").count() == 1  # the portal, signed in
    assert page.locator("#alarm-popups").count() == 0  # another park's administrator sees nothing

    signed_in(page, boss_a, live_server.url)
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
