"""The portal in a real browser: Debian's Chromium driven by Playwright against pytest-django's live server.

Transactional tests flush the tables after each test; serialized_rollback puts back what the data
migrations loaded (the catalog of Appendix A and the starting rule library) before each one."""

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PASSWORD = "s3cret-Portal-pw"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's Chromium is not installed"),
]


@pytest.fixture
def page(live_server, monkeypatch):
    """A Chromium page on the live server, in a browser set to Chinese as the park's staff use.

    Started per test, after pytest-django has restored the database and stopped before it flushes:
    while Playwright's sync API runs, an asyncio loop is running on this thread, so Django keeps this
    thread's connections in a separate (context-local) store that has neither the serialized contents
    nor the flush; the test's own ORM calls use that store, hence DJANGO_ALLOW_ASYNC_UNSAFE."""
    sync_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(locale="zh-CN", viewport={"width": 1440, "height": 900},
                                      base_url=live_server.url)
        context.set_default_timeout(10_000)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()
            from django.db import connections

            connections.close_all()  # the context-local connections opened while the loop ran


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("portal-admin", "admin@example.com", PASSWORD)


@pytest.fixture
def park_setup():
    """Park TP01 with two electricity meters and an integrator token, made through the services."""
    from apps.accounts.services import issue_token, save_park
    from apps.catalog.models import DataItem
    from apps.core.services import bump_config_version
    from apps.core.validators import uscc_check_char
    from apps.sources.services import save_source

    bump_config_version()
    park = save_park(actor="test", code="TP01", name_zh="测试园区", name_en="Test park", time_zone="Asia/Shanghai",
                     uscc="91320500MA1PARK01" + uscc_check_char("91320500MA1PARK01"))
    items = list(DataItem.objects.filter(code="CS010201"))
    assert items, "the catalog of Appendix A is missing (serialized_rollback did not restore it)"
    for n in (1, 2):
        save_source(actor="test", source_id=f"TP01-EM-000{n}", park=park, name=f"电表 {n}", data_items=items)
    _token, key = issue_token(actor="test", park=park, name="integrator")
    return {"park": park, "key": key}


def login(page, username="portal-admin", password=PASSWORD):
    page.goto("/login/?next=/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-form [type=submit]")
    page.wait_for_url("**/")


def result_rows(page):
    return page.locator("#result_list tbody tr")


def column_texts(page, field):
    return [t.strip() for t in page.locator(f"#result_list tbody td.field-{field}, "
                                            f"#result_list tbody th.field-{field}").all_inner_texts()]


def test_login_in_chinese_then_switch_to_english(superuser, page):
    page.goto("/")
    assert "/login/" in page.url
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert page.inner_text("#site-name") == "CarbonPark · 零碳园区数据接入"
    assert page.locator("#login-form [type=submit]").get_attribute("value") == "登录"
    assert page.locator("#language-select").input_value() == "zh-hans"

    login(page)
    assert page.inner_text("#content h1") == "碳数据平台"
    content = page.inner_text("#content")
    for text in ("数据接入", "读数", "数据源", "校验规则", "告警"):
        assert text in content
    assert "欢迎" in page.inner_text("#user-tools")

    with page.expect_navigation():
        page.select_option("#language-select", "en")
    assert urlparse(page.url).path == "/"  # set_language came back to the same page
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.inner_text("#content h1") == "Carbon data platform"
    assert page.inner_text("#site-name") == "CarbonPark · zero-carbon park data access"
    content = page.inner_text("#content")
    for text in ("Readings", "Data sources", "Validation rules", "Alarms"):
        assert text in content
    assert page.locator("#language-select").input_value() == "en"
    # The choice sticks (cookie) and is offered back.
    page.goto("/ingestion/reading/")
    assert page.inner_text("#content h1").startswith("Select reading")
    with page.expect_navigation():
        page.select_option("#language-select", "zh-hans")
    assert "/ingestion/reading/" in page.url
    assert page.inner_text("#content h1") == "选择读数查看"


def test_readings_browser_lists_and_filters(superuser, park_setup, page):
    from apps.ingestion.services import ingest_readings

    def rec(source, minute, value, **extra):
        return {"sourceId": source, "dataCode": "CS010201", "timestamp": f"2026-11-23 10:{minute:02d}:00",
                "value": value, "unit": "kWh", **extra}

    result = ingest_readings([
        rec("TP01-EM-0001", 5, 1.5),
        rec("TP01-EM-0001", 10, 2.5),
        rec("TP01-EM-0001", 15, 3.5, backfill=True),
        rec("TP01-EM-0002", 5, 10.0),
        rec("TP01-EM-0002", 10, 11.0),
    ], channel="test", actor="test")
    assert result.accepted == 5 and not result.rejected

    login(page)
    page.goto("/ingestion/reading/")
    assert page.inner_text("#content h1") == "选择读数查看"
    assert result_rows(page).count() == 5
    sources = column_texts(page, "source")
    assert sum("TP01-EM-0001" in s for s in sources) == 3 and sum("TP01-EM-0002" in s for s in sources) == 2
    header = page.inner_text("#result_list thead")
    for text in ("采集时间", "数据源", "数据项", "值", "单位", "质量标记"):
        assert text in header
    sidebar = page.locator("#changelist-filter")
    assert sidebar.is_visible()
    for text in ("按园区", "按数据源 ID", "按数据编码", "按质量标记"):
        assert text in sidebar.inner_text()

    # Layout: the filters sit in a sidebar right of the table, and the table needs no side scrolling.
    table, filters = page.locator("#result_list").bounding_box(), sidebar.bounding_box()
    assert filters["x"] >= table["x"] + table["width"]
    assert page.evaluate("() => { const r = document.querySelector('#changelist .results');"
                         " return r.scrollWidth - r.clientWidth; }") <= 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "readings.png"), full_page=True)

    # English at 1 280 px too (its labels are longer): the table still needs no side scrolling.
    page.set_viewport_size({"width": 1280, "height": 900})
    with page.expect_navigation():
        page.select_option("#language-select", "en")
    assert page.inner_text("#content h1") == "Select reading to view"
    overflow = page.evaluate("() => { const r = document.querySelector('#changelist .results');"
                             " return [r.scrollWidth - r.clientWidth, document.documentElement.scrollWidth]; }")
    page.screenshot(path="/tmp/readings-en-1280.png", full_page=True)
    assert overflow[0] <= 0 and overflow[1] <= 1280, overflow
    items = column_texts(page, "data_item")
    assert items and all("Electricity consumption" in t and "电力" not in t for t in items)  # catalog names in English
    with page.expect_navigation():
        page.select_option("#language-select", "zh-hans")
    page.set_viewport_size({"width": 1400, "height": 900})

    # The source-ID text box: type, Enter.
    box = sidebar.get_by_label("数据源 ID")
    box.fill("TP01-EM-0002")
    with page.expect_navigation():
        box.press("Enter")
    assert "source=TP01-EM-0002" in page.url
    assert result_rows(page).count() == 2
    assert all("TP01-EM-0002" in s for s in column_texts(page, "source"))
    assert sidebar.get_by_label("数据源 ID").input_value() == "TP01-EM-0002"

    # A source with no readings lists none.
    box = sidebar.get_by_label("数据源 ID")
    box.fill("TP01-EM-0009")
    with page.expect_navigation():
        box.press("Enter")
    assert result_rows(page).count() == 0

    # Clear the box, then the flag filter: only the backfilled reading.
    box = sidebar.get_by_label("数据源 ID")
    box.fill("")
    with page.expect_navigation():
        box.press("Enter")
    assert result_rows(page).count() == 5
    flag_filter = sidebar.locator("details[data-filter-title='质量标记']")
    with page.expect_navigation():
        flag_filter.get_by_role("link", name="补传", exact=True).click()
    assert "flag=backfill" in page.url
    assert result_rows(page).count() == 1
    assert column_texts(page, "flag_names") == ["补传"]
    assert "TP01-EM-0001" in column_texts(page, "source")[0]

    # Both at once: the text box keeps the flag filter (hidden inputs) and vice versa.
    box = sidebar.get_by_label("数据源 ID")
    box.fill("TP01-EM-0002")
    with page.expect_navigation():
        box.press("Enter")
    assert "flag=backfill" in page.url and "source=TP01-EM-0002" in page.url
    assert result_rows(page).count() == 0
    box = sidebar.get_by_label("数据源 ID")
    box.fill("TP01-EM-0001")
    with page.expect_navigation():
        box.press("Enter")
    assert result_rows(page).count() == 1


def test_alarm_visible_within_10_seconds(superuser, park_setup, live_server, page):
    login(page)
    page.goto("/quality/alarm/")
    assert "告警" in page.inner_text("#content h1")
    assert "E3001" not in page.inner_text("#content")

    body = json.dumps({"sourceId": "TP01-EM-0001", "dataCode": "CS010201", "timestamp": "2026-11-23 10:05:00",
                       "value": -5, "unit": "kWh"}).encode()
    request = urllib.request.Request(f"{live_server.url}/api/v1/readings", data=body, method="POST", headers={
        "Authorization": f"Token {park_setup['key']}", "Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, answer = response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, json.load(exc)
    assert status == 400
    assert answer["accepted"] == 0 and [r["code"] for r in answer["rejected"]] == ["E3001"]

    seen = None
    while time.monotonic() - started < 10:
        page.reload()
        if "E3001" in " ".join(column_texts(page, "code")):
            seen = time.monotonic() - started
            break
        time.sleep(0.25)
    assert seen is not None and seen < 10, "the E3001 alarm did not appear within 10 s"
    row = result_rows(page).filter(has_text="E3001")
    assert row.count() == 1
    text = row.inner_text()
    assert "TP01-EM-0001" in text and "未处理" in text and "校验失败" in text


def collect_csp_violations(page) -> list[str]:
    """Every script, style or connection the Content Security Policy refused on this page, as the browser
    reports it (securitypolicyviolation events, and the console's "Refused to ..." lines)."""
    seen: list[str] = []
    page.on("console", lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => console.error("
                         "'Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI));")
    return seen


def test_swagger_ui_and_portal_work_under_the_csp(superuser, park_setup, page):
    violations = collect_csp_violations(page)
    page.goto("/api/docs/")
    assert "script-src 'self'" in page.evaluate("() => fetch('/api/docs/').then(r => "
                                                "r.headers.get('content-security-policy'))")
    # Swagger UI starts (its start-up script comes as a file), loads the document and lists the operations.
    page.wait_for_selector(".swagger-ui .info .title")
    assert "CarbonPark API" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector("#operations-readings-readings_push, [id^='operations-'][id$='readings_push']")
    # Try it out against the API, authenticated with the park's token.
    page.click(".swagger-ui .auth-wrapper .authorize")
    page.fill(".swagger-ui .modal-ux input[type=text]", f"Token {park_setup['key']}")
    page.click(".swagger-ui .modal-ux .auth-btn-wrapper .authorize")
    page.click(".swagger-ui .modal-ux .close-modal")
    op = page.locator("[id$='v1_sources_list']").first
    op.locator(".opblock-summary").click()
    op.locator(".try-out__btn").click()
    op.locator(".execute").click()
    status = op.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip().startswith("200")
    assert "TP01-EM-0001" in op.locator(".live-responses-table .microlight").first.inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "swagger-ui.png"), full_page=True)

    # The portal: login, the language menu (a script file, no inline handler), a change list with actions.
    login(page)
    with page.expect_navigation():
        page.select_option("#language-select", "en")
    assert page.inner_text("#content h1") == "Carbon data platform"
    page.goto("/sources/datasource/")
    assert result_rows(page).count() == 2
    page.locator("#result_list tbody input.action-select").first.check()
    assert page.locator(".actions .action-counter").inner_text().startswith("1 of 2")  # admin JS ran
    assert violations == [], violations


def test_alarm_list_fits_a_1400_px_screen(superuser, park_setup, page):
    """Issue #7 item 11: long messages (a payload quoted back, an unbroken token) and every column of the
    alarm list fit a 1 400 px wide window without horizontal scrolling, in Chinese and in English."""
    from apps.quality.services import raise_alarm
    from apps.sources.services import save_source

    park = park_setup["park"]
    long_id = "TP01-GATEWAY-CHANNEL-" + "X" * 40
    source = save_source(actor="test", source_id=long_id, park=park, name="网关通道 " + "很长的名称" * 8)
    token = "payload=" + "A1b2C3d4" * 30  # an unbroken run, as a base64 payload quoted in a message
    meter = park.sources.get(source_id="TP01-EM-0001")
    zh = f"数据源 {long_id} 的报文无法解码：{token}，已作为拒收记录保存，请检查设备固件。"
    en = f"The payload of source {long_id} could not be decoded: {token}; kept as a rejection, check the firmware."
    for n, (kind, code) in enumerate([("validation", "E3001"), ("offline", "E5101"), ("silent", "E5201"),
                                      ("validation", "E5202"), ("validation", "E2008")]):
        raise_alarm(park_id=park.pk, source_id=(source if n % 2 else meter).pk, kind=kind, code=code,
                    message_zh=zh, message_en=en, count=n + 1)
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page)
    for language in ("zh-hans", "en"):
        if language == "en":
            with page.expect_navigation():
                page.select_option("#language-select", "en")
        page.goto("/quality/alarm/")
        assert result_rows(page).count() == 5
        overflow = page.evaluate("() => { const s = document.scrollingElement;"
                                 " return [s.scrollWidth, s.clientWidth]; }")
        inner = page.evaluate("() => { const r = document.querySelector('#changelist .results');"
                              " return [r.scrollWidth, r.clientWidth]; }")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"alarms-1400-{language}.png"), full_page=True)
        assert overflow[0] <= overflow[1], f"alarm page is {overflow[0]} px wide in a {overflow[1]} px window"
        assert inner[0] <= inner[1], f"alarm table scrolls: {inner[0]} px in a {inner[1]} px box"
        # the filters stay in their sidebar beside the table
        table, filters = page.locator("#result_list").bounding_box(), page.locator("#changelist-filter").bounding_box()
        assert filters["x"] >= table["x"] + table["width"]
