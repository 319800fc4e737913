"""Registering a third-party platform in the portal (R-7.4.2.1), in a real browser: a park administrator fills the
form, a bad unified social credit code is refused at the field, the saved platform shows its app_id and secret
once. Screenshot (Chinese, 1 280 px): docs/screenshots/platforms-zh.png."""

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


def test_a_park_administrator_registers_a_platform(page):  # noqa: F811
    from django.contrib.auth import get_user_model

    from apps.accounts.services import save_park, set_membership
    from apps.core.models import AuditEntry
    from apps.integrations.models import Platform
    from tests.conftest import make_uscc

    park = save_park(actor="test", code="TPA", name_zh="甲园区", time_zone="Asia/Shanghai")
    save_park(actor="test", code="TPB", name_zh="乙园区", time_zone="Asia/Shanghai")
    boss = get_user_model().objects.create_user("boss-a", "boss@example.invalid", PASSWORD)
    set_membership(actor="test", user=boss, park=park, role="admin")

    page.set_viewport_size({"width": 1280, "height": 900})
    login(page, "boss-a", PASSWORD)
    page.goto("/integrations/platform/add/")
    assert page.locator("#id_park option", has_text="乙园区").count() == 0  # only the parks it manages
    page.select_option("#id_park", label=str(park))
    page.fill("#id_name", "省绿证交易平台")
    page.fill("#id_uscc", make_uscc("91110000MA01GRN0X"))
    page.fill("#id_base_url", "https://gec.example.cn/api")
    page.fill("#id_backup_url", "https://gec-backup.example.cn/api")
    page.fill("#id_ip_whitelist", "203.0.113.0/24\n198.51.100.7")
    page.fill("#id_alert_email", "ops@gec.example.cn")
    page.fill("#id_alert_phone", "+8613800000000")
    page.fill("#id_callback_url", "https://gec.example.cn/api/carbonpark/callback")
    page.check("#id_certified")
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / "platforms-zh.png"), full_page=True)
    page.fill("#id_uscc", "91110000MA01GRN0X0")  # a wrong check character
    with page.expect_navigation():
        page.click("[name=_save]")
    assert page.locator(".errornote").count() == 1 and not Platform.objects.exists()
    assert "GB 32100" in page.locator(".field-uscc .errorlist").inner_text()
    page.fill("#id_uscc", make_uscc("91110000MA01GRN0X"))
    with page.expect_navigation():
        page.click("[name=_save]")
    platform = Platform.objects.get()
    assert (platform.park, platform.certified, platform.ip_whitelist) == (park, True,
                                                                          ["203.0.113.0/24", "198.51.100.7/32"])
    message = page.locator(".messagelist .warning").inner_text()
    assert platform.app_id in message
    secret = message.split("：")[-1].strip()
    from apps.integrations.services import platform_secret

    assert platform_secret(platform).decode() == secret  # shown once: the page says it, the row keeps it sealed
    assert AuditEntry.objects.filter(action="platform.register", actor_label="boss-a").count() == 1
    assert f"{platform.name} ({platform.app_id})" in page.locator(".messagelist .success").inner_text()
    page.goto("/integrations/platform/")
    assert secret not in page.content()
