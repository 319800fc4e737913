"""The form designer's views (issue #10 item 2, R-7.3.1): who may open, check, save and publish (the seam), and
hostile bodies at the check endpoint answered with codes, never a 500. The page itself is driven in Chromium
by tests/test_browser_designer.py."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from apps.accounts.services import set_membership
from apps.catalog.services import save_data_item
from apps.entry import services
from apps.entry.models import Form

T = {"zh": "甲", "en": "A"}
GOOD = {"format": 1, "period": "month", "sections": [{"key": "main", "title": T, "fields": [
    {"key": "amount", "item": "CS010101", "required": True}]}]}


@pytest.fixture
def setup(park, other_park):
    users = get_user_model().objects
    people = {}
    for role in ("admin", "operator"):
        people[role] = users.create_user(f"{role}-d")
        set_membership(actor="test", user=people[role], park=park, role=role)
    people["other-admin"] = users.create_user("other-admin-d")
    set_membership(actor="test", user=people["other-admin"], park=other_park, role="admin")
    form = services.create_form(actor=people["admin"], park=park, code="boiler", name_zh="锅炉", definition=GOOD)
    clients = {}
    for who, user in people.items():
        clients[who] = Client()
        clients[who].force_login(user)
    return form, clients


def url(form, what=""):
    return reverse("admin:entry_form_design", args=[form.pk]) + (f"{what}/" if what else "")


def post(client, target, body, **extra):
    data = body if isinstance(body, bytes) else json.dumps({"definition": body}).encode()
    return client.post(target, data=data, content_type="application/json", **extra)


@pytest.mark.django_db
def test_only_those_who_manage_the_park_design_save_and_publish(setup):
    form, clients = setup
    page = clients["admin"].get(url(form))
    assert page.status_code == 200
    config = page.context["config"]
    assert config["definition"] == GOOD
    items = {i["code"]: i for g in config["catalog"] for i in g["items"]}
    assert items["CS010104"]["options"] and items["CS010101"]["unit"]
    assert clients["operator"].get(url(form)).status_code == 403  # a clerk of the park
    assert clients["other-admin"].get(url(form)).status_code == 403  # another park's administrator
    changed = {**GOOD, "period": "year"}
    for who in ("operator", "other-admin"):
        for answer in (post(clients[who], url(form, "save"), changed), post(clients[who], url(form, "check"), changed),
                       clients[who].post(url(form, "publish"))):
            assert answer.status_code == 403
            assert [p["code"] for p in answer.json()["problems"]] == ["E8292"]
    form.refresh_from_db()
    assert form.definition["period"] == "month" and not form.versions.exists()

    assert post(clients["admin"], url(form, "save"), changed).json()["ok"] is True
    answer = clients["admin"].post(url(form, "publish")).json()
    version = form.versions.get()
    assert answer == {"ok": True, "number": 1, "content_hash": version.content_hash}
    assert version.definition["period"] == "year"
    # a platform default form: system administrators only
    default = Form.objects.filter(park__isnull=True).first()
    assert clients["admin"].get(url(default)).status_code == 403


@pytest.mark.django_db
def test_csrf_is_required(setup):
    form, _clients = setup
    client = Client(enforce_csrf_checks=True)
    client.force_login(form.created_by)
    assert post(client, url(form, "save"), GOOD).status_code == 403
    assert post(client, url(form, "check"), GOOD).status_code == 403


@pytest.mark.django_db
def test_save_answers_the_problems_at_their_paths(setup):
    form, clients = setup
    bad = {"format": 1, "period": "month", "sections": [{"key": "main", "title": T, "fields": [
        {"key": "amount", "item": "CS010101"}, {"key": "amount", "type": "number", "label": T}]},
        {"key": "rows", "title": T, "repeat": {"min": 0, "max": 5}, "fields": []}]}
    answer = post(clients["admin"], url(form, "save"), bad)
    assert answer.status_code == 400
    problems = answer.json()["problems"]
    assert [(p["code"], p["path"]) for p in problems] == [("E8201", "sections[1].fields")]
    bad["sections"][1]["fields"] = [{"key": "x", "type": "number", "label": T, "visibleIf": {"var": "amount"}}]
    problems = post(clients["admin"], url(form, "save"), bad).json()["problems"]
    assert {(p["code"], p["path"]) for p in problems} >= {("E8202", "sections[0].fields[1].key")}
    form.refresh_from_db()
    assert form.definition == GOOD


@pytest.mark.django_db
def test_hostile_bodies_get_codes_never_500(setup, park, other_park):
    form, clients = setup
    c = clients["admin"]
    target = url(form, "check")
    save_data_item(actor="t", code="CS010291", park=other_park, name_zh="别家", data_type="number", unit="kWh",
                   methods=["manual"])
    nested = b'{"definition": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    deep_logic = {"format": 1, "period": "month", "sections": [{"key": "m", "title": T, "fields": [
        {"key": "x", "type": "number", "label": T, "visibleIf": json.loads("[" * 60 + "1" + "]" * 60)}]}]}

    def field(**f):
        return {"format": 1, "period": "month", "sections": [{"key": "m", "title": T, "fields": [{"key": "x", **f}]}]}

    cases = {
        "nul": post(c, target, field(type="text", label={"zh": "a\u0000b"})),
        "10^400 literal": post(c, target, b'{"definition": {"format": 1, "period": "month", "sections": [{"key": '
                                          b'"m", "title": {"zh": "a"}, "fields": [{"key": "x", "type": "number", '
                                          b'"label": {"zh": "a"}, "max": 1' + b"0" * 400 + b"}]}]}}"),
        "1e400": post(c, target, b'{"definition": {"format": 1, "period": "month", "sections": [], "x": 1e400}}'),
        "nesting 5000": post(c, target, nested),
        "nesting 60 in an expression": post(c, target, deep_logic),
        "10 MB": post(c, target, b'{"definition": "' + b"a" * 10_000_000 + b'"}'),
        "not JSON": post(c, target, b"\xff\xfe{"),
        "lone surrogate": post(c, target, b'{"definition": {"format": 1, "x": "\\ud800"}}'),
        "a list": post(c, target, b"[1, 2]"),
        "unknown item": post(c, target, field(item="CS999999")),
        "another park's item": post(c, target, field(item="CS010291")),
        "unknown operator": post(c, target, field(type="number", label=T, calc={"eval": "1"})),
    }
    for name, answer in cases.items():
        assert answer.status_code in (200, 400, 413), (name, answer.status_code)
        body = answer.json()
        assert body["ok"] is False and body["problems"], name
        assert all(p["code"].startswith("E82") for p in body["problems"]), (name, body)
    codes = {name: {p["code"] for p in a.json()["problems"]} for name, a in cases.items()}
    assert codes["unknown item"] == codes["another park's item"] == {"E8203"}
    assert [(p["code"], p["path"]) for p in cases["unknown operator"].json()["problems"]] == [
        ("E8201", "sections[0].fields[0].calc")]
    assert cases["10 MB"].status_code == 413
    assert post(c, target, GOOD).json() == {"ok": True, "problems": []}


@pytest.mark.django_db
def test_form_ids_that_name_no_form_of_the_users_park_get_codes(setup, other_park):
    """Another park's form id, unknown ids, ids that are not numbers or past 64 bits: E8292 or E8291 in JSON from
    every endpoint (a 403 or 404 page for the designer page itself), never a 500, and nothing written."""
    form, clients = setup
    c = clients["admin"]
    their_admin = get_user_model().objects.get(username="other-admin-d")
    theirs = services.create_form(actor=their_admin, park=other_park, code="theirs", name_zh="别家", definition=GOOD)
    base = reverse("admin:entry_form_design", args=[form.pk]).rsplit(f"/{form.pk}/", 1)[0]
    ids = {str(theirs.pk): ("E8292", 403), "999999999": ("E8291", 404), "abc": ("E8291", 404),
           "9" * 30: ("E8291", 404), "-1": ("E8291", 404), "\uff11": ("E8291", 404), "1%00": ("E8291", 404),
           "1.0": ("E8291", 404)}
    for object_id, (code, status) in ids.items():
        for what in ("check", "save", "publish"):
            answer = post(c, f"{base}/{object_id}/design/{what}/", {**GOOD, "period": "year"})
            assert answer.status_code == status, (object_id, what)
            assert [p["code"] for p in answer.json()["problems"]] == [code], (object_id, what)
            assert answer.json()["problems"][0]["messages"]["zh"]
        assert c.get(f"{base}/{object_id}/design/").status_code == status, object_id
    theirs.refresh_from_db()
    assert theirs.definition == GOOD and not theirs.versions.exists()


@pytest.mark.django_db
def test_a_form_added_without_a_definition_opens_in_the_designer(setup, park):
    _form, clients = setup
    answer = clients["admin"].post(reverse("admin:entry_form_add"), {
        "park": park.pk, "code": "new-form", "name_zh": "新表", "name_en": "", "is_active": "on", "definition": ""})
    assert answer.status_code == 302, answer.content[:2000]
    created = Form.objects.get(code="new-form")
    assert answer["Location"] == url(created)
    assert created.park == park and created.definition["title"] == {"zh": "新表"}
    assert [f["key"] for f in created.definition["sections"][0]["fields"]] == ["remarks"]
    assert clients["admin"].get(url(created)).status_code == 200
    # a clerk cannot add one
    assert clients["operator"].post(reverse("admin:entry_form_add"), {
        "park": park.pk, "code": "clerk-form", "name_zh": "录入员表", "is_active": "on", "definition": ""}
    ).status_code == 403
    assert not Form.objects.filter(code="clerk-form").exists()


def test_the_forms_list_links_the_designer_only_where_the_user_may_manage(setup):
    form, clients = setup
    own = url(form)
    platform = Form.objects.filter(park__isnull=True).first()  # a default form, installed by the migration
    page = clients["admin"].get(reverse("admin:entry_form_changelist")).content.decode()
    assert f'href="{own}"' in page and f'href="{url(platform)}"' not in page
    page = clients["operator"].get(reverse("admin:entry_form_changelist")).content.decode()
    assert f'href="{own}"' not in page
