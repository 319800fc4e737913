"""The cost of one small request (issue #9 deliverable 6): what was cut keeps its guarantees.

- A valid API token is remembered per process (apps/accounts/authentication.py): a token withdrawn through the
  service is refused at once in that process, and one withdrawn elsewhere within API_TOKEN_CACHE_SECONDS.
- The served application (carbonpark/wsgi.py → apps/core/handlers.py) passes token API requests through a
  shorter middleware stack: against the production server, they keep every check and header that applies,
  and the portal keeps its CSRF check; web workers write last-seen marks every half second.
"""

import http.client
import time
from datetime import UTC

import orjson
import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from apps.accounts.services import issue_token, revoke_token
from apps.ingestion.models import IngestBatch, Reading
from apps.sources.models import DeviceState
from tests.test_mqtt_channel import _database_url_of_this_test
from tests.webfront import Gunicorn

URL = "/api/v1/readings"


def rec(minute=0, source="TP01-EM-0001", value=1.5):
    return {"sourceId": source, "timestamp": f"2026-11-23 10:{minute:02d}:00", "value": value}


def client_for(key):
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {key}", HTTP_ACCEPT_LANGUAGE="en")
    return c


def test_a_token_withdrawn_through_the_service_is_refused_at_once(park, meter):
    token, key = issue_token(actor="test", park=park, name="device", role=ApiToken.Role.DEVICE)
    api = client_for(key)
    assert api.post(URL, rec(0), format="json").status_code == 200  # now remembered by this process
    revoke_token(actor="test", token=token, reason="stolen")
    r = api.post(URL, rec(1), format="json")
    assert r.status_code == 401, r.content
    assert Reading.objects.count() == 1


def test_a_token_withdrawn_elsewhere_is_refused_within_the_cache_time(park, meter):
    settings.API_TOKEN_CACHE_SECONDS = 1.0  # pytest-django's settings fixture is not needed: restored below
    try:
        token, key = issue_token(actor="test", park=park, name="device", role=ApiToken.Role.DEVICE)
        api = client_for(key)
        assert api.post(URL, rec(0), format="json").status_code == 200
        # Another process withdraws it: this one is not told, its remembered copy expires.
        ApiToken.objects.filter(pk=token.pk).update(is_active=False)
        assert api.post(URL, rec(1), format="json").status_code == 200  # still remembered (the cut at work)
        time.sleep(1.1)
        r = api.post(URL, rec(2), format="json")
        assert r.status_code == 401, r.content
        assert Reading.objects.count() == 2
    finally:
        settings.API_TOKEN_CACHE_SECONDS = 5.0


def test_a_wrong_key_with_a_remembered_prefix_is_refused(park, meter):
    token, key = issue_token(actor="test", park=park, name="device", role=ApiToken.Role.DEVICE)
    assert client_for(key).post(URL, rec(0), format="json").status_code == 200
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert client_for(forged).post(URL, rec(1), format="json").status_code == 401


def test_one_reading_and_its_batch_row_are_written_together(park, meter):
    """The single-reading path (apps/ingestion/store.py ONE_READING_INSERT): the batch row is written once with
    its final counts, a repeat of a stored reading is a duplicate (E4001, logged), nothing stored twice."""
    from apps.ingestion.models import ValidationEvent

    _token, key = issue_token(actor="test", park=park, name="device", role=ApiToken.Role.DEVICE)
    api = client_for(key)
    first = api.post(URL, rec(0, value=7.0), format="json")
    again = api.post(URL, rec(0, value=8.0), format="json")
    assert first.json() == {"accepted": 1, "duplicates": 0, "rejected": []}, first.content
    assert again.status_code == 200 and again.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert list(Reading.objects.values_list("value", flat=True)) == [7.0]
    counts = list(IngestBatch.objects.order_by("id").values_list("total", "accepted", "duplicates", "rejected"))
    assert counts == [(1, 1, 0, 0), (1, 0, 1, 0)]
    assert Reading.objects.get().batch_id == IngestBatch.objects.order_by("id").first().pk
    event = ValidationEvent.objects.get()
    assert (event.code, event.index, event.batch_id) == ("E4001", 0, IngestBatch.objects.order_by("id").last().pk)


def _post(port, key, body, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", URL, body=orjson.dumps(body), headers={
            "Content-Type": "application/json", "Authorization": f"Token {key}", "Accept-Language": "en",
            **(headers or {})})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_one_reading_requests_against_the_production_server(tmp_path, park, meter):
    """gunicorn as `make run` starts it (gevent workers, the database pool), token API requests on the short
    middleware stack: accepted, one bad record rejected with its code, idempotent repeats answered once,
    last seen written by the worker, a token withdrawn by another process refused within the cache time, the
    portal's log-in still CSRF-checked."""
    _token, key = issue_token(actor="test", park=park, name="device", role=ApiToken.Role.DEVICE)
    env = {"API_TOKEN_CACHE_SECONDS": "1", "CARBONPARK_LAST_SEEN_INTERVAL": "0.2", "HEALTH_EXPECT": ""}
    with Gunicorn(_database_url_of_this_test(), settings.REDIS_URL, tmp_path / "gunicorn.log", workers=2,
                  env=env) as app:
        status, headers, body = _post(app.port, key, rec(0))
        assert (status, orjson.loads(body)["accepted"]) == (200, 1), body
        # the headers that apply to every answer are still there; no session cookie is set
        assert "default-src 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
        assert "set-cookie" not in headers and headers["content-language"] == "en"

        status, _h, body = _post(app.port, key, rec(1, source="TP01-NOPE-0001"))
        answer = orjson.loads(body)
        assert status == 400 and answer["accepted"] == 0, answer
        assert answer["rejected"][0]["code"] == "E2003" and "source" in answer["rejected"][0]["message"].lower()

        first = _post(app.port, key, rec(2), {"Idempotency-Key": "k-1"})
        again = _post(app.port, key, rec(2), {"Idempotency-Key": "k-1"})
        other = _post(app.port, key, rec(3), {"Idempotency-Key": "k-1"})
        assert first[0] == again[0] == 200 and orjson.loads(first[2]) == orjson.loads(again[2])
        assert again[1].get("idempotent-replayed") == "true"
        assert other[0] == 409 and orjson.loads(other[2])["code"] == "E1005"

        deadline = time.monotonic() + 5
        while DeviceState.objects.filter(source=meter, last_seen_at__isnull=False).count() == 0:
            assert time.monotonic() < deadline, "last seen never written by the web worker"
            time.sleep(0.1)

        # the portal's stack still checks CSRF (the token requests' stack has no CSRF middleware)
        conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
        conn.request("POST", "/login/", body=b"username=a&password=b",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert conn.getresponse().status == 403
        conn.close()

        with connection.cursor() as cur:  # withdrawn by another process: the server is not told
            cur.execute("UPDATE accounts_apitoken SET is_active = false WHERE prefix = %s", [key.split("_")[1]])
        withdrawn = time.monotonic()
        minute = 10
        while True:
            status, _h, body = _post(app.port, key, rec(minute))
            if status == 401:
                break
            assert status == 200 and time.monotonic() - withdrawn < 1.0 + 1.0, (status, body)
            minute += 1
            time.sleep(0.1)
        refused_after = time.monotonic() - withdrawn
    assert refused_after <= 2.0
    assert Reading.objects.filter(source=meter).count() == 2 + (minute - 10)
    assert IngestBatch.objects.filter(accepted=1).count() == Reading.objects.count()


def _wsgi(app, key, body: bytes, **headers):
    """One request through a WSGI application in this process (as Django's test client keeps the test's
    connection: the request signals do not close it)."""
    import io

    from django.core import signals
    from django.db import close_old_connections

    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": URL, "SCRIPT_NAME": "", "QUERY_STRING": "",
               "SERVER_NAME": "testserver", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
               "HTTP_HOST": "testserver", "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
               "HTTP_AUTHORIZATION": f"Token {key}", "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
               "wsgi.errors": io.StringIO(), "wsgi.multithread": False, "wsgi.multiprocess": True,
               "wsgi.run_once": False}
    environ.update(headers)
    got = {}

    def start_response(status, headers, exc_info=None):
        got["status"], got["headers"] = status, headers

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        out = app(environ, start_response)
        content = b"".join(out)
        out.close()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    headers = {k.lower(): v for k, v in got["headers"]}
    csp = headers.pop("content-security-policy", "")
    headers["csp"] = sorted(d.strip() for d in csp.split(";"))  # directives' order varies by process
    return got["status"], headers, orjson.loads(content)


def test_the_short_path_answers_exactly_as_the_full_stack(park, meter, other_park):
    """apps/ingestion/fastpush.py against Django's and DRF's stack: same status, body and headers for the common
    pushes; everything else handed over before anything is written, and answered by the full stack."""
    from apps.core.handlers import Application
    from apps.ingestion.fastpush import PATH, FastPush

    short, full = Application(short_paths={PATH: FastPush}), Application()
    fast = short.short[PATH]
    assert fast.enabled  # the settings' token API stack is the one the short path stands for
    served, push = [], fast._push
    fast._push = lambda environ: served.append(push(environ)) or served[-1]  # None: handed to the full stack
    _token, key = issue_token(actor="test", park=park, name="device", role=ApiToken.Role.DEVICE)
    _other, other_key = issue_token(actor="test", park=other_park, name="elsewhere", role=ApiToken.Role.DEVICE)
    en = {"HTTP_ACCEPT_LANGUAGE": "en"}
    cases = [  # (body for the short path, body for the full stack, headers)
        (rec(1), rec(31), en),
        (rec(2), rec(32), {}),  # Chinese by default
        ([rec(3), rec(4, value="x")], [rec(33), rec(34, value="x")], en),  # one stored, one rejected: 400
        (rec(5, source="TP01-NOPE-0001"), rec(5, source="TP01-NOPE-0001"), en),
        (rec(1), rec(1), {"HTTP_ACCEPT_LANGUAGE": "en", "HTTP_ACCEPT": "application/json"}),  # stored before
    ]
    for mine, theirs, headers in cases:
        a = _wsgi(short, key, orjson.dumps(mine), **headers)
        b = _wsgi(full, key, orjson.dumps(theirs), **headers)
        assert a == b, (mine, a, b)
    assert len(served) == len(cases) and None not in served  # every common push answered by the short path
    served.clear()
    # handed over: answered by the full stack, nothing stored twice
    handed = [
        (key, b'{"sourceId": "TP01-EM-0001", "timestamp": ', {}),  # not JSON: E1001
        (key + "x", orjson.dumps(rec(40)), {}),  # refused token: 401
        (other_key, orjson.dumps(rec(41)), en),  # another park's token: the source is unknown to it
        (key, orjson.dumps(rec(42)), {"HTTP_IDEMPOTENCY_KEY": "k-1"}),
        (key, orjson.dumps(rec(42)), {"HTTP_IDEMPOTENCY_KEY": "k-1"}),  # replayed
        (key, orjson.dumps(rec(43)), {"HTTP_ACCEPT": "text/html;q=0.9, application/json"}),
        (key, orjson.dumps(rec(44)), {"QUERY_STRING": "x=1"}),
    ]
    for k, body, headers in handed:
        a = _wsgi(short, k, body, **headers)
        assert a[0].split()[0] == {"x": "401"}.get(k[-1], a[0].split()[0])
        if "HTTP_IDEMPOTENCY_KEY" not in headers:
            changed = body.replace(b"10:4", b"11:4")  # the same request, another reading
            b = _wsgi(full, k, changed, **headers)
            assert (a[0], a[2]) == (b[0], b[2]) or (a[0] == b[0] == "200 OK"), (body, a, b)
    # Reached the short path: the bad JSON and the refused token (handed over), another park's token (answered:
    # its record's source is unknown to it, 400 as above); the others never left the full stack.
    assert [x is None for x in served] == [True, True, False], served
    stored = sorted(r.ts.astimezone(UTC).strftime("%H:%M") for r in Reading.objects.all())  # park: UTC+8
    assert stored == ["02:01", "02:02", "02:03", "02:31", "02:32", "02:33", "02:42", "02:43", "02:44", "03:43",
                      "03:44"], stored


@pytest.mark.parametrize("failure", ["bug", "database down"])
def test_a_failure_inside_the_push_is_answered_as_the_full_stack_answers_it(park, meter, monkeypatch, failure):
    """Once ingest_readings has been called the short path answers itself (the request is never run twice): an
    uncaught exception as Django's handler500 (500 E1017), the database unreachable as the API's handler (503
    E1015, Retry-After), exactly as the full stack does."""
    from django.db import OperationalError

    import apps.ingestion.api
    import apps.ingestion.services
    from apps.core.handlers import Application
    from apps.ingestion.fastpush import PATH, FastPush

    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if failure == "bug":
            raise RuntimeError("a bug")
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr(apps.ingestion.services, "ingest_readings", failing)
    monkeypatch.setattr(apps.ingestion.api, "ingest_readings", failing)
    short, full = Application(short_paths={PATH: FastPush}), Application()
    _token, key = issue_token(actor="test", park=park, name="device", role=ApiToken.Role.DEVICE)
    a = _wsgi(short, key, orjson.dumps(rec(1)), HTTP_ACCEPT_LANGUAGE="en")
    assert calls == [1]  # answered by the short path, not run again by the full stack
    b = _wsgi(full, key, orjson.dumps(rec(1)), HTTP_ACCEPT_LANGUAGE="en")
    assert calls == [1, 1]
    assert a == b
    code = {"bug": "E1017", "database down": "E1015"}[failure]
    assert a[2]["code"] == code, a
    assert a[0].split()[0] == {"bug": "500", "database down": "503"}[failure]
    assert Reading.objects.count() == 0


def test_a_single_reading_is_queued_for_the_rollups(park, meter):
    """The single-reading statement (store.ONE_READING_INSERT) queues its series and time as a staged batch does
    (store.mark_rollups_dirty): after one refresh the reading is in GET /api/v1/readings?interval=hour, whichever
    path served the push; a repeat stores nothing and queues nothing."""
    from apps.core.handlers import Application
    from apps.ingestion import rollups
    from apps.ingestion.fastpush import PATH, FastPush

    _token, key = issue_token(actor="test", park=park, name="device", role=ApiToken.Role.DEVICE)
    _reader, reader_key = issue_token(actor="test", park=park, name="reader", role=ApiToken.Role.INTEGRATOR)
    short = Application(short_paths={PATH: FastPush})
    assert _wsgi(short, key, orjson.dumps(rec(5, value=2.0)))[0] == "200 OK"  # the short path
    assert client_for(key).post(URL, rec(20, value=3.5), format="json").status_code == 200  # the full stack
    assert rollups.lag()[0] == 2  # one queued range per single-reading batch
    assert client_for(key).post(URL, rec(20, value=3.5), format="json").json()["duplicates"] == 1
    assert rollups.lag()[0] == 2  # a repeat stores nothing, queues nothing
    rollups.refresh()
    assert rollups.lag() == (0, 0.0)
    hours = client_for(reader_key).get(URL, {"interval": "hour", "sourceId": meter.source_id})
    assert hours.status_code == 200, hours.content
    [hour] = hours.json()["results"]
    assert (hour["sourceId"], hour["count"], hour["sum"], hour["min"], hour["max"], hour["last"]) == (
        meter.source_id, 2, 5.5, 2.0, 3.5, 3.5)
    days = client_for(reader_key).get(URL, {"interval": "day", "sourceId": meter.source_id}).json()["results"]
    assert [(d["count"], d["sum"]) for d in days] == [(2, 5.5)]
