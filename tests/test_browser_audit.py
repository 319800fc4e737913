"""Accounts and the audit trail in a real browser (Debian's Chromium): lockout after the configured failures,
and an auditor reading the audit browser of its park (issue #8 deliverables 4 and 5)."""

import csv
import io

import pytest
from django.conf import settings

from tests import test_browser_admin as base

CHROMIUM, SCREENSHOTS, login = base.CHROMIUM, base.SCREENSHOTS, base.login
page, park_setup = base.page, base.park_setup  # the portal's browser fixtures, shared

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason="Debian's Chromium is not installed"),
]
PASSWORD = "Audit-Portal-2026!"


@pytest.fixture(autouse=True)
def fast_hashes(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def submit_login(page, username, password):
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("#login-form [type=submit]")


def test_lockout_after_the_configured_failures(django_user_model, page):
    django_user_model.objects.create_user("clerk.wang", password=PASSWORD, is_staff=True)
    page.goto("/login/?next=/")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        submit_login(page, "clerk.wang", "not-the-password")
        assert page.locator(".errornote").is_visible()  # the form again, with Django's error
        assert page.locator("#lockout-message").count() == 0
    submit_login(page, "clerk.wang", "not-the-password")
    message = page.inner_text("#lockout-message")
    assert "登录失败次数过多" in message and "15" in message
    page.goto("/login/?next=/")
    submit_login(page, "clerk.wang", PASSWORD)  # the right password, too late
    assert page.locator("#lockout-message").is_visible()
    page.goto("/")
    assert "/login/" in page.url

    from apps.core.models import AuditEntry

    assert AuditEntry.objects.filter(action="auth.lockout", object_id="clerk.wang").count() == 1


def test_auditor_reads_the_audit_trail_of_its_park(django_user_model, park_setup, page):
    from apps.accounts.services import save_park, set_membership
    from apps.sources.services import save_source

    park = park_setup["park"]
    other = save_park(actor="test", code="TP02", name_zh="另一园区", time_zone="Asia/Shanghai")
    save_source(actor="test", source_id="TP02-EM-0001", park=other, name="别家电表", data_items=[])
    # is_staff: the admin site's own gate; which parks and pages a member sees is the access seam's
    auditor = django_user_model.objects.create_user("auditor.li", password=PASSWORD, is_staff=True)
    set_membership(actor="test", user=auditor, park=park, role="auditor")

    # a record with long words (a file name, an upload id, an MD5, a token's label) must wrap inside its cells
    from apps.core.services import record_change

    record_change(actor="token:TP01/demo-integrator-of-the-energy-management-system", action="upload.received",
                  object_type="uploads.upload", object_id="4de27d1d-403d-42f0-b195-db02c7409c74",
                  after={"md5": "13f96237a3f0b7c1e8e2d6a9f9d4c2b1", "filename": "TP01_CS_202611_2026120108300_010.csv",
                         "settings": {"opcua": {"nodes": [{"node": "ns=2;s=Compressor.Station.Energy.Total"}]}}},
                  park_code="TP01")
    login(page, "auditor.li", PASSWORD)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/core/auditentry/")
    assert page.inner_text("#content h1") == "审计日志"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    table = page.inner_text("#audit-timeline")
    assert "TP01-EM-0001" in table and "数据版本" in table and "操作记录" in table
    assert "TP02" not in table and "别家电表" not in table
    assert "auth.login" not in table  # log-ins are in the platform's chain, not a park's
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "audit-trail.png"), full_page=True)

    # Search: what = source., who = test
    page.fill("#id_what", "source.create")
    with page.expect_navigation():
        page.click("#audit-filter [type=submit]")
    actions = page.locator("#audit-timeline td.field-action").all_inner_texts()
    assert actions and set(actions) == {"source.create"}
    assert page.locator("#id_park option").all_inner_texts()[1:] == ["TP01 测试园区"]

    # Export what is selected
    with page.expect_download() as download:
        page.click("#export-csv")
    with open(download.value.path(), encoding="utf-8-sig") as fh:
        rows = list(csv.reader(io.StringIO(fh.read())))
    assert rows[0][0] == "时间" and len(rows) == 3 and {r[3] for r in rows[1:]} == {"source.create"}

    # An action record opens read-only with its place in the chain
    page.locator("#audit-timeline td.field-kind a").first.click()
    assert page.locator("input[type=submit]").count() == 0
    content = page.inner_text("#content")
    assert "链中位置" in content and "上一条记录的哈希" in content

    # The history page of a source: its versions and action records together
    from apps.sources.models import DataSource

    source = DataSource.objects.get(source_id="TP01-EM-0001")
    page.goto(f"/sources/datasource/{source.pk}/history/")
    kinds = page.locator("#audit-timeline td.field-kind").all_inner_texts()
    assert "数据版本" in kinds and "操作记录" in kinds
