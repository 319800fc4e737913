"""Regressions of issue #8's hostile review: a park takeover by PATCH, a device token reading, and another park's
codes answering differently from unknown ones (an existence oracle)."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.accounts.services import issue_token, set_membership
from apps.catalog.models import DataItem
from apps.catalog.services import save_data_item
from apps.ingestion.services import ingest_readings
from apps.sources.models import DataSource
from apps.sources.services.commands import create_command
from tests.conftest import add_source
from tests.test_api_contract import assert_matches, openapi  # noqa: F401 (a fixture)


def custom_item(park, code):
    return save_data_item(actor="t", code=code, park=park, name_zh="自定义", data_type="number", unit="kWh",
                          methods=["realtime"])


def session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def parks_a_b(park, other_park):
    """Park A (TP01) and park B (TP02), each with a source, a reading, a command and a custom code."""
    for p, n in ((park, 1), (other_park, 2)):
        src = add_source(p, f"{p.code}-EM-0001", ["CS010201"])
        custom_item(p, f"CS01029{n}")
        ingest_readings([{"sourceId": src.source_id, "timestamp": "2026-11-23 10:00:00", "value": 1}],
                        channel="test", actor="t")
        create_command(actor="t", source=src, type="poll_now")
    return park, other_park


def test_admin_of_a_viewer_of_b_cannot_take_over_b_source_or_custom_code(parks_a_b):
    a, b = parks_a_b
    user = get_user_model().objects.create_user("a-admin-b-viewer")
    set_membership(actor="t", user=user, park=a, role="admin")
    set_membership(actor="t", user=user, park=b, role="viewer")
    client = session(user)
    r = client.patch("/api/v1/sources/TP02-EM-0001/", {"park": "TP01"}, format="json")
    assert r.status_code == 403 and r.json()["code"] == "E1008"
    r = client.patch("/api/v1/catalog/items/CS010292/", {"park": "TP01"}, format="json")
    assert r.status_code == 403 and r.json()["code"] == "E1008"
    # nor push its own objects into B, where it only views
    r = client.patch("/api/v1/sources/TP01-EM-0001/", {"park": "TP02"}, format="json")
    assert r.status_code == 403
    r = client.patch("/api/v1/catalog/items/CS010291/", {"park": "TP02"}, format="json")
    assert r.status_code == 403
    assert DataSource.objects.get(source_id="TP02-EM-0001").park == b
    assert DataSource.objects.get(source_id="TP01-EM-0001").park == a
    assert DataItem.objects.get(code="CS010292").park == b and DataItem.objects.get(code="CS010291").park == a
    # administering both, the move is allowed: the rule is "the right in both parks"
    set_membership(actor="t", user=user, park=b, role="admin")
    assert client.patch("/api/v1/sources/TP02-EM-0001/", {"park": "TP01"}, format="json").status_code == 200
    assert DataSource.objects.get(source_id="TP02-EM-0001").park == a
    # a source moves without the codes of the park it leaves
    assert client.patch("/api/v1/sources/TP01-EM-0001/", {"dataCodes": ["CS010291"]}, format="json").status_code == 200
    r = client.patch("/api/v1/sources/TP01-EM-0001/", {"park": "TP02"}, format="json")
    assert r.status_code == 400 and r.json()["field"] == "data_items"
    assert DataSource.objects.get(source_id="TP01-EM-0001").park == a


def test_admin_of_a_without_role_in_b_gets_404_and_nothing_changes(parks_a_b):
    a, b = parks_a_b
    user = get_user_model().objects.create_user("a-admin")
    set_membership(actor="t", user=user, park=a, role="admin")
    client = session(user)
    assert client.patch("/api/v1/sources/TP02-EM-0001/", {"park": "TP01"}, format="json").status_code == 404
    assert client.patch("/api/v1/catalog/items/CS010292/", {"park": "TP01"}, format="json").status_code == 404
    assert DataSource.objects.get(source_id="TP02-EM-0001").park == b
    assert DataItem.objects.get(code="CS010292").park == b


def test_device_token_pushes_but_reads_nothing_of_its_park(parks_a_b, openapi):  # noqa: F811
    a, _b = parks_a_b
    _token, key = issue_token(actor="t", park=a, name="meter-gw", role="device")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    for path in ["/api/v1/readings?sourceId=TP01-EM-0001", "/api/v1/readings?format=csv", "/api/v1/sources/",
                 "/api/v1/sources/TP01-EM-0001/", "/api/v1/sources/TP01-EM-0001/commands", "/api/v1/parks/",
                 "/api/v1/parks/TP01/"]:
        r = client.get(path)
        assert r.status_code == 403 and r.json()["code"] == "E1008", path
        assert "TP01-EM" not in r.content.decode() and "settings" not in r.json()
    assert_matches(openapi, "/api/v1/sources/", "get", client.get("/api/v1/sources/"))  # a documented 403
    r = client.post("/api/v1/sources/TP01-EM-0001/commands", {"type": "poll_now"}, format="json")
    assert r.status_code == 403
    # the standard's catalog is reference data; its park's own codes are not a device's to read
    codes = [i["code"] for i in client.get("/api/v1/catalog/items/", {"page_size": 1000}).json()["results"]]
    assert "CS010201" in codes and "CS010291" not in codes
    r = client.post("/api/v1/readings", {"sourceId": "TP01-EM-0001", "timestamp": "2026-11-23 10:01:00",
                                         "value": 2}, format="json")
    assert r.status_code == 200 and r.json()["accepted"] == 1


def _same_answers(client, method, pairs, body_of=None):
    """Each (another park's thing, an unknown thing) pair answers with the same status, the same body (once
    the names are swapped) and the same number of queries: no existence oracle."""
    for foreign, unknown in pairs:
        answers = []
        for path, payload in (foreign, unknown):
            call = getattr(client, method)
            with CaptureQueriesContext(connection) as queries:
                r = call(path, payload, format="json") if method != "get" else call(path, payload)
            answers.append((r, len(queries)))
        (rf, qf), (ru, qu) = answers
        text_f, text_u = rf.content.decode(), ru.content.decode()
        for f_name, u_name in body_of or []:
            text_f = text_f.replace(f_name, "<name>")
            text_u = text_u.replace(u_name, "<name>")
        assert (rf.status_code, text_f) == (ru.status_code, text_u), (method, foreign[0])
        assert qf == qu, f"{method} {foreign[0]}: {qf} queries for another park's, {qu} for an unknown one"
        assert rf.status_code in (400, 403, 404)


def test_another_parks_codes_answer_exactly_like_unknown_ones(parks_a_b):
    a, _b = parks_a_b
    user = get_user_model().objects.create_user("a-admin")
    set_membership(actor="t", user=user, park=a, role="admin")
    client = session(user)
    client.get("/api/v1/parks/")  # the session's first request writes its idle mark: not part of the comparison
    names = [("TP02-EM-0001", "TP02-EM-0009"), ("CS010292", "CS010298"), ("TP02", "TP09")]
    src_b, src_x = "/api/v1/sources/TP02-EM-0001", "/api/v1/sources/TP02-EM-0009"
    item_b, item_x = "/api/v1/catalog/items/CS010292/", "/api/v1/catalog/items/CS010298/"
    _same_answers(client, "get", [((f"{src_b}/", None), (f"{src_x}/", None)),
                                  ((f"{src_b}/commands", None), (f"{src_x}/commands", None)),
                                  ((item_b, None), (item_x, None)),
                                  (("/api/v1/parks/TP02/", None), ("/api/v1/parks/TP09/", None)),
                                  (("/api/v1/readings", {"sourceId": "TP02-EM-0001"}),
                                   ("/api/v1/readings", {"sourceId": "TP02-EM-0009"})),
                                  (("/api/v1/readings", {"dataCode": "CS010292"}),
                                   ("/api/v1/readings", {"dataCode": "CS010298"}))], names)
    _same_answers(client, "patch", [((f"{src_b}/", {"name": "x"}), (f"{src_x}/", {"name": "x"})),
                                    ((item_b, {"name_en": "x"}), (item_x, {"name_en": "x"})),
                                    (("/api/v1/sources/TP01-EM-0001/", {"park": "TP02"}),
                                     ("/api/v1/sources/TP01-EM-0001/", {"park": "TP09"})),
                                    (("/api/v1/sources/TP01-EM-0001/", {"dataCodes": ["CS010292"]}),
                                     ("/api/v1/sources/TP01-EM-0001/", {"dataCodes": ["CS010298"]}))], names)
    _same_answers(client, "post", [((f"{src_b}/commands", {"type": "poll_now"}),
                                    (f"{src_x}/commands", {"type": "poll_now"})),
                                   (("/api/v1/sources/", {"sourceId": "TP01-EM-0002", "park": "TP02", "name": "x"}),
                                    ("/api/v1/sources/", {"sourceId": "TP01-EM-0002", "park": "TP09", "name": "x"}))],
                  names)
    # a batch of readings: another park's source and another park's own code, rejected as unknown ones
    record = {"timestamp": "2026-11-23 10:05:00", "value": 1}
    _same_answers(client, "post", [
        (("/api/v1/readings", [{"sourceId": "TP02-EM-0001", **record}]),
         ("/api/v1/readings", [{"sourceId": "TP02-EM-0009", **record}])),
        (("/api/v1/readings", [{"sourceId": "TP01-EM-0001", "dataCode": "CS010292", **record}]),
         ("/api/v1/readings", [{"sourceId": "TP01-EM-0001", "dataCode": "CS010298", **record}])),
    ], names)
    r = client.post("/api/v1/readings", [{"sourceId": "TP01-EM-0001", "dataCode": "CS010292", **record}],
                    format="json")
    assert json.loads(r.content)["rejected"][0]["code"] == "E2004"
