"""Catalog, parks and sources endpoints; health; the error-code table and its published copy; OpenAPI."""

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from apps.accounts.services import issue_token
from apps.core.errors import error_table
from apps.core.models import AuditEntry
from apps.sources.models import DataSource

ROOT = Path(__file__).resolve().parent.parent


def test_catalog_items_endpoint_lists_the_37(api):
    r = api.get("/api/v1/catalog/items/", {"page_size": 100})
    assert r.status_code == 200
    assert r.json()["count"] == 37
    item = api.get("/api/v1/catalog/items/CS010104/").json()
    assert item["enumeration"] == "fuel_type" and item["data_type"] == "enum"
    enum = api.get("/api/v1/catalog/enumerations/fuel_type/").json()
    assert {"code": "natural_gas", "label_zh": "天然气", "label_en": "Natural gas"} in enum["values"]


def test_parks_endpoint_scoped_to_the_token(api, park, other_park):
    codes = [p["code"] for p in api.get("/api/v1/parks/").json()["results"]]
    assert codes == ["TP01"]


def test_integrator_registers_and_changes_a_source_audited(api, park):
    r = api.post("/api/v1/sources/", {"sourceId": "TP01-GM-0001", "park": "TP01", "name": "燃气表",
                                      "kind": "meter", "protocol": "modbus_tcp", "dataCodes": ["CS010101"]},
                 format="json")
    assert r.status_code == 201, r.json()
    r = api.patch("/api/v1/sources/TP01-GM-0001/", {"expected_interval_s": 900}, format="json")
    assert r.status_code == 200 and r.json()["expected_interval_s"] == 900
    assert DataSource.objects.get(source_id="TP01-GM-0001").expected_interval_s == 900
    actions = list(AuditEntry.objects.filter(object_id=str(DataSource.objects.get().pk), action__startswith="source.")
                   .values_list("action", flat=True))  # a park or token may share the id
    assert sorted(actions) == ["source.create", "source.update"]
    r = api.post("/api/v1/readings", {"sourceId": "TP01-GM-0001", "timestamp": "2026-11-23 10:00:00", "value": 1},
                 format="json")
    assert r.json()["accepted"] == 1


def test_source_with_bad_id_or_foreign_park(api, park, other_park):
    r = api.post("/api/v1/sources/", {"sourceId": "bad id", "park": "TP01", "name": "x"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "E1011"
    r = api.post("/api/v1/sources/", {"sourceId": "X1", "park": "TP02", "name": "x"}, format="json")
    assert r.status_code == 400 and r.json()["field"] == "park"


def test_device_token_cannot_manage_sources(park):
    _t, key = issue_token(actor="t", park=park, name="dev", role="device")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    r = client.post("/api/v1/sources/", {"sourceId": "X1", "park": "TP01", "name": "x"}, format="json")
    assert r.status_code == 403 and r.json()["code"] == "E1008"


def test_session_user_without_membership_sees_nothing_and_cannot_push(client, meter):
    """No role in any park: every park operation answers 403 (docs/roles.md), whatever it names."""
    user = get_user_model().objects.create_user("visitor", password="pw-123456789")
    client.force_login(user)
    r = client.get("/api/v1/parks/")
    assert r.status_code == 403 and r.json()["code"] == "E1008"
    r = client.post("/api/v1/readings", {"sourceId": "TP01-EM-0001", "timestamp": "2026-11-23 10:00:00",
                                         "value": 1}, content_type="application/json")
    assert r.status_code == 403 and r.json()["code"] == "E1008"


def test_healthz_reports_database_and_redis(client, db):
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()  # "components" lists the ingesting processes: tests/test_health.py
    assert body["status"] == "ok" and body["checks"] == {"database": "ok", "redis": "ok"}


def test_healthz_degraded_when_redis_is_unreachable(client, db, settings):
    from carbonpark.embedded import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    r = client.get("/healthz")
    assert r.status_code == 503 and r.json()["checks"]["redis"].startswith("error")


def test_error_table_served_and_published_in_docs(client, db):
    served = client.get("/api/v1/errors", HTTP_ACCEPT_LANGUAGE="en").json()
    codes = [e["code"] for e in served]
    assert codes == [e.code for e in error_table()]
    assert {"E1001", "E1003", "E1004", "E2001", "E2007", "E2008", "E2009", "E3001", "E4001"} <= set(codes)
    assert all(e["message_zh"] and e["message_en"] for e in served)
    doc = (ROOT / "docs" / "error-codes.md").read_text(encoding="utf-8")
    for e in error_table():
        assert f"| {e.code} |" in doc, f"{e.code} missing from docs/error-codes.md: run make docs"
        assert e.en.replace("|", "\\|") in doc


def test_openapi_schema_and_swagger_ui(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    doc = schema.json()
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/readings" in doc["paths"] and "post" in doc["paths"]["/api/v1/readings"]
    ui = client.get("/api/docs/")
    assert ui.status_code == 200 and b"swagger" in ui.content.lower()
    assert b"cdn.jsdelivr" not in ui.content


@pytest.mark.parametrize("path", ["/api/v1/readings", "/api/v1/sources/", "/api/v1/catalog/items/"])
def test_every_api_endpoint_authenticates(client, db, path):
    assert client.get(path).status_code == 401


def test_openapi_document_validates_without_warnings(tmp_path, db):
    from django.core.management import call_command

    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "ApiToken" in text and "maxItems: 10000" in text


def test_token_role_change_and_revocation_in_the_admin_are_audited(client, park, token_key):
    from apps.accounts.models import ApiToken

    client.force_login(get_user_model().objects.create_superuser("root", "r@example.invalid", "pw-123456789"))
    token = ApiToken.objects.get(name="integrator")
    r = client.post(f"/accounts/apitoken/{token.pk}/change/", {"role": "device", "is_active": "on"})
    assert r.status_code == 302
    token.refresh_from_db()
    assert token.role == "device" and token.is_active
    client.post(f"/accounts/apitoken/{token.pk}/change/", {"role": "device"})
    token.refresh_from_db()
    assert not token.is_active
    actions = list(AuditEntry.objects.filter(object_id=str(token.pk)).order_by("id").values_list("action", flat=True))
    assert actions == ["token.issue", "token.update", "token.revoke"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_key}")
    assert api.get("/api/v1/parks/").status_code == 401
