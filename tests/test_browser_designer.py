"""The form designer in a real browser (issue #10 item 2, R-7.3.1): a park administrator opens the designer from
the list of forms, adds a repeating section (one row per fuel), drags a catalog item into it and adds another with
the keyboard's button, adds a free field with a condition built from "field equals value", reorders, sees a
duplicate key reported at its field, watches the condition hide and show in the preview, publishes and reads the
version's hash; the published version holds what was designed. A clerk of the park and the administrator of
another park get 403. Screenshots (1 440 px, Chinese and English) go to var/screenshots/ (copies in
docs/screenshots/)."""

from pathlib import Path

import pytest

from tests.test_browser_admin import CHROMIUM, SCREENSHOTS, login, page  # noqa: F401 - page fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's Chromium is not installed"),
]
PASSWORD = "s3cret-Portal-pw"


def props_set(p, selector, value):
    p.fill(selector, value)
    p.press(selector, "Tab")  # the designer takes a property on "change"


def test_an_administrator_designs_and_publishes_a_form_with_rows_and_a_condition(page):  # noqa: F811
    from django.contrib.auth import get_user_model

    from apps.accounts.services import save_park, set_membership
    from apps.entry import services
    from apps.entry.models import FormVersion

    park = save_park(actor="test", code="TPA", name_zh="甲园区", time_zone="Asia/Shanghai")
    other = save_park(actor="test", code="TPB", name_zh="乙园区", time_zone="Asia/Shanghai")
    users = get_user_model().objects
    people = {}
    for name, role, where in (("admin-a", "admin", park), ("clerk-a", "operator", park), ("admin-b", "admin", other)):
        people[name] = users.create_user(name, f"{name}@example.invalid", PASSWORD)
        set_membership(actor="test", user=people[name], park=where, role=role)
    form = services.create_form(actor=people["admin-a"], park=park, code="boiler-fuel", name_zh="锅炉燃料月报",
                                definition={"format": 1, "period": "month", "title": {"zh": "锅炉燃料月报"},
                                            "sections": [{"key": "main", "title": {"zh": "基本情况"},
                                                          "fields": [{"key": "boilers", "type": "number",
                                                                      "label": {"zh": "锅炉台数"}}]}]})
    design = f"/entry/form/{form.pk}/design/"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    login(page, "admin-a", PASSWORD)
    page.goto("/entry/form/")
    with page.expect_navigation():
        page.click(f'a[href="{design}"]')

    # a repeating section: one row per fuel
    page.click("#fd-add-repeat")
    props_set(page, "#fd-p-key", "fuels")
    props_set(page, "#fd-p-label-zh", "燃料明细")
    props_set(page, "#fd-p-label-en", "Fuels")
    props_set(page, "#fd-p-repeat-min", "1")
    props_set(page, "#fd-p-repeat-max", "10")
    rows = page.locator('.fd-fields[data-section="fuels"]')
    assert page.locator('.fd-section[data-key="fuels"] .fd-badge').inner_text().endswith("1–10")

    # the fuel type dragged in from the catalog, found by searching it
    page.fill("#fd-search", "CS010104")
    assert page.locator('.fd-chip[data-item="CS010101"]').is_hidden()
    page.locator('.fd-chip[data-item="CS010104"]').drag_to(rows)
    props_set(page, "#fd-p-key", "fuel_type")
    page.check("#fd-p-required")
    # the amount added with the keyboard's button: into the selected field's section, at its end
    page.fill("#fd-search", "CS010101")
    page.locator('.fd-chip[data-item="CS010101"] .fd-add').focus()
    page.keyboard.press("Enter")
    props_set(page, "#fd-p-key", "amount")
    page.check("#fd-p-required")
    props_set(page, "#fd-p-min", "0")
    props_set(page, "#fd-p-help-zh", "按入厂计量")
    assert rows.locator(".fd-field").evaluate_all("rows => rows.map(r => r.dataset.key)") == ["fuel_type", "amount"]

    # a free number field with a condition: shown only for raw coal
    page.fill("#fd-search", "")
    box = rows.bounding_box()
    page.locator('.fd-chip.fd-free[data-type="number"]').drag_to(rows,
                                                                 target_position={"x": 40, "y": box["height"] - 4})
    assert rows.locator(".fd-field").evaluate_all("rows => rows.map(r => r.dataset.key)") == [
        "fuel_type", "amount", "field"]  # dropped below the last one
    props_set(page, "#fd-p-key", "ncv")
    props_set(page, "#fd-p-label-zh", "低位发热量")
    props_set(page, "#fd-p-label-en", "Net calorific value")
    props_set(page, "#fd-p-unit", "GJ/t")
    props_set(page, "#fd-p-min", "0")
    props_set(page, "#fd-p-max", "50")
    page.select_option("#fd-c-field", "fuel_type")
    page.select_option("#fd-c-value", "raw_coal")  # the fuel type's own choices
    assert page.locator("#fd-c-op").input_value() == "=="
    assert page.locator('.fd-field[data-key="ncv"] .fd-cond').count() == 1
    page.click("#fd-c-advanced summary")
    assert page.locator("#fd-p-visible").input_value() == '{"==":[{"var":"fuel_type"},"raw_coal"]}'
    # reordered: the calorific value before the amount
    page.locator('.fd-field[data-key="ncv"] .fd-icon[title="上移"]').click()
    assert rows.locator(".fd-field").evaluate_all("rows => rows.map(r => r.dataset.key)") == [
        "fuel_type", "ncv", "amount"]

    # a problem is shown at the field it concerns
    page.locator('.fd-field[data-key="amount"]').click()
    props_set(page, "#fd-p-key", "boilers")
    page.click("#fd-check")
    page.wait_for_selector("#fd-status.fd-status-error")
    assert "E8202" in page.locator('#fd-problems').inner_text()
    assert "E8202" in rows.locator(".fd-field").nth(2).locator(".fd-errors").inner_text()
    props_set(page, "#fd-p-key", "amount")
    page.click("#fd-check")
    page.wait_for_selector("#fd-status.fd-status-ok")
    assert page.locator("#fd-problems").is_hidden()

    # the preview as the clerk will see it: the calorific value only for raw coal
    page.locator('.fd-field[data-key="ncv"]').click()
    assert page.locator('.fd-field[data-key="ncv"] .fd-cond').inner_text() == "当 燃料种类 = 原煤"
    page.screenshot(path=str(SCREENSHOTS / "designer-design-zh.png"))
    page.click("#fd-tab-preview")
    ncv = page.locator("#pv-ncv-fuels-0")
    assert page.locator('#fd-preview td[data-path="fuels[0].ncv"]').count() == 1
    assert ncv.is_hidden()
    page.select_option("#pv-fuel_type-fuels-0", "raw_coal")
    assert ncv.is_visible()
    page.fill("#pv-amount-fuels-0", "120.5")
    page.fill("#pv-ncv-fuels-0", "20.9")
    page.click("#fd-preview .fd-pv-add-row")
    page.select_option("#pv-fuel_type-fuels-1", "diesel")
    assert page.locator("#pv-ncv-fuels-1").is_hidden() and ncv.is_visible()
    page.screenshot(path=str(SCREENSHOTS / "designer-zh.png"))

    # save and publish: an immutable version whose hash the page shows
    page.click("#fd-publish")
    page.wait_for_selector('#fd-current[data-number="1"]')
    version = FormVersion.objects.get(form=form)
    assert version.content_hash in page.locator("#fd-current").inner_text()
    assert version.content_hash[:12] in page.locator("#fd-status").inner_text()
    sections = version.definition["sections"]
    assert [s["key"] for s in sections] == ["main", "fuels"]
    fuels = sections[1]
    assert fuels["repeat"] == {"min": 1, "max": 10} and fuels["title"] == {"zh": "燃料明细", "en": "Fuels"}
    fields = {f["key"]: f for f in fuels["fields"]}
    assert [f["key"] for f in fuels["fields"]] == ["fuel_type", "ncv", "amount"]
    assert fields["fuel_type"]["item"] == "CS010104" and fields["fuel_type"]["required"] is True
    assert {o["value"] for o in fields["fuel_type"]["options"]} >= {"raw_coal", "diesel"}  # resolved at publishing
    assert fields["amount"]["item"] == "CS010101" and fields["amount"]["min"] == 0
    assert fields["amount"]["help"] == {"zh": "按入厂计量"} and fields["amount"]["unit"]
    assert fields["ncv"] == {"key": "ncv", "type": "number", "label": {"zh": "低位发热量", "en": "Net calorific value"},
                             "unit": "GJ/t", "min": 0, "max": 50,
                             "visibleIf": {"==": [{"var": "fuel_type"}, "raw_coal"]}}
    form.refresh_from_db()
    assert form.definition["sections"][1]["fields"][1]["visibleIf"] == fields["ncv"]["visibleIf"]
    # the selectors give the clerk's side the same version
    from apps.entry import selectors

    assert selectors.current_version(form).content_hash == version.content_hash

    # the English page, for the English guide
    with page.expect_navigation():
        page.select_option("#language-select", "en")
    page.locator('.fd-field[data-key="ncv"]').click()
    assert page.locator("#fd-tab-preview").inner_text() == "Preview"
    page.screenshot(path=str(SCREENSHOTS / "designer-en.png"))

    # a clerk of the park and another park's administrator may not design it
    for who in ("clerk-a", "admin-b"):
        page.context.clear_cookies()
        login(page, who, PASSWORD)
        assert page.goto(design).status == 403, who
