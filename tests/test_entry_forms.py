"""Form definitions (issue #10 items 1 and 3, R-7.3.1): the schema and the checks beyond it, publishing
immutable hashed versions, the default forms, access through the seam, and the read-only API."""

import copy
import hashlib
import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, transaction
from jsonschema import Draft202012Validator
from rest_framework.test import APIClient

from apps.accounts import access
from apps.accounts.services import set_membership
from apps.catalog.models import DataItem
from apps.catalog.services import save_data_item
from apps.core.models import AuditEntry
from apps.entry import services
from apps.entry.definitions import check_definition, content_hash
from apps.entry.models import Form, FormVersion

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "form-definition.schema.json").read_text(encoding="utf-8"))
DEFAULT_CODES = {"energy-fuel-ledger", "vegetation-soil-sinks", "engineered-sinks", "offsets-register"}
T = {"zh": "甲", "en": "A"}


def small(**extra):
    d = {"format": 1, "period": "month", "sections": [{"key": "main", "title": T, "fields": [
        {"key": "amount", "item": "CS010101", "required": True},
        {"key": "kind", "item": "CS010104"},
        {"key": "twice", "type": "number", "label": T, "calc": {"*": [{"var": "amount"}, 2]}}]}]}
    d.update(extra)
    return d


@pytest.fixture
def people(park, other_park):
    users = get_user_model().objects
    out = {}
    for role in ("admin", "operator", "viewer"):
        out[role] = users.create_user(f"{role}-1")
        set_membership(actor="test", user=out[role], park=park, role=role)
    out["stranger"] = users.create_user("stranger")
    set_membership(actor="test", user=out["stranger"], park=other_park, role="admin")
    return out


# --- the defaults ---------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_every_entered_item_is_in_a_default_form_and_every_default_is_valid():
    defaults = Form.objects.filter(park__isnull=True, code__in=DEFAULT_CODES)
    assert set(defaults.values_list("code", flat=True)) == DEFAULT_CODES
    validator = Draft202012Validator(SCHEMA)
    covered = set()
    for form in defaults:
        assert list(validator.iter_errors(form.definition)) == []
        assert check_definition(form.definition, services.catalog_lookup(None)) == []
        version = form.versions.get()
        assert version.number == 1 and version.content_hash == content_hash(version.definition)
        covered |= {f["item"] for s in version.definition["sections"] for f in s["fields"] if "item" in f}
        # published versions carry the catalog's attributes: type, unit, step and the choices with labels
        fields = {f["key"]: f for s in version.definition["sections"] for f in s["fields"]}
        if form.code == "energy-fuel-ledger":
            ncv = fields["ncv"]
            assert ncv["type"] == "number" and ncv["unit"] == "kJ/kg" and ncv["step"] == 10
            assert {"value": "raw_coal", "label": {"zh": "原煤", "en": "Raw coal"}} in fields["fuel_type"]["options"]
            assert next(s for s in version.definition["sections"] if s["key"] == "fuels")["repeat"]
        if form.code == "offsets-register":
            assert fields["certificate_number"]["unique"] is True and fields["voucher_number"]["type"] == "text"
    entered = set(DataItem.objects.filter(park__isnull=True, methods__overlap=["manual", "batch", "stage"])
                  .values_list("code", flat=True))
    assert len(entered) >= 27
    assert entered - covered == set()


def test_the_published_schema_is_in_step_and_the_example_valid():
    from apps.entry.management.commands.form_schema import render

    assert (ROOT / "docs" / "form-definition.schema.json").read_text(encoding="utf-8") == render(), \
        "docs/form-definition.schema.json is out of step: run make docs"
    Draft202012Validator.check_schema(SCHEMA)
    example = json.loads((ROOT / "docs" / "examples" / "form-definition.json").read_text(encoding="utf-8"))
    assert list(Draft202012Validator(SCHEMA).iter_errors(example)) == []
    assert check_definition(example) == []


# --- checks beyond the schema -----------------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("change,code", [
    (lambda d: d.update(period="week"), "E8201"),
    (lambda d: d["sections"][0]["fields"].append({"key": "amount", "type": "text", "label": T}), "E8202"),
    (lambda d: d["sections"][0]["fields"][0].update(item="CS999999"), "E8203"),
    (lambda d: d["sections"][0]["fields"][2].update(calc={"log": 1}), "E8201"),  # the schema's whitelist
    (lambda d: d["sections"][0]["fields"][2].update(calc={"-": [{"var": "twice"}, 1]}), "E8205"),
    (lambda d: d["sections"][0]["fields"][0].update(maxLength=3), "E8206"),
    (lambda d: d["sections"][0]["fields"][0].update(unit="kg"), "E8206"),
    (lambda d: d["sections"][0]["fields"][2].update(visibleIf=_deep(40)), "E8204"),
    (lambda d: d.update(sections=[_deep_json(200)]), "E8201"),
    (lambda d: d.update(constraints=[{"expr": True, "message": T, "fields": ["nowhere"]}]), "E8201"),
])
def test_definition_problems_have_codes(change, code):
    d = small()
    change(d)
    problems = check_definition(d, services.catalog_lookup(None))
    assert code in {p.error.code for p in problems}, [p.as_dict("en") for p in problems]


def _deep(n):
    x = 1
    for _ in range(n):
        x = {"!": x}
    return x


def _deep_json(n):
    x = []
    for _ in range(n):
        x = [x]
    return x


@pytest.mark.django_db
def test_a_park_may_name_its_own_items_but_not_another_parks(park, other_park):
    save_data_item(actor="t", code="CS010291", park=other_park, name_zh="别家", data_type="number", unit="kWh",
                   methods=["manual"])
    save_data_item(actor="t", code="CS010292", park=park, name_zh="自家", data_type="number", unit="kWh",
                   methods=["manual"])
    d = small()
    d["sections"][0]["fields"].append({"key": "mine", "item": "CS010292"})
    assert check_definition(d, services.catalog_lookup(park)) == []
    d["sections"][0]["fields"].append({"key": "theirs", "item": "CS010291"})
    assert [p.error.code for p in check_definition(d, services.catalog_lookup(park))] == ["E8203"]


# --- services, versions, the database guard ------------------------------------------------------------------------

@pytest.mark.django_db
def test_publish_freezes_a_hashed_version_and_publishing_again_changes_nothing(park, people):
    admin = people["admin"]
    form = services.create_form(actor=admin, park=park, code="tp01-ledger", name_zh="台账", definition=small())
    v1 = services.publish(actor=admin, form=form)
    assert v1.number == 1 and v1.published_by == admin
    canonical = json.dumps(v1.definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert v1.content_hash == hashlib.sha256(canonical).hexdigest()
    assert services.publish(actor=admin, form=form) == v1
    assert FormVersion.objects.filter(form=form).count() == 1
    services.save_draft(actor=admin, form=form, definition=small(period="year"), reason="yearly now")
    v2 = services.publish(actor=admin, form=form)
    assert v2.number == 2 and v2.content_hash != v1.content_hash
    v1.refresh_from_db()
    assert v1.definition["period"] == "month"
    actions = list(AuditEntry.objects.filter(park_code=park.code, action__startswith="form.")
                   .values_list("action", flat=True).order_by("seq"))
    assert actions == ["form.create", "form.publish", "form.update", "form.publish"]


@pytest.mark.django_db
def test_a_catalog_change_after_publishing_leaves_the_version_alone(park, people):
    admin = people["admin"]
    form = services.create_form(actor=admin, park=park, code="tp01-ledger", name_zh="台账", definition=small())
    v1 = services.publish(actor=admin, form=form)
    DataItem.objects.filter(code="CS010101").update(unit="kt")
    v1.refresh_from_db()
    assert v1.definition["sections"][0]["fields"][0]["unit"] == "t"
    assert services.publish(actor=admin, form=form).number == 2  # the same draft resolves differently now


@pytest.mark.django_db
def test_the_database_refuses_to_change_or_delete_a_published_version(park, people):
    form = services.create_form(actor=people["admin"], park=park, code="tp01-x", name_zh="x", definition=small())
    version = services.publish(actor=people["admin"], form=form)
    version.save()  # the same row written again (a restored copy): nothing changes, let through
    for attempt in (lambda: FormVersion.objects.filter(pk=version.pk).update(content_hash="0" * 64),
                    lambda: FormVersion.objects.filter(pk=version.pk).update(definition={}),
                    lambda: FormVersion.objects.filter(pk=version.pk).update(published_by=people["operator"]),
                    lambda: FormVersion.objects.filter(pk=version.pk).delete()):
        with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
            attempt()
    people["admin"].delete()  # the publisher's account may go: ON DELETE SET NULL is let through
    version.refresh_from_db()
    assert version.published_by is None and version.published_by_label == "admin-1"


@pytest.mark.django_db
def test_who_may_write_forms(park, other_park, people):
    with pytest.raises(access.AccessDenied):
        services.create_form(actor=people["operator"], park=park, code="tp01-a", name_zh="a", definition=small())
    with pytest.raises(access.AccessDenied):  # a platform default is the system administrator's
        services.create_form(actor=people["admin"], park=None, code="tp01-b", name_zh="b", definition=small())
    with pytest.raises(access.AccessDenied):
        services.create_form(actor=people["stranger"], park=park, code="tp01-c", name_zh="c", definition=small())
    default = Form.objects.get(code="energy-fuel-ledger")
    with pytest.raises(access.AccessDenied):
        services.publish(actor=people["admin"], form=default)
    mine = services.copy_form(actor=people["admin"], source=default, park=park, code="tp01-energy")
    assert mine.park == park and mine.definition == default.definition
    assert services.publish(actor=people["admin"], form=mine).number == 1
    with pytest.raises(access.AccessDenied):  # a copy into a park one does not manage
        services.copy_form(actor=people["admin"], source=default, park=other_park, code="tp02-energy")
    with pytest.raises(services.DefinitionError) as err:
        services.save_draft(actor=people["admin"], form=mine, definition=small(period="fortnight"))
    assert err.value.as_dict()["problems"][0]["code"] == "E8201"
    with pytest.raises(services.CarbonParkError) as taken:
        services.create_form(actor=people["admin"], park=park, code="tp01-energy", name_zh="x", definition=small())
    assert taken.value.error.code == "E8207"


# --- the API ---------------------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_api_lists_readable_forms_and_serves_versions(park, other_park, people, django_assert_max_num_queries):
    system = access.SystemPrincipal("test")
    for p in (park, other_park):
        f = services.create_form(actor=system, park=p, code=f"{p.code.lower()}-own", name_zh="本园区",
                                 definition=small())
        services.publish(actor=system, form=f)
    services.create_form(actor=system, park=park, code="tp01-draft", name_zh="草稿", definition=small())
    client = APIClient()
    client.force_login(people["operator"])
    body = client.get("/api/v1/forms").json()
    rows = {r["code"]: r for r in body["results"]}
    assert set(rows) == DEFAULT_CODES | {"tp01-own"}  # not the other park's, not the unpublished draft
    assert rows["tp01-own"]["park"] == "TP01" and rows["energy-fuel-ledger"]["park"] is None
    assert rows["energy-fuel-ledger"]["current_version"]["number"] == 1
    assert rows["energy-fuel-ledger"]["current_version"]["period"] == "month"
    r = client.get("/api/v1/forms/energy-fuel-ledger/versions/1")
    assert r.status_code == 200
    served = r.json()
    assert served["content_hash"] == content_hash(served["definition"])
    assert client.get("/api/v1/forms/tp02-own/versions/1").status_code == 404
    assert client.get("/api/v1/forms/tp01-own/versions/2").json()["code"] == "E1010"
    for n in range(5):  # the list's queries do not grow with its rows
        f = services.create_form(actor=system, park=park, code=f"tp01-more-{n}", name_zh="x", definition=small())
        services.publish(actor=system, form=f)
    with django_assert_max_num_queries(8):
        assert len(client.get("/api/v1/forms").json()["results"]) == 10


@pytest.mark.django_db
def test_fillable_forms_are_the_parks_own_and_the_defaults_for_those_who_enter(park, other_park, people):
    from apps.entry.selectors import fillable_forms

    system = access.SystemPrincipal("test")
    for p in (park, other_park):
        services.publish(actor=system, form=services.create_form(actor=system, park=p, code=f"{p.code.lower()}-f",
                                                                 name_zh="f", definition=small()))
    services.create_form(actor=system, park=park, code="tp01-unpublished", name_zh="u", definition=small())
    codes = set(fillable_forms(people["operator"], park).values_list("code", flat=True))
    assert codes == DEFAULT_CODES | {"tp01-f"}
    assert not fillable_forms(people["viewer"], park).exists()  # viewers read forms, they do not fill them
    assert not fillable_forms(people["operator"], other_park).exists()


def test_canonical_json_is_stable():
    a = {"b": [1, 2.5, "碳"], "a": {"y": None, "x": True}}
    b = copy.deepcopy(dict(reversed(list(a.items()))))
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) == hashlib.sha256('{"a":{"x":true,"y":null},"b":[1,2.5,"碳"]}'.encode()).hexdigest()


# --- the portal ------------------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_park_administrator_copies_a_default_edits_and_publishes_it_in_the_portal(park, other_park, people):
    from django.test import Client

    client = Client()
    client.force_login(people["admin"])
    default = Form.objects.get(code="offsets-register")
    page = client.get(f"/entry/form/{default.pk}/copy/")
    assert page.status_code == 200 and "TP02" not in page.content.decode()  # only the parks one manages
    r = client.post(f"/entry/form/{default.pk}/copy/", {"park": other_park.pk, "code": "tp01-offsets",
                                                        "name_zh": "抵消"})
    assert r.status_code == 200 and not Form.objects.filter(code="tp01-offsets").exists()
    r = client.post(f"/entry/form/{default.pk}/copy/", {"park": park.pk, "code": "tp01-offsets", "name_zh": "抵消",
                                                        "name_en": "Offsets"})
    mine = Form.objects.get(code="tp01-offsets")
    assert r.status_code == 302 and mine.park == park
    # a broken draft is refused at the field, with the code
    definition = copy.deepcopy(mine.definition)
    definition["sections"][0]["fields"][0]["visibleIf"] = {"log": 1}
    r = client.post(f"/entry/form/{mine.pk}/change/", {"name_zh": "抵消", "name_en": "Offsets", "is_active": "on",
                                                       "definition": json.dumps(definition)})
    assert r.status_code == 200 and "E8201" in r.content.decode()
    definition["sections"][0]["fields"][0]["visibleIf"] = {"!!": [True]}
    r = client.post(f"/entry/form/{mine.pk}/change/", {"name_zh": "抵消", "name_en": "Offsets", "is_active": "on",
                                                       "definition": json.dumps(definition)})
    assert r.status_code == 302
    r = client.post("/entry/form/", {"action": "publish", "_selected_action": [mine.pk, default.pk]})
    assert r.status_code == 302
    assert mine.versions.get().number == 1
    assert default.versions.count() == 1  # the platform's default is not the park administrator's to publish
    # a clerk reads forms but neither copies into a park nor publishes
    clerk = Client()
    clerk.force_login(people["operator"])
    assert clerk.get(f"/entry/form/{default.pk}/copy/").status_code == 403
    services.save_draft(actor=people["admin"], form=mine, definition={**definition, "period": "year"})
    clerk.post("/entry/form/", {"action": "publish", "_selected_action": [mine.pk]})
    assert mine.versions.count() == 1
    client.post("/entry/form/", {"action": "publish", "_selected_action": [mine.pk]})
    assert mine.versions.count() == 2
