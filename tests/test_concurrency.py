"""The same batch sent twice at the same moment, over real connections: stored once."""

import threading

import pytest
from django.db import connection

from apps.ingestion.models import IngestBatch, Reading
from apps.ingestion.services import ingest_readings


def _records(n, value=1.0):
    return [{"sourceId": "TP01-EM-0001", "timestamp": f"2026-11-23 {i // 60:02d}:{i % 60:02d}:00", "value": value}
            for i in range(n)]


def _race(calls):
    """Run each call in its own thread with its own database connection, released together."""
    barrier = threading.Barrier(len(calls))
    results, errors = [None] * len(calls), []

    def run(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    return results


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_same_batch_twice_at_once_without_key_is_stored_once(meter):
    batch = _records(500)
    results = _race([lambda: ingest_readings(batch, channel="http", actor="a"),
                     lambda: ingest_readings(list(reversed(batch)), channel="http", actor="b")])
    assert Reading.objects.count() == 500
    assert sum(r.accepted for r in results) == 500
    assert sum(r.accepted + r.duplicates for r in results) == 1000


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_same_batch_twice_at_once_with_key_is_answered_once(meter):
    batch = _records(300)
    call = lambda: ingest_readings(batch, channel="http", actor="token:x", idempotency_key="k-1",  # noqa: E731
                                   request_hash="h")
    results = _race([call, call, call])
    assert Reading.objects.count() == 300
    assert IngestBatch.objects.count() == 1
    assert [r.accepted for r in results].count(300) == 3
    assert sum(r.replayed for r in results) == 2


def _post(url, key, body, idem=None):
    import json
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Token {key}")
    if idem:
        req.add_header("Idempotency-Key", idem)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, json.loads(resp.read())


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("idem", [None, "same-batch-1"])
def test_same_http_batch_sent_twice_at_the_same_moment(live_server, meter, token_key, idem):
    """Two clients POST the same 400 readings at once over real HTTP connections: stored once."""
    batch = _records(400, value=3.0)
    url = live_server.url + "/api/v1/readings"
    results = _race([lambda: _post(url, token_key, batch, idem), lambda: _post(url, token_key, batch, idem)])
    assert [status for status, _ in results] == [200, 200]
    assert Reading.objects.count() == 400
    answers = [body for _, body in results]
    if idem:
        assert answers[0] == answers[1] == {"accepted": 400, "duplicates": 0, "rejected": []}
    else:
        assert sorted(a["accepted"] for a in answers) == [0, 400]
        assert sorted(a["duplicates"] for a in answers) == [0, 400]


def test_idempotency_keys_are_forgotten_after_their_ttl(meter, settings):
    from datetime import timedelta

    from django.utils import timezone

    from apps.ingestion.models import IdempotencyKey
    from apps.ingestion.services import purge_idempotency_keys

    ingest_readings(_records(2), channel="http", actor="t", idempotency_key="old", request_hash="h")
    ingest_readings(_records(3), channel="http", actor="t", idempotency_key="new", request_hash="h2")
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=73))
    assert purge_idempotency_keys() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    # The readings stay unique by identity: a very late retry of the forgotten key stores nothing twice.
    late = ingest_readings(_records(2), channel="http", actor="t", idempotency_key="old", request_hash="h")
    assert (late.accepted, late.duplicates, late.replayed) == (0, 2, False)
