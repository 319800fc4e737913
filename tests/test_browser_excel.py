"""Excel in and out in a real browser (issue #10 item 7, R-7.3.4): a clerk downloads a form's template, imports
it filled with errors and sees them as a table by sheet, row and column in Chinese, then imports it corrected
and saves a draft; an auditor exports the history from the portal and the download's manifest verifies with
``manage.py verify_export`` (run as its own process, exit status 0; 1 once a byte is changed). Screenshots
(Chinese) go to var/screenshots/."""

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.test_browser_admin import CHROMIUM, SCREENSHOTS, login, page  # noqa: F401 - page fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's Chromium is not installed"),
]
PASSWORD = "s3cret-Portal-pw"
ROOT = Path(__file__).resolve().parent.parent


def verify_export(path) -> subprocess.CompletedProcess:
    from django.db import connection

    env = {**os.environ, "DATABASE_URL": os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/"
           + connection.settings_dict["NAME"]}
    return subprocess.run([sys.executable, "manage.py", "verify_export", str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_clerk_imports_with_errors_and_auditor_export_verifies(page, tmp_path, settings):  # noqa: F811
    from django.contrib.auth import get_user_model

    from apps.accounts import access
    from apps.accounts.services import save_park, set_membership
    from apps.core.models import AuditEntry
    from apps.entry.models import Submission
    from apps.entry.services import create_form, publish
    from tests.test_entry_excel_import import DEFINITION

    settings.MEDIA_ROOT = tmp_path
    park = save_park(actor="test", code="TPX", name_zh="甲园区", time_zone="Asia/Shanghai")
    system = access.SystemPrincipal("test")
    form = create_form(actor=system, park=park, code="tpx-ledger", name_zh="月度能源台账", definition=DEFINITION)
    publish(actor=system, form=form)
    users = get_user_model().objects
    for name, role in (("clerk-x", "operator"), ("auditor-x", "auditor")):
        set_membership(actor="test", user=users.create_user(name, f"{name}@example.invalid", PASSWORD), park=park,
                       role=role)
    page.set_viewport_size({"width": 1400, "height": 900})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    # the clerk: template from the Excel page, filled with three errors, imported
    login(page, "clerk-x", PASSWORD)
    page.click("#user-tools >> text=Excel 导入")
    with page.expect_download() as got:
        page.click("#excel-forms tr:has-text(\"tpx-ledger\") .template-link")
    template = tmp_path / "template.xlsx"
    got.value.save_as(template)
    book = load_workbook(template)
    main, fuels = book["基本信息"], book["燃料"]
    # below 0; a choice by its label; 24 characters where 20 are allowed
    main["D2"], main["D3"], main["D5"] = -5, "实测", "十二月份抄表，含备用锅炉与两台余热锅炉的燃气用量"
    fuels["A4"], fuels["B4"], fuels["C4"] = "煤", "12,5", 20.9  # a comma: not a number
    fuels["A5"], fuels["B5"], fuels["C5"] = "天然气", 3, "=B5*10"  # a formula
    bad = tmp_path / "台账-有错误.xlsx"
    book.save(bad)
    page.click("#excel-forms tr:has-text(\"tpx-ledger\") .import-link")
    page.fill("#id_period", "2026-10-01")
    page.set_input_files("#id_file", str(bad))
    page.click("#import-submit")
    page.wait_for_selector("#import-report")
    rows = [[c.strip() for c in r] for r in page.locator("#import-report tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.innerText))")]
    assert [(r[0], r[3], r[4]) for r in rows] == [("基本信息", "D2", "E8103"), ("基本信息", "D5", "E8107"),
                                                  ("燃料", "B4", "E8102"), ("燃料", "C5", "E8405")], rows
    assert any("小于下限" in r[5] for r in rows) and "未保存任何数据" in page.inner_text("#import-summary")
    page.screenshot(path=str(SCREENSHOTS / "import-errors-zh.png"), full_page=True)
    assert not Submission.objects.exists()

    main["D2"], main["D5"], fuels["B4"], fuels["C5"] = 120.5, "十二月份抄表", 12.5, 38
    good = tmp_path / "台账.xlsx"
    book.save(good)
    page.fill("#id_period", "2026-10-01")
    page.set_input_files("#id_file", str(good))
    page.click("#import-submit")
    page.wait_for_selector("#confirm-form")
    assert "120.5" in page.inner_text("#import-values") and not Submission.objects.exists()
    page.click("#confirm-draft")
    page.wait_for_selector(".messagelist .success")
    sub = Submission.objects.get()
    assert sub.state == "draft" and sub.values["fuels"][1] == {"fuel": "gas", "qty": 3, "ncv": 38}

    # the auditor: the history of the park from the exports page, verified by the command
    page.context.clear_cookies()
    login(page, "auditor-x", PASSWORD)
    page.click("#user-tools >> text=数据导出")
    page.select_option("#id_kind", "history")
    page.select_option("#id_file_format", "xlsx")
    page.select_option("#id_park", label=str(park))
    page.fill("#id_since", "2026-01-01T00:00")
    page.screenshot(path=str(SCREENSHOTS / "exports-zh.png"), full_page=True)
    with page.expect_download() as got:
        page.click("#export-submit")
    archive = tmp_path / got.value.suggested_filename
    got.value.save_as(archive)
    assert archive.name.startswith("history-TPX-") and archive.suffix == ".zip"
    ran = verify_export(archive)
    assert ran.returncode == 0 and ran.stdout.startswith("OK") and "audit trail (entry #" in ran.stdout, ran
    with zipfile.ZipFile(archive) as z:
        members = {n: z.read(n) for n in z.namelist()}
    data_name = next(n for n in members if n.endswith(".xlsx"))
    table = list(load_workbook(io.BytesIO(members[data_name]), read_only=True).active.iter_rows(values_only=True))
    kinds = {(r[table[0].index("action")], r[table[0].index("object_type")]) for r in table[1:]}
    assert ("form.publish", "entry.formversion") in kinds and ("park.create", "accounts.park") in kinds, kinds
    assert AuditEntry.objects.filter(action="export.history", actor_label="auditor-x").count() == 1
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as z:
        for n, data in members.items():
            z.writestr(n, data + b"\0" if n == data_name else data)
    ran = verify_export(tampered)
    assert ran.returncode == 1 and "was altered" in ran.stderr, ran
