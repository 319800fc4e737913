"""A correction in a real browser (issue #10 item 6): a data-entry clerk requests one with evidence and cannot
approve it (no button; a forged POST is refused); an approver approves; the readings page then shows the new
value with the old beside it. Screenshots (Chinese, 1 400 px) go to var/screenshots/."""

from pathlib import Path

import pytest

from tests.test_browser_admin import CHROMIUM, SCREENSHOTS, login, page  # noqa: F401 - page fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's Chromium is not installed"),
]
PASSWORD = "s3cret-Portal-pw"


def test_clerk_requests_approver_approves_and_the_readings_page_shows_both(page, tmp_path, settings):  # noqa: F811
    from django.contrib.auth import get_user_model

    from apps.accounts.services import save_park, set_membership
    from apps.corrections import services
    from apps.corrections.models import Correction
    from apps.ingestion.services import ingest_readings
    from tests.conftest import add_source

    settings.MEDIA_ROOT = tmp_path
    park = save_park(actor="test", code="TPA", name_zh="甲园区", time_zone="Asia/Shanghai")
    meter = add_source(park, "TPA-EM-0001", ["CS010201"])
    ingest_readings([{"sourceId": meter.source_id, "timestamp": "2026-11-23 10:00:00", "value": 4.0}],
                    channel="test", actor="test")
    users = get_user_model().objects
    for name, role in (("clerk-a", "operator"), ("approver-a", "approver")):
        set_membership(actor="test", user=users.create_user(name, f"{name}@example.invalid", PASSWORD), park=park,
                       role=role)
    evidence = tmp_path / "ct-plate.pdf"
    evidence.write_bytes(b"%PDF-1.4\n%%EOF\n")

    page.set_viewport_size({"width": 1400, "height": 900})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    login(page, "clerk-a", PASSWORD)
    page.goto("/corrections/correction/")
    page.click("#request-correction")
    page.select_option("#id_source", label=str(meter))
    page.fill("#id_start", "2026-11-23 10:00:00")
    page.fill("#id_end", "2026-11-23 10:00:00")
    page.select_option("#id_kind", "factor")
    page.fill("#id_amount", "10")
    page.fill("#id_reason", "互感器变比设错：应为 100/5")
    page.set_input_files("#id_evidence", str(evidence))
    with page.expect_navigation():
        page.click("#request-submit")
    c = Correction.objects.get()
    assert page.url.endswith(f"/corrections/correction/{c.pk}/change/")
    assert page.locator("#approve-button").count() == 0
    page.screenshot(path=str(SCREENSHOTS / "correction-requested-zh.png"), full_page=True)
    status = page.evaluate("""(url) => fetch(url, {method: 'POST', headers: {'Content-Type':
        'application/x-www-form-urlencoded'}, body: 'decision=approve&csrfmiddlewaretoken=' +
        encodeURIComponent(document.querySelector('[name=csrfmiddlewaretoken]').value)}).then(r => r.status)""",
                           f"/corrections/correction/{c.pk}/decide/")
    assert status == 403
    c.refresh_from_db()
    assert c.state == "requested"

    page.context.clear_cookies()
    login(page, "approver-a", PASSWORD)
    page.goto("/corrections/correction/")
    assert page.locator("#awaiting-approval").count() == 1
    page.goto(f"/corrections/correction/{c.pk}/change/")
    page.fill("#id_comment", "已核对铭牌")
    with page.expect_navigation():
        page.click("#approve-button")
    c.refresh_from_db()
    assert c.state == "approved"
    services.apply_correction(c.pk)  # what the worker's task does once the approval committed
    page.goto("/ingestion/reading/")
    cell = page.locator("#result_list tbody td.field-value_display").first.inner_text()
    assert cell.startswith("40.0") and "4.0" in cell, cell
    page.screenshot(path=str(SCREENSHOTS / "correction-applied-readings-zh.png"), full_page=True)
