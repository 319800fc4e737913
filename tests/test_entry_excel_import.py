"""Loading filled Excel templates into submissions (apps/entry/services/imports.py, R-7.3.4): a clean file is a
draft or a submitted submission through the submission services; a file with errors in ten places reports all
ten by sheet, row and column and stores nothing; an error found only at storage (a certificate number used
already, missing evidence) rolls the whole file back; hostile requests get codes, never a 500."""

import io
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import load_workbook
from rest_framework.test import APIClient

from apps.accounts import access
from apps.accounts.services import set_membership
from apps.core.models import AuditEntry
from apps.entry.excel import template
from apps.entry.models import Submission, SubmissionReading, UsedNumber
from apps.entry.services import create_form, publish
from apps.entry.services.imports import import_file
from apps.entry.services.submissions import add_attachment

pytestmark = pytest.mark.django_db
SYSTEM = access.SystemPrincipal("test")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def t(zh, en):
    return {"zh": zh, "en": en}


DEFINITION = {"format": 1, "period": "month", "sections": [
    {"key": "main", "title": t("基本信息", "Basics"), "fields": [
        {"key": "amount", "item": "CS010101", "required": True, "min": 0, "max": 1000000},
        {"key": "method", "type": "enum", "label": t("方法", "Method"), "options": [
            {"value": "measured", "label": t("实测", "measured")},
            {"value": "estimated", "label": t("估算", "estimated")}]},
        {"key": "day", "type": "date", "label": t("抄表日", "Reading day")},
        {"key": "note", "type": "text", "label": t("备注", "Note"), "maxLength": 20},
        {"key": "report", "type": "attachment", "label": t("检测报告", "Test report"), "required": True}]},
    {"key": "fuels", "title": t("燃料", "Fuels"), "repeat": {"min": 0, "max": 10}, "fields": [
        {"key": "fuel", "type": "enum", "label": t("燃料", "Fuel"), "required": True, "options": [
            {"value": "coal", "label": t("煤", "coal")}, {"value": "gas", "label": t("天然气", "gas")}]},
        {"key": "qty", "type": "number", "label": t("用量", "Quantity"), "unit": "t", "min": 0},
        {"key": "ncv", "type": "number", "label": t("低位发热量", "NCV"), "unit": "GJ/t", "min": 0, "max": 100}]},
    {"key": "certs", "title": t("证书", "Certificates"), "repeat": {"min": 0, "max": 5}, "fields": [
        {"key": "cert_no", "type": "text", "label": t("证书编号", "Certificate number"), "unique": True,
         "required": True},
        {"key": "issued", "type": "date", "label": t("签发日期", "Issued")}]}]}


@pytest.fixture
def world(park, other_park):
    users = get_user_model().objects
    people = {}
    for name, role, p in (("clerk", "operator", park), ("auditor", "auditor", park),
                          ("stranger", "operator", other_park)):
        people[name] = users.create_user(name)
        set_membership(actor="t", user=people[name], park=p, role=role)
    form = create_form(actor=SYSTEM, park=park, code="tp01-import", name_zh="导入", definition=DEFINITION)
    publish(actor=SYSTEM, form=form)
    other = create_form(actor=SYSTEM, park=other_park, code="tp02-secret", name_zh="别人的", definition=DEFINITION)
    publish(actor=SYSTEM, form=other)
    return form, people


def fill(form, main: dict, fuels: list[list] = (), certs: list[list] = ()) -> bytes:
    """The form's current template with ``main`` values by key and rows in the repeat sheets."""
    book = load_workbook(io.BytesIO(template(form.versions.get())))
    ws = book["基本信息"]
    for r in range(2, ws.max_row + 1):
        if ws.cell(row=r, column=5).value in main:
            ws.cell(row=r, column=4, value=main[ws.cell(row=r, column=5).value])
    for name, rows in (("燃料", fuels), ("证书", certs)):
        for i, row in enumerate(rows):
            for c, v in enumerate(row, 1):
                book[name].cell(row=4 + i, column=c, value=v)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


GOOD = {"amount": 120.5, "method": "实测", "day": "2026-10-31", "note": "月度台账"}


def test_a_clean_file_becomes_a_draft_then_a_submission(world, park, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    form, people = world
    data = fill(form, GOOD, fuels=[["煤", 10, 20.9], ["gas", 3, 38]], certs=[["GEC-2026-0001", "2026-09-01"]])
    result = import_file(actor=people["clerk"], form=form, park=park, period="2026-10-01", file=data,
                         file_name="ledger.xlsx")
    assert result.errors == [] and result.stored, str(result.errors)
    sub = result.submission
    assert sub.state == "draft" and sub.values["method"] == "measured"  # the Chinese label read as its value
    assert sub.values["fuels"] == [{"fuel": "coal", "qty": 10, "ncv": 20.9}, {"fuel": "gas", "qty": 3, "ncv": 38}]
    assert sub.history.latest().history_change_reason == "imported from ledger.xlsx"
    # submitting needs the report: refused as a whole, the draft unchanged, nothing stored as readings
    again = import_file(actor=people["clerk"], form=form, park=park, period="2026-10-01", file=data,
                        submit_it=True)
    assert [(e["path"], e["code"]) for e in again.errors] == [("report", "E8101")] and not again.stored
    assert Submission.objects.get(pk=sub.pk).state == "draft" and not SubmissionReading.objects.exists()
    # evidence attached on the submission's page, then the same file submitted: the evidence is kept
    att = add_attachment(actor=people["clerk"], submission_id=sub.pk, field="report",
                         upload=SimpleUploadedFile("report.pdf", PDF, content_type="application/pdf"))
    from apps.entry.services.submissions import save_draft

    save_draft(actor=people["clerk"], form=form, park=park, period="2026-10-01",
               values={**sub.values, "report": att.pk})
    done = import_file(actor=people["clerk"], form=form, park=park, period="2026-10-01", file=data,
                       submit_it=True)
    assert done.errors == [] and done.submission.state == "submitted"
    assert done.submission.values["report"] == str(att.pk)
    links = SubmissionReading.objects.filter(submission=sub)
    assert [(lk.field, lk.value) for lk in links] == [("amount", 120.5)]  # the item-bound value, via ingestion
    assert UsedNumber.objects.filter(number="GEC-2026-0001", submission=sub).exists()
    assert AuditEntry.objects.filter(action="submission.submit", object_id=str(sub.pk)).exists()


def test_ten_errors_in_three_sheets_are_all_reported_and_nothing_is_stored(world, park):
    form, people = world
    data = fill(form, {"amount": "abc", "method": "不存在", "day": "2026-13-01", "note": "x" * 21},
                fuels=[[None, 5, 20], ["煤", -3, 20], ["gas", 1, 500], ["gas", "=1+1", 20]],
                certs=[[None, "2026-01-01"], ["C-2", "yesterday"]])
    result = import_file(actor=people["clerk"], form=form, park=park, period="2026-10-01", file=data, lang="en")
    got = {(e["sheet"], e["row"], e["column"], e["code"]) for e in result.errors}
    assert got == {
        ("基本信息", 2, "D", "E8102"),  # not a number
        ("基本信息", 3, "D", "E8106"),  # not in the list
        ("基本信息", 4, "D", "E8108"),  # no such date
        ("基本信息", 5, "D", "E8107"),  # too long
        ("燃料", 4, "A", "E8101"),  # required, missing
        ("燃料", 5, "B", "E8103"),  # below the minimum
        ("燃料", 6, "C", "E8104"),  # above the maximum
        ("燃料", 7, "B", "E8405"),  # a formula
        ("证书", 4, "A", "E8101"),  # required, missing (the row has a date)
        ("证书", 5, "B", "E8108"),  # not a date
    }, result.errors
    assert len(result.errors) == 10 and not result.stored
    assert all(e["message"] and e["messages"]["zh"] and e["cell"] == f"{e['column']}{e['row']}"
               for e in result.errors)
    assert not Submission.objects.exists() and not UsedNumber.objects.exists()


def test_a_number_used_already_rolls_the_whole_file_back(world, park, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    form, people = world
    first = import_file(actor=people["clerk"], form=form, park=park, period="2026-09-01",
                        file=fill(form, GOOD, certs=[["GEC-1"]]))
    assert first.stored
    data = fill(form, GOOD, certs=[["GEC-2"], ["GEC-1"]])
    sub = first.submission
    att = add_attachment(actor=people["clerk"], submission_id=sub.pk, field="report",
                         upload=SimpleUploadedFile("r.pdf", PDF, content_type="application/pdf"))
    from apps.entry.services.submissions import save_draft, submit

    save_draft(actor=people["clerk"], form=form, park=park, period="2026-09-01", values={**sub.values,
                                                                                        "report": att.pk})
    submit(actor=people["clerk"], submission_id=sub.pk)
    # October's file names GEC-1 again: its draft is saved, then the submit finds the number taken
    second = import_file(actor=people["clerk"], form=form, park=park, period="2026-10-01", file=data)
    assert second.stored  # a draft claims no number
    oct_sub = second.submission
    att2 = add_attachment(actor=people["clerk"], submission_id=oct_sub.pk, field="report",
                          upload=SimpleUploadedFile("r.pdf", PDF, content_type="application/pdf"))
    save_draft(actor=people["clerk"], form=form, park=park, period="2026-10-01",
               values={**oct_sub.values, "report": att2.pk})
    before = oct_sub.history.count()
    refused = import_file(actor=people["clerk"], form=form, park=park, period="2026-10-01", file=data,
                          submit_it=True)
    assert [(e["sheet"], e["cell"], e["code"]) for e in refused.errors] == [("证书", "A5", "E8303")]
    assert f"#{sub.pk}" in refused.errors[0]["messages"]["en"]  # names the first use
    oct_sub.refresh_from_db()
    assert oct_sub.state == "draft" and oct_sub.history.count() == before  # not even the draft's save stayed
    assert not UsedNumber.objects.filter(number="GEC-2").exists()


def test_a_submitted_period_and_a_bad_period_are_refused(world, park):
    form, people = world
    data = fill(form, GOOD)
    bad = import_file(actor=people["clerk"], form=form, park=park, period="2026-10-15", file=data)
    assert [e["code"] for e in bad.errors] == ["E8305"]
    sub = import_file(actor=people["clerk"], form=form, park=park, period="2026-10-01", file=data).submission
    Submission.objects.filter(pk=sub.pk).update(state="submitted")
    late = import_file(actor=people["clerk"], form=form, park=park, period="2026-10-01", file=data)
    assert [e["code"] for e in late.errors] == ["E8302"] and not late.stored
    with pytest.raises(access.AccessDenied):
        import_file(actor=people["auditor"], form=form, park=park, period="2026-11-01", file=data)


def client(user) -> APIClient:
    c = APIClient()
    c.force_login(user)
    return c


def post(c, code, data, **fields):
    return c.post(f"/api/v1/forms/{code}/import", {"file": SimpleUploadedFile("f.xlsx", data), **fields},
                  format="multipart")


def nul_in_cell(data: bytes) -> bytes:
    """The file with a raw NUL byte inside a cell's text (XML forbids it; openpyxl never hands one over)."""
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet2.xml":
                body = body.replace(b"<t>", b"<t>\x00", 1)
            z.writestr(info, body)
    return out.getvalue()


def test_api_check_draft_and_hostile_requests(world, park, other_park):
    form, people = world
    clerk = client(people["clerk"])
    data = fill(form, GOOD)
    r = post(clerk, form.code, data)
    assert r.status_code == 200 and r.json()["stored"] is False and not Submission.objects.exists()
    r = post(clerk, form.code, data, mode="draft", park=park.code, period="2026-10-01")
    assert r.status_code == 200 and r.json()["stored"] and r.json()["state"] == "draft", r.content
    bad = fill(form, {**GOOD, "amount": -1})
    r = post(clerk, form.code, bad, mode="draft", park=park.code, period="2026-11-01")
    assert r.status_code == 400 and r.json()["code"] == "E8409" and r.json()["errors"][0]["cell"] == "D2"
    assert Submission.objects.count() == 1
    other = form.__class__.objects.get(code="tp02-secret")
    cases = [
        (post(clerk, "tp02-secret", fill(other, GOOD)), 404, "E8311"),  # another park's form: like none
        (post(clerk, "nope\x00", data), 400, "E1016"),  # a NUL in the path: refused before any view
        (post(clerk, form.code, nul_in_cell(data)), 400, "E8401"),  # XML cannot hold NUL: not a workbook
        (post(clerk, form.code, data, mode="draft", park=other_park.code, period="2026-10-01"), 404, "E8311"),
        (post(clerk, form.code, data, mode="explode"), 400, "E8411"),
        (post(clerk, form.code, b"name,qty\n\x00coal,1\n"), 400, "E8401"),  # a text file named .xlsx
        (post(clerk, form.code, fill(other, GOOD)), 400, "E8404"),  # the other park's template
        (clerk.post(f"/api/v1/forms/{form.code}/import", {}, format="multipart"), 400, "E8410"),
        (post(client(people["stranger"]), form.code, data), 404, "E8311"),
        # an auditor enters in no park: refused by the seam before the form is looked up
        (post(client(people["auditor"]), form.code, data, mode="draft", park=park.code, period="2026-10-01"),
         403, "E1008"),
    ]
    for r, status, code in cases:
        assert (r.status_code, r.json()["code"]) == (status, code), r.content[:300]
    assert Submission.objects.count() == 1
