"""The portal per park and role in a real browser (issue #8): a park administrator never sees another park,
an auditor reads history and cannot save. Debian's Chromium through Playwright, as tests/test_browser_admin.py.

Screenshots at 1 400 px in Chinese go to var/screenshots/ (copies committed in docs/screenshots/, shown by
docs/portal-access.md), so that a test run leaves the repository clean."""

from pathlib import Path

import pytest

from tests.portal_world import PASSWORD, fill_park
from tests.test_browser_admin import CHROMIUM, SCREENSHOTS, login, page, result_rows  # noqa: F401 - page fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's Chromium is not installed"),
]


@pytest.fixture
def two_parks(django_user_model):
    from apps.accounts.services import save_park, set_membership

    a = save_park(actor="test", code="TPA", name_zh="甲园区", name_en="Park A", time_zone="Asia/Shanghai")
    b = save_park(actor="test", code="TPB", name_zh="乙园区", name_en="Park B", time_zone="Asia/Shanghai")
    fill_park(a, n_sources=3)
    fill_park(b, n_sources=2)
    c = save_park(actor="test", code="TPC", name_zh="丙园区", name_en="Park C", time_zone="Asia/Shanghai")
    fill_park(c, n_sources=1)
    users = {}
    for role in ("admin", "auditor"):
        users[role] = django_user_model.objects.create_user(f"{role}-a", f"{role}@example.invalid", PASSWORD)
        set_membership(actor="test", user=users[role], park=a, role=role)
    set_membership(actor="test", user=users["admin"], park=c, role="viewer")  # a second park, to switch to
    return {"a": a, "b": b, "users": users}


def test_a_park_administrator_never_sees_another_park(two_parks, page):  # noqa: F811
    from apps.sources.models import DataSource

    login(page, "admin-a")
    # the switcher offers the user's parks only
    options = page.locator("#park-select option").all_inner_texts()
    assert options == ["我的全部园区（2 个）", "TPA 甲园区", "TPC 丙园区"], options
    for path in ("/sources/datasource/", "/ingestion/reading/", "/quality/alarm/", "/accounts/apitoken/",
                 "/accounts/membership/", "/catalog/dataitem/?q=CS97", "/core/auditentry/", "/accounts/park/"):
        page.goto(path)
        assert page.locator("#result_list, #changelist").count(), path
        text = page.inner_text("#content")
        assert "TPB" not in text and "乙园区" not in text, (path, text[:500])
    page.goto("/sources/datasource/")
    # A's three meters and its third-party platform's topic, C's one and its topic (tests/portal_world.py)
    assert result_rows(page).count() == 6
    # the switcher: park A only, then back to all
    with page.expect_navigation():
        page.select_option("#park-select", label="TPA 甲园区")
    assert page.url.endswith("/sources/datasource/")
    assert result_rows(page).count() == 4
    meters = [t for t in page.locator("#result_list tbody th").all_inner_texts() if ".test" not in t]
    assert len(meters) == 3 and all("TPA" in t for t in meters)
    assert page.locator("#park-select").input_value() == str(two_parks["a"].pk)
    page.set_viewport_size({"width": 1400, "height": 900})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "portal-park-admin-sources-zh.png"), full_page=True)

    with page.expect_navigation():
        page.select_option("#park-select", index=0)
    assert result_rows(page).count() == 6

    # autocomplete boxes: the rule form's source box offers the sources the user manages (park A's) only
    page.goto("/quality/rule/add/")
    page.locator(".field-source .select2-selection").click()
    page.locator(".select2-search__field").fill("TP")
    page.wait_for_function("() => document.querySelector('.select2-results__option') &&"
                           " !document.querySelector('.select2-results__option.loading-results')")
    offered = page.locator(".select2-results__option").all_inner_texts()
    assert offered and all("TPA" in o for o in offered), offered
    answer = page.evaluate("() => fetch('/autocomplete/?term=TPB&app_label=quality&model_name=rule"
                           "&field_name=source').then(r => r.json())")
    assert answer["results"] == []

    # a direct URL to B's source: not there for this user
    theirs = DataSource.objects.filter(park=two_parks["b"]).first()
    page.goto(f"/sources/datasource/{theirs.pk}/change/")
    assert theirs.source_id not in page.inner_text("#content")
    assert "/change/" not in page.url  # sent back to the index with "does not exist"
    status = page.evaluate(f"() => fetch('/sources/datasource/{theirs.pk}/history/', {{redirect: 'manual'}})"
                           ".then(r => r.status)")
    assert status in (0, 403, 404)  # 0: an opaque redirect
    # the plumbing is not in the menus
    page.goto("/")
    nav = page.inner_text("#content")
    for hidden in ("周期任务", "Periodic tasks", "幂等", "配置版本"):
        assert hidden not in nav, hidden
    links = page.locator("#content a").all_inner_texts()
    assert "组" not in [t.strip() for t in links]  # auth's groups (a balance group, 平衡组, is the park's own)


def test_an_auditor_reads_history_and_cannot_save(two_parks, page):  # noqa: F811
    from apps.sources.models import DataSource
    from apps.sources.services import save_source

    ours = DataSource.objects.filter(park=two_parks["a"]).order_by("pk").first()
    save_source(actor="test", source=ours, name="电表 1（已更名）")  # a second version in the history
    login(page, "auditor-a")
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"/sources/datasource/{ours.pk}/change/")
    assert page.locator("input[name=_save], input[name=_continue], input[name=_addanother]").count() == 0
    assert page.locator("a.deletelink").count() == 0
    assert "电表 1（已更名）" in page.inner_text("#content")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "portal-auditor-readonly-zh.png"), full_page=True)

    page.goto("/sources/datasource/")
    assert page.locator("#changelist .object-tools a.addlink").count() == 0
    assert page.locator("select[name=action]").count() == 0  # no bulk actions either

    page.goto(f"/sources/datasource/{ours.pk}/change/")
    with page.expect_navigation():
        page.locator(".object-tools a.historylink").click()
    assert "/history/" in page.url
    rows = page.locator("#audit-timeline tbody tr")  # row versions and action records (apps/accounts/audit_admin)
    assert rows.count() >= 2 and "电表 1（已更名）" in page.inner_text("#audit-timeline")

    # a POST of the change form is refused whatever the page shows
    status = page.evaluate("""async ([url, park]) => {
        const token = document.cookie.split('; ').find(c => c.startsWith('csrftoken=')).split('=')[1];
        const body = new URLSearchParams({csrfmiddlewaretoken: token, name: 'taken', park: park,
                                          source_id: 'X', _save: '1'});
        const r = await fetch(url, {method: 'POST', body, headers: {'X-CSRFToken': token}});
        return r.status; }""", [f"/sources/datasource/{ours.pk}/change/", str(two_parks["a"].pk)])
    assert status == 403
    ours.refresh_from_db()
    assert ours.name == "电表 1（已更名）"
