"""Periodic jobs run on a real Celery worker over Redis (no eager mode): the beat schedule names only
registered tasks, and a silent source is flagged when the job runs."""

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from apps.sources.models import DeviceState

ROOT = Path(__file__).resolve().parent.parent


def test_beat_schedule_names_registered_tasks():
    from carbonpark.celery import app

    app.loader.import_default_modules()
    missing = [job["task"] for job in app.conf.beat_schedule.values() if job["task"] not in app.tasks]
    assert missing == []
    assert {"apps.sources.tasks.flag_silent_sources", "apps.sources.tasks.rotate_due_keys",
            "apps.ingestion.tasks.purge_idempotency_keys", "apps.ingestion.tasks.refresh_rollups"} <= set(app.tasks)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_silent_source_flagged_by_a_real_worker(meter, tmp_path):
    from tests.test_mqtt_channel import _database_url_of_this_test

    DeviceState.objects.create(source=meter, last_seen_at=timezone.now() - timedelta(hours=1))
    queue = f"test-{os.getpid()}"
    env = dict(os.environ, DATABASE_URL=_database_url_of_this_test(), REDIS_URL=settings.REDIS_URL)
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - handed to the child
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "carbonpark", "worker", "-Q", queue,
                               "--pool", "solo", "-l", "info"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        from apps.sources.tasks import flag_silent_sources

        flag_silent_sources.apply_async(queue=queue)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not DeviceState.objects.get(source=meter).silent:
            time.sleep(0.2)
        assert DeviceState.objects.get(source=meter).silent, (tmp_path / "worker.log").read_text()[-2000:]

        # The same worker keeps the rollups current (the beat's refresh-rollups, every 10 s).
        from apps.ingestion.models import Rollup
        from apps.ingestion.services import ingest_readings
        from apps.ingestion.tasks import refresh_rollups

        ingest_readings([{"sourceId": meter.source_id, "timestamp": "2026-11-23 10:05:00", "value": 3}],
                        channel="test", actor="test")
        refresh_rollups.apply_async(queue=queue)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and Rollup.objects.count() < 3:
            time.sleep(0.2)
        assert sorted(Rollup.objects.values_list("interval", "count")) == [("d", 1), ("h", 1), ("m", 1)], \
            (tmp_path / "worker.log").read_text()[-2000:]
    finally:
        worker.terminate()
        worker.wait(20)
