"""Corrections re-pushed within 5 min (R-7.4.3.1) and backfills within 24 h of recovery (R-7.4.3.3) from third-party
platforms (apps/integrations/resubmit.py), with the clock given to the services as ``now``."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.models import AuditEntry
from apps.corrections.models import Correction, Revision
from apps.ingestion.models import Flag, Reading, Rejection
from apps.integrations import health, open
from apps.integrations.models import Platform
from tests.fake_http import FakeHttp
from tests.open_platform import OpenClient, new_platform
from tests.test_api_contract import assert_matches, openapi  # noqa: F401 (a fixture)


@pytest.fixture(autouse=True)
def _http_urls(settings):
    settings.OPEN_ALLOW_HTTP_URLS = True


@pytest.fixture
def hub(park):
    platform, secret = new_platform(park)
    sub, _ = open.subscribe(platform, {"dataCodes": ["CO010101", "CO020101"]})
    return platform, secret, sub.topic_code


def push(platform, topic, records, now):
    return open.push(platform, {"topic_code": topic, "records": records}, idempotency_key=None, request_hash="",
                     now=now).response("en")


def rec(value, minute=0, **more):
    return {"dataCode": "CO010101", "timestamp": f"2026-11-23 10:{minute:02d}:00", "value": value, **more}


def effective(topic, minute=0):
    reading = Reading.objects.get(source__source_id=topic, data_item__code="CO010101",
                                  ts__minute=minute)
    latest = Revision.objects.filter(reading_id=reading.pk).order_by("-id").first()
    return reading, latest


def test_a_different_value_within_five_minutes_is_a_correction(hub):
    platform, _, topic = hub
    t0 = timezone.now()
    assert push(platform, topic, [rec(10.0), rec(11.0, 1)], t0)["accepted"] == 2
    answer = push(platform, topic, [rec(12.5), rec(11.0, 1), rec(7.0, 2)], t0 + timedelta(minutes=4, seconds=59))
    assert answer == {"accepted": 2, "duplicates": 1, "rejected": [], "corrected": [0]}
    reading, revision = effective(topic)
    assert reading.value == 10.0  # the value as received stays
    assert (revision.value, revision.previous_value) == (12.5, 10.0) and revision.flags & Flag.CORRECTED
    correction = Correction.objects.get(kind="resubmission")
    assert correction.state == "applied" and correction.requested_by_label == platform.audit_label
    assert AuditEntry.objects.filter(action="correction.resubmission").count() == 1
    # a second correction within the window, and the same corrected value again is a plain duplicate
    later = t0 + timedelta(minutes=5)
    assert push(platform, topic, [rec(13.0)], later)["corrected"] == [0]
    assert push(platform, topic, [rec(13.0)], later) == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert effective(topic)[1].value == 13.0 and Reading.objects.filter(source__source_id=topic).count() == 3


def test_after_five_minutes_a_different_value_is_refused(hub):
    platform, _, topic = hub
    t0 = timezone.now()
    push(platform, topic, [rec(10.0)], t0)
    answer = push(platform, topic, [rec(12.5), rec(1.0, 3)], t0 + timedelta(minutes=5, seconds=1))
    assert answer["accepted"] == 1 and "corrected" not in answer
    (refusal,) = answer["rejected"]
    assert refusal["index"] == 0 and refusal["code"] == "E7422" and "5 min" in refusal["message"]
    assert effective(topic)[1] is None and not Correction.objects.exists()
    assert Rejection.objects.filter(code="E7422").count() == 1
    # the same value after the window stays a plain duplicate
    assert push(platform, topic, [rec(10.0)], t0 + timedelta(hours=1))["duplicates"] == 1


def test_the_answer_over_the_wire_lists_corrections(hub, openapi):  # noqa: F811
    platform, secret, topic = hub
    cli = OpenClient(platform, secret)
    assert cli.auth().status_code == 200
    assert cli.push(topic, [rec(10.0)]).json()["accepted"] == 1
    r = cli.push(topic, [rec(10.5), {"dataCode": "CO010101", "timestamp": "2026-11-23 10:00:00", "value": "x\x00"}])
    body = assert_matches(openapi, "/api/v1/open/data", "POST", r)
    assert body["corrected"] == [0] and body["accepted"] == 1 and body["rejected"][0]["index"] == 1


def test_backfills_within_24_hours_of_recovery_from_an_outage(hub, settings):
    platform, _, topic = hub
    now = timezone.now()
    answer = push(platform, topic, [rec(1.0, 0, backfill=True), rec(2.0, 1)], now)
    assert [r["code"] for r in answer["rejected"]] == ["E7421"] and answer["accepted"] == 1  # never recovered
    with FakeHttp(status=503) as primary:
        Platform.objects.filter(pk=platform.pk).update(base_url=primary.url)
        platform.refresh_from_db()
        assert health.probe(platform) is False
        platform.refresh_from_db()
        assert platform.recovered_at is None
        primary.answer(200)
        assert health.probe(platform) is True
    platform.refresh_from_db()
    recovered = platform.recovered_at
    assert recovered is not None
    answer = push(platform, topic, [rec(1.0, 0, backfill=True)], recovered + timedelta(hours=23, minutes=59))
    assert answer == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert Reading.objects.get(source__source_id=topic, ts__minute=0).flags & Flag.BACKFILL
    answer = push(platform, topic, [rec(3.0, 3, backfill=True), rec(4.0, 4, backfill=False)],
                  recovered + timedelta(hours=24, seconds=1))
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [(0, "E7421")] and answer["accepted"] == 1


def test_backfills_after_a_suspension_is_resumed(hub):
    from apps.integrations.services import resume_platform, suspend_platform
    from tests.open_platform import ROOT

    platform, _, topic = hub
    suspend_platform(platform, reason="test", code="E7401")
    platform = resume_platform(actor=ROOT, platform=Platform.objects.get(pk=platform.pk))
    assert platform.recovered_at is not None
    answer = push(platform, topic, [rec(1.0, 0, backfill=True)], platform.recovered_at + timedelta(hours=1))
    assert answer["accepted"] == 1
    assert push(platform, topic, [rec(1.0, 1, backfill=True)],
                platform.recovered_at - timedelta(seconds=1))["rejected"][0]["code"] == "E7421"
