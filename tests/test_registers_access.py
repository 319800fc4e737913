"""Meter registers through the access seam (issue #12 item 2): GET /api/v1/consumption and the portal's register
pages. A park administrator manages their park's registers only; another park's ids answer like unknown ones;
hostile input is a 400 or a form error, never a 500."""

from datetime import datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.services import set_membership
from apps.catalog.models import DataItem
from apps.ingestion import rollups
from apps.ingestion.services import ingest_readings
from apps.quality.models import MeterReplacement, RegisterSetting
from apps.quality.registers.derive import derive_consumption
from apps.quality.registers.services import save_register_setting
from tests.conftest import add_source

TEXTS = ["\x00", "a\x00b", "x" * 20_000, "99999999999999999999999999", "-1", "1e999", "NaN", "' OR 1=1 --",
         "<script>alert(1)</script>", "%00", str(2**63)]
URL = "/api/v1/consumption"


def person(park, role, name):
    user = get_user_model().objects.create_user(name, password="x-Unused-123")
    set_membership(actor="test", user=user, park=park, role=role)
    return user


@pytest.fixture
def world(park, other_park):
    item = DataItem.objects.get(code="CS010201")
    mine = add_source(park, "TP01-EM-0001", ["CS010201"])
    theirs = add_source(other_park, "TP02-EM-0001", ["CS010201"])
    settings = {}
    for src in (mine, theirs):
        settings[src.park.code] = save_register_setting(actor="test", source=src, data_item=item,
                                                        modulus=1_000_000)
        t0 = datetime(2026, 11, 2, 8, 0)
        ingest_readings([{"sourceId": src.source_id, "timestamp": (t0 + timedelta(minutes=5 * k)).strftime(
            "%Y-%m-%d %H:%M:%S"), "value": 100.0 + k} for k in range(25)], channel="test", actor="test")
    rollups.refresh(budget=None)
    derive_consumption()
    return {"mine": mine, "theirs": theirs, "settings": settings, "item": item}


def api_for(user):
    c = APIClient()
    c.force_authenticate(user)
    return c


def test_the_api_gives_intervals_hours_days_and_months(park, world):
    viewer = api_for(person(park, "viewer", "v1"))
    r = viewer.get(URL, {"source": "TP01-EM-0001", "interval": "interval", "limit": 10})
    assert r.status_code == 200, r.content
    body = r.json()
    assert len(body["results"]) == 10 and body["next"]
    first = body["results"][0]
    assert first == {"sourceId": "TP01-EM-0001", "dataCode": "CS010201", "start": "2026-11-02 08:00:00",
                     "end": "2026-11-02 08:05:00", "readingStart": 100.0, "readingEnd": 101.0, "advance": 1.0,
                     "consumption": 1.0, "kind": "ok", "gap": False, "unit": "kWh"}
    rest = viewer.get(body["next"]).json()
    assert len(rest["results"]) == 10 and rest["results"][0]["start"] == "2026-11-02 08:50:00"
    hours = viewer.get(URL, {"source": "TP01-EM-0001", "code": "CS010201"}).json()["results"]
    assert [(h["start"], h["consumption"]) for h in hours] == [("2026-11-02 08:00:00", 12.0),
                                                               ("2026-11-02 09:00:00", 12.0)]
    day, = viewer.get(URL, {"source": "TP01-EM-0001", "interval": "day"}).json()["results"]
    assert (day["start"], day["consumption"], day["intervals"], day["flagged"]) == ("2026-11-02 00:00:00", 24.0,
                                                                                    24, 0)
    month, = viewer.get(URL, {"source": "TP01-EM-0001", "interval": "month"}).json()["results"]
    assert month["start"] == "2026-11-01 00:00:00" and month["consumption"] == 24.0
    narrowed = viewer.get(URL, {"source": "TP01-EM-0001", "from": "2026-11-02 09:00:00",
                                "to": "2026-11-02 09:00:00"}).json()["results"]
    assert [h["start"] for h in narrowed] == ["2026-11-02 09:00:00"]


def test_another_parks_source_answers_like_an_unknown_one(park, world):
    viewer = api_for(person(park, "viewer", "v1"))
    theirs = viewer.get(URL, {"source": "TP02-EM-0001"})
    unknown = viewer.get(URL, {"source": "TP09-EM-0001"})
    assert theirs.status_code == unknown.status_code == 400
    assert theirs.json()["code"] == unknown.json()["code"] == "E1009"
    assert theirs.content.replace(b"TP02", b"TP09") == unknown.content
    # a source of the caller's park with no register is refused too, naming no other park
    add_source(park, "TP01-EM-0009", ["CS010201"])
    assert viewer.get(URL, {"source": "TP01-EM-0009"}).json()["code"] == "E1009"


def test_hostile_query_parameters_are_400_never_500(park, world):
    viewer = api_for(person(park, "viewer", "v1"))
    for name in ("source", "code", "interval", "from", "to", "cursor", "limit"):
        for text in TEXTS:
            params = {"source": "TP01-EM-0001", name: text}
            r = viewer.get(URL, params)
            assert r.status_code in (200, 400), (name, text[:20], r.status_code)
            if r.status_code == 400:
                assert r.json()["code"] == "E1009"
    assert viewer.get(URL, {}).json()["code"] == "E1009"
    # a device token (push only) may not read; anonymous neither
    assert APIClient().get(URL, {"source": "TP01-EM-0001"}).status_code in (401, 403)


def test_the_consumption_api_is_in_the_openapi_schema(admin_client):
    schema = admin_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    op = schema["paths"]["/api/v1/consumption"]["get"]
    assert op["operationId"] == "consumption_query"
    assert {p["name"] for p in op["parameters"]} >= {"source", "code", "interval", "from", "to"}


@pytest.fixture
def park_admin(park):
    client = Client()
    client.force_login(person(park, "admin", "pa"))
    return client


ADMIN = "/quality/registersetting/"


def form(source, item, **extra):
    data = {"source": source.pk, "data_item": item.pk, "modulus": "1000000", "ct_ratio": "1", "pt_ratio": "1",
            "rated_power_kw": "", "max_delta_per_hour": "", "note": "",
            "replacements-TOTAL_FORMS": "0", "replacements-INITIAL_FORMS": "0",
            "replacements-MIN_NUM_FORMS": "0", "replacements-MAX_NUM_FORMS": "1000"}
    data.update(extra)
    return data


def test_a_park_administrator_manages_their_parks_registers_only(park, world, park_admin):
    page = park_admin.get(ADMIN)
    assert page.status_code == 200
    assert b"TP01-EM-0001" in page.content and b"TP02-EM-0001" not in page.content
    mine, theirs = world["settings"]["TP01"], world["settings"]["TP02"]
    assert park_admin.get(f"{ADMIN}{mine.pk}/change/").status_code == 200
    other = park_admin.get(f"{ADMIN}{theirs.pk}/change/")
    unknown = park_admin.get(f"{ADMIN}999999/change/")
    assert other.status_code == unknown.status_code == 302
    assert other["Location"] == unknown["Location"]
    # a replacement added inline, with CT and PT: saved through the service, audited, queued
    r = park_admin.post(f"{ADMIN}{mine.pk}/change/", form(
        world["mine"], world["item"], ct_ratio="40", pt_ratio="100", **{
            "replacements-TOTAL_FORMS": "1", "replacements-0-ts_0": "2026-11-02", "replacements-0-ts_1": "09:02:00",
            "replacements-0-old_last": "113.4", "replacements-0-new_first": "0.0", "replacements-0-note": "swap"}))
    assert r.status_code == 302, r.content[:2000]
    mine.refresh_from_db()
    assert (mine.ct_ratio, mine.pt_ratio) == (40, 100)
    assert MeterReplacement.objects.filter(setting=mine, old_last=113.4).exists()
    # another park's source in the form: not a choice
    r = park_admin.post(f"{ADMIN}add/", form(world["theirs"], world["item"]))
    assert r.status_code == 200 and b"errornote" in r.content
    assert RegisterSetting.objects.filter(source=world["theirs"]).count() == 1
    # a move of my register to their source: refused the same way
    r = park_admin.post(f"{ADMIN}{mine.pk}/change/", form(world["theirs"], world["item"]))
    assert r.status_code == 200 and RegisterSetting.objects.get(pk=mine.pk).source == world["mine"]
    # and a post to their register changes nothing
    park_admin.post(f"{ADMIN}{theirs.pk}/change/", form(world["theirs"], world["item"], ct_ratio="7"))
    theirs.refresh_from_db()
    assert theirs.ct_ratio == 1


def test_hostile_numbers_in_the_register_form_are_form_errors(park, world, park_admin):
    mine = world["settings"]["TP01"]
    for field in ("modulus", "ct_ratio", "pt_ratio", "rated_power_kw", "max_delta_per_hour"):
        for text in ["1e999", "-1", "0", "NaN", "1e300", "\x00", "x" * 5000, "99999999999999999999999999"]:
            r = park_admin.post(f"{ADMIN}{mine.pk}/change/", form(world["mine"], world["item"], **{field: text}))
            assert r.status_code == 200, (field, text[:20], r.status_code)
    mine.refresh_from_db()
    assert (mine.modulus, mine.ct_ratio, mine.pt_ratio) == (1_000_000, 1, 1)
    r = park_admin.post(f"{ADMIN}{mine.pk}/change/", form(world["mine"], world["item"], **{
        "replacements-TOTAL_FORMS": "1", "replacements-0-ts_0": "2026-11-02", "replacements-0-ts_1": "09:02:00",
        "replacements-0-old_last": "1e300", "replacements-0-new_first": "NaN"}))
    assert r.status_code == 200 and not MeterReplacement.objects.exists()


def test_a_viewer_sees_registers_but_changes_nothing(park, world):
    client = Client()
    client.force_login(person(park, "viewer", "v1"))
    mine = world["settings"]["TP01"]
    assert client.get(ADMIN).status_code == 200
    r = client.post(f"{ADMIN}{mine.pk}/change/", form(world["mine"], world["item"], ct_ratio="9"))
    assert r.status_code == 403
    mine.refresh_from_db()
    assert mine.ct_ratio == 1
