"""The upload page in a real browser (issue #11 item 2, R-7.2.2): a clerk drops a valid CSV and one with bad rows and
sees both go to 100 %, load (a real Celery worker runs the load task), their counts and the rejection report; a file
with a wrong name is refused before anything is sent; a paused upload resumes with the same id; a PATCH whose
connection drops is resumed from the server's offset. The page's name rule agrees with the server's parser on a
list of names. Screenshot: var/screenshots/upload-page-zh.png (a copy is committed in docs/screenshots/)."""

import csv
import io
import time
from pathlib import Path

import pytest

from apps.batch.parsers import FileError, parse_name
from tests.batch_files import csv_text, name, readings
from tests.test_browser_admin import CHROMIUM, SCREENSHOTS, login, page, park_setup  # noqa: F401 - fixtures
from tests.upload_worker import upload_worker  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's Chromium is not installed"),
]
PASSWORD = "s3cret-Portal-pw"
DOC_SHOTS = SCREENSHOTS  # var/screenshots/: a test never writes into docs/ (copies are committed there)


@pytest.fixture
def clerk(park_setup):  # noqa: F811
    from django.contrib.auth import get_user_model

    from apps.accounts.services import set_membership

    user = get_user_model().objects.create_user("clerk-u", "clerk-u@example.invalid", PASSWORD)
    set_membership(actor="test", user=user, park=park_setup["park"], role="operator")
    return user


def drop(pg, files: dict[str, str]) -> None:
    """Drop ``files`` (name → text) on the drop zone, as a drag from the desktop does."""
    transfer = pg.evaluate_handle("""files => {
        const dt = new DataTransfer();
        for (const [name, text] of Object.entries(files)) dt.items.add(new File([text], name, {type: "text/csv"}));
        return dt;
    }""", files)
    pg.dispatch_event("#upload-drop", "drop", {"dataTransfer": transfer})


def item(pg, filename: str):
    return pg.locator(f"#upload-queue tr[data-name='{filename}']")


def wait_state(pg, filename: str, state: str, timeout: float = 60_000) -> None:
    pg.wait_for_selector(f"#upload-queue tr[data-name='{filename}'][data-state='{state}']", timeout=timeout)


def test_clerk_drops_files_sees_progress_counts_and_report(page, clerk, upload_worker, tmp_path):  # noqa: F811
    from apps.uploads.models import Upload

    good, bad = name(seq=1), name(seq=2)
    good_text = csv_text(readings(40))
    bad_text = csv_text(readings(10, start_minute=100) + [
        "TP01-EM-9999,CS010201,2026-11-02 00:00:00,1.5,kWh,N",  # no such source
        "TP01-EM-0001,CS010201,2026-11-02 00:01:00,1.5,kWh",  # a cell short
        "TP01-EM-0001,CS010201,2026-11-02 00:02:00,abc,kWh,N",  # not a number
    ])
    login(page, "clerk-u", PASSWORD)
    page.click("#uploads-link")
    assert page.inner_text("#content h1") == "上传数据文件"
    assert page.locator("#upload-park").input_value() == "TP01"

    drop(page, {good: good_text, bad: bad_text})
    for filename in (good, bad):
        wait_state(page, filename, "loaded")
        assert item(page, filename).locator(".pct").inner_text() == "100 %"
        assert item(page, filename).locator("progress").get_attribute("value") == "100"
    counts = item(page, good).locator(".counts")
    assert (counts.get_attribute("data-accepted"), counts.get_attribute("data-rejected")) == ("40", "0")
    assert "40 行：接受 40" in counts.inner_text()
    counts = item(page, bad).locator(".counts")
    assert (counts.get_attribute("data-accepted"), counts.get_attribute("data-rejected")) == ("10", "3")
    link = item(page, bad).locator("a.report-csv")
    assert link.inner_text() == "拒收报告（CSV）" and item(page, bad).locator("a.report-xlsx").count() == 1
    with page.expect_download() as got:
        link.click()
    report = tmp_path / "report.csv"
    got.value.save_as(report)
    rows = list(csv.reader(io.StringIO(report.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 4 and {r[2] for r in rows[1:]} >= {"E9151"}, rows
    uploads = {u.filename: u for u in Upload.objects.all()}
    assert uploads[good].state == "loaded" and uploads[good].created_by == clerk and uploads[good].md5

    # a wrong name: refused in the browser, nothing sent
    wrong = tmp_path / "十一月电量.csv"
    wrong.write_text(good_text, encoding="utf-8")
    other_park = tmp_path / name(park="TP09", seq=3)
    other_park.write_text(good_text, encoding="utf-8")
    page.set_input_files("#upload-input", [str(wrong), str(other_park)])
    wait_state(page, wrong.name, "refused", timeout=5_000)
    wait_state(page, other_park.name, "refused", timeout=5_000)
    assert item(page, wrong.name).get_attribute("data-code") == "E9101"
    assert "不符合命名规则" in item(page, wrong.name).locator(".outcome").inner_text()
    assert item(page, other_park.name).get_attribute("data-code") == "E9102"
    assert Upload.objects.count() == 2

    # the recent lists below the queue were fetched again once the files were loaded
    page.wait_for_function(f"() => document.querySelector('#load-recent').innerText.includes('{bad}')")
    recent = page.inner_text("#upload-recent")
    load_log = page.inner_text("#load-recent")
    assert good in recent and bad in recent and good in load_log and "clerk-u" in load_log
    counts = page.locator("#load-recent tr", has_text=bad).locator("td.counts")
    assert (counts.get_attribute("data-accepted"), counts.get_attribute("data-rejected")) == ("10", "3")
    assert counts.inner_text() == "13 行：接受 10，重复 0，拒收 3"
    # the page fits a 1280 px screen: no column squeezed to a character per line, nothing wider than the window
    page.set_viewport_size({"width": 1280, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert page.evaluate("Array.from(document.querySelectorAll('.upload-scroll'))"
                         ".every(d => d.scrollWidth <= d.clientWidth)")
    assert page.locator("#load-recent td.file").first.bounding_box()["width"] > 150
    DOC_SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.screenshot(path=str(DOC_SHOTS / "upload-page-zh.png"), full_page=True)
    page.reload()  # and on the page's next load
    assert bad in page.inner_text("#load-recent")

    # in English, the same page (and the same rule in the other language)
    with page.expect_navigation():
        page.select_option("#language-select", "en")
    page.set_input_files("#upload-input", [str(wrong)])
    wait_state(page, wrong.name, "refused", timeout=5_000)
    assert "does not follow" in item(page, wrong.name).locator(".outcome").inner_text()
    page.screenshot(path=str(DOC_SHOTS / "upload-page-en.png"), full_page=True)


def test_pause_resume_and_a_dropped_connection_keep_the_same_upload(page, clerk, upload_worker, settings):  # noqa: F811
    from apps.uploads.models import Upload

    settings.UPLOAD_PAGE_CHUNK_BYTES = 64 * 1024
    big, cut = name(seq=11), name(seq=12)
    big_text = csv_text(readings(16000))  # about 0.8 MB: 13 chunks
    cut_text = csv_text(readings(6000, start_minute=20000))
    methods = []
    page.on("request", lambda r: methods.append((r.method, r.url)) if "/api/v1/uploads/" in r.url else None)
    patches = {"n": 0}

    def slow(route):  # every PATCH a little late: time to press pause mid-way
        time.sleep(0.15)
        route.continue_()

    login(page, "clerk-u", PASSWORD)
    page.goto("/uploads/")
    page.route("**/api/v1/uploads/*", lambda route: slow(route) if route.request.method == "PATCH"
               else route.continue_())
    drop(page, {big: big_text})
    page.wait_for_function(f"""() => {{
        const v = document.querySelector("#upload-queue tr[data-name='{big}'] progress");
        return v && v.value >= 20 && v.value < 80; }}""")
    item(page, big).locator("button.pause").click()
    wait_state(page, big, "paused")
    page.wait_for_timeout(500)  # a chunk already on its way when pause was pressed may still land: then nothing
    upload = Upload.objects.get(filename=big)
    held = upload.offset
    page.wait_for_timeout(800)
    upload.refresh_from_db()
    assert upload.state == "receiving" and upload.offset == held < len(big_text.encode())
    assert item(page, big).locator("button.pause").inner_text() == "继续"
    heads_before = sum(1 for m, _ in methods if m == "HEAD")
    item(page, big).locator("button.pause").click()
    wait_state(page, big, "loaded")
    assert Upload.objects.filter(filename=big).count() == 1
    assert item(page, big).get_attribute("data-upload-id") == str(upload.pk)
    assert sum(1 for m, _ in methods if m == "HEAD") > heads_before  # resumed from the server's offset
    assert item(page, big).locator(".counts").get_attribute("data-accepted") == "16000"

    # the connection drops on the third PATCH, once: the client asks the server's offset and goes on
    page.unroute("**/api/v1/uploads/*")

    def cut_once(route):
        if route.request.method == "PATCH":
            patches["n"] += 1
            if patches["n"] == 3:
                route.abort("connectionreset")
                return
        route.continue_()

    page.route("**/api/v1/uploads/*", cut_once)
    methods.clear()
    drop(page, {cut: cut_text})
    wait_state(page, cut, "loaded")
    assert patches["n"] >= 4
    sequence = [m for m, _ in methods if m in ("PATCH", "HEAD")]
    assert sequence[:4] == ["PATCH", "PATCH", "PATCH", "HEAD"], sequence
    assert Upload.objects.filter(filename=cut).count() == 1
    done = Upload.objects.get(filename=cut)
    assert done.state == "loaded" and done.accepted == 6000 and done.received_md5 == done.md5


NAMES = [
    "TP01_CS_202611_20261201083000_001.csv", "TP01_CS_202611_20261201083000_001.csv.gz",
    "TP01_MIX_2026Q1_20261201083000_7.xlsx.zip.enc", "TP01_CK_2026_20261201083000_001.XML",
    "TP01_cs_202611_20261201083000_001.csv", "TP01_CS_202613_20261201083000_001.csv",
    "TP01_CS_20260230_20261201083000_001.csv", "TP01_CS_2026q1_20261201083000_001.csv",
    "TP01_CS_202611_20261301083000_001.csv", "TP01_CS_202611_20261201083000_001.txt",
    "TP01_CS_202611_20261201083000_001.csv.rar", "monthly.csv", "TP_01_CS_202611_20261201083000_001.csv",
    "TP01_XX_202611_20261201083000_001.csv", "TP01_CS_20261101_20261201246000_001.csv",
]


def test_the_pages_name_rule_agrees_with_the_parser(page, clerk):  # noqa: F811
    login(page, "clerk-u", PASSWORD)
    page.goto("/uploads/")
    for n in NAMES:
        try:
            parse_name(n)
            expected = None
        except FileError as exc:
            expected = exc.code
        got = page.evaluate("n => { const e = window.CarbonParkUploadNames.check(n, null); return e && e.code; }", n)
        assert got == expected, (n, got, expected)
