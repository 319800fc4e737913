"""A real Celery worker for the upload tests (issue #11): the load task ``apps.uploads.tasks.load_upload`` runs in
its own process over the real broker, on a queue of the test's own, with the test's database, MEDIA_ROOT and
BATCH_REPORT_ROOT (no eager Celery). Used as a fixture: ``upload_worker`` (tests/conftest.py does not know it;
import it into the test module)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.gunicorn_server import database_url_of_this_test

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def upload_worker(settings, tmp_path, monkeypatch):  # noqa: F811 - pytest-django's settings fixture
    """Yields the worker's log path. MEDIA_ROOT and BATCH_REPORT_ROOT point under tmp_path for the test (the live
    server thread reads them) and for the worker (by its environment)."""
    from carbonpark.celery import app

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BATCH_REPORT_ROOT = tmp_path / "reports"
    queue = f"test-upload-worker-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(app.conf, "task_default_queue", queue)
    env = dict(os.environ, DATABASE_URL=database_url_of_this_test(), REDIS_URL=settings.REDIS_URL,
               MEDIA_ROOT=str(settings.MEDIA_ROOT), BATCH_REPORT_ROOT=str(settings.BATCH_REPORT_ROOT),
               PYTHONUNBUFFERED="1")
    log_path = tmp_path / "worker.log"
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "carbonpark", "worker", "-Q", queue,
                               "--pool", "solo", "-l", "info", "--without-gossip", "--without-mingle",
                               "--without-heartbeat"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield log_path
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)
        log.close()
        import redis

        redis.Redis.from_url(settings.REDIS_URL).delete(queue)
