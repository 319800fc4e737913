"""Corrections across processes: an approval committed through the API is applied by a real Celery worker over
Redis (no eager mode), and two approvers deciding at the same moment decide once (the correction's row lock)."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.test import APIClient

from apps.accounts.services import set_membership
from apps.core.errors import CarbonParkError
from apps.corrections import services
from apps.corrections.models import Correction, Revision
from apps.ingestion.services import ingest_readings

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _people(park):
    users = get_user_model().objects
    out = {}
    for name, role in (("clerk", "operator"), ("approver1", "approver"), ("approver2", "approver")):
        out[name] = users.create_user(name)
        set_membership(actor="test", user=out[name], park=park, role=role)
    return out


def _request(meter, clerk):
    ingest_readings([{"sourceId": meter.source_id, "timestamp": f"2026-11-23 10:{m:02d}:00", "value": 2.0}
                     for m in range(5)], channel="test", actor="test")
    return services.request_correction(actor=clerk, source_id=meter.source_id, start="2026-11-23 10:00:00",
                                       end="2026-11-23 10:04:00", factor=3, reason="CT ratio")


def test_an_approval_is_applied_by_a_real_worker(meter, tmp_path, monkeypatch):
    from carbonpark.celery import app
    from tests.test_mqtt_channel import _database_url_of_this_test

    queue = f"test-corrections-{os.getpid()}"
    monkeypatch.setitem(app.conf, "task_default_queue", queue)
    people = _people(meter.park)
    c = _request(meter, people["clerk"])
    env = dict(os.environ, DATABASE_URL=_database_url_of_this_test(), REDIS_URL=settings.REDIS_URL,
               EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - handed to the child
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "carbonpark", "worker", "-Q", queue,
                               "--pool", "solo", "-l", "info"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        client = APIClient()
        client.force_login(people["approver1"])
        r = client.post(f"/api/v1/corrections/{c.pk}/approve", {"comment": "ok"}, format="json")
        assert r.status_code == 200, r.content
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and Correction.objects.get(pk=c.pk).state != "applied":
            time.sleep(0.2)
        c.refresh_from_db()
        assert c.state == "applied" and c.revised_count == 5, (tmp_path / "worker.log").read_text()[-2000:]
        assert sorted(Revision.objects.values_list("value", flat=True)) == [6.0] * 5
    finally:
        worker.terminate()
        worker.wait(20)


def test_two_approvers_at_once_decide_once_and_apply_once(meter):
    people = _people(meter.park)
    c = _request(meter, people["clerk"])
    barrier = threading.Barrier(2)
    outcomes = []

    def decide(user, approve):
        try:
            barrier.wait(5)
            if approve:
                services.approve_correction(actor=user, correction_id=c.pk)
            else:
                services.reject_correction(actor=user, correction_id=c.pk, comment="no")
            outcomes.append("ok")
        except CarbonParkError as exc:
            outcomes.append(exc.error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(people["approver1"], True)),
               threading.Thread(target=decide, args=(people["approver2"], False))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(outcomes) == ["E8014", "ok"]
    c.refresh_from_db()
    if c.state == "approved":
        appliers = [threading.Thread(target=lambda: (services.apply_correction(c.pk), connection.close()))
                    for _ in range(2)]
        for t in appliers:
            t.start()
        for t in appliers:
            t.join(20)
        assert Revision.objects.count() == 5 and Correction.objects.get(pk=c.pk).revised_count == 5
    else:
        assert c.state == "rejected" and not Revision.objects.exists()
