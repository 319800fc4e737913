"""Portal pages for Excel in and out (apps/entry/portal_excel.py, R-7.3.4): a clerk downloads a template, sees a
file's errors as a table by sheet, row and column in Chinese, confirms a clean one as a draft; an auditor
downloads an export whose manifest verifies; rights through the seam; hostile posts answered, never a 500."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from openpyxl import load_workbook

from apps.core.models import AuditEntry
from apps.entry.models import Submission
from tests.test_entry_excel_import import GOOD, fill, world  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def portal(user) -> Client:
    c = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    c.force_login(user)
    return c


def upload(c, form, data, park, period="2026-10-01"):
    return c.post(f"/excel/{form.code}/", {"file": SimpleUploadedFile("台账.xlsx", data), "park": park.pk,
                                           "period": period})


def test_a_clerk_downloads_checks_and_confirms(world, park):  # noqa: F811
    form, people = world
    clerk = portal(people["clerk"])
    listing = clerk.get("/excel/").content.decode()
    assert form.code in listing and "tp02-secret" not in listing  # another park's form is not offered
    r = clerk.get(f"/excel/{form.code}/template.xlsx")
    assert r.status_code == 200 and load_workbook(io.BytesIO(r.content)).sheetnames[0] == "基本信息"
    r = upload(clerk, form, fill(form, {**GOOD, "amount": -5}, fuels=[["煤", "abc", 1]]), park)
    page = r.content.decode()
    assert r.status_code == 400 and 'id="import-report"' in page
    assert "基本信息" in page and ">D2<" in page and "数值 -5 小于下限 0。" in page  # the message in Chinese
    assert "燃料" in page and ">B4<" in page and "E8102" in page and not Submission.objects.exists()
    r = upload(clerk, form, fill(form, GOOD), park)
    page = r.content.decode()
    assert r.status_code == 200 and 'id="confirm-form"' in page and "120.5" in page
    token = page.split('name="token" value="')[1].split('"')[0]
    assert not Submission.objects.exists()  # checking stores nothing
    r = clerk.post(f"/excel/{form.code}/", {"confirm": "draft", "token": token, "park": park.pk,
                                            "period": "2026-10-01"})
    assert r.status_code == 302
    sub = Submission.objects.get()
    assert sub.state == "draft" and sub.values["amount"] == 120.5
    # the token was used up; another user's token (or none) is refused without storing anything
    r = clerk.post(f"/excel/{form.code}/", {"confirm": "submit", "token": token, "park": park.pk,
                                            "period": "2026-10-01"})
    assert r.status_code == 302 and Submission.objects.get().state == "draft"


def test_rights_and_hostile_posts(world, park, other_park):  # noqa: F811
    form, people = world
    auditor, stranger, clerk = portal(people["auditor"]), portal(people["stranger"]), portal(people["clerk"])
    assert stranger.get(f"/excel/{form.code}/").status_code == 404  # another park's form reads like none
    assert stranger.get(f"/excel/{form.code}/template.xlsx").status_code == 404
    assert clerk.get("/excel/tp02-secret/").status_code == 404
    page = auditor.get(f"/excel/{form.code}/").content.decode()
    assert 'id="import-form"' not in page  # may read the form, may not enter
    assert upload(auditor, form, fill(form, GOOD), park).status_code == 403
    assert clerk.get("/exports/").status_code == 403  # a clerk holds no export right
    for data in (b"\x00" * 100, b"PK\x03\x04junk", "名称\n".encode("gbk")):
        r = upload(clerk, form, data, park)
        assert r.status_code == 400 and "E8401" in r.content.decode()
    r = upload(clerk, form, fill(form, GOOD), other_park)  # a park the clerk may not enter: not a choice
    assert r.status_code == 200 and 'id="confirm-form"' not in r.content.decode()
    r = clerk.post(f"/excel/{form.code}/", {"confirm": "draft", "token": "no such token\x00", "park": "1e9",
                                            "period": "\x00"})
    assert r.status_code == 302 and not Submission.objects.exists()


def test_an_auditor_exports_and_the_manifest_verifies(world, park, tmp_path):  # noqa: F811
    form, people = world
    auditor = portal(people["auditor"])
    assert 'href="/exports/"' in auditor.get("/").content.decode()
    r = auditor.post("/exports/", {"kind": "history", "file_format": "xml", "park": park.pk,
                                   "since": "2020-01-01T00:00"})
    assert r.status_code == 200 and r["Content-Type"] == "application/zip"
    path = tmp_path / "history.zip"
    path.write_bytes(b"".join(r.streaming_content))
    out = io.StringIO()
    call_command("verify_export", str(path), stdout=out)
    assert out.getvalue().startswith("OK") and "audit trail" in out.getvalue()
    with zipfile.ZipFile(path) as z:
        assert b'<export kind="history">' in z.read([n for n in z.namelist() if n.endswith(".xml")][0])
    assert AuditEntry.objects.filter(action="export.history", actor=people["auditor"]).count() == 1
    r = auditor.post("/exports/", {"kind": "nothing", "file_format": "pdf", "park": "x"})
    assert r.status_code == 400
    r = auditor.post("/exports/", {"kind": "submissions", "file_format": "csv", "since": "2030-01-01T00:00",
                                   "until": "2020-01-01T00:00"})
    assert r.status_code == 200  # an empty range is an empty export, not an error
