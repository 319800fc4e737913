"""Group commit of concurrent single-reading pushes (apps/ingestion/groupcommit.py, issue #9 deliverable 6).

Real threads, each with its own PostgreSQL connection, push through one GroupCommit as a web worker's greenlets
do. A lock taken on the batch table from another connection holds the first transaction open, so what arrives
meanwhile must queue and be stored together: nothing answered before its commit, each request its own batch row
and answer, a request that fails alone leaves the others' readings in, nothing stored twice."""

import threading
import time

import psycopg
import pytest
from django.db import connections

from apps.ingestion.config import current_config
from apps.ingestion.groupcommit import GroupCommit
from apps.ingestion.models import IngestBatch, Reading
from apps.ingestion.services import prepare_readings
from tests.test_mqtt_channel import _database_url_of_this_test

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def rec(minute, source="TP01-EM-0001", value=1.5):
    return {"sourceId": source, "timestamp": f"2026-11-23 {10 + minute // 60:02d}:{minute % 60:02d}:00",
            "value": value}


def push(group, records, results, key, **kwargs):
    try:
        prepared = prepare_readings(records, current_config(), parks=None)
        results[key] = group.ingest(prepared=prepared, channel=kwargs.pop("channel", "http"), actor="device",
                                    parks=None, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the request's own answer, checked below
        results[key] = exc
    finally:
        connections.close_all()


def held(pushes, group):
    """Start ``pushes`` (key -> (records, kwargs)) while the batch table is locked from outside; return the
    results once all are answered, and the keys answered before the lock was let go (must be none)."""
    results, early = {}, []
    with psycopg.connect(_database_url_of_this_test(), autocommit=False) as blocker:
        blocker.execute("LOCK TABLE ingestion_ingestbatch IN SHARE MODE")  # the leader's batch row must wait
        threads = [threading.Thread(target=push, args=(group, records, results, key), kwargs=dict(kw))
                   for key, (records, kw) in pushes.items()]
        for t in threads:
            t.start()
            time.sleep(0.02)  # the first leads and blocks; the others queue behind it
        time.sleep(0.5)
        early = list(results)
        blocker.rollback()
    for t in threads:
        t.join(30)
    return results, early


def test_pushes_held_together_share_one_commit_and_keep_their_own_answers(park, meter):
    group = GroupCommit()
    pushes = {n: ([rec(n)], {}) for n in range(12)}
    pushes["bad"] = ([rec(40, source="TP01-NOPE-0001")], {})  # rejected with its code, the others stored
    pushes["dup"] = ([rec(3)], {})  # the same reading as request 3, in the same transaction: a duplicate
    results, early = held(pushes, group)
    assert early == []  # nothing answered before the commit that stores it
    assert group.requests == len(pushes) and group.groups == 2  # the first alone, the rest together
    for n in range(12):
        r = results[n]
        assert (r.accepted, r.duplicates, len(r.rejected)) == (1, 0, 0), (n, r)
    assert results["bad"].accepted == 0 and results["bad"].rejected[0]["code"] == "E2003"
    assert results["dup"].accepted == 0 and results["dup"].duplicates == 1
    assert Reading.objects.count() == 12
    assert IngestBatch.objects.count() == len(pushes)  # a batch row per request
    assert len({r.batch_id for r in results.values()}) == len(pushes)


def test_a_request_that_fails_alone_leaves_the_others_stored(park, meter):
    group = GroupCommit()
    pushes = {n: ([rec(n)], {}) for n in range(5)}
    pushes["broken"] = ([rec(30)], {"channel": "x" * 40})  # the database refuses its batch row (16 characters)
    results, early = held(pushes, group)
    assert early == [] and group.groups == 2
    assert isinstance(results["broken"], Exception) and "too long" in str(results["broken"])
    assert all(results[n].accepted == 1 for n in range(5))
    assert sorted(Reading.objects.values_list("ts__minute", flat=True)) == list(range(5))


def test_a_request_alone_is_stored_at_once_in_its_own_transaction(park, meter):
    group = GroupCommit()
    results = {}
    push(group, [rec(0)], results, "one")
    assert results["one"].accepted == 1 and group.groups == 1
    push(group, [rec(0)], results, "again")  # a retry is never stored twice
    assert results["again"].duplicates == 1 and Reading.objects.count() == 1


def test_a_flood_is_cut_into_bounded_groups(park, meter):
    group = GroupCommit(max_group=4)
    pushes = {n: ([rec(n)], {}) for n in range(11)}
    results, early = held(pushes, group)
    assert early == [] and group.requests == 11
    assert group.groups == 1 + 3  # the first alone; then 10 queued, at most 4 per transaction
    assert all(r.accepted == 1 for r in results.values()) and Reading.objects.count() == 11
