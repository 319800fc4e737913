"""Pull connectors in a real browser, in Chinese at 1 280 px (issue #13 item 6): a park administrator adds a REST
connector through the form (the secret typed into a password box), pulls it against a local fake platform and
reads the run log. Screenshots: var/screenshots/pulls-zh.png and pulls-runs-zh.png (copies in docs/screenshots/)."""

import json
from pathlib import Path

import pytest

from tests.pull_fakes import MAPPING, FakePlatform, item
from tests.pull_fakes import page as fake_page
from tests.test_browser_admin import CHROMIUM, SCREENSHOTS, login, page, park_setup  # noqa: F401 - fixtures

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's Chromium is not installed"),
]
PASSWORD = "s3cret-Portal-pw"


def test_park_admin_adds_a_connector_and_reads_its_run_log(page, park_setup, settings):  # noqa: F811
    from django.contrib.auth import get_user_model

    from apps.accounts.services import set_membership
    from apps.pulls.models import Connector
    from apps.pulls.services import run_connector, save_connector

    settings.PULLS_ALLOW_PLAIN_HTTP = True
    park = park_setup["park"]
    user = get_user_model().objects.create_user("park-admin", "pa@example.invalid", PASSWORD)
    set_membership(actor="test", user=user, park=park, role="admin")
    with FakePlatform() as fake:
        fake.handler = lambda q: fake_page([item(m) for m in (0, 5, 10)] + [{**item(15), "reading": "abc"}])
        legacy = save_connector(actor="test", park=park, name="能源管理系统（MariaDB）", kind="database",
                                settings={"engine": "mysql", "host": "127.0.0.1", "port": 9, "user": "reader",
                                          "database": "ems", "table": "meter_log", "watermark": "id",
                                          "connect_timeout": 1},
                                mapping={"sourceId": "meter", "dataCode": "=CS010201", "timestamp": "ts",
                                         "value": "val"}, secret="pw")
        run_connector(legacy.pk)
        page.set_viewport_size({"width": 1280, "height": 900})
        login(page, "park-admin")
        page.goto("/pulls/connector/add/")
        page.select_option("#id_park", str(park.pk))
        page.fill("#id_name", "电网交易平台")
        page.fill("#id_settings", json.dumps({"url": fake.url, "records": "/data", "next": "/next",
                                              "auth": "bearer"}, ensure_ascii=False))
        page.fill("#id_mapping", json.dumps(MAPPING))
        page.fill("#id_secret", "platform-token")
        page.click("input[name=_save]")
        page.wait_for_selector("#result_list")
        rest = Connector.objects.get(name="电网交易平台")
        run_connector(rest.pk)
        assert fake.requests[-1][3]["Authorization"] == "Bearer platform-token"
        page.goto("/pulls/connector/")
        if page.locator("#toggle-nav-sidebar").is_visible():
            page.click("#toggle-nav-sidebar")  # the menu folded away, as staff do on a narrow screen
        text = page.inner_text("#result_list")
        assert "电网交易平台" in text and "能源管理系统" in text and "E7503" in text
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "pulls-zh.png"), full_page=True)
        page.goto("/pulls/pullrun/")
        runs = page.inner_text("#result_list")
        assert "E7503" in runs and page.locator("#result_list tbody tr").count() == 2
        page.screenshot(path=str(SCREENSHOTS / "pulls-runs-zh.png"), full_page=True)
        assert "platform-token" not in page.goto(f"/pulls/connector/{rest.pk}/change/").text()
