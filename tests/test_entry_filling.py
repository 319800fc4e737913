"""Filling beyond the happy path (issue #10 items 4 and 5; R-7.3.1.2–3, R-7.3.2, R-6.3–6.5): the park's rule
library in live validation and at submission, evidence a source demands, hostile files and bodies, another
park's ids, and the portal's submission pages (list, fill, detail, diff, review, restore) through the seam."""

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts import access
from apps.accounts.services import set_membership
from apps.catalog.models import DataItem
from apps.entry.models import Attachment, Submission
from apps.entry.services import create_form, publish
from apps.entry.services import submissions as services
from apps.ingestion.models import Reading
from apps.quality.services import save_rule

pytestmark = pytest.mark.django_db
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
T = {"zh": "甲", "en": "A"}
DEFINITION = {"format": 1, "period": "month", "sections": [
    {"key": "main", "title": T, "fields": [
        {"key": "amount", "item": "CS010101", "required": True, "min": 0},
        {"key": "cert_no", "type": "text", "label": T, "unique": True},
        {"key": "report", "type": "attachment", "label": T}]}]}


@pytest.fixture
def world(park, other_park, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    users = get_user_model().objects
    people = {}
    for name, role, p in (("clerk", "operator", park), ("reviewer", "approver", park),
                          ("stranger", "operator", other_park), ("viewer", "viewer", park)):
        people[name] = users.create_user(name)
        set_membership(actor="t", user=people[name], park=p, role=role)
    system = access.SystemPrincipal("test")
    form = create_form(actor=system, park=park, code="own-ledger", name_zh="台账", definition=DEFINITION)
    publish(actor=system, form=form)
    return form, people


def api(user) -> APIClient:
    c = APIClient()
    c.force_login(user)
    return c


def portal(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def draft(c, park, values, period="2026-10-01"):
    r = c.post("/api/v1/submissions", {"form": "own-ledger", "park": park.code, "period": period, "values": values},
               format="json")
    assert r.status_code == 200, r.content
    return r.json()


def test_the_parks_rule_library_runs_as_the_clerk_types_and_at_submission(world, park):
    form, people = world
    item = DataItem.objects.get(code="CS010101")
    save_rule(actor="t", name="limit", kind="range", params={"max": 100}, severity="reject", park=park,
              data_item=item, message_zh="超过本园区上限", message_en="above the park's limit")
    save_rule(actor="t", name="unusual", kind="range", params={"max": 50}, severity="warn", park=park,
              data_item=item)
    c = api(people["clerk"])
    body = {"values": {"amount": 500}, "park": park.code, "period": "2026-10-01"}
    r = c.post("/api/v1/forms/own-ledger/validate", body, format="json").json()
    assert [(e["path"], e["code"], e["messages"]["zh"]) for e in r["errors"]] == [("amount", "E3001", "超过本园区上限")]
    assert [(w["path"], w["code"], w["rule"]) for w in r["warnings"]] == [("amount", "E3001", "unusual")]
    r = c.post("/api/v1/forms/own-ledger/validate", {**body, "values": {"amount": 70}}, format="json").json()
    assert r["errors"] == [] and [w["rule"] for w in r["warnings"]] == ["unusual"]
    # without a park the form's own checks alone answer; the draft keeps only what passes the rules
    assert c.post("/api/v1/forms/own-ledger/validate", {"values": {"amount": 500}}, format="json").json()[
        "errors"] == []
    saved = draft(c, park, {"amount": 500})
    assert [e["code"] for e in saved["errors"]] == ["E3001"]
    r = c.post(f"/api/v1/submissions/{saved['submission']['id']}/submit", {"values": {"amount": 500}}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "E3001"
    assert not Reading.objects.filter(park=park).exists()
    # another park's rules do not apply here; another park's code is not a place to validate for
    r = c.post("/api/v1/forms/own-ledger/validate", {**body, "park": "NOPE"}, format="json")
    assert r.status_code == 404 and r.json()["code"] == "E8311"


def test_evidence_demanded_by_the_manual_entry_source(world, park):
    from apps.sources.services.sources import save_source

    form, people = world
    c = api(people["clerk"])
    first = draft(c, park, {"amount": 1}, period="2026-09-01")["submission"]["id"]
    assert c.post(f"/api/v1/submissions/{first}/submit", {}, format="json").status_code == 200
    source = services.manual_source(park, {"CS010101"}, people["clerk"])
    save_source(actor="t", source=source, evidence_required=True, reason="test")
    sub = draft(c, park, {"amount": 2})["submission"]["id"]
    r = c.post(f"/api/v1/submissions/{sub}/submit", {}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "E8307", r.content
    r = c.post(f"/api/v1/submissions/{sub}/attachments", {"file": SimpleUploadedFile("test.pdf", PDF)},
               format="multipart")
    assert r.status_code == 201 and len(r.json()["sha256"]) == 64
    assert c.post(f"/api/v1/submissions/{sub}/submit", {}, format="json").json()["state"] == "submitted"


ITEM_EVIDENCE = {"format": 1, "period": "month", "sections": [
    {"key": "main", "title": T, "fields": [{"key": "ncv", "item": "CS010102"}, {"key": "amount", "item": "CS010101"}]},
    {"key": "certs", "title": T, "repeat": {"min": 0, "max": 5}, "fields": [
        {"key": "mwh", "item": "CO010101"}, {"key": "file", "type": "attachment", "label": T}]}]}


def test_evidence_demanded_by_the_item_at_each_value_until_a_file_covers_it(world, park):
    """The catalog marks calorific values and Table 3's offsets (migration catalog 0003); an item not marked
    (fuel consumption) needs nothing. A file covers its field, its repeat row, or the whole submission."""
    form, people = world
    assert DataItem.objects.get(code="CS010102").evidence_required
    assert DataItem.objects.get(code="CO010101").evidence_required
    assert not DataItem.objects.get(code="CS010101").evidence_required
    system = access.SystemPrincipal("test")
    publish(actor=system, form=create_form(actor=system, park=park, code="ncv-ledger", name_zh="发热量",
                                           definition=ITEM_EVIDENCE))
    c = api(people["clerk"])
    values = {"ncv": 20900, "amount": 3, "certs": [{"mwh": 10}, {"mwh": 20}]}
    r = c.post("/api/v1/submissions", {"form": "ncv-ledger", "park": park.code, "period": "2026-10-01",
                                       "values": values}, format="json")
    sub = r.json()["submission"]["id"]

    def submit():
        return c.post(f"/api/v1/submissions/{sub}/submit", {}, format="json")

    r = submit()
    assert r.status_code == 400
    assert [(e["path"], e["code"]) for e in r.json()["errors"]] == [
        ("ncv", "E8315"), ("certs[0].mwh", "E8315"), ("certs[1].mwh", "E8315")], r.content
    zh = r.json()["errors"][0]["messages"]["zh"]
    assert "CS010102" in zh and "证明文件" in zh
    for field in ("ncv", "certs[1].file"):  # one for the field, one for the second row
        r = c.post(f"/api/v1/submissions/{sub}/attachments", {"file": SimpleUploadedFile("r.pdf", PDF),
                                                               "field": field}, format="multipart")
        assert r.status_code == 201, r.content
    r = submit()
    assert [(e["path"], e["code"]) for e in r.json()["errors"]] == [("certs[0].mwh", "E8315")], r.content
    assert not Reading.objects.filter(park=park).exists()
    r = c.post(f"/api/v1/submissions/{sub}/attachments", {"file": SimpleUploadedFile("all.pdf", PDF)},
               format="multipart")
    assert r.status_code == 201
    assert submit().json()["state"] == "submitted"
    assert Reading.objects.filter(park=park).count() == 4


@pytest.mark.parametrize(("name", "content", "code"), [
    ("report.pdf", b"MZ\x90\x00 an executable called report.pdf", "E8012"),
    ("report.png", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "E8012"),
    ("big.pdf", b"%PDF-1.4\n" + b"0" * 2048, "E8013"),
    ("a\x00b.pdf", PDF, None),
])
def test_hostile_files_are_refused_by_content_and_size(world, park, settings, name, content, code):
    settings.EVIDENCE_MAX_BYTES = 1024
    form, people = world
    c = api(people["clerk"])
    sub = draft(c, park, {})["submission"]["id"]
    r = c.post(f"/api/v1/submissions/{sub}/attachments", {"file": SimpleUploadedFile(name, content)},
               format="multipart")
    if code is None:  # a NUL in the name is dropped from the kept name, the file is fine
        assert r.status_code == 201 and "\x00" not in Attachment.objects.get().original_name
    else:
        assert r.status_code == 400 and r.json()["code"] == code, r.content
        assert not Attachment.objects.exists()


def test_hostile_ids_and_bodies_answer_codes_not_500(world, park, other_park):
    form, people = world
    c = api(people["clerk"])
    sub = draft(c, park, {"amount": 1})["submission"]["id"]
    stranger = api(people["stranger"])
    for method, path, body in [
        ("post", f"/api/v1/submissions/{sub}/attachments", {"file": SimpleUploadedFile("r.pdf", PDF)}),
        ("post", f"/api/v1/submissions/{sub}/restore", {"version": 1}),
        ("post", f"/api/v1/submissions/{sub}/return", {"comment": "x"}),
        ("post", f"/api/v1/submissions/{sub}/approve", {}),
        ("get", f"/api/v1/submissions/{sub}/diff", {"a": 1, "b": 1}),
    ]:
        fmt = {"format": "multipart"} if "attachments" in path else ({"format": "json"} if method == "post" else {})
        r = getattr(stranger, method)(path, body, **fmt)
        if path.endswith(("/return", "/approve")):  # no right to approve in any park: refused before the lookup
            assert r.status_code == 403 and r.json()["code"] == "E1008", (path, r.content)
        else:
            assert r.status_code == 404 and r.json()["code"] == "E8301", (path, r.content)
    assert Submission.objects.get(pk=sub).state == "draft"
    for path in ("/api/v1/submissions/99999999999999999999999", "/api/v1/submissions/-1",
                 f"/api/v1/submissions/{sub}/diff?a=1&b=999999999999", f"/api/v1/submissions/{sub}/diff?a=x&b=%00"):
        assert c.get(path).status_code in (404, 400), path
    hostile = [
        {"version": "1"}, {"version": 10 ** 30}, {"version": [1]}, {"version": None},
    ]
    for body in hostile:
        r = c.post(f"/api/v1/submissions/{sub}/restore", body, format="json")
        assert r.status_code == 404 and r.json()["code"] == "E8313", (body, r.content)
    r = c.post(f"/api/v1/submissions/{sub}/submit", {"values": {"amount": 1}}, format="json")
    assert r.status_code == 200
    reviewer = api(people["reviewer"])
    for comment in ("a\x00b", "x" * 5000, ["list"], {"deep": {"er": {}}}):
        r = reviewer.post(f"/api/v1/submissions/{sub}/return", {"comment": comment}, format="json")
        # a NUL is refused by the API's body parser already (E1016), anything else by the comment's check
        assert r.status_code == 400 and r.json()["code"] == ("E1016" if comment == "a\x00b" else "E8310"), (
            comment, r.content)
    for period in ("2026-10-02", "2026-13-01", "2026-10-0\u0661", 10 ** 40, ["2026-10-01"], "9999-01-01"):
        r = c.post("/api/v1/submissions", {"form": "own-ledger", "park": park.code, "period": period, "values": {}},
                   format="json")
        assert r.status_code == 400 and r.json()["code"] == "E8305", (period, r.content)
    r = c.post("/api/v1/submissions", {"form": {"x": 1}, "park": park.code, "period": "2026-10-01"}, format="json")
    assert r.status_code == 404 and r.json()["code"] == "E8311"
    r = c.post("/api/v1/submissions", {"form": "own-ledger", "park": other_park.code, "period": "2026-11-01",
                                       "values": {}}, format="json")
    assert r.status_code == 404 and r.json()["code"] == "E8311"


def test_a_change_after_submission_is_a_correction_never_an_overwrite(world, park):
    from apps.corrections.models import Correction

    form, people = world
    c = api(people["clerk"])
    sub = draft(c, park, {"amount": 7, "cert_no": "GEC-1"})["submission"]["id"]
    assert c.post(f"/api/v1/submissions/{sub}/submit", {}, format="json").status_code == 200
    # submitted: neither a draft save nor a restore nor a new submit changes it
    assert c.post("/api/v1/submissions", {"form": "own-ledger", "park": park.code, "period": "2026-10-01",
                                          "values": {"amount": 8}}, format="json").json()["code"] == "E8302"
    assert c.post(f"/api/v1/submissions/{sub}/restore", {"version": 1}, format="json").json()["code"] == "E8302"
    assert c.post(f"/api/v1/submissions/{sub}/submit", {"values": {"amount": 8}}, format="json").json()[
        "code"] == "E8302"
    assert Submission.objects.get(pk=sub).values["amount"] == 7
    api(people["reviewer"]).post(f"/api/v1/submissions/{sub}/return", {"comment": "8"}, format="json")
    r = c.post(f"/api/v1/submissions/{sub}/submit", {"values": {"amount": 8, "cert_no": "GEC-1"}}, format="json")
    assert r.status_code == 200
    assert Reading.objects.get(park=park).value == 7  # the value as received stays
    assert Correction.objects.get().new_value == 8 and Correction.objects.get().state == "requested"


def test_portal_pages_go_through_the_seam(world, park):
    form, people = world
    clerk, reviewer, stranger, viewer = (portal(people[n]) for n in ("clerk", "reviewer", "stranger", "viewer"))
    r = clerk.get("/entry/submission/fill/")
    assert r.status_code == 200 and b"own-ledger" in r.content
    r = clerk.get("/entry/submission/fill/", {"park": park.code, "form": "own-ledger", "period": "2026-10"})
    assert r.status_code == 200 and b"filling-config" in r.content
    for q in ({"form": "own-ledger", "period": "2026-10-05"}, {"form": "nope", "period": "x"},
              {"form": "own-ledger", "period": "9" * 300}, {"park": "ZZ", "form": ["a"], "period": "2026-10"}):
        r = clerk.get("/entry/submission/fill/", q)
        assert r.status_code == 200 and b"pick-error" in r.content, q
    r = clerk.get("/entry/submission/fill/", {"form": "own-ledger", "period": "\x00" * 30})
    assert r.status_code == 400  # the portal's guard answers NUL bytes in a query before any view
    assert viewer.get("/entry/submission/fill/").status_code == 403  # no right to enter
    sub, _ = services.save_draft(actor=people["clerk"], form=form, park=park, period="2026-10-01",
                                 values={"amount": 3})
    services.save_draft(actor=people["clerk"], form=form, park=park, period="2026-10-01", values={"amount": 4})
    # the same form, park and period opens the submission there is
    r = clerk.get("/entry/submission/fill/", {"park": park.code, "form": "own-ledger", "period": "2026-10-01"})
    assert r.status_code == 302 and r["Location"].endswith(f"/entry/submission/{sub.pk}/fill/")
    for path in (f"/entry/submission/{sub.pk}/change/", f"/entry/submission/{sub.pk}/diff/",
                 f"/entry/submission/{sub.pk}/diff/?a=1&b=2", "/entry/submission/"):
        assert clerk.get(path).status_code == 200, path
        assert viewer.get(path).status_code == 200, path
    assert b'id="edit-link"' in clerk.get(f"/entry/submission/{sub.pk}/change/").content
    assert b'id="edit-link"' not in viewer.get(f"/entry/submission/{sub.pk}/change/").content
    assert viewer.get(f"/entry/submission/{sub.pk}/fill/").status_code == 302  # read-only: to the detail page
    for path in (f"/entry/submission/{sub.pk}/fill/", f"/entry/submission/{sub.pk}/diff/",
                 f"/entry/submission/{sub.pk}/attachment/1/"):
        assert stranger.get(path).status_code == 404, path
    assert stranger.post(f"/entry/submission/{sub.pk}/restore/", {"version": "1"}).status_code == 404
    assert clerk.get(f"/entry/submission/{sub.pk}/diff/?a=1&b=99").status_code == 404
    # restore through the page: a new version with the old values
    r = clerk.post(f"/entry/submission/{sub.pk}/restore/", {"version": "1"})
    assert r.status_code == 302
    sub.refresh_from_db()
    assert sub.values == {"amount": 3} and sub.history.count() == 3
    assert viewer.post(f"/entry/submission/{sub.pk}/restore/", {"version": "2"}).status_code == 403
    # review: only a reviewer, never the submitter, and a return needs its comment
    services.submit(actor=people["clerk"], submission_id=sub.pk)
    assert b'id="return-button"' not in clerk.get(f"/entry/submission/{sub.pk}/change/").content
    assert clerk.post(f"/entry/submission/{sub.pk}/review/", {"decision": "approve"}).status_code == 403
    assert b'id="return-button"' in reviewer.get(f"/entry/submission/{sub.pk}/change/").content
    reviewer.post(f"/entry/submission/{sub.pk}/review/", {"decision": "return", "comment": ""})
    assert Submission.objects.get(pk=sub.pk).state == "submitted"  # E8310 shown as a message
    reviewer.post(f"/entry/submission/{sub.pk}/review/", {"decision": "return", "comment": "需补充证书编号"})
    assert Submission.objects.get(pk=sub.pk).state == "returned"
    assert reviewer.get(f"/entry/submission/{sub.pk}/review/").status_code == 405


def test_an_old_submission_renders_and_validates_with_its_own_form_version(world, park):
    import copy
    import json

    from apps.entry.services import save_draft as save_form_draft

    form, people = world
    sub, _ = services.save_draft(actor=people["clerk"], form=form, park=park, period="2026-10-01",
                                 values={"amount": 3, "cert_no": "V1-NO"})
    newer = copy.deepcopy(DEFINITION)
    newer["sections"][0]["fields"][1] = {"key": "cert_no", "type": "text", "label": {"zh": "新标签", "en": "New"},
                                         "maxLength": 2}
    system = access.SystemPrincipal("test")
    save_form_draft(actor=system, form=form, definition=newer)
    assert publish(actor=system, form=form).number == 2
    clerk = portal(people["clerk"])
    page = clerk.get(f"/entry/submission/{sub.pk}/fill/").content.decode()
    config = json.loads(page.split('id="filling-config" type="application/json">')[1].split("</script>")[0])
    assert config["version"] == 1 and config["definition"]["sections"][0]["fields"][1]["label"] == T
    assert "新标签" not in clerk.get(f"/entry/submission/{sub.pk}/change/").content.decode()
    # validated by version 1 (no maxLength 2 there), while a new submission takes version 2
    r = api(people["clerk"]).post("/api/v1/forms/own-ledger/validate", {"values": {"cert_no": "LONGER"},
                                                                         "version": 1}, format="json").json()
    assert r["version"] == 1 and not [e for e in r["errors"] if e["path"] == "cert_no"]
    services.save_draft(actor=people["clerk"], form=form, park=park, period="2026-10-01",
                        values={"amount": 3, "cert_no": "LONGER"})
    sub.refresh_from_db()
    assert sub.version.number == 1 and sub.values["cert_no"] == "LONGER"
    other, problems = services.save_draft(actor=people["clerk"], form=form, park=park, period="2026-11-01",
                                          values={"amount": 1, "cert_no": "LONGER"})
    assert other.version.number == 2 and [p["code"] for p in problems] == ["E8107"]
