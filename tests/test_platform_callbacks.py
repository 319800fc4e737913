"""Feedback to third parties and health (R-7.4.4.2, R-7.4.4.3): anomalies of a platform's data posted back signed
per Standard Webhooks, retried with back-off honouring Retry-After, dead letters replayed; endpoints probed, an
outage or a slow answer alarmed and sent as SMS, calls switched to the backup URL until the primary recovers. Every
third party here is a local fake server over a real connection."""

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.ingestion import rollups
from apps.integrations import callbacks, health
from apps.integrations.models import CallbackDelivery, Platform
from apps.quality.models import Alarm
from apps.quality.postchecks import run_post_checks
from apps.quality.services import save_rule
from tests.fake_http import FakeHttp, closed_port_url
from tests.open_platform import ROOT, OpenClient, new_platform

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.OPEN_ALLOW_HTTP_URLS = True
    settings.OUTBOUND_READ_TIMEOUT_S = 1.0
    settings.OUTBOUND_CONNECT_TIMEOUT_S = 1.0
    settings.CALLBACK_MAX_ATTEMPTS = 3


def verify(secret: str, headers: dict, body: bytes) -> bool:
    """What the receiving platform does (Standard Webhooks), written independently of the sender."""
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    mac = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    return headers["webhook-signature"] == f"v1,{mac}"


def test_anomalies_are_posted_back_signed_and_once(park):
    with FakeHttp() as receiver:
        platform, secret = new_platform(park, callback_url=receiver.url + "/cb", certified=False)
        c = OpenClient(platform, secret)
        c.auth()
        topic = c.subscribe(["CS010201"]).json()["topic_code"]
        save_rule(actor="test", name="jump", kind="jump", params={"absolute": 20}, severity="flag")
        save_rule(actor="test", name="range", kind="range", params={"min": 0, "max": 500}, severity="flag")
        values = [100, 101, 180, 102, 101, 700, 100]  # a spike, and a value over the range (flagged at ingest)
        records = [{"dataCode": "CS010201", "timestamp": f"2026-11-23 10:{5 * i:02d}:00", "value": v}
                   for i, v in enumerate(values)]
        assert c.push(topic, records).status_code == 200  # flagged, not rejected: accepted
        rollups.refresh(budget=None)
        run_post_checks()
        queued = callbacks.collect_anomalies()
        assert queued >= 3
        assert callbacks.collect_anomalies() == 0  # a re-run adds nothing
        states = [callbacks.deliver(pk) for pk in callbacks.due_ids()]
        assert set(states) == {"delivered"}
        assert [callbacks.deliver(pk) for pk in CallbackDelivery.objects.values_list("pk", flat=True)] == \
            ["skipped"] * queued  # delivered once
    assert len(receiver.received) == queued
    kinds = set()
    for method, path, headers, body in receiver.received:
        assert (method, path) == ("POST", "/cb")
        headers = {k.lower(): v for k, v in headers.items()}
        assert verify(secret, headers, body)
        notice = json.loads(body)
        assert notice["platform"] == platform.app_id and notice["topic_code"] == topic
        kinds.add((notice["stage"], notice["anomalyType"]))
    assert ("post_check", "jump") in kinds and ("ingest", "E3001") in kinds
    assert len({json.loads(b)["timestamp"] for *_x, b in receiver.received}) >= 2


def _notice(platform, url):
    return CallbackDelivery.objects.create(platform=platform, webhook_id=f"msg_test_{time.monotonic_ns()}", url=url,
                                           event="anomaly", payload={"type": "anomaly"}, next_at=timezone.now())


def test_a_500_is_retried_with_back_off_then_dead_then_replayed(park):
    with FakeHttp(status=500) as receiver:
        platform, secret = new_platform(park, callback_url=receiver.url)
        d = _notice(platform, receiver.url)
        assert callbacks.deliver(d.pk) == "pending"
        d.refresh_from_db()
        assert d.attempts == 1 and d.last_status == 500 and d.log[0]["status"] == 500
        assert d.next_at > timezone.now() + timedelta(seconds=25)  # back-off (30 s), not at once
        assert callbacks.deliver(d.pk) == "skipped"  # not due yet
        for _ in range(2):
            CallbackDelivery.objects.filter(pk=d.pk).update(next_at=timezone.now())
            callbacks.deliver(d.pk)
        d.refresh_from_db()
        assert (d.state, d.attempts, len(d.log)) == ("dead", 3, 3)
        receiver.answer(200)
        assert callbacks.replay(actor=ROOT, deliveries=[d]) == 1
        assert callbacks.deliver(d.pk) == "delivered"
    assert len(receiver.received) == 4


def test_retry_after_is_honoured(park):
    with FakeHttp(status=429, headers={"Retry-After": "600"}) as receiver:
        platform, _ = new_platform(park)
        d = _notice(platform, receiver.url)
        callbacks.deliver(d.pk)
        d.refresh_from_db()
        assert timedelta(seconds=590) < d.next_at - timezone.now() <= timedelta(seconds=600)


def test_a_hanging_receiver_times_out_and_a_slow_one_is_timed(park):
    with FakeHttp(status="hang") as receiver:
        platform, _ = new_platform(park)
        d = _notice(platform, receiver.url)
        started = time.monotonic()
        assert callbacks.deliver(d.pk) == "pending"
        assert time.monotonic() - started < 5
        d.refresh_from_db()
        assert d.last_status is None and "Timeout" in d.last_error
        receiver.answer(200, delay=0.5)
        CallbackDelivery.objects.filter(pk=d.pk).update(next_at=timezone.now())
        assert callbacks.deliver(d.pk) == "delivered"
        d.refresh_from_db()
        assert d.log[-1]["ms"] >= 500 and d.log[-1]["status"] == 200


def test_outage_alarms_sends_sms_and_fails_over_until_recovery(park, settings):
    with FakeHttp() as primary, FakeHttp() as backup, FakeHttp() as sms_gateway:
        settings.SMS_GATEWAY_URL = sms_gateway.url + "/send"
        platform, _ = new_platform(park, base_url=primary.url, backup_url=backup.url, alert_phone="+8613800000000",
                                   callback_url=primary.url + "/cb")
        assert health.probe(platform) is True
        primary.answer(503)
        platform.refresh_from_db()
        assert health.probe(platform) is False
        platform.refresh_from_db()
        assert platform.use_backup and platform.last_probe_ok is False
        alarm = Alarm.objects.get(park=park, kind="integration", state="open")
        assert alarm.code == "E7420" and platform.app_id in alarm.message_en
        (_m, path, _h, body), = sms_gateway.received
        assert path == "/send" and json.loads(body)["to"] == "+8613800000000"
        assert health.probe(platform) is False  # still down: counted, no second SMS
        assert len(sms_gateway.received) == 1 and Alarm.objects.get(pk=alarm.pk).count == 2
        # calls under the base URL go to the backup meanwhile
        d = _notice(platform, primary.url + "/cb")
        assert callbacks.deliver(d.pk) == "delivered"
        assert [p for m, p, _h, _b in backup.received if m == "POST"] == ["/cb"] and len(primary.received) == 3
        assert [m for m, _p, _h, _b in backup.received].count("GET") == 3  # the backup is probed too
        primary.answer(200)
        platform.refresh_from_db()
        assert health.probe(platform) is True
        platform.refresh_from_db()
        assert not platform.use_backup and Alarm.objects.get(pk=alarm.pk).state == "closed"


def test_the_backup_url_is_probed_and_shown_and_used_only_while_it_answers(park, client):
    from django.contrib.auth import get_user_model

    from apps.accounts.services import set_membership

    with FakeHttp(status=503) as primary, FakeHttp(status=502) as backup:
        platform, _ = new_platform(park, base_url=primary.url, backup_url=backup.url)
        assert health.probe(platform) is False
        platform.refresh_from_db()
        assert (platform.use_backup, platform.backup_probe_ok) == (False, False)  # no switch to a failing backup
        assert platform.backup_probe_ms is not None and platform.backup_probe_at is not None
        alarm = Alarm.objects.get(park=park, kind="integration", state="open")
        assert "backup URL is failing too (HTTP 502" in alarm.message_en
        backup.answer(200)
        assert health.probe(platform) is False
        platform.refresh_from_db()
        assert (platform.use_backup, platform.backup_probe_ok) == (True, True)
    boss = get_user_model().objects.create_user("boss", "b@x.invalid", "pw-Platforms-1")
    set_membership(actor="test", user=boss, park=park, role="admin")
    client.force_login(boss)
    page = client.get(f"/integrations/platform/{platform.pk}/change/").content.decode()
    assert "field-backup_probe_ok" in page and "field-backup_probe_ms" in page


def test_a_slow_or_unreachable_primary_is_an_outage(park, settings):
    settings.PROBE_SLOW_S = 0.3
    with FakeHttp(delay=0.5) as slow:
        platform, _ = new_platform(park, base_url=slow.url)
        assert health.probe(platform) is False
        assert Platform.objects.get(pk=platform.pk).last_probe_ms >= 500
    platform2, _ = new_platform(park, base_url=closed_port_url())
    assert health.probe(platform2) is False
    assert not Platform.objects.get(pk=platform2.pk).use_backup  # no backup to switch to


def test_the_docs_client_signs_and_verifies_as_the_park_does(park):
    """docs/examples/open_platform_client.py, as an integrator copies it: its webhook check accepts the park's
    signature and refuses a tampered body or a stale timestamp."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "examples" / "open_platform_client.py"
    spec = importlib.util.spec_from_file_location("open_platform_client", path)
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    body, stamp = b'{"type":"anomaly"}', str(int(time.time()))
    headers = {"webhook-id": "msg_1", "webhook-timestamp": stamp,
               "webhook-signature": callbacks.webhook_signature(b"s3cret", "msg_1", stamp, body)}
    assert client.verify_webhook("s3cret", headers, body)
    assert not client.verify_webhook("s3cret", headers, body + b" ")
    assert not client.verify_webhook("s3cret", {**headers, "webhook-timestamp": str(int(stamp) - 3600)}, body)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_dispatches_and_delivers(park, tmp_path):
    """The beat's dispatch-callbacks on a real Celery worker (no eager mode): the due notice is posted once."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from django.conf import settings

    from apps.integrations.tasks import dispatch_callbacks
    from tests.test_mqtt_channel import _database_url_of_this_test

    with FakeHttp() as receiver:
        platform, _ = new_platform(park, callback_url=receiver.url + "/cb")
        d = _notice(platform, receiver.url + "/cb")
        queue = f"test-cb-{os.getpid()}"
        env = dict(os.environ, DATABASE_URL=_database_url_of_this_test(), REDIS_URL=settings.REDIS_URL,
                   OPEN_ALLOW_HTTP_URLS="1")
        log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - handed to the child
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "carbonpark", "worker", "-Q", queue,
                                   "--pool", "solo", "-l", "info"], cwd=Path(__file__).resolve().parents[1], env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            dispatch_callbacks.apply_async(kwargs={"queue": queue}, queue=queue)
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and CallbackDelivery.objects.get(pk=d.pk).state != "delivered":
                time.sleep(0.2)
            assert CallbackDelivery.objects.get(pk=d.pk).state == "delivered", \
                (tmp_path / "worker.log").read_text()[-2000:]
        finally:
            worker.terminate()
            worker.wait(20)
    assert len(receiver.received) == 1
