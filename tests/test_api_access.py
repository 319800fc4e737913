"""The API permission matrix, generated: every operation under /api/v1/ found in the URL configuration, each
with the rule its view declares (``access_rules``), tried by every role in its own park and in another park;
allowed exactly when apps.accounts.access says so. Plus the published matrix (docs/roles.md, GET /api/v1/roles)
and query-count guards on the lists."""

from __future__ import annotations

import base64
import io
import itertools
import zipfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.accounts import access, matrix
from apps.accounts.access import Action
from apps.accounts.authentication import TokenPrincipal
from apps.accounts.models import Park
from apps.accounts.services import issue_token, set_membership
from apps.catalog.models import DataItem, Enumeration
from apps.catalog.services import save_catalog_class, save_data_item
from apps.corrections.models import Correction
from apps.corrections.services import request_correction
from apps.entry.excel import template as excel_template
from apps.entry.models import Submission
from apps.entry.services import create_form, publish
from apps.entry.services.submissions import save_draft, submit
from apps.ingestion import rollups
from apps.ingestion.services import ingest_readings
from apps.integrations.models import Platform
from apps.quality.registers.derive import derive_consumption
from apps.quality.registers.services import save_register_setting
from apps.sources.services.commands import create_command
from apps.uploads.models import Upload
from apps.uploads.services import create_upload
from tests.conftest import add_source, make_uscc
from tests.open_platform import new_platform
from tests.test_api_contract import assert_matches, openapi  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parent.parent
MEMBER_ROLES = ["viewer", "operator", "approver", "auditor", "admin"]
# "admin/viewer": admin in the own park, viewer in the other one (what it may see there it may not change)
SMALL_FORM = {"format": 1, "period": "month", "sections": [
    {"key": "main", "title": {"zh": "主要"}, "fields": [{"key": "amount", "item": "CS010101"}]}]}
PRINCIPALS = [*MEMBER_ROLES, "admin/viewer", "auditor/operator", "integrator", "device", "system", "no-role",
              "anonymous"]


@dataclass
class World:
    parks: dict  # "own" / "other" -> Park
    sources: dict  # Park.pk -> DataSource
    items: dict  # Park.pk -> the park's own DataItem
    classes: dict  # Park.pk -> the park's own CatalogClass
    enumeration: Enumeration
    codes: itertools.count
    # Park.pk -> {"approve": Correction, "reject": Correction}, asked by another member
    corrections: dict = field(default_factory=dict)
    forms: dict = field(default_factory=dict)  # Park.pk -> the park's own published FormVersion
    # Park.pk -> {"submit", "approve", "return", "restore", "attach": Submission}, made by another member
    submissions: dict = field(default_factory=dict)
    uploads: dict = field(default_factory=dict)  # Park.pk -> {"main", "report": Upload} (tus, receiving)
    platforms: dict = field(default_factory=dict)  # Park.pk -> a registered third-party Platform


def make_world(park, other_park) -> World:
    w = World({"own": park, "other": other_park}, {}, {}, {}, Enumeration.objects.get(code="fuel_type"),
              itertools.count(50))
    for n, p in enumerate((park, other_park), 1):
        w.sources[p.pk] = add_source(p, f"{p.code}-EM-0001", ["CS010201"])
        # in use since before the look-back: its days without readings are overdue (GET /api/v1/overdue)
        type(w.sources[p.pk]).objects.filter(pk=w.sources[p.pk].pk).update(
            created_at=w.sources[p.pk].created_at - timedelta(days=120))
        w.items[p.pk] = save_data_item(actor="t", code=f"CS01029{n}", park=p, name_zh="自定义", data_type="number",
                                       unit="kWh", methods=["realtime"])
        w.classes[p.pk] = save_catalog_class(actor="t", code=f"CS019{n}", name_zh="自定义", park=p)
        ingest_readings([{"sourceId": w.sources[p.pk].source_id, "timestamp": "2026-11-23 10:00:00", "value": 1}],
                        channel="test", actor="t")
        # its energy item read as a register, with one derived interval (GET /api/v1/consumption)
        save_register_setting(actor="t", source=w.sources[p.pk], data_item=DataItem.objects.get(code="CS010201"))
        ingest_readings([{"sourceId": w.sources[p.pk].source_id, "timestamp": "2026-11-23 09:55:00", "value": 0.5}],
                        channel="test", actor="t")
        create_command(actor="t", source=w.sources[p.pk], type="poll_now")
        requester = get_user_model().objects.create_user(f"requester-{p.code}")
        set_membership(actor="t", user=requester, park=p, role="admin")
        w.corrections[p.pk] = {
            d: request_correction(actor=requester, source_id=w.sources[p.pk].source_id, start="2026-11-23 10:00:00",
                                  end="2026-11-23 10:00:00", new_value=2, reason=f"to {d}")
            for d in ("approve", "reject")}
        system = access.SystemPrincipal("test")
        form = create_form(actor=system, park=p, code=f"{p.code.lower()}-ledger", name_zh="台账",
                           definition=SMALL_FORM)
        w.forms[p.pk] = publish(actor=system, form=form)
        subs = {}
        for month, name in enumerate(("submit", "approve", "return", "restore", "attach"), 1):
            subs[name], _ = save_draft(actor=requester, form=form, park=p, period=f"2025-{month:02d}-01",
                                       values={"amount": month})
            if name in ("approve", "return"):
                submit(actor=requester, submission_id=subs[name].pk)
            if name == "restore":
                save_draft(actor=requester, form=form, park=p, period=f"2025-{month:02d}-01", values={"amount": 9})
        w.submissions[p.pk] = subs
        w.uploads[p.pk] = {k: create_upload(actor=system, length=1000, metadata={
            "filename": f"{p.code}_CS_202611_20261201083000_00{i}.csv", "park": p.code})
            for i, k in enumerate(("main", "report"), 1)}
        w.platforms[p.pk], _secret = new_platform(p, name=f"hub-{p.code}")
    rollups.refresh(budget=None)
    derive_consumption()
    from datetime import date

    from apps.quality.indicators.compute import refresh as refresh_indicators

    refresh_indicators(months=[date(2026, 11, 1)])  # GET /api/v1/quality/indicators
    return w


def sign_in(role: str, park, other_park) -> tuple[APIClient, object]:
    """A client acting as ``role`` in ``park`` (members: a session; tokens: the Token header) and the principal
    the seam is asked about; "a/b" is role a in ``park`` and role b in ``other_park``."""
    client = APIClient()
    if role == "anonymous":
        return client, None
    if role in ("integrator", "device"):
        token, key = issue_token(actor="t", park=park, name=role, role=role)
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client, TokenPrincipal(token)
    users = get_user_model().objects
    user = users.create_superuser(role) if role == "system" else users.create_user(role)
    here, _, there = role.partition("/")
    if here in MEMBER_ROLES:
        set_membership(actor="t", user=user, park=park, role=here)
    if there:
        set_membership(actor="t", user=user, park=other_park, role=there)
    client.force_login(user)
    return client, user


# --- probes: how to try an operation on park t, and what "it worked" looks like ----------------------------


def listed(key, value):
    return lambda r: r.status_code == 200 and value in [row[key] for row in _rows(r.json())]


def _rows(body):
    return body["results"] if isinstance(body, dict) else body


def status(*codes):
    return lambda r: r.status_code in codes


def csv_has(text):
    return lambda r: r.status_code == 200 and text in b"".join(r.streaming_content).decode()


def zip_has(text):
    def worked(r):
        if r.status_code != 200:
            return False
        with zipfile.ZipFile(io.BytesIO(b"".join(r.streaming_content))) as z:
            return any(text in z.read(n).decode("utf-8-sig") for n in z.namelist() if n.endswith(".csv"))
    return worked


def _as_unknown(r, param=None, field=None) -> bool:
    """The refusals that read exactly like an unknown code or park (no existence oracle)."""
    body = r.json() if r.get("Content-Type", "").startswith("application/json") else {}
    if r.status_code in (403, 404):
        return True
    if param and r.status_code == 400 and body.get("code") == "E1009" and param in body.get("message", ""):
        return True
    return bool(field and r.status_code == 400 and body.get("field") == field)


def probe(w: World, t: Park, name: str, method: str, variant: str, tag: str):
    """(method, path, body, target object, worked(response), refused(response))."""
    src, item, cls, form = w.sources[t.pk], w.items[t.pk], w.classes[t.pk], w.forms[t.pk]
    subs = w.submissions[t.pk]
    sid = src.source_id
    read = {
        "api-root": ("/api/v1/", None, None, status(200)),
        "error-codes": ("/api/v1/errors", None, None, status(200)),
        "roles": ("/api/v1/roles", None, None, status(200)),
        "park-list": ("/api/v1/parks/", t, t, listed("code", t.code)),
        "park-detail": (f"/api/v1/parks/{t.code}/", None, t, status(200)),
        "source-list": ("/api/v1/sources/", {"park": t.code}, src, listed("sourceId", sid)),
        "source-detail": (f"/api/v1/sources/{sid}/", None, src, status(200)),
        "source-commands": (f"/api/v1/sources/{sid}/commands", None, src, listed("type", "poll_now")),
        "catalog-item-list": ("/api/v1/catalog/items/", {"prefix": "CS0102"}, item, listed("code", item.code)),
        "catalog-item-detail": (f"/api/v1/catalog/items/{item.code}/", None, item, status(200)),
        "catalog-class-list": ("/api/v1/catalog/classes/", None, cls, listed("code", cls.code)),
        "catalog-class-detail": (f"/api/v1/catalog/classes/{cls.code}/", None, cls, status(200)),
        "catalog-enumeration-list": ("/api/v1/catalog/enumerations/", None, w.enumeration,
                                     listed("code", "fuel_type")),
        "catalog-enumeration-detail": ("/api/v1/catalog/enumerations/fuel_type/", None, w.enumeration, status(200)),
        "readings": ("/api/v1/readings", {"sourceId": sid}, t, listed("sourceId", sid)),
        "corrections": ("/api/v1/corrections", None, t, listed("sourceId", sid)),
        "overdue": ("/api/v1/overdue", None, t, listed("code", sid)),
        "quality-indicators": ("/api/v1/quality/indicators", None, t, listed("sourceId", sid)),
        "consumption": ("/api/v1/consumption", {"sourceId": sid, "interval": "interval"}, t, listed("sourceId", sid)),
        "correction-detail": (f"/api/v1/corrections/{w.corrections[t.pk]['approve'].pk}", None,
                              w.corrections[t.pk]["approve"], status(200)),
        "form-list": ("/api/v1/forms", None, form.form, listed("code", form.form.code)),
        "form-version": (f"/api/v1/forms/{form.form.code}/versions/1", None, form, status(200)),
        "form-template": (f"/api/v1/forms/{form.form.code}/versions/1/template.xlsx", None, form, status(200)),
        "export": ("/api/v1/exports/readings", {"sourceId": sid, "format": "csv"}, t, zip_has(sid)),
        "submissions": ("/api/v1/submissions", None, t, listed("id", subs["submit"].pk)),
        "submission-detail": (f"/api/v1/submissions/{subs['submit'].pk}", None, subs["submit"], status(200)),
        "submission-diff": (f"/api/v1/submissions/{subs['restore'].pk}/diff", {"a": 1, "b": 2}, subs["restore"],
                            status(200)),
        "upload-detail": (f"/api/v1/uploads/{w.uploads[t.pk]['main'].pk}", None, w.uploads[t.pk]["main"],
                          lambda r: r.status_code == 200 and r.json()["park"] == t.code),
        # no report yet: E9023 says the upload was found (and the caller may see it), E9011 that it was not
        "upload-report": (f"/api/v1/uploads/{w.uploads[t.pk]['report'].pk}/report.csv", None,
                          w.uploads[t.pk]["report"], lambda r: r.status_code == 404 and r.json()["code"] == "E9023"),
    }
    platform = w.platforms[t.pk]
    read["platforms"] = ("/api/v1/platforms", None, platform, listed("name", platform.name))
    if method == "GET" and variant == "format=csv":
        return "GET", "/api/v1/readings", {"sourceId": sid, "format": "csv"}, t, csv_has(sid), \
            lambda r: _as_unknown(r, param="sourceId")
    if method == "GET":
        path, params, target, worked = read[name]
        params = params if isinstance(params, dict) else None
        return "GET", path, params, target, worked, \
            lambda r: _as_unknown(r, param="sourceId") or (r.status_code == 200 and not worked(r))
    n = next(w.codes)
    code, minute = f"CS0102{n}", f"{10 + n // 60:02d}:{n % 60:02d}"
    write = {
        ("readings", "POST"): ("/api/v1/readings", {"sourceId": sid, "timestamp": f"2026-11-24 {minute}:00",
                                                    "value": 1}, t,
                               lambda r: r.status_code == 200 and r.json()["accepted"] == 1,
                               lambda r: r.status_code == 403 or (
                                   r.status_code == 400 and [x["code"] for x in r.json()["rejected"]] == ["E2003"])),
        ("source-list", "POST"): ("/api/v1/sources/", {"sourceId": f"{t.code}-NEW-{tag}", "park": t.code,
                                                       "name": "new"}, t, status(201),
                                  lambda r: _as_unknown(r, field="park")),
        ("source-detail", "PATCH"): (f"/api/v1/sources/{sid}/", {"name": f"renamed by {tag}"}, src, status(200),
                                     _as_unknown),
        ("source-commands", "POST"): (f"/api/v1/sources/{sid}/commands", {"type": "poll_now"}, src, status(201),
                                      _as_unknown),
        ("catalog-item-list", "POST"): ("/api/v1/catalog/items/", {"code": code, "park": t.code, "name_zh": "新",
                                                                   "data_type": "number", "unit": "kWh",
                                                                   "methods": ["realtime"]}, t, status(201),
                                        lambda r: _as_unknown(r, field="park")),
        ("catalog-item-detail", "PATCH"): (f"/api/v1/catalog/items/{item.code}/", {"name_en": f"by {tag}"}, item,
                                           status(200), _as_unknown),
    }
    for decision, state, body in (("approve", "approved", {}), ("reject", "rejected", {"comment": "no"})):
        c = w.corrections[t.pk][decision]
        write[(f"correction-{decision}", "POST")] = (
            f"/api/v1/corrections/{c.pk}/{decision}", body, c,
            lambda r, state=state: r.status_code == 200 and r.json()["state"] == state, _as_unknown)
    # an empty template of the park's form, checked (a dry run): the version is the park's
    write[("form-import", "POST")] = (f"/api/v1/forms/{form.form.code}/import",
                                      {"file": io.BytesIO(excel_template(form))}, form,
                                      lambda r: r.status_code == 200 and r.json()["ok"], _as_unknown)
    # a request is the requester's own (a clerk's modify scope): the target is the unsaved request
    write[("corrections", "POST")] = ("/api/v1/corrections", {
        "sourceId": sid, "start": "2026-11-23 10:00:00", "end": "2026-11-23 10:00:00", "factor": 2,
        "reason": f"by {tag}"}, Correction(park=t), status(201), lambda r: _as_unknown(r, field="sourceId"))
    state = lambda want: lambda r: r.status_code == 200 and r.json()["state"] == want  # noqa: E731
    write[("form-validate", "POST")] = (f"/api/v1/forms/{form.form.code}/validate", {"values": {"amount": "x"}},
                                        form.form, lambda r: r.status_code == 200 and r.json()["errors"],
                                        _as_unknown)
    write[("submissions", "POST")] = ("/api/v1/submissions", {
        "form": form.form.code, "park": t.code, "period": f"{2000 + n // 12}-{n % 12 + 1:02d}-01",
        "values": {"amount": n}}, Submission(park=t), status(200), _as_unknown)
    write[("submission-submit", "POST")] = (f"/api/v1/submissions/{subs['submit'].pk}/submit", {}, subs["submit"],
                                            state("submitted"), _as_unknown)
    write[("submission-approve", "POST")] = (f"/api/v1/submissions/{subs['approve'].pk}/approve", {},
                                             subs["approve"], state("approved"), _as_unknown)
    write[("submission-return", "POST")] = (f"/api/v1/submissions/{subs['return'].pk}/return", {"comment": "no"},
                                            subs["return"], state("returned"), _as_unknown)
    write[("submission-restore", "POST")] = (f"/api/v1/submissions/{subs['restore'].pk}/restore", {"version": 1},
                                             subs["restore"], lambda r: r.status_code == 200
                                             and r.json()["values"] == {"amount": 4}, _as_unknown)
    write[("submission-attachments", "POST")] = (
        f"/api/v1/submissions/{subs['attach'].pk}/attachments",
        {"file": SimpleUploadedFile("r.pdf", b"%PDF-1.4 test"), "field": ""}, subs["attach"], status(201),
        _as_unknown)
    tus = {"HTTP_TUS_RESUMABLE": "1.0.0"}
    name_meta = base64.b64encode(f"{t.code}_CS_202611_20261201083000_{n:03d}.csv".encode()).decode()
    park_meta = base64.b64encode(t.code.encode()).decode()
    write[("uploads", "POST")] = ("/api/v1/uploads/", {"tus": {
        **tus, "HTTP_UPLOAD_LENGTH": "10", "HTTP_UPLOAD_METADATA": f"filename {name_meta},park {park_meta}"}},
        Upload(park=t), status(201), lambda r: r.status_code == 403)
    main = w.uploads[t.pk]["main"]
    write[("upload-detail", "PATCH")] = (f"/api/v1/uploads/{main.pk}", {"tus": {
        **tus, "HTTP_UPLOAD_OFFSET": str(Upload.objects.get(pk=main.pk).offset)}, "body": b"x"}, main, status(204),
        _as_unknown)
    write[("upload-detail", "DELETE")] = (f"/api/v1/uploads/{main.pk}", {"tus": tus}, main, status(204), _as_unknown)
    write[("platforms", "POST")] = ("/api/v1/platforms", {
        "park": t.code, "name": f"new hub {tag}", "uscc": make_uscc("91110000MA01NEW0X"),
        "base_url": "https://new.example", "ip_whitelist": ["192.0.2.0/24"], "alert_email": "a@new.example"},
        Platform(park=t), status(201), lambda r: r.status_code == 403)
    write[("platform-resume", "POST")] = (f"/api/v1/platforms/{platform.pk}/resume", {}, platform, status(200),
                                          _as_unknown)
    # the open API answers on a platform's own credentials: a park's people and tokens get its refusals
    code_is = lambda want, code: lambda r: r.status_code == want and r.json()["code"] == code  # noqa: E731
    write[("open-auth", "POST")] = ("/api/v1/open/auth", {}, None, code_is(400, "E7409"), lambda r: False)
    for op in ("open-subscribe", "open-data"):
        write[(op, "POST")] = (f"/api/v1/{op.replace('-', '/')}", {}, None, code_is(401, "E7405"), lambda r: False)
    path, body, target, worked, refused = write[(name, method)]
    return method, path, body, target, worked, refused


def expected(principal, endpoint: matrix.Endpoint, target) -> bool:
    if principal is None:
        return endpoint.public
    if endpoint.action is None:
        return True
    # an object being made (a correction request) is the caller's own: a clerk's "own" scope covers it
    owner = principal if getattr(target, "pk", 0) is None else None
    return access.check_object(principal, endpoint.action, target, owner=owner)


# --- the tests ----------------------------------------------------------------------------------------------


def test_every_api_operation_is_a_drf_view_with_a_rule():
    """A new endpoint without a rule (or outside DRF, where the seam's permission never runs) fails here."""
    endpoints = matrix.api_endpoints()
    assert len(endpoints) >= 20
    missing = [f"{e.method} {e.path} ({e.view.__name__ if e.view else 'not a DRF view'}: {e.rule_name or '*'})"
               for e in endpoints if e.view is None or not e.has_rule]
    assert not missing, "operations without an access rule: " + "; ".join(missing)


@pytest.mark.django_db
@pytest.mark.parametrize("role", PRINCIPALS)
def test_api_permission_matrix(role, park, other_park, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path  # the uploads' files
    w = make_world(park, other_park)
    client, principal = sign_in(role, park, other_park)
    wrong, tried = [], 0
    for e in matrix.api_endpoints():
        for where, t in w.parks.items():
            tag = f"{role.replace('/', '-')}-{where}"
            method, path, data, target, worked, refused = probe(w, t, e.name, e.method, e.variant, tag)
            call = getattr(client, method.lower())
            if isinstance(data, dict) and "tus" in data:
                r = client.generic(method, path, data.get("body", b""), content_type="application/offset+octet-stream",
                                   **data["tus"])
            elif isinstance(data, dict) and hasattr(data.get("file"), "read"):
                data["file"].seek(0)
                r = call(path, data, format="multipart")
            else:
                fmt = "multipart" if e.name == "submission-attachments" else "json"
                r = call(path, data, format=fmt) if method != "GET" else call(path, data)
            tried += 1
            should = expected(principal, e, target)
            if principal is None and not should:
                ok = r.status_code == 401
            else:
                ok = worked(r) if should else (not worked(r) and refused(r) and r.status_code < 500)
            if not ok:
                shown = r.content[:200] if not getattr(r, "streaming", False) else b"<stream>"
                wrong.append(f"{method} {path} {e.variant} in {where} park: expected "
                             f"{'allowed' if should else 'refused'}, got {r.status_code} {shown!r}")
    assert tried >= 40
    assert not wrong, f"{role}:\n" + "\n".join(wrong)


@pytest.mark.django_db
def test_roles_are_published_in_docs_and_served(client, openapi):  # noqa: F811
    from apps.accounts.management.commands.access_matrix import render

    doc = (ROOT / "docs" / "roles.md").read_text(encoding="utf-8")
    assert doc == render(), "docs/roles.md is out of step: run make docs"
    for role in access.ROLES.values():
        assert f"**{role.code}**" in doc
    # public, like the error table, and as its OpenAPI schema says
    body = assert_matches(openapi, "/api/v1/roles", "get", client.get("/api/v1/roles", HTTP_ACCEPT_LANGUAGE="en"))
    assert "manage" in openapi["paths"]["/api/v1/sources/{sourceId}/"]["patch"]["responses"]["403"]["description"]
    served = {r["code"]: r for r in body["roles"]}
    assert set(served) == set(access.ROLES)
    assert served["device"]["actions"] == {"push": "all"} and served["approver"]["actions"]["approve"] == "others"
    assert served["operator"]["label_zh"] == "数据录入员" and served["operator"]["label_en"] == "data-entry clerk"
    ops = {(o["method"], o["path"], o["variant"]): o for o in body["endpoints"]}
    assert ops[("GET", "/api/v1/readings", "format=csv")]["action"] == "export"
    assert "device" in ops[("POST", "/api/v1/readings", "")]["roles"]
    assert ops[("PATCH", "/api/v1/sources/{sourceId}/", "")]["roles"] == ["admin", "integrator", "system"]
    assert {a["code"] for a in body["actions"]} == {a.value for a in Action}


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["sources", "readings", "catalog items", "parks", "commands", "corrections"])
def test_list_queries_do_not_grow_with_rows(name, park, django_assert_num_queries):
    """The access check adds a constant number of queries, not one per row (3 rows and 30 rows)."""
    user = get_user_model().objects.create_user("admin-of-many")
    set_membership(actor="t", user=user, park=park, role="admin")
    client = APIClient()
    client.force_login(user)
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])
    made = itertools.count()

    def grow(n):
        for _ in range(n):
            i = next(made)
            if name == "sources":
                add_source(park, f"TP01-EM-1{i:03d}", ["CS010201"])
            elif name == "readings":
                ingest_readings([{"sourceId": meter.source_id, "timestamp": f"2026-11-23 10:{i:02d}:00",
                                  "value": i}], channel="test", actor="t")
            elif name == "catalog items":
                save_data_item(actor="t", code=f"CS0102{50 + i}", park=park, name_zh="x", data_type="number",
                               unit="kWh", methods=["realtime"])
            elif name == "parks":
                p = Park.objects.create(code=f"QP{i:03d}", name_zh="x")
                set_membership(actor="t", user=user, park=p, role="viewer")
            elif name == "corrections":
                ingest_readings([{"sourceId": meter.source_id, "timestamp": f"2026-11-23 11:{i:02d}:00",
                                  "value": i}], channel="test", actor="t")
                request_correction(actor=user, source_id=meter.source_id, start=f"2026-11-23 11:{i:02d}:00",
                                   end=f"2026-11-23 11:{i:02d}:00", new_value=1, reason="r")
            else:
                create_command(actor="t", source=meter, type="poll_now")

    url = {"sources": "/api/v1/sources/", "readings": f"/api/v1/readings?sourceId={meter.source_id}",
           "catalog items": "/api/v1/catalog/items/?prefix=CS0102", "parks": "/api/v1/parks/",
           "commands": f"/api/v1/sources/{meter.source_id}/commands", "corrections": "/api/v1/corrections"}[name]
    counts = []
    for n, total in ((3, 3), (27, 30)):
        grow(n)
        assert client.get(url).status_code == 200  # warm: the ingest configuration reloads after changes
        with CaptureQueriesContext(connection) as queries:
            r = client.get(url)
        rows = _rows(r.json())
        assert len(rows) >= total, (name, len(rows))
        counts.append(len(queries))
    assert counts[0] == counts[1], f"{name}: {counts[0]} queries with 3 rows, {counts[1]} with 30"
