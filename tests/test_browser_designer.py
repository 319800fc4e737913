"""The form designer in a real browser (issue #10 item 2, R-7.3.1): a park administrator drags a catalog item
into a section, adds a repeating section with a field, gives the item a condition, sees it hide and show in the
preview, saves and publishes; the published version holds what was designed. A clerk of the park gets 403.
Screenshots (Chinese, 1 440 px) go to var/screenshots/."""

from pathlib import Path

import pytest

from tests.test_browser_admin import CHROMIUM, SCREENSHOTS, login, page  # noqa: F401 - page fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's Chromium is not installed"),
]
PASSWORD = "s3cret-Portal-pw"
CONDITION = '{"==": [{"var": "kind"}, "raw_coal"]}'


def test_an_administrator_designs_previews_and_publishes_a_clerk_is_refused(page):  # noqa: F811
    from django.contrib.auth import get_user_model

    from apps.accounts.services import save_park, set_membership
    from apps.entry import services
    from apps.entry.models import FormVersion

    park = save_park(actor="test", code="TPA", name_zh="甲园区", time_zone="Asia/Shanghai")
    users = get_user_model().objects
    people = {}
    for name, role in (("admin-a", "admin"), ("clerk-a", "operator")):
        people[name] = users.create_user(name, f"{name}@example.invalid", PASSWORD)
        set_membership(actor="test", user=people[name], park=park, role=role)
    form = services.create_form(actor=people["admin-a"], park=park, code="boiler-fuel", name_zh="锅炉燃料月报",
                                definition={"format": 1, "period": "month", "title": {"zh": "锅炉燃料月报"},
                                            "sections": [{"key": "main", "title": {"zh": "燃料"},
                                                          "fields": [{"key": "kind", "item": "CS010104"}]}]})
    design = f"/entry/form/{form.pk}/design/"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    login(page, "admin-a", PASSWORD)
    page.goto("/entry/form/")
    with page.expect_navigation():
        page.click(f'a[href="{design}"]')
    # a catalog item dragged into the section, found by searching the catalog
    page.fill("#fd-search", "CS010101")
    assert page.locator('.fd-chip[data-item="CS010104"]').is_hidden()
    main = page.locator('.fd-fields[data-section="main"]')
    box = main.bounding_box()
    page.locator('.fd-chip[data-item="CS010101"]').drag_to(main, target_position={"x": 40, "y": box["height"] - 4})
    amount = page.locator('.fd-field[data-key="cs010101"]')
    assert amount.count() == 1
    assert main.locator(".fd-field").nth(1).get_attribute("data-key") == "cs010101"  # dropped below "kind"
    # a repeating section with a free number field
    page.fill("#fd-search", "")
    page.click("#fd-add-repeat")
    rows = page.locator('.fd-fields[data-section="rows"]')
    page.locator('.fd-chip.fd-free[data-type="number"]').drag_to(rows)
    page.locator('.fd-field[data-key="field"]').click()
    page.fill("#fd-p-key", "lot_amount")
    page.press("#fd-p-key", "Tab")
    page.fill("#fd-p-label-zh", "批次用量")
    page.press("#fd-p-label-zh", "Tab")
    page.fill("#fd-p-min", "0")
    page.press("#fd-p-min", "Tab")
    # the condition on the dragged item
    amount.click()
    page.check("#fd-p-required")
    page.fill("#fd-p-visible", CONDITION)
    page.press("#fd-p-visible", "Tab")
    assert page.locator("#fd-p-visible-error").inner_text() == ""
    page.click("#fd-check")
    page.wait_for_selector("#fd-status.fd-status-ok")
    page.screenshot(path=str(SCREENSHOTS / "designer-zh.png"), full_page=True)

    # the preview: the item shows only for raw coal
    page.click("#fd-tab-preview")
    shown = page.locator('#fd-preview [data-path="cs010101"]')
    assert shown.is_hidden()
    page.select_option("#pv-kind", "raw_coal")
    assert shown.is_visible()
    page.fill("#pv-cs010101", "120.5")
    page.click("#fd-preview .fd-pv-add-row")
    assert page.locator('#fd-preview td[data-path="rows[0].lot_amount"]').count() == 1
    page.screenshot(path=str(SCREENSHOTS / "designer-preview-zh.png"), full_page=True)
    page.select_option("#pv-kind", "diesel")
    assert shown.is_hidden()

    # save and publish
    page.click("#fd-publish")
    page.wait_for_selector('#fd-current[data-number="1"]')
    version = FormVersion.objects.get(form=form)
    assert version.content_hash in page.locator("#fd-current").inner_text()
    sections = version.definition["sections"]
    assert [s["key"] for s in sections] == ["main", "rows"]
    fields = {f["key"]: f for f in sections[0]["fields"]}
    assert fields["cs010101"]["item"] == "CS010101" and fields["cs010101"]["required"] is True
    assert fields["cs010101"]["visibleIf"] == {"==": [{"var": "kind"}, "raw_coal"]}
    assert fields["cs010101"]["unit"]  # resolved from the catalog at publishing
    assert sections[1]["repeat"] == {"min": 0, "max": 50}
    assert sections[1]["fields"] == [{"key": "lot_amount", "type": "number", "label": {"zh": "批次用量"}, "min": 0}]

    # a clerk of the same park may not design
    page.context.clear_cookies()
    login(page, "clerk-a", PASSWORD)
    assert page.goto(design).status == 403
