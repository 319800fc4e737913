"""Hostile input over HTTP answers 400 with a stable code, never a 500, and the valid records beside it
are kept (issue #7 items 4 and 5); reads never fail on what is stored."""

import json
import math
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from apps.catalog.models import DataItem
from apps.ingestion.models import Reading, Rejection
from apps.ingestion.services import ingest_readings
from apps.sources.models import Command, DataSource
from tests.conftest import add_source
from tests.test_ingest_api import URL, post, rec

DEEP = 2000


@pytest.fixture
def api(token_key) -> APIClient:
    """The suite's client, but a 500 comes back as a response (to be asserted on) rather than an exception."""
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_key}")
    return client


def codes(r) -> dict[int, str]:
    return {x["index"]: x["code"] for x in r.json()["rejected"]}


# --- bodies of POST /api/v1/readings --------------------------------------------------------------------------

def test_nesting_2000_deep_beside_a_valid_record(api, meter):
    deep = "[" * DEEP + "]" * DEEP
    body = "[" + json.dumps(rec()) + ',{"sourceId": "TP01-EM-0001", "value": ' + deep + "}]"
    r = post(api, body)
    assert r.status_code == 400, r.content
    assert codes(r) == {1: "E2019"}
    assert r.json()["accepted"] == 1 and Reading.objects.count() == 1
    assert Rejection.objects.get().code == "E2019"


def test_a_body_nested_2000_deep_is_refused_with_a_code(api, meter):
    r = post(api, "[" * DEEP + "]" * DEEP)  # an array: its one element is the record refused
    assert r.status_code == 400, r.content
    assert codes(r) == {0: "E2019"}
    r = post(api, '{"a":' * DEEP + "1" + "}" * DEEP)  # no array to cut into records
    assert r.status_code == 400 and r.json()["code"] == "E1001", r.content
    assert Reading.objects.count() == 0


def test_nesting_just_under_the_decoder_limits_is_a_rejection_not_a_500(api, meter):
    # orjson parses 1 000 levels; Python's repr and json.dumps of such a record would hit the recursion limit.
    depth = 1000
    body = "[" + json.dumps(rec()) + ',{"sourceId": ' + "[" * depth + "]" * depth + "}]"
    r = post(api, body)
    assert r.status_code == 400, r.content
    assert r.json()["accepted"] == 1 and set(codes(r)) == {1}


def test_a_400_digit_integer_is_out_of_range(api, meter):
    body = "[" + json.dumps(rec()) + "," + json.dumps(rec(timestamp="2026-11-23 10:06:00"))[:-1].replace(
        '"value": 1234.5', '"value": 1' + "0" * 400) + "}]"
    r = post(api, body)
    assert r.status_code == 400, r.content
    assert codes(r) == {1: "E2020"}
    assert Reading.objects.count() == 1


def test_an_integer_past_pythons_digit_limit_is_one_rejected_record(api, meter):
    body = "[" + json.dumps(rec()) + ',{"sourceId": "TP01-EM-0001", "value": 1' + "0" * 5000 + "}]"
    r = post(api, body)
    assert r.status_code == 400, r.content
    assert codes(r) == {1: "E2019"} and Reading.objects.count() == 1


def test_overflow_after_unit_conversion_is_refused(api, meter):
    r = post(api, [rec(), rec(timestamp="2026-11-23 10:06:00", value=1.7976931348623157e308, unit="MWh"),
                   rec(timestamp="2026-11-23 10:07:00", value=-1.7976931348623157e308, unit="MWh")])
    assert r.status_code == 400, r.content
    assert codes(r) == {1: "E2020", 2: "E2020"}
    assert [x.value for x in Reading.objects.all()] == [1234.5]
    assert all(math.isfinite(x.value) for x in Reading.objects.all())


@pytest.mark.parametrize("ts", ["0001-01-01 00:00:00", "9999-12-31T23:59:59-14:00", "9999-12-31 23:59:59",
                                "0001-01-01T00:00:00+14:00", "1969-12-31T23:59:59Z"])
def test_timestamps_at_the_ends_of_the_calendar(api, meter, ts):
    r = post(api, [rec(), rec(timestamp=ts)])
    assert r.status_code == 400, r.content
    assert codes(r) == {1: "E2021"}
    assert Reading.objects.count() == 1


@pytest.mark.parametrize("field", ["sourceId", "dataCode", "timestamp", "unit", "status"])
@pytest.mark.parametrize("bad", ["\x00", "\ud800"])
def test_nul_and_lone_surrogates_in_record_fields_over_http(api, meter, field, bad):
    body = json.dumps([rec(), rec(**{"timestamp": "2026-11-23 10:06:00", field: "A" + bad})])
    r = post(api, body)
    assert r.status_code == 400, r.content
    assert list(codes(r)) == [1]
    assert Reading.objects.count() == 1


@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"])
def test_unstorable_text_in_a_string_items_value(api, park, bad):
    add_source(park, "TP01-TXT-01", ["CO020104"])  # verification body: a string item
    assert DataItem.objects.get(code="CO020104").data_type == "string"
    good = {"sourceId": "TP01-TXT-01", "timestamp": "2026-11-23 10:05:00", "value": "ok"}
    r = post(api, json.dumps([good, {**good, "timestamp": "2026-11-23 10:06:00", "value": bad}]))
    assert r.status_code == 400, r.content
    assert codes(r) == {1: "E2023"}
    assert Reading.objects.count() == 1


def test_an_unexpected_error_in_one_record_rejects_that_record_only(api, meter, monkeypatch):
    from apps.ingestion import normalize

    real = normalize.parse_timestamp

    def explode(raw, tz):
        if raw == "2026-11-23 10:06:00":
            raise KeyError("bug")
        return real(raw, tz)

    monkeypatch.setattr(normalize, "parse_timestamp", explode)
    r = post(api, [rec(), rec(timestamp="2026-11-23 10:06:00")])
    assert r.status_code == 400, r.content
    assert codes(r) == {1: "E2022"} and Reading.objects.count() == 1


# --- reads of what is stored ---------------------------------------------------------------------------------

def _store_raw(meter, ts, value, received_value=None):
    """A row the pipeline would now refuse, written as a pre-fix version would have stored it."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT set_config('carbonpark.writer', 'ingest_readings', true)")
        cur.execute(
            "INSERT INTO ingestion_reading (park_id, source_id, data_item_id, ts, value, received_value, "
            "received_unit, status, flags, channel, batch_id, received_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, 'N', 0, 'test', 0, now())",
            [meter.park_id, meter.pk, meter.data_items.get().pk, ts, value, received_value,
             "MWh" if received_value is not None else ""])


def test_reads_survive_infinity_and_nan_already_stored(api, meter):
    ingest_readings([rec()], channel="test", actor="test")
    _store_raw(meter, datetime(2026, 11, 23, 2, 6, tzinfo=UTC), float("inf"), 1.7976931348623157e308)
    _store_raw(meter, datetime(2026, 11, 23, 2, 7, tzinfo=UTC), float("nan"))
    _store_raw(meter, datetime(2026, 11, 23, 2, 8, tzinfo=UTC), float("-inf"), float("-inf"))
    r = api.get(URL, {"sourceId": meter.source_id})
    assert r.status_code == 200, r.content
    rows = r.json()["results"]
    assert [x["value"] for x in rows] == [1234.5, None, None, None]
    assert rows[1]["receivedValue"] == 1.7976931348623157e308 and rows[3]["receivedValue"] is None
    r = api.get(URL, {"sourceId": meter.source_id, "format": "csv"})
    assert r.status_code == 200
    assert b"".join(r.streaming_content).decode().count("\n") == 5


def test_reads_survive_times_at_the_ends_of_the_calendar_already_stored(api, meter):
    _store_raw(meter, datetime(9999, 12, 31, 20, 0, tzinfo=UTC), 1.0)  # 10000-01-01 04:00 in Shanghai
    _store_raw(meter, datetime(1, 1, 1, 0, 0, tzinfo=UTC), 2.0)
    r = api.get(URL, {"sourceId": meter.source_id})
    assert r.status_code == 200, r.content
    assert [x["timestamp"] for x in r.json()["results"]] == ["0001-01-01 08:05:43.000", "9999-12-31 20:00:00.000"]
    r = api.get(URL, {"sourceId": meter.source_id, "format": "csv"})
    assert r.status_code == 200 and b"".join(r.streaming_content).decode().count("\n") == 3


# --- query parameters ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("param", ["start", "end"])
@pytest.mark.parametrize("ts", ["0001-01-01 00:00:00", "9999-12-31T23:59:59-14:00"])
def test_range_ends_out_of_the_calendar(api, meter, param, ts):
    r = api.get(URL, {param: ts})
    assert r.status_code == 400, r.content
    assert r.json()["code"] == "E1009" and r.json()["field"] == param


QUERY_PATHS = ["/api/v1/readings", "/api/v1/sources/", "/api/v1/catalog/items/", "/api/v1/parks/",
               "/api/v1/catalog/enumerations/", "/api/v1/sources/TP01-EM-0001/commands"]
QUERY_PARAMS = ["sourceId", "dataCode", "start", "end", "flag", "cursor", "limit", "park", "prefix", "table", "page",
                "page_size", "format"]


@pytest.mark.parametrize("path", QUERY_PATHS)
def test_nul_in_any_query_parameter_is_refused(api, meter, path):
    for param in [*QUERY_PARAMS, "x\x00"]:
        r = api.get(path, {param: "x\x00y"})
        assert r.status_code == 400, (param, r.status_code, r.content[:300])
        assert r.json()["code"] == "E1009" and r.json()["field"] == param.replace("\x00", "\\u0000")


@pytest.mark.parametrize("path", QUERY_PATHS)
def test_a_lone_surrogate_on_the_wire_of_a_query_parameter(api, meter, path):
    # A URL cannot carry U+D800 itself; its closest spelling is the invalid UTF-8 ED A0 80.
    for param in QUERY_PARAMS:
        r = api.get(f"{path}?{param}=x%ED%A0%80y")
        assert r.status_code in (200, 400, 404), (param, r.status_code, r.content[:300])
        if r.status_code != 200:
            assert r.json()["code"] == {400: "E1009", 404: "E1010"}[r.status_code], r.content


def test_huge_numbers_in_query_parameters(api, meter):
    assert api.get(URL, {"limit": "9" * 400}).status_code == 200  # capped at the largest page
    for params in ({"limit": "1e400"}, {"limit": "9" * 5000}, {"limit": "-" + "9" * 400}):
        r = api.get(URL, params)
        assert r.status_code == 400 and r.json()["code"] == "E1009", (params, r.content[:200])
    assert api.get("/api/v1/catalog/items/", {"page_size": "9" * 5000}).status_code == 200
    r = api.get("/api/v1/catalog/items/", {"page": "9" * 5000})
    assert r.status_code == 404 and r.json()["code"] == "E1010"


@pytest.mark.parametrize("cursor", ["n|9999-12-31T23:59:59-14:00|1", "p|0001-01-01T00:00:00+14:00|1",
                                    "n|2026-11-23T00:00:00+00:00|" + "9" * 400, "n|2026-11-23T00:00:00|1"])
def test_forged_cursors_never_fail(api, meter, cursor):
    import base64

    ingest_readings([rec()], channel="test", actor="test")
    r = api.get(URL, {"cursor": base64.urlsafe_b64encode(cursor.encode()).decode()})
    if cursor.endswith("T00:00:00|1"):  # no offset: not a cursor the API hands out
        assert r.status_code == 400 and r.json()["code"] == "E1009", r.content[:300]
    else:
        assert r.status_code == 200, r.content[:300]


# --- other endpoints' string inputs ----------------------------------------------------------------------------

def test_source_fields_with_nul_or_surrogates(api, park):
    for bad in ("a\x00b", "a\ud800b"):
        for field in ("name", "location", "manufacturer"):
            body = {"sourceId": "TP01-X-1", "park": "TP01", "name": "x", field: bad}
            r = api.post("/api/v1/sources/", json.dumps(body), content_type="application/json")
            assert r.status_code == 400, (field, r.status_code, r.content[:300])
            assert r.json()["code"] in ("E1011", "E1016") and r.json()["field"] == field
        r = api.post("/api/v1/sources/", json.dumps({"sourceId": "TP01-X-1", "park": "TP01", "name": "x",
                                                           "settings": {"k": bad}}), content_type="application/json")
        assert r.status_code == 400, r.content[:300]
        assert r.json()["code"] == "E1016" and r.json()["field"] == "settings"
    assert not DataSource.objects.exists()


def test_settings_null_or_not_an_object_in_a_multipart_form(api, park):
    for settings_value in ("null", "[1, 2]", "5", '"text"', '{"k": "\\u0000"}', '{"k": "\\ud800"}'):
        r = api.post("/api/v1/sources/", {"sourceId": "TP01-X-1", "park": "TP01", "name": "x",
                                                "settings": settings_value}, format="multipart")
        assert r.status_code == 400, (settings_value, r.status_code, r.content[:300])
        assert r.json()["code"] in ("E1011", "E1016") and r.json()["field"] == "settings"
    r = api.post("/api/v1/sources/", {"sourceId": "TP01-X-1", "park": "TP01", "name": "x",
                                            "settings": '{"unitId": 1}'}, format="multipart")
    assert r.status_code == 201, r.content
    assert DataSource.objects.get().settings == {"unitId": 1}


def test_command_params_that_are_not_an_object(api, meter):
    url = f"/api/v1/sources/{meter.source_id}/commands"
    for params in ([60], "seconds=60", 60, True, None):
        r = api.post(url, json.dumps({"type": "poll_now", "params": params}), content_type="application/json")
        if params is None:
            assert r.status_code in (201, 400), r.content
            continue
        assert r.status_code == 400, (params, r.status_code, r.content[:300])
        assert r.json()["code"] == "E1011" and r.json()["field"] == "params"
    for bad in ("\x00", "\ud800"):
        r = api.post(url, json.dumps({"type": "control", "params": {"x": bad}}), content_type="application/json")
        assert r.status_code == 400, r.content
        assert r.json()["code"] == "E1016"
    deep = '{"type": "control", "params": ' + '{"a":' * DEEP + "1" + "}" * DEEP + "}"
    r = api.post(url, deep, content_type="application/json")
    assert r.status_code == 400 and r.json()["code"] == "E1001"
    huge = '{"type": "control", "params": {"x": 1' + "0" * 400 + "}}"
    r = api.post(url, huge, content_type="application/json")
    assert r.status_code == 201, r.content  # jsonb keeps a 400-digit number exactly
    assert Command.objects.get().params == {"x": 10 ** 400}


def test_catalog_item_fields_with_nul_or_surrogates(api, park):
    for bad in ("a\x00b", "a\ud800b"):
        body = {"code": "CS990001", "name_zh": bad, "data_type": "number", "unit": "kWh", "park": "TP01"}
        r = api.post("/api/v1/catalog/items/", json.dumps(body), content_type="application/json")
        assert r.status_code == 400, (r.status_code, r.content[:300])
        assert r.json()["code"] in ("E1011", "E1016") and r.json()["field"] == "name_zh"
    assert not DataItem.objects.filter(code="CS990001").exists()


@pytest.mark.parametrize("path", ["/api/v1/sources/", "/api/v1/catalog/items/"])
def test_deep_nesting_and_huge_numbers_in_other_bodies(api, park, path):
    r = api.post(path, "[" * DEEP + "]" * DEEP, content_type="application/json")
    assert r.status_code == 400 and r.json()["code"] == "E1001", r.content[:300]
    r = api.post(path, json.dumps({"sourceId": "TP01-X-1", "code": "CS990001", "park": "TP01", "name": "x",
                                          "expected_interval_s": 10 ** 400, "precision": 10 ** 400}),
                       content_type="application/json")
    assert r.status_code == 400, r.content[:300]
    assert r.json()["code"] == "E1011"


@pytest.mark.parametrize("key", ["cp_\x00abc_def", "cp_ab\x00_def", "cp_abc_d\x00ef"])
def test_nul_in_a_token_is_not_authenticated(meter, key):
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    r = client.get(URL)
    assert r.status_code == 401 and r.json()["code"] == "E1007", r.content


def test_a_value_the_database_still_refuses_is_a_400_not_a_500(db):
    """The last guard behind the explicit checks: a DataError from PostgreSQL is the sender's value."""
    from django.db import DataError
    from rest_framework.test import APIRequestFactory

    from apps.core.api import exception_handler

    with pytest.raises(DataError) as caught, transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT %s::int", ["1" * 30])
    request = APIRequestFactory().get("/api/v1/anything")
    response = exception_handler(caught.value, {"request": request})
    assert response.status_code == 400
    assert response.data["code"] == "E1016" and "out of range" in response.data["message"]


def test_a_sealed_body_nested_2000_deep_is_a_400(api, meter):
    import base64

    from apps.protocols.codecs import envelope
    from apps.sources.services import keys as key_services

    key, material_b64 = key_services.provision_key(actor="t", source=meter)
    deep = ("[" + json.dumps(rec()) + "," + "[" * DEEP + "]" * DEEP + "]").encode()
    body = envelope.seal(deep, key=base64.b64decode(material_b64), key_id=key.key_id,
                         content_type=envelope.CONTENT_JSON, source_id=meter.source_id)
    r = api.post(URL, data=body, content_type="application/octet-stream")
    assert r.status_code == 400, r.content
    assert r.json().get("code") == "E1001" or r.json()["rejected"], r.content
