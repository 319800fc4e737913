"""Filling a form in a real browser (issue #10 items 4 and 5; R-7.3.1.2–3, R-7.3.2): a clerk picks a form and
a period, types a value the form refuses and sees the error at the field (live, from the server, in Chinese),
then one the park's rule library refuses, corrects it, attaches a test report, watches the draft save itself
and submits; an approver returns it with a comment; the clerk changes the value and submits again; the diff
page shows the change. Screenshots (Chinese) go to var/screenshots/ (copied to docs/screenshots/)."""

from pathlib import Path

import pytest

from tests.test_browser_admin import CHROMIUM, SCREENSHOTS, login, page  # noqa: F401 - page fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's Chromium is not installed"),
]
PASSWORD = "s3cret-Portal-pw"
T = {"zh": "燃料", "en": "Fuel"}
DEFINITION = {"format": 1, "period": "month", "title": {"zh": "燃料台账", "en": "Fuel ledger"}, "sections": [
    {"key": "main", "title": {"zh": "本月消耗", "en": "This month"}, "fields": [
        {"key": "amount", "item": "CS010101", "required": True, "min": 0,
         "help": {"zh": "依据过磅单填写。", "en": "From the weighbridge tickets."}},
        {"key": "has_cert", "type": "enum", "label": {"zh": "有化验报告", "en": "Test report"}, "options": [
            {"value": "yes", "label": {"zh": "有", "en": "yes"}}, {"value": "no", "label": {"zh": "无", "en": "no"}}]},
        {"key": "report_no", "type": "text", "label": {"zh": "报告编号", "en": "Report number"}, "unique": True,
         "required": True, "visibleIf": {"==": [{"var": "has_cert"}, "yes"]}},
        {"key": "report", "type": "attachment", "label": {"zh": "化验报告", "en": "Test report file"},
         "required": True},
        {"key": "twice", "type": "number", "label": {"zh": "两倍（计算）", "en": "Twice"}, "unit": "t",
         "calc": {"*": [{"var": "amount"}, 2]}}]},
    {"key": "lots", "title": {"zh": "批次（每批一行）", "en": "Lots"}, "repeat": {"min": 0, "max": 10}, "fields": [
        {"key": "lot_amount", "type": "number", "label": {"zh": "批次量", "en": "Lot amount"}, "min": 0}]}]}


def _versions(sub_id):
    from apps.entry.models import Submission
    from apps.entry.selectors import versions_of

    return versions_of(Submission.objects.get(pk=sub_id))


def test_clerk_fills_reviewer_returns_clerk_resubmits_diff_shows_it(page, tmp_path, settings):  # noqa: F811
    from django.contrib.auth import get_user_model

    from apps.accounts.access import SystemPrincipal
    from apps.accounts.services import save_park, set_membership
    from apps.catalog.models import DataItem
    from apps.corrections.models import Correction
    from apps.entry.models import Submission
    from apps.entry.services import create_form, publish
    from apps.ingestion.models import Reading
    from apps.quality.services import save_rule

    settings.MEDIA_ROOT = tmp_path
    park = save_park(actor="test", code="TPA", name_zh="甲园区", time_zone="Asia/Shanghai")
    users = get_user_model().objects
    for name, role in (("clerk-a", "operator"), ("approver-a", "approver")):
        set_membership(actor="test", user=users.create_user(name, f"{name}@example.invalid", PASSWORD), park=park,
                       role=role)
    system = SystemPrincipal("test")
    form = create_form(actor=system, park=park, code="tpa-fuel", name_zh="燃料台账", name_en="Fuel ledger",
                       definition=DEFINITION)
    publish(actor=system, form=form)
    save_rule(actor="test", name="燃料消耗量上限", kind="range", params={"min": 0, "max": 1000}, severity="reject",
              park=park, data_item=DataItem.objects.get(code="CS010101"),
              message_zh="燃料消耗量超过本园区上限 1000 t，请核对过磅单。",
              message_en="Fuel consumption above the park's limit of 1000 t: check the weighbridge tickets.")
    report = tmp_path / "化验报告.pdf"
    report.write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    disguised = tmp_path / "fake.pdf"
    disguised.write_bytes(b"MZ\x90\x00 not a pdf at all")

    page.set_viewport_size({"width": 1400, "height": 900})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    login(page, "clerk-a", PASSWORD)
    page.goto("/entry/submission/")
    page.click("#fill-a-form")
    page.select_option("#id_form", "tpa-fuel")
    page.fill("#id_period", "2026-10")
    with page.expect_navigation():
        page.click("#pick-submit")
    page.wait_for_selector('.ff-field[data-path="amount"] input')

    # a value the form refuses: the error shows at the field, in Chinese, as the clerk types
    page.fill('.ff-field[data-path="amount"] input', "-5")
    error = page.locator('[data-error-for="amount"] li')
    error.first.wait_for()
    assert error.first.get_attribute("data-code") == "E8103" and "小于下限" in error.first.inner_text()
    # the park's rule library, called from the page
    page.fill('.ff-field[data-path="amount"] input', "5000")
    page.wait_for_selector('[data-error-for="amount"] li[data-code="E3001"]')
    assert "超过本园区上限" in page.inner_text('[data-error-for="amount"]')
    assert page.input_value('.ff-field[data-path="twice"] input') == "10000"  # computed in the browser
    page.screenshot(path=str(SCREENSHOTS / "filling-live-error-zh.png"), full_page=True)

    # a hidden field: shown only when there is a report number to give
    assert page.locator('.ff-field[data-path="report_no"]').is_hidden()
    page.select_option('.ff-field[data-path="has_cert"] select', "yes")
    assert page.locator('.ff-field[data-path="report_no"]').is_visible()
    page.fill('.ff-field[data-path="report_no"] input', "SGS-2026-0042")
    page.select_option('.ff-field[data-path="has_cert"] select', "no")  # hidden again: not stored
    # repeating rows
    page.click('.ff-add[data-section="lots"]')
    page.click('.ff-add[data-section="lots"]')
    page.fill('td[data-path="lots[0].lot_amount"] input', "3")
    page.fill('td[data-path="lots[1].lot_amount"] input', "-1")
    page.wait_for_selector('[data-error-for="lots[1].lot_amount"] li')
    page.locator('tr[data-index="1"] .ff-remove').click()
    page.fill('.ff-field[data-path="amount"] input', "12.5")
    page.wait_for_selector('[data-error-for="amount"] li', state="detached")
    page.wait_for_selector("#filling-status[data-saved]")
    assert "已保存" in page.inner_text("#filling-status")
    sub = Submission.objects.get()
    assert f"/entry/submission/{sub.pk}/fill/" in page.url  # the first autosave made the draft
    assert sub.values["amount"] == 12.5 and "report_no" not in sub.values and sub.values["lots"] == [
        {"lot_amount": 3}]

    # a file that only calls itself a PDF is refused in the page; the report is attached, with its SHA-256
    page.set_input_files('.ff-field[data-path="report"] input[type=file]', str(disguised))
    page.wait_for_selector('[data-error-for="report"] li')
    page.set_input_files('.ff-field[data-path="report"] input[type=file]', str(report))
    page.wait_for_selector('.ff-field[data-path="report"] .att-name:has-text("SHA-256")')
    page.wait_for_selector('[data-error-for="report"] li', state="detached")
    page.screenshot(path=str(SCREENSHOTS / "filling-before-submit-zh.png"), full_page=True)
    with page.expect_navigation():
        page.click("#submit-button")
    assert page.url.endswith(f"/entry/submission/{sub.pk}/change/")
    assert page.inner_text("#submission-state") == "已提交"
    assert page.locator("#approve-button").count() == 0  # nobody reviews their own submission
    assert "SHA-256" in page.inner_text("#attachments thead") and len(page.inner_text("#attachments tbody")) > 64
    # the item-bound value became a reading (channel form), linked to the submission; free fields stay in it
    assert [(r.value, r.channel) for r in Reading.objects.filter(park=park)] == [(12.5, "form")]
    assert list(sub.readings.values_list("field", flat=True)) == ["amount"]

    # the approver returns it with a comment
    page.context.clear_cookies()
    login(page, "approver-a", PASSWORD)
    page.goto(f"/entry/submission/{sub.pk}/change/")
    page.fill("#id_comment", "消耗量应为 13 t，请按过磅单更正")
    with page.expect_navigation():
        page.click("#return-button")
    assert page.inner_text("#submission-state") == "已退回"

    # the clerk sees the comment, changes the value and submits again: a correction, not an overwrite
    page.context.clear_cookies()
    login(page, "clerk-a", PASSWORD)
    page.goto(f"/entry/submission/{sub.pk}/change/")
    assert "13 t" in page.inner_text("#review-comment")
    with page.expect_navigation():
        page.click("#edit-link")
    assert "13 t" in page.inner_text("#return-comment")
    assert page.input_value('.ff-field[data-path="amount"] input') == "12.5"
    page.fill('.ff-field[data-path="amount"] input', "13")
    page.wait_for_selector("#filling-status[data-saved]")
    with page.expect_navigation():
        page.click("#submit-button")
    assert page.inner_text("#submission-state") == "已提交"
    assert page.inner_text("#pending-corrections") == "1"
    assert Correction.objects.get().new_value == 13
    assert Reading.objects.filter(park=park).order_by("ts").first().value == 12.5  # raw kept

    # the diff: the values it was returned with beside the resubmitted ones
    with page.expect_navigation():
        page.click("#compare-button")
    changed = page.locator("#diff tr.changed")
    amount = page.locator('#diff tr[data-path="amount"]')
    assert "changed" in amount.get_attribute("class")
    assert amount.locator("td.a").inner_text() == "12.5" and amount.locator("td.b").inner_text() == "13"
    assert page.locator('#diff tr[data-path="twice"] td.b').inner_text() == "26"
    assert changed.count() >= 2
    page.screenshot(path=str(SCREENSHOTS / "submission-diff-zh.png"), full_page=True)

    # the approver signs the correction off; the API then gives the new value with the one received beside it
    correction = Correction.objects.get()
    page.context.clear_cookies()
    login(page, "approver-a", PASSWORD)
    page.goto(f"/corrections/correction/{correction.pk}/change/")
    page.fill("#id_comment", "已核对过磅单")
    with page.expect_navigation():
        page.click("#approve-button")
    correction.refresh_from_db()
    assert correction.state == "approved"
    from apps.corrections import services as corrections

    corrections.apply_correction(correction.pk)  # what the worker's task does once the approval committed
    body = page.evaluate("(url) => fetch(url).then(r => r.json())", "/api/v1/readings?dataCode=CS010101")
    [record] = body["results"]
    assert (record["value"], record["rawValue"]) == (13, 12.5) and record["revision"] is not None, body
    raw = page.evaluate("(url) => fetch(url).then(r => r.json())", "/api/v1/readings?dataCode=CS010101&view=raw")
    assert [r["value"] for r in raw["results"]] == [12.5]
