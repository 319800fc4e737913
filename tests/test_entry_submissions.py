"""Filling, review and versions (issue #10 items 4 and 5; R-7.3.1.2–3, R-7.3.2, R-6.5): drafts, evidence,
submit through ingest_readings (channel form) with each reading linked, unique numbers, return and resubmit as
a correction, diff and restore, and the API's answers to hostile input."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from apps.accounts import access
from apps.accounts.services import set_membership
from apps.corrections import services as corrections
from apps.corrections.models import Correction
from apps.entry import selectors
from apps.entry.models import Submission, SubmissionReading, UsedNumber
from apps.entry.services import create_form, publish
from apps.entry.services import submissions as services
from apps.ingestion.models import Reading

pytestmark = pytest.mark.django_db
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
T = {"zh": "甲", "en": "A"}
DEFINITION = {"format": 1, "period": "month", "sections": [
    {"key": "main", "title": T, "fields": [
        {"key": "amount", "item": "CS010101", "required": True, "min": 0},
        {"key": "has_cert", "type": "enum", "label": T, "options": [
            {"value": "yes", "label": {"zh": "有", "en": "yes"}}, {"value": "no", "label": {"zh": "无", "en": "no"}}]},
        {"key": "cert_no", "type": "text", "label": T, "unique": True, "required": True,
         "visibleIf": {"==": [{"var": "has_cert"}, "yes"]}},
        {"key": "report", "type": "attachment", "label": T, "required": True},
        {"key": "twice", "type": "number", "label": T, "calc": {"*": [{"var": "amount"}, 2]}}]},
    {"key": "fuels", "title": T, "repeat": {"min": 0, "max": 20}, "fields": [
        {"key": "fuel_amount", "item": "CS010101", "min": 0}]}]}


@pytest.fixture
def world(park, other_park):
    users = get_user_model().objects
    people = {}
    for name, role, p in (("clerk", "operator", park), ("reviewer", "approver", park),
                          ("stranger", "operator", other_park)):
        people[name] = users.create_user(name)
        set_membership(actor="t", user=people[name], park=p, role=role)
    system = access.SystemPrincipal("test")
    form = create_form(actor=system, park=None, code="test-ledger", name_zh="台账", definition=DEFINITION)
    publish(actor=system, form=form)
    return form, people


def client(user) -> APIClient:
    c = APIClient()
    c.force_login(user)
    return c


def draft(c, park, values, period="2026-10-01"):
    return c.post("/api/v1/submissions", {"form": "test-ledger", "park": park.code, "period": period,
                                          "values": values}, format="json")


def attach(c, sub_id):
    r = c.post(f"/api/v1/submissions/{sub_id}/attachments",
               {"file": SimpleUploadedFile("report.pdf", PDF), "field": "report"}, format="multipart")
    assert r.status_code == 201, r.content
    return r.json()["id"]


def test_fill_submit_return_resubmit_approve(world, park, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    form, people = world
    clerk, reviewer = client(people["clerk"]), client(people["reviewer"])
    r = draft(clerk, park, {"amount": "-1", "has_cert": "no", "cert_no": "HIDDEN-1", "fuels": [{"fuel_amount": 3}]})
    assert r.status_code == 200, r.content
    body = r.json()
    sub_id = body["submission"]["id"]
    assert {(e["path"], e["code"]) for e in body["errors"]} == {("amount", "E8103"), ("report", "E8101")}
    assert "cert_no" not in body["submission"]["values"]  # hidden: neither checked nor kept
    att = attach(clerk, sub_id)
    r = clerk.post(f"/api/v1/submissions/{sub_id}/submit", {"values": {"amount": "-1"}}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "E8304" and r.json()["errors"][0]["path"] == "amount"
    values = {"amount": "12.5", "has_cert": "no", "cert_no": "HIDDEN-1", "report": str(att),
              "fuels": [{"fuel_amount": 3}, {"fuel_amount": 4}]}
    r = clerk.post(f"/api/v1/submissions/{sub_id}/submit", {"values": values}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["state"] == "submitted" and r.json()["values"]["twice"] == 25
    readings = Reading.objects.filter(source__source_id=f"{park.code}-FORM").order_by("ts")
    assert [(x.value, x.channel) for x in readings] == [(12.5, "form"), (3, "form"), (4, "form")]
    assert SubmissionReading.objects.filter(submission_id=sub_id).count() == 3
    assert not UsedNumber.objects.exists()  # the hidden number was never taken

    # the submitter never reviews; a return needs a comment
    assert clerk.post(f"/api/v1/submissions/{sub_id}/approve", {}, format="json").status_code == 403
    assert reviewer.post(f"/api/v1/submissions/{sub_id}/return", {}, format="json").json()["code"] == "E8310"
    r = reviewer.post(f"/api/v1/submissions/{sub_id}/return", {"comment": "amount is 13"}, format="json")
    assert r.json()["state"] == "returned" and r.json()["reviewComment"] == "amount is 13"

    # the change after submission is a correction of the stored reading, never an overwrite
    r = clerk.post(f"/api/v1/submissions/{sub_id}/submit", {"values": {**values, "amount": 13}}, format="json")
    assert r.status_code == 200, r.content
    c = Correction.objects.get()
    assert c.state == "requested" and c.new_value == 13 and readings.first().value == 12.5
    versions = r.json()["versions"]
    assert [v["state"] for v in versions] == ["draft", "submitted", "returned", "submitted"]
    assert versions[2]["reason"] == "amount is 13" and versions[2]["by"] == "reviewer"
    rows = clerk.get(f"/api/v1/submissions/{sub_id}/diff", {"a": 2, "b": 4}).json()["rows"]
    changed = {row["path"]: (row["a"], row["b"]) for row in rows if row["changed"]}
    assert changed["amount"] == (12.5, 13) and changed["twice"] == (25, 26)
    r = reviewer.post(f"/api/v1/submissions/{sub_id}/approve", {}, format="json")
    assert r.json()["state"] == "approved"
    assert Correction.objects.get().state == "approved"
    corrections.apply_correction(c.pk)  # what the worker does once the approval commits
    got = reviewer.get("/api/v1/readings", {"sourceId": f"{park.code}-FORM", "dataCode": "CS010101"}).json()
    first = got["results"][0]
    assert first["value"] == 13 and first.get("rawValue", 12.5) == 12.5, first
    assert SubmissionReading.objects.get(submission_id=sub_id, field="amount").value == 13
    # an approved submission is not a draft any more
    assert draft(clerk, park, values).json()["code"] == "E8302"


def test_unique_numbers_are_refused_naming_the_first(world, park, other_park, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    form, people = world
    first = client(people["clerk"])
    sub = draft(first, park, {}).json()["submission"]["id"]
    att = attach(first, sub)
    ok = {"amount": 1, "has_cert": "yes", "cert_no": " CCER-2026-001 ", "report": str(att)}
    assert first.post(f"/api/v1/submissions/{sub}/submit", {"values": ok}, format="json").status_code == 200
    second = client(people["stranger"])
    sub2 = draft(second, other_park, {}).json()["submission"]["id"]
    att2 = attach(second, sub2)
    r = second.post(f"/api/v1/submissions/{sub2}/submit", {"values": {**ok, "report": str(att2)}}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "E8303", r.content
    assert f"#{sub}" in r.json()["message"] and park.code in r.json()["message"]
    assert Submission.objects.get(pk=sub2).state == "draft"
    assert not Reading.objects.filter(park=other_park).exists()  # all or nothing
    # evidence of another submission is not this one's
    r = second.post(f"/api/v1/submissions/{sub2}/submit", {"values": {**ok, "cert_no": "X-2", "report": str(att)}},
                    format="json")
    assert r.json()["code"] == "E8304" and r.json()["errors"][0]["code"] == "E8307"


def test_restore_is_a_new_version(world, park):
    form, people = world
    clerk = people["clerk"]
    sub, _ = services.save_draft(actor=clerk, form=form, park=park, period="2026-10-01", values={"amount": 1})
    services.save_draft(actor=clerk, form=form, park=park, period="2026-10-01", values={"amount": 2})
    services.restore(actor=clerk, submission_id=sub.pk, version=1, reason="back to 1")
    versions = selectors.versions_of(sub)
    assert [(n, h.values.get("amount"), h.history_change_reason) for n, h in versions] == [
        (1, 1, "draft saved"), (2, 2, "draft saved"), (3, 1, "back to 1")]
    assert versions[-1][1].history_user == clerk
    with pytest.raises(Exception) as exc:
        services.save_draft(actor=people["reviewer"], form=form, park=park, period="2026-10-01", values={})
    assert isinstance(exc.value, access.AccessDenied)


@pytest.mark.parametrize(("body", "code"), [
    ('{"values": {"amount": 1e400}}', "E8112"),  # parsed as infinity: refused at the field
    ('{"values": {"amount": NaN}}', "E1001"),
    ('{"values": {"amount": "a\\u0000b"}}', "E1016"),
    ('{"values": ' + "[" * 5000 + "]" * 5000 + "}", "E1001"),
])
def test_validate_refuses_hostile_bodies_with_a_code(world, body, code):
    r = client(world[1]["clerk"]).post("/api/v1/forms/test-ledger/validate", body, content_type="application/json")
    body = r.json()
    assert r.status_code < 500 and code in (body.get("code"), *[e["code"] for e in body.get("errors", [])]), body


def test_validate_answers_errors_at_fields(world, park, other_park):
    form, people = world
    c = client(people["clerk"])
    r = c.post("/api/v1/forms/test-ledger/validate", {"values": {
        "amount": 10 ** 400, "fuels": [{"fuel_amount": "NaN"}], "x": {"a": [[[]]]}}}, format="json")
    assert r.status_code == 200
    codes = {(e["path"], e["code"]) for e in r.json()["errors"]}
    assert {("amount", "E8112"), ("fuels[0].fuel_amount", "E8112"), ("x", "E8115")} <= codes
    e = r.json()["errors"][0]
    assert set(e["messages"]) == {"zh", "en"}
    r = c.post("/api/v1/forms/test-ledger/validate", {"values": {"fuels": [{}] * 100_000}}, format="json")
    assert sorted(x["code"] for x in r.json()["errors"]) == ["E8101", "E8101", "E8114"]  # amount, report, rows
    # another park's form and submission read like unknown ones
    system = access.SystemPrincipal("test")
    own = create_form(actor=system, park=park, code="own-form", name_zh="本园", definition=DEFINITION)
    publish(actor=system, form=own)
    stranger = client(people["stranger"])
    assert stranger.post("/api/v1/forms/own-form/validate", {"values": {}}, format="json").status_code == 404
    assert stranger.post("/api/v1/forms/nope/validate", {"values": {}}, format="json").status_code == 404
    sub = draft(c, park, {"amount": 1}).json()["submission"]["id"]
    for path in (f"/api/v1/submissions/{sub}", f"/api/v1/submissions/{sub}/diff?a=1&b=1"):
        assert stranger.get(path).status_code == 404 and stranger.get(path).json()["code"] == "E8301"
    assert stranger.post(f"/api/v1/submissions/{sub}/submit", {}, format="json").status_code == 404
    assert draft(stranger, park, {}).status_code == 404
    assert json.dumps(stranger.get("/api/v1/submissions").json()) == '{"results": []}'


@pytest.mark.parametrize("period, text, start", [
    ("month", "2026-11", "2026-11-01"), ("month", "202611", "2026-11-01"), ("month", "2026-11-01", "2026-11-01"),
    ("quarter", "2026-Q4", "2026-10-01"), ("quarter", "2026q1", "2026-01-01"), ("quarter", "2026-07", "2026-07-01"),
    ("year", "2026", "2026-01-01"), ("year", "2026-01-01", "2026-01-01"), ("day", "20261130", "2026-11-30"),
])
def test_a_period_is_named_in_its_own_words(period, text, start):
    from apps.entry.services.submissions import period_start

    assert period_start(period, text).isoformat() == start


@pytest.mark.parametrize("period, text", [
    ("quarter", "2026-11"), ("quarter", "2026-Q5"), ("month", "2026-Q4"), ("month", "2026"), ("year", "2026-02"),
    ("day", "2026-11"), ("month", "2026-11-02"), ("month", "2026-1\u0661"), ("month", "１２３４-11"),
    ("month", "2026-13"),
])
def test_a_period_in_other_words_is_refused_naming_the_forms_period(period, text):
    from apps.core.errors import CarbonParkError
    from apps.entry.services.submissions import period_start

    with pytest.raises(CarbonParkError) as caught:
        period_start(period, text)
    assert caught.value.error.code == "E8305"
    zh = caught.value.error.message("zh-hans", **caught.value.params)
    expected = {"day": "按日", "month": "按月", "quarter": "按季度", "year": "按年"}[period]
    assert expected in zh and text in zh, zh
