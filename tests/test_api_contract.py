"""The HTTP API answers what its OpenAPI document says (issue #7, item 9): real answers validated with
jsonschema against the document's own component schemas; unknown API paths answer a JSON 404 with a code;
pagination links never echo the request's Host header."""

from __future__ import annotations

import copy

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.conftest import add_source

HOSTILE_HOST = "evil.example"


def _nullable_to_jsonschema(node):
    """OpenAPI 3.0's ``nullable: true`` is not JSON Schema: turn it into a ``null`` alternative."""
    if isinstance(node, list):
        return [_nullable_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable_to_jsonschema(v) for k, v in node.items()}
    if out.pop("nullable", False):
        if "type" in out:
            out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@pytest.fixture
def openapi(client, db):
    doc = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    return _nullable_to_jsonschema(copy.deepcopy(doc))


def assert_matches(openapi, path: str, method: str, response) -> dict:
    """The answer's status is documented for the operation and its JSON body validates against the schema."""
    operation = openapi["paths"][path][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {path}: {status} is not documented"
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    registry = Registry().with_resource("urn:openapi", Resource(contents=openapi, specification=DRAFT202012))
    body = response.json()
    jsonschema.validate(body, _absolute_refs(schema), cls=jsonschema.Draft202012Validator, registry=registry)
    return body


def _absolute_refs(node):
    """The operation's ``#/components/...`` references, pointed at the whole document in the registry."""
    if isinstance(node, list):
        return [_absolute_refs(n) for n in node]
    if not isinstance(node, dict):
        return node
    return {k: ("urn:openapi" + v if k == "$ref" else _absolute_refs(v)) for k, v in node.items()}


# -- unknown paths -------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["get", "post", "patch", "delete"])
@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v1/sources/bad%20id/", "/api/v1/readings/extra",
                                  "/api/v1/sources/%C2%84/commands/", "/api/v2/readings", "/api/"])
def test_unknown_api_paths_answer_json_404_with_a_code(api, openapi, method, path):
    response = getattr(api, method)(path, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 404, (response.status_code, response.get("Location"))
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == "E1010" and body["message"].startswith("Not found")
    jsonschema.validate(body, _absolute_refs({"$ref": "#/components/schemas/Error"}),
                        registry=Registry().with_resource("urn:openapi", Resource(openapi, DRAFT202012)))


def test_unknown_api_path_without_credentials_is_no_login_redirect(client, db):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.json()["code"] == "E1010"
    response = client.post("/api/v1/nothing-here", {"a": 1})  # no CSRF page either
    assert response.status_code == 404 and response.json()["code"] == "E1010"


def test_known_source_not_found_matches_the_schema(api, openapi, park):
    body = assert_matches(openapi, "/api/v1/sources/{sourceId}/", "get", api.get("/api/v1/sources/TP01-NONE/"))
    assert body["code"] == "E1010"


# -- bodies against the document -----------------------------------------------------------------------

def test_command_list_matches_the_schema(api, openapi, meter):
    url = f"/api/v1/sources/{meter.source_id}/commands"
    created = api.post(url, {"type": "set_interval", "params": {"seconds": 600}}, format="json")
    assert_matches(openapi, "/api/v1/sources/{sourceId}/commands/", "post", created)
    api.post(url, {"type": "poll_now", "params": {}}, format="json")
    listed = assert_matches(openapi, "/api/v1/sources/{sourceId}/commands/", "get", api.get(url))
    assert listed["count"] == 2 and [c["type"] for c in listed["results"]] == ["poll_now", "set_interval"]
    page = assert_matches(openapi, "/api/v1/sources/{sourceId}/commands/", "get", api.get(url, {"page_size": 1}))
    assert len(page["results"]) == 1 and page["next"]
    refused = api.post(url, {"type": "set_interval", "params": {"seconds": 5}}, format="json")
    assert assert_matches(openapi, "/api/v1/sources/{sourceId}/commands/", "post", refused)["code"] == "E1011"


@pytest.mark.parametrize("key", ["", "x" * 256, "clé-non-ascii", "tab\there"])
def test_bad_idempotency_key_400_matches_the_schema(api, openapi, meter, key):
    response = api.post("/api/v1/readings", {"sourceId": meter.source_id, "timestamp": "2026-11-23 10:00:00",
                                             "value": 1}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    body = assert_matches(openapi, "/api/v1/readings", "post", response)
    assert response.status_code == 400 and body["code"] == "E1014" and body["field"] == "Idempotency-Key"


def test_readings_answers_match_the_schema(api, openapi, meter):
    good = {"sourceId": meter.source_id, "timestamp": "2026-11-23 10:00:00", "value": 1}
    assert_matches(openapi, "/api/v1/readings", "post", api.post("/api/v1/readings", good, format="json"))
    mixed = api.post("/api/v1/readings", [good, {**good, "value": -1}, {**good, "sourceId": "NOPE"}], format="json")
    body = assert_matches(openapi, "/api/v1/readings", "post", mixed)
    assert mixed.status_code == 400 and body["duplicates"] == 1 and len(body["rejected"]) == 2
    not_json = api.post("/api/v1/readings", b"{", content_type="application/json")
    assert assert_matches(openapi, "/api/v1/readings", "post", not_json)["code"] == "E1001"
    page = api.get("/api/v1/readings", {"sourceId": meter.source_id})
    page = assert_matches(openapi, "/api/v1/readings", "get", page)
    from apps.ingestion.rollups import refresh

    refresh()
    hours = assert_matches(openapi, "/api/v1/readings", "get", api.get("/api/v1/readings", {"interval": "hour"}))
    assert hours["results"] and set(hours["results"][0]) >= {"sourceId", "dataCode", "start", "count", "sum", "min",
                                                              "max", "last"}
    assert page["results"][0]["sourceId"] == meter.source_id


def test_error_answers_are_documented(client, openapi, park):
    assert_matches(openapi, "/api/v1/sources/", "get", client.get("/api/v1/sources/"))  # 401
    assert_matches(openapi, "/api/v1/readings", "get", client.get("/api/v1/readings"))  # 401


# -- pagination links ----------------------------------------------------------------------------------

def test_pagination_links_never_echo_a_hostile_host(api, park, settings):
    for n in range(3):
        add_source(park, f"TP01-EM-000{n}", ["CS010201"])
    page = api.get("/api/v1/sources/", {"page_size": 1, "page": 2}, HTTP_HOST=HOSTILE_HOST).json()
    assert page["next"] == "/api/v1/sources/?page_size=1&page=3"
    assert page["previous"] == "/api/v1/sources/?page_size=1"
    settings.PUBLIC_BASE_URL = "https://carbon.example.com/"
    page = api.get("/api/v1/sources/", {"page_size": 1}, HTTP_HOST=HOSTILE_HOST).json()
    assert page["next"] == "https://carbon.example.com/api/v1/sources/?page_size=1&page=2"


def test_readings_cursor_links_never_echo_a_hostile_host(api, meter, settings):
    records = [{"sourceId": meter.source_id, "timestamp": f"2026-11-23 10:0{m}:00", "value": m} for m in range(3)]
    assert api.post("/api/v1/readings", records, format="json").json()["accepted"] == 3
    page = api.get("/api/v1/readings", {"sourceId": meter.source_id, "limit": 1}, HTTP_HOST=HOSTILE_HOST).json()
    assert page["next"].startswith("/api/v1/readings?") and HOSTILE_HOST not in page["next"]
    follow = api.get(page["next"], HTTP_HOST=HOSTILE_HOST).json()
    assert follow["results"] and follow["results"][0] != page["results"][0]
    assert HOSTILE_HOST not in (follow["previous"] or "")
    settings.PUBLIC_BASE_URL = "https://carbon.example.com"
    page = api.get("/api/v1/readings", {"sourceId": meter.source_id, "limit": 1}, HTTP_HOST=HOSTILE_HOST).json()
    assert page["next"].startswith("https://carbon.example.com/api/v1/readings?")


def test_pagination_is_documented_as_a_uri_reference(openapi):
    page = openapi["components"]["schemas"]["PaginatedDataSourceList"]["properties"]
    assert page["next"]["format"] == "uri-reference"


# -- camelCase field names, the old snake_case ones readable for one release -----------------------------

SOURCE_CAMEL = ["sourceId", "park", "name", "kind", "protocol", "dataCodes", "collectionMethod",
                "expectedIntervalSeconds", "enabled", "evidenceRequired", "manufacturer", "model", "serialNumber",
                "location", "settings"]


def test_sources_answer_in_camel_case_with_deprecated_snake_case_duplicates(api, openapi, meter):
    body = assert_matches(openapi, "/api/v1/sources/{sourceId}/", "get", api.get(f"/api/v1/sources/{meter.source_id}/"))
    assert list(body)[:len(SOURCE_CAMEL)] == SOURCE_CAMEL
    assert body["expectedIntervalSeconds"] == body["expected_interval_s"] == 300
    assert body["collectionMethod"] == body["collection_method"] == "realtime"
    schema = openapi["components"]["schemas"]["DataSource"]["properties"]
    for old in ("collection_method", "expected_interval_s", "evidence_required", "serial_number"):
        assert schema[old]["deprecated"] is True and schema[old]["readOnly"] is True
    request = openapi["components"]["schemas"]["DataSourceRequest"]["properties"]
    assert "expectedIntervalSeconds" in request and "expected_interval_s" not in request


def test_sources_accept_camel_case_and_the_old_names(api, openapi, park):
    r = api.post("/api/v1/sources/", {"sourceId": "TP01-GM-0001", "park": "TP01", "name": "燃气表",
                                      "collectionMethod": "manual", "expectedIntervalSeconds": 900,
                                      "serialNumber": "SN-1", "evidenceRequired": True}, format="json")
    body = assert_matches(openapi, "/api/v1/sources/", "post", r)
    assert (body["collectionMethod"], body["expectedIntervalSeconds"], body["serialNumber"],
            body["evidenceRequired"]) == ("manual", 900, "SN-1", True)
    r = api.patch("/api/v1/sources/TP01-GM-0001/", {"expected_interval_s": 1200, "serial_number": "SN-2"},
                  format="json")
    assert r.status_code == 200 and r.json()["expectedIntervalSeconds"] == 1200 and r.json()["serialNumber"] == "SN-2"
    r = api.patch("/api/v1/sources/TP01-GM-0001/", "expected_interval_s=1500",
                  content_type="application/x-www-form-urlencoded")
    assert r.status_code == 200 and r.json()["expectedIntervalSeconds"] == 1500
    # both names at once must agree
    r = api.patch("/api/v1/sources/TP01-GM-0001/", {"expected_interval_s": 60, "expectedIntervalSeconds": 120},
                  format="json")
    assert r.status_code == 400 and r.json()["field"] == "expected_interval_s"
    r = api.patch("/api/v1/sources/TP01-GM-0001/", {"expectedIntervalSeconds": 30}, format="json")
    assert r.status_code == 400 and r.json()["field"] == "expectedIntervalSeconds"


def test_commands_answer_in_camel_case(api, openapi, meter):
    url = f"/api/v1/sources/{meter.source_id}/commands"
    body = assert_matches(openapi, "/api/v1/sources/{sourceId}/commands/", "post",
                          api.post(url, {"type": "poll_now", "params": {}, "expiresIn": 60}, format="json"))
    for new, old in (("createdAt", "created_at"), ("expiresAt", "expires_at"), ("createdBy", "created_by"),
                     ("publishedAt", "published_at"), ("acknowledgedAt", "acknowledged_at")):
        assert body[new] == body[old]
    assert body["publishedAt"] is None and body["expiresAt"] > body["createdAt"]
