"""Slow clients cannot starve the embedded default (issue #7 item 7b): the production gunicorn configuration
(carbonpark/gunicorn.conf.py, default worker count) in a real subprocess on a free port, while connections
trickle their headers or their body a byte at a time, keeps answering /healthz and storing readings."""

import time

import orjson
import pytest
from django.conf import settings

from apps.ingestion.models import Reading
from tests.test_mqtt_channel import _database_url_of_this_test
from tests.webfront import Gunicorn, Tricklers, http_get

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def post_reading(port: int, token: str, value: float, timeout: float = 10) -> tuple[int, dict]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        body = orjson.dumps({"sourceId": "TP01-EM-0001", "timestamp": f"2026-11-23 10:{int(value):02d}:00",
                             "value": value, "unit": "kWh", "status": "N"})
        conn.request("POST", "/api/v1/readings", body=body, headers={
            "Content-Type": "application/json", "Authorization": f"Token {token}", "Accept-Language": "en"})
        resp = conn.getresponse()
        return resp.status, orjson.loads(resp.read())
    finally:
        conn.close()


def assert_healthz_answers(port: int, within: float = 10.0) -> float:
    """The application itself answers (200, or 503 when a dependency is down), within ``within`` seconds."""
    t = time.monotonic()
    status, headers, body = http_get("127.0.0.1", port, "/healthz", timeout=within)
    elapsed = time.monotonic() - t
    assert status in (200, 503), (status, body[:300])
    assert headers["content-type"].startswith("application/json")
    assert "checks" in orjson.loads(body)
    return elapsed


@pytest.mark.parametrize(("what", "count"), [("headers", 25), ("body", 60)])
def test_trickling_clients_do_not_starve_the_default_server(tmp_path, meter, token_key, what, count):
    """25 connections trickling headers (5 sync workers were blocked by 6); 60 authenticated pushes trickling
    their bodies, more than the workers let into Django at once (5 x 4) or their database pools hold (5 x 8):
    a body read inside Django, after authentication, would starve them.
    Each connection sends a byte every 0.3 s and never finishes; one the server closes comes back."""
    with Gunicorn(_database_url_of_this_test(), settings.REDIS_URL, tmp_path / "gunicorn.log") as app:
        assert_healthz_answers(app.port)
        with Tricklers("127.0.0.1", app.port, count, interval=0.3, body=(what == "body"), token=token_key) as slow:
            time.sleep(1.5)  # every slow connection accepted and partly sent
            waits = []
            for i in range(3):
                waits.append(assert_healthz_answers(app.port))
                status, answer = post_reading(app.port, token_key, float(i), timeout=5)
                assert (status, answer["accepted"]) == (200, 1), answer
                time.sleep(0.5)
            assert slow.sent >= count * 5  # they were trickling all along (a dropped one comes back)
        print(f"/healthz under {count} trickling {what}: {', '.join(f'{w:.2f}' for w in waits)} s;"
              f" the server closed {slow.dropped} slow connections")
    assert sorted(Reading.objects.values_list("value", flat=True)) == [0.0, 1.0, 2.0]
