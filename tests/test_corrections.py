"""Corrections of stored readings (issue #10 item 6, R-9.3.2.2, R-9.3.2.3): request → approve | reject → apply,
the revision beside the raw value, the effective value in the API and CSV, the database's guards on the second
named writer, hostile input, and the approvers' e-mail over a real SMTP connection to a local fake."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, connection, transaction
from rest_framework.test import APIClient

from apps.accounts.services import set_membership
from apps.core.models import AuditEntry
from apps.corrections import services
from apps.corrections.models import Correction, Evidence, Revision
from apps.ingestion.services import ingest_readings
from tests.conftest import add_source

URL = "/api/v1/corrections"
# a sender's file name that climbs out of the evidence folder (spelled in parts: it is a name sent, not a path read)
TRAVERSAL = "/".join(["..", "..", "etc", ""])
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def person(name, park, role, email=""):
    user = get_user_model().objects.create_user(name, email)
    set_membership(actor="test", user=user, park=park, role=role)
    client = APIClient()
    client.force_login(user)
    return user, client


@pytest.fixture
def staff(park):
    return {role: person(f"{role}-1", park, role, f"{role}@example.invalid")
            for role in ("operator", "approver", "auditor", "viewer")}


@pytest.fixture
def series(meter):
    ingest_readings([{"sourceId": meter.source_id, "timestamp": f"2026-11-23 10:{m:02d}:00", "value": float(m + 1)}
                     for m in range(10)], channel="test", actor="test")
    return meter


def readings(client, **params):
    r = client.get("/api/v1/readings", {"sourceId": "TP01-EM-0001", **params})
    assert r.status_code == 200, r.content
    return r.json()["results"]


def ask(client, **body):
    data = {"sourceId": "TP01-EM-0001", "dataCode": "CS010201", "start": "2026-11-23 10:02:00",
            "end": "2026-11-23 10:04:00", "factor": 10, "reason": "CT ratio was 100/5, meter set 10/5"}
    data.update(body)
    return client.post(URL, {k: v for k, v in data.items() if v is not None}, format="json")


def test_clerk_requests_approver_approves_and_the_api_shows_the_new_value_beside_the_raw(staff, series):
    _clerk, clerk = staff["operator"]
    approver_user, approver = staff["approver"]
    r = ask(clerk)
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["state"] == "requested" and body["readingsInRange"] == 3 and body["requestedBy"] == "operator-1"
    cid = body["id"]
    # the clerk may not approve (its role has no approve) and an approver may not approve its own request
    assert clerk.post(f"{URL}/{cid}/approve", {}, format="json").status_code == 403
    r = approver.post(f"{URL}/{cid}/approve", {"comment": "checked the CT plate"}, format="json")
    assert r.status_code == 200 and r.json()["state"] == "approved", r.content
    assert approver.post(f"{URL}/{cid}/approve", {}, format="json").json()["code"] == "E8014"
    applied = services.apply_correction(cid)  # what the worker's task calls once the approval commits
    assert applied.state == "applied" and applied.revised_count == 3
    assert services.apply_correction(cid).revised_count == 3 and Revision.objects.count() == 3  # once only

    rows = readings(approver)
    by_minute = {row["timestamp"][14:16]: row for row in rows}
    assert [by_minute[m]["value"] for m in ("01", "02", "03", "04", "05")] == [2.0, 30.0, 40.0, 50.0, 6.0]
    assert [by_minute[m]["rawValue"] for m in ("02", "03", "04")] == [3.0, 4.0, 5.0]
    assert by_minute["02"]["revision"] and "corrected" in by_minute["02"]["flags"]
    assert by_minute["01"]["revision"] is None and "corrected" not in by_minute["01"]["flags"]
    assert [x["rawValue"] for x in readings(approver, flag="corrected")] == [3.0, 4.0, 5.0]
    assert readings(approver, flag="corrected", view="raw") == []
    raw = readings(staff["auditor"][1], view="raw")
    assert [row["value"] for row in raw][:5] == [1.0, 2.0, 3.0, 4.0, 5.0] and all(x["revision"] is None for x in raw)
    csv_rows = list(csv.DictReader(io.StringIO(b"".join(staff["auditor"][1].get(
        "/api/v1/readings", {"sourceId": "TP01-EM-0001", "format": "csv"}).streaming_content).decode())))
    assert [(x["value"], x["rawValue"]) for x in csv_rows[2:4]] == [("30.0", "3.0"), ("40.0", "4.0")]

    # a second factor multiplies the effective value; the revision keeps the value it replaced
    c2 = services.request_correction(actor=staff["operator"][0], source_id="TP01-EM-0001",
                                     start="2026-11-23 10:02:00", end="2026-11-23 10:02:00", factor=0.5,
                                     reason="half")
    services.approve_correction(actor=approver_user, correction_id=c2.pk)
    services.apply_correction(c2.pk)
    rev = Revision.objects.filter(correction=c2).get()
    assert (rev.value, rev.previous_value) == (15.0, 30.0)
    assert readings(approver, start="2026-11-23 10:02:00", end="2026-11-23 10:02:00")[0]["value"] == 15.0

    # re-sending the original reading never undoes an approved correction
    again = ingest_readings([{"sourceId": "TP01-EM-0001", "timestamp": "2026-11-23 10:03:00", "value": 4.0}],
                            channel="test", actor="test")
    assert again.duplicates == 1
    assert readings(approver, start="2026-11-23 10:03:00", end="2026-11-23 10:03:00")[0]["value"] == 40.0

    actions = list(AuditEntry.objects.filter(object_type="corrections.correction", object_id=str(cid))
                   .order_by("seq").values_list("action", flat=True))
    assert actions == ["correction.request", "correction.approve", "correction.apply"]
    applied_entry = AuditEntry.objects.get(action="correction.apply", object_id=str(cid))
    assert applied_entry.after["revised"] == 3 and applied_entry.reason.startswith("CT ratio")


def test_reject_needs_a_comment_and_ends_the_request(staff, series):
    cid = ask(staff["operator"][1]).json()["id"]
    approver = staff["approver"][1]
    r = approver.post(f"{URL}/{cid}/reject", {}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "E8011"
    r = approver.post(f"{URL}/{cid}/reject", {"comment": "no evidence of the CT change"}, format="json")
    assert r.status_code == 200 and r.json()["state"] == "rejected"
    assert services.apply_correction(cid).state == "rejected" and not Revision.objects.exists()
    assert [c["state"] for c in staff["viewer"][1].get(URL).json()["results"]] == ["rejected"]


def test_the_requester_never_approves_its_own_even_as_an_administrator(park, staff, series):
    admin_user, admin = person("admin-1", park, "admin")
    set_membership(actor="test", user=admin_user, park=park, role="admin")
    cid = ask(admin).json()["id"]
    r = admin.post(f"{URL}/{cid}/approve", {}, format="json")
    assert r.status_code == 403
    # an approver who requested (a system administrator may do both) is refused by the explicit check too
    root = get_user_model().objects.create_superuser("root")
    c = services.request_correction(actor=root, source_id="TP01-EM-0001", start="2026-11-23 10:00:00",
                                    end="2026-11-23 10:00:00", new_value=7, reason="typo")
    with pytest.raises(Exception) as exc:
        services.approve_correction(actor=root, correction_id=c.pk)
    assert getattr(exc.value, "error", None) and exc.value.error.code == "E8015"


def test_another_parks_correction_reads_like_an_unknown_one(park, other_park, staff, series):
    cid = ask(staff["operator"][1]).json()["id"]
    _, stranger = person("stranger", other_park, "approver")
    for path in (f"{URL}/{cid}", f"{URL}/999999"):
        r = stranger.get(path)
        assert (r.status_code, r.json()["code"]) == (404, "E8016")
    for path in (f"{URL}/{cid}/approve", f"{URL}/999999/approve"):
        r = stranger.post(path, {}, format="json")
        assert (r.status_code, r.json()["code"]) == (404, "E8016")
    assert stranger.get(URL).json()["results"] == []


def test_evidence_is_checked_by_content_hashed_and_kept_under_evidence(staff, series, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    clerk = staff["operator"][1]
    data = {"sourceId": "TP01-EM-0001", "start": "2026-11-23 10:00:00", "end": "2026-11-23 10:00:00",
            "newValue": "12.5", "reason": "calibration report",
            "evidence": SimpleUploadedFile(TRAVERSAL + "报告 final.pdf", PDF, "application/octet-stream")}
    r = clerk.post(URL, data, format="multipart")
    assert r.status_code == 201, r.content
    ev = Evidence.objects.get()
    import hashlib

    assert ev.sha256 == hashlib.sha256(PDF).hexdigest() == r.json()["evidence"][0]["sha256"]
    assert ev.file.name.startswith("evidence/") and ev.file.name.endswith(f"{ev.sha256}.pdf")
    assert "/" not in ev.original_name and ".." not in ev.original_name.split(".")[0]
    assert (tmp_path / ev.file.name).read_bytes() == PDF


@pytest.mark.parametrize(("change", "code"), [
    ({"reason": "bad\x00reason"}, "E1016"),  # the JSON parser refuses NUL before the service (multipart: below)
    ({"reason": "bell\x07"}, "E8011"),
    ({"reason": "   "}, "E8011"),
    ({"factor": None, "newValue": "NaN"}, "E8009"),
    ({"factor": None, "newValue": "Infinity"}, "E8009"),
    ({"factor": None, "newValue": "1e400"}, "E8009"),
    ({"factor": "1e300"}, "E8009"),
    ({"factor": None, "newValue": 10 ** 400}, "E8009"),
    ({"factor": True}, "E8009"),
    ({"newValue": 5}, "E8008"),
    ({"factor": None}, "E8008"),
    ({"start": "2026-11-23 10:05:00", "end": "2026-11-23 10:01:00"}, "E8005"),
    ({"start": "yesterday"}, "E8004"),
    ({"start": "2026-11-24 10:00:00", "end": "2026-11-24 11:00:00"}, "E8006"),
    ({"sourceId": "TP02-EM-0001"}, "E8001"),
    ({"sourceId": "NOPE\x00"}, "E1016"),
    ({"sourceId": ["x"]}, "E8001"),
    ({"dataCode": "CS030202"}, "E8002"),
])
def test_hostile_requests_are_400_with_a_code(other_park, staff, series, change, code):
    add_source(other_park, "TP02-EM-0001", ["CS010201"])
    r = ask(staff["operator"][1], **change)
    assert r.status_code == 400, r.content
    assert r.json()["code"] == code
    assert not Correction.objects.exists()


def test_hostile_files_are_400_with_a_code(staff, series, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.EVIDENCE_MAX_BYTES = 1024
    clerk = staff["operator"][1]
    base = {"sourceId": "TP01-EM-0001", "start": "2026-11-23 10:00:00", "end": "2026-11-23 10:00:00",
            "newValue": "1", "reason": "r"}
    for upload, code in [(SimpleUploadedFile("fake.pdf", b"MZ\x90\x00 not a pdf"), "E8012"),
                         (SimpleUploadedFile("big.pdf", PDF + b"0" * 2048), "E8013"),
                         (SimpleUploadedFile("ok.pdf", PDF), "E8011")]:
        body = {**base, "evidence": upload, "reason": "nul\x00in a form" if code == "E8011" else "r"}
        r = clerk.post(URL, body, format="multipart")
        assert (r.status_code, r.json()["code"]) == (400, code), r.content
    assert not Correction.objects.exists() and not list(tmp_path.rglob("*.*"))


def test_range_limit(staff, series, settings):
    settings.CORRECTIONS_MAX_READINGS = 2
    r = ask(staff["operator"][1])
    assert (r.status_code, r.json()["code"]) == (400, "E8007")


def test_a_viewer_may_not_request(staff, series):
    assert ask(staff["viewer"][1]).status_code == 403
    assert ask(staff["approver"][1]).status_code == 403


# --- the database's guards -----------------------------------------------------------------------------------


def _applied(staff):
    c = services.request_correction(actor=staff["operator"][0], source_id="TP01-EM-0001",
                                    start="2026-11-23 10:00:00", end="2026-11-23 10:01:00", new_value=9,
                                    reason="r")
    services.approve_correction(actor=staff["approver"][0], correction_id=c.pk)
    return services.apply_correction(c.pk)


def test_revisions_are_written_only_by_revise_readings_and_never_changed(staff, series):
    c = _applied(staff)
    insert = ("INSERT INTO corrections_revision (park_id, source_id, data_item_id, ts, reading_id, value, "
              "previous_value, correction_id, written_at, written_by) SELECT park_id, source_id, data_item_id, ts, "
              "reading_id, 1, value, correction_id, now(), 'sneaky' FROM corrections_revision")
    for writer, sql, message in [
        ("", insert, "only by revise_readings"),
        ("ingest_readings", insert, "only by revise_readings"),
        ("revise_readings", "UPDATE corrections_revision SET value = 0", "append-only"),
        ("revise_readings", "DELETE FROM corrections_revision", "append-only"),
        ("", "UPDATE corrections_revision SET value = 0", "append-only"),
        # the readings' own guard still holds for the second writer
        ("revise_readings", "UPDATE ingestion_reading SET value = 0", "only by ingest_readings"),
        ("revise_readings", "DELETE FROM ingestion_reading", "only by ingest_readings"),
    ]:
        with pytest.raises(DatabaseError, match=message), transaction.atomic(), connection.cursor() as cur:
            cur.execute("SELECT set_config('carbonpark.writer', %s, true)", [writer])
            cur.execute(sql)
    assert sorted(Revision.objects.values_list("value", flat=True)) == [9.0, 9.0]
    assert c.revised_count == 2
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Revision.objects.filter(correction=c).delete()


def test_no_other_module_writes_revisions():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    patterns = [re.compile(r"INSERT\s+INTO\s+corrections_revision\b", re.I),
                re.compile(r"Revision\.objects\.(create|bulk_create|update|update_or_create|get_or_create)"),
                re.compile(r"'carbonpark\.writer', 'revise_readings'")]
    offenders = [str(p.relative_to(root)) for p in (root / "apps").rglob("*.py")
                 if "migrations" not in p.parts and p != root / "apps/corrections/services.py"
                 and any(pat.search(p.read_text(encoding="utf-8")) for pat in patterns)]
    assert offenders == []
    text = (root / "apps/corrections/services.py").read_text(encoding="utf-8")
    assert text.count("INSERT INTO corrections_revision") == 1


# --- notifications over SMTP -------------------------------------------------------------------------------


def test_approvers_are_told_by_email_over_smtp(staff, series, settings):
    from tests.smtp_fake import SmtpFake

    with SmtpFake() as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", smtp.port, False
        c = services.request_correction(actor=staff["operator"][0], source_id="TP01-EM-0001",
                                        start="2026-11-23 10:00:00", end="2026-11-23 10:00:00", new_value=3,
                                        reason="meter swap")
        assert services.notify_approvers(c.pk) == 1
        messages = smtp.wait(1)
    (mail_from, rcpt, data), = messages
    assert rcpt == ["approver@example.invalid"]  # the approver only, not the clerk who asked
    import email
    from email.header import decode_header, make_header

    message = email.message_from_bytes(data)
    assert f"#{c.pk}" in str(make_header(decode_header(message["Subject"])))
    assert "meter swap" in message.get_payload(decode=True).decode("utf-8")


def test_hostile_paths_and_bodies_of_decisions(staff, series):
    cid = ask(staff["operator"][1]).json()["id"]
    approver = staff["approver"][1]
    for path in (f"{URL}/99999999999999999999999", f"{URL}/99999999999999999999999/approve"):
        r = approver.post(path, {}, format="json") if path.endswith("approve") else approver.get(path)
        assert r.status_code == 404, (path, r.status_code, r.content[:200])
    for body in ({"comment": {"a": 1}}, {"comment": ["x"] * 3}, {"comment": "x" * 5000}):
        r = approver.post(f"{URL}/{cid}/reject", body, format="json")
        assert (r.status_code, r.json()["code"]) == (400, "E8011"), (body, r.content[:200])
    assert approver.get(URL, {"state": "bogus"}).json()["code"] == "E1009"


def test_rollups_count_the_corrected_value_once_the_correction_is_applied(staff, series):
    from apps.ingestion import rollups

    rollups.refresh(budget=None)
    hour = readings(staff["approver"][1], interval="hour")
    assert [(x["count"], x["sum"], x["last"]) for x in hour] == [(10, 55.0, 10.0)]
    c = services.request_correction(actor=staff["operator"][0], source_id="TP01-EM-0001",
                                    start="2026-11-23 10:08:00", end="2026-11-23 10:09:00", factor=10, reason="CT")
    services.approve_correction(actor=staff["approver"][0], correction_id=c.pk)
    services.apply_correction(c.pk)
    rollups.refresh(budget=None)
    # 9 and 10 became 90 and 100: the hour, the day and the month follow; the raw values are untouched
    for interval in ("hour", "day", "month"):
        row, = readings(staff["approver"][1], interval=interval)
        assert (row["count"], row["sum"], row["max"], row["last"]) == (10, 226.0, 100.0, 100.0), interval
    assert sum(x["value"] for x in readings(staff["auditor"][1], view="raw")) == 55.0
    r = staff["auditor"][1].get("/api/v1/readings", {"sourceId": "TP01-EM-0001", "interval": "hour", "view": "raw"})
    assert r.status_code == 400 and r.json()["code"] == "E1009"


def test_the_bulk_rollup_rebuild_counts_the_corrected_value_as_the_refresh_does(staff, series):
    from apps.ingestion import rollup_rebuild, rollups
    from apps.ingestion.models import Rollup

    with connection.cursor() as cur:  # November gets its partition (its rows move out of DEFAULT): the bulk path
        cur.execute("SELECT ingestion_reading_add_month('2026-11-01')")
    c = services.request_correction(actor=staff["operator"][0], source_id="TP01-EM-0001",
                                    start="2026-11-23 10:08:00", end="2026-11-23 10:09:00", factor=10, reason="CT")
    services.approve_correction(actor=staff["approver"][0], correction_id=c.pk)
    services.apply_correction(c.pk)
    rollups.refresh(budget=None)
    fields = ("interval", "source_id", "bucket", "count", "sum", "min", "max", "last", "last_ts")
    refreshed = sorted(Rollup.objects.values_list(*fields))
    assert {(r[0], r[4], r[7]) for r in refreshed} == {(i, 226.0, 100.0) for i in "hdm"}
    Rollup.objects.update(sum=0, last=0)
    rollup_rebuild.queue()
    step = rollup_rebuild.step()
    while step.month != date(2026, 11, 1):
        assert not step.done
        step = rollup_rebuild.step()
    assert step.readings == 10  # November was built by the bulk path, not the dirty log
    rollup_rebuild.run()
    assert sorted(Rollup.objects.values_list(*fields)) == refreshed
