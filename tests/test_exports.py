"""Exports with a SHA-256 manifest (apps/core/exports.py, apps/entry/exports.py, R-7.3.4): every format round-
trips and verifies, a tampered archive fails ``manage.py verify_export``, formula injection is neutralised in
CSV and XLSX, another park's rows never appear, hostile filters are coded refusals; exports are audited."""

import csv
import io
import json
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from lxml import etree
from openpyxl import load_workbook
from rest_framework.test import APIClient

from apps.accounts.services import set_membership
from apps.core.models import AuditEntry
from apps.corrections.services import apply_correction, approve_correction, request_correction
from apps.entry.exports import export
from apps.ingestion.services import ingest_readings
from tests.conftest import add_source

# a correction's reason is stripped by its service, so the tab and CR starts are held by test_neutralise
HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "=cmd|' /C calc'!A0", "+1+1", "-2", "@SUM(A1)"]


@pytest.fixture
def world(park, other_park):
    users = get_user_model().objects
    people = {}
    for p in (park, other_park):
        src = add_source(p, f"{p.code}-EM-0001", ["CS010201"])
        ingest_readings([{"sourceId": src.source_id, "timestamp": f"2026-11-23 10:0{i}:00", "value": i + 1}
                         for i in range(3)], channel="test", actor="t")
        clerk = users.create_user(f"clerk-{p.code}")
        set_membership(actor="t", user=clerk, park=p, role="admin")
        for reason in HOSTILE:
            request_correction(actor=clerk, source_id=src.source_id, start="2026-11-23 10:00:00",
                               end="2026-11-23 10:00:00", new_value=5, reason=f"{reason} {p.code}")
        people[p.code] = clerk
    approver = users.create_user("approver")
    set_membership(actor="t", user=approver, park=park, role="approver")
    first = park.code
    c = request_correction(actor=people[first], source_id=f"{first}-EM-0001", start="2026-11-23 10:01:00",
                           end="2026-11-23 10:01:00", new_value=42, reason="meter replaced")
    approve_correction(actor=approver, correction_id=c.pk)
    apply_correction(c.pk, actor="test")
    auditor = users.create_user("auditor")
    set_membership(actor="t", user=auditor, park=park, role="auditor")
    return auditor


def _data(result):
    result.file.seek(0)
    with zipfile.ZipFile(result.file) as z:
        name = result.manifest["files"][0]["name"]
        return z.read(name)


def _table(fmt, raw) -> list[dict]:
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    if fmt == "xlsx":
        rows = list(load_workbook(io.BytesIO(raw), read_only=True).active.iter_rows(values_only=True))
        return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    if fmt == "json":
        return json.loads(raw)["rows"]
    root = etree.fromstring(raw)
    return [{c.tag: (None if c.get("nil") else c.text or "") for c in row} for row in root]


def _save(result, tmp_path):
    path = tmp_path / result.name
    result.file.seek(0)
    path.write_bytes(result.file.read())
    return path


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json", "xml"])
def test_each_format_round_trips_verifies_and_neutralises_formulas(world, park, fmt, tmp_path):
    result = export(world, "corrections", fmt, {})
    rows = _table(fmt, _data(result))
    assert result.manifest["rows"] == len(rows) == len(HOSTILE) + 1
    assert {r["park"] for r in rows} == {park.code}  # another park's corrections are never exported
    reasons = {r["reason"] for r in rows}
    raw = {f"{h} {park.code}" for h in HOSTILE} | {"meter replaced"}
    if fmt in ("csv", "xlsx"):  # a spreadsheet shows each as text, never runs it
        assert reasons == {("'" + r) if r[0] in "=+-@" else r for r in raw}
    else:  # the data formats carry the text as it is
        assert reasons == raw
    out = io.StringIO()
    call_command("verify_export", str(_save(result, tmp_path)), stdout=out)
    assert out.getvalue().startswith("OK")


@pytest.mark.django_db
def test_readings_carry_the_effective_value_beside_the_raw_one(world, park):
    rows = _table("json", _data(export(world, "readings", "json", {})))
    assert {r["sourceId"] for r in rows} == {f"{park.code}-EM-0001"}
    revised = [r for r in rows if r["revision"] is not None]
    assert len(revised) == 1 and revised[0]["value"] == 42 and revised[0]["rawValue"] == 2
    assert AuditEntry.objects.filter(action="export.readings", actor=world).exists()


@pytest.mark.django_db
def test_an_auditor_exports_the_history_and_the_manifest_verifies(world, park, tmp_path):
    client = APIClient()
    client.force_login(world)
    r = client.get("/api/v1/exports/history", {"format": "xlsx"})
    assert r.status_code == 200 and r["Content-Type"] == "application/zip"
    path = tmp_path / "history.zip"
    path.write_bytes(b"".join(r.streaming_content))
    call_command("verify_export", str(path), stdout=io.StringIO())
    with zipfile.ZipFile(path) as z:
        manifest = json.loads(z.read("manifest.json"))
        rows = _table("xlsx", z.read(manifest["files"][0]["name"]))
    assert manifest["exportedBy"] == "auditor" and manifest["kind"] == "history" and manifest["codeVersion"]
    assert rows and {row["park_code"] for row in rows} == {park.code}  # its own park's trail only
    assert any(row["action"] == "correction.applied" or "correction" in (row["action"] or "") for row in rows)
    assert AuditEntry.objects.filter(action="export.history", actor=world).count() == 1

    # the same archive with one byte of the data changed, its manifest kept: verify_export refuses it
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    name = manifest["files"][0]["name"]
    members[name] = members[name][:-1] + bytes([members[name][-1] ^ 1])
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(CommandError, match="SHA-256"):
        call_command("verify_export", str(tampered))
    extra = tmp_path / "extra.zip"
    with zipfile.ZipFile(extra, "w") as z:
        for n, data in {**members, name: z.fp and json.loads(json.dumps(None)) or b""}.items():
            z.writestr(n, data)
    with pytest.raises(CommandError, match="size"):
        call_command("verify_export", str(extra))
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(CommandError, match="not an export"):
        call_command("verify_export", str(tmp_path / "junk.zip"))


@pytest.mark.django_db
@pytest.mark.parametrize("url,code", [
    ("/api/v1/exports/history?who=%00", "E1009"),
    ("/api/v1/exports/history?who=%FF%FE", "E1009"),
    ("/api/v1/exports/corrections?since=yesterday", "E1009"),
    ("/api/v1/exports/corrections?park=TP02", "E1009"),  # another park reads like an unknown one
    ("/api/v1/exports/readings?sourceId=TP02-EM-0001", "E1009"),
    ("/api/v1/exports/readings?format=pdf", "E1009"),
    ("/api/v1/exports/nothing", "E1010"),
    ("/api/v1/exports/revisions?correction=1e400", "E1009"),
])
def test_hostile_filters_are_coded_refusals(world, url, code):
    client = APIClient()
    client.force_login(world)
    r = client.get(url)
    assert r.status_code in (400, 404) and r.json()["code"] == code, r.content[:300]
