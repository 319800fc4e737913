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



def _members(path) -> dict:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _rezip(path, members: dict):
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    return path


def _refused(path, *args) -> str:
    with pytest.raises(CommandError) as exc:
        call_command("verify_export", str(path), *args)
    assert exc.value.returncode == 1
    return str(exc.value)


@pytest.mark.django_db
def test_verify_export_names_each_kind_of_tampering(world, tmp_path):
    good = _save(export(world, "corrections", "csv", {}), tmp_path)
    members = _members(good)
    manifest = json.loads(members["manifest.json"])
    name = manifest["files"][0]["name"]
    out = io.StringIO()
    call_command("verify_export", str(good), stdout=out)
    assert "audit trail (entry #" in out.getvalue()

    flipped = {**members, name: members[name].replace(b"meter replaced", b"meter replacex")}
    assert "was altered: SHA-256" in _refused(_rezip(tmp_path / "altered.zip", flipped))
    shorter = {**members, name: members[name][:-3]}
    assert "was altered: size" in _refused(_rezip(tmp_path / "short.zip", shorter))
    missing = {n: d for n, d in members.items() if n != name}
    assert "missing from the archive" in _refused(_rezip(tmp_path / "missing.zip", missing))
    extra = {**members, "notes.txt": b"added later"}
    assert "files not in the manifest: notes.txt" in _refused(_rezip(tmp_path / "extra.zip", extra))
    no_manifest = {name: members[name]}
    assert "no manifest.json" in _refused(_rezip(tmp_path / "bare.zip", no_manifest))
    broken = {**members, "manifest.json": b"{\x00"}
    assert "cannot be read" in _refused(_rezip(tmp_path / "broken.zip", broken))

    # data and manifest altered together (the file's hash rewritten to match): the files agree with the
    # manifest, but the manifest is not the one the audit trail recorded
    forged_data = flipped[name]
    import hashlib

    forged = {**manifest, "files": [{"name": name, "sha256": hashlib.sha256(forged_data).hexdigest(),
                                     "size": len(forged_data)}]}
    forgery = {name: forged_data, "manifest.json": json.dumps(forged, ensure_ascii=False, indent=2).encode()}
    path = _rezip(tmp_path / "forged.zip", forgery)
    assert "manifest.json was altered" in _refused(path)
    out = io.StringIO()
    call_command("verify_export", str(path), "--offline", stdout=out)  # the files alone agree: says so
    assert out.getvalue().startswith("OK") and "not checked against the audit trail" in out.getvalue()
    unknown = {**forgery, "manifest.json": json.dumps({**forged, "exportId": "0" * 36}).encode()}
    assert "not on this platform's audit trail" in _refused(_rezip(tmp_path / "unknown.zip", unknown))
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    assert "not an export" in _refused(tmp_path / "junk.zip")
    assert "no such file" in _refused(tmp_path / "nothing-here.zip")


def test_neutralise_covers_every_formula_start():
    from apps.core.exports import neutralise

    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "=cmd|' /C calc'!A0"):
        assert neutralise(text) == "'" + text
    assert neutralise("1-2") == "1-2" and neutralise(-2) == -2 and neutralise(None) is None


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
