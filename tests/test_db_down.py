"""A database that cannot be reached answers 503 with a code and Retry-After, as JSON, from every endpoint
of a real gunicorn; a batch that committed answers 200 whatever happens after its commit (issue #7 item 3,
R-8.4.2.4)."""

import time

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from apps.ingestion.models import Reading
from apps.ingestion.services import ingest_readings
from apps.sources.models import DeviceState
from carbonpark.embedded import free_port
from tests.gunicorn_server import Gunicorn, TcpProxy, database_url_of_this_test, with_address
from tests.test_ingest_api import URL, rec

# The web pool's wait for a connection, and its reconnect's, down from 5 s: each request of an outage answers
# 503 after it, and these tests make a dozen of them.
FAST = {"DATABASE_POOL_TIMEOUT": "1"}
ENDPOINTS = [("GET", "/api/v1/readings"), ("GET", "/api/v1/sources/"), ("GET", "/api/v1/parks/"),
             ("GET", "/api/v1/catalog/items/"), ("GET", "/api/v1/catalog/classes/"),
             ("GET", "/api/v1/sources/TP01-EM-0001/commands")]


def assert_unavailable(status, headers, body, what=""):
    assert status == 503, (what, status, body)
    assert headers["content-type"].startswith("application/json"), (what, headers)
    assert body["code"] == "E1015" and body["message"], (what, body)
    assert int(headers["retry-after"]) > 0, what


FAIL_TOUCH = """
CREATE FUNCTION test_refuse_last_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'last-seen update refused by the test'; END $$;
CREATE TRIGGER test_refuse_last_seen BEFORE INSERT OR UPDATE ON sources_devicestate
FOR EACH ROW EXECUTE FUNCTION test_refuse_last_seen();
"""


def test_committed_batch_answers_200_when_the_last_seen_update_fails(api, meter):
    with connection.cursor() as cur:
        cur.execute(FAIL_TOUCH)
    r = api.post(URL, data=[rec(), rec(timestamp="2026-11-23 10:06:00")], format="json")
    assert r.status_code == 200, r.content
    assert r.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    assert Reading.objects.count() == 2
    assert not DeviceState.objects.filter(source=meter).exists()
    # The caller's own transaction is left usable (the failure was confined to a savepoint).
    with transaction.atomic():
        result = ingest_readings([rec(timestamp="2026-11-23 10:07:00")], channel="test", actor="test")
        assert result.accepted == 1 and Reading.objects.count() == 3


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_database_cut_and_restored_under_gunicorn(meter, token_key, tmp_path):
    url = database_url_of_this_test()
    host, port = connection.settings_dict["HOST"] or "127.0.0.1", int(connection.settings_dict["PORT"] or 5432)
    if host.startswith("/"):
        pytest.skip("the test database is on a Unix socket; this test proxies TCP")
    proxy = TcpProxy(host, port)
    auth = {"Authorization": f"Token {token_key}"}
    try:
        with Gunicorn(with_address(url, "127.0.0.1", proxy.port), tmp_path / "web.log", extra_env=FAST) as web:
            status, _h, body = web.request("POST", URL, [rec()], auth)
            assert status == 200 and body["accepted"] == 1, body
            for method, path in ENDPOINTS:
                assert web.request(method, path, headers=auth)[0] == 200, path

            proxy.cut()
            # Every worker's kept connection is now dead, and no new one can be opened.
            for _ in range(3):
                assert_unavailable(*web.request("POST", URL, [rec(timestamp="2026-11-23 10:06:00")],
                                                {**auth, "Idempotency-Key": "k-1"}), "POST readings")
            for method, path in ENDPOINTS:
                assert_unavailable(*web.request(method, path, headers=auth), path)
            status, headers, body = web.request("GET", "/healthz")
            assert status == 503 and headers["content-type"].startswith("application/json"), body
            assert body["checks"]["database"] != "ok"
            assert "Internal Server Error" not in web.log()

            proxy.restore()
            deadline = time.monotonic() + 15
            while True:
                status, _h, body = web.request("POST", URL, [rec(timestamp="2026-11-23 10:06:00")],
                                               {**auth, "Idempotency-Key": "k-1"})
                if status == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            assert status == 200 and body["accepted"] == 1, body
            status, headers, body = web.request("POST", URL, [rec(timestamp="2026-11-23 10:06:00")],
                                                {**auth, "Idempotency-Key": "k-1"})
            assert status == 200 and headers.get("idempotent-replayed") == "true", body
            for method, path in ENDPOINTS:
                assert web.request(method, path, headers=auth)[0] == 200, path
            assert web.request("GET", "/healthz")[0] == 200
    finally:
        proxy.cut()
    # Stored once each: the retry of the request refused with 503 is the one that stored its reading.
    assert sorted(r.ts.minute for r in Reading.objects.all()) == [5, 6]


def test_database_on_a_dead_port_under_gunicorn(tmp_path, db):
    dead = with_address(database_url_of_this_test(), "127.0.0.1", free_port())
    with Gunicorn(dead, tmp_path / "web.log", workers=1, extra_env=FAST) as web:
        auth = {"Authorization": "Token cp_00000000_whatever"}
        assert_unavailable(*web.request("POST", URL, [rec()], auth), "POST readings")
        for method, path in ENDPOINTS:
            assert_unavailable(*web.request(method, path, headers=auth), path)
        # A session-authenticated client (no token) too: the session lookup needs the database.
        cookie = {"Cookie": "sessionid=" + "a" * 32}
        assert_unavailable(*web.request("GET", "/api/v1/readings", headers=cookie), "session")
        status, headers, body = web.request("GET", "/healthz")
        assert status == 503 and headers["content-type"].startswith("application/json"), body
        assert "<html" not in web.log().lower()


def test_a_server_error_of_the_api_is_json_with_a_code(api, meter, monkeypatch):
    from apps.ingestion import api as ingestion_api

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(ingestion_api, "ingest_readings", broken)
    client = APIClient(raise_request_exception=False)
    client.credentials(**api._credentials)
    r = client.post(URL, data=[rec()], format="json")
    assert r.status_code == 500 and r["Content-Type"].startswith("application/json")
    assert r.json()["code"] == "E1017"
