"""The Celery app and the whole beat schedule (one place for every periodic job)."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")

app = Celery("carbonpark")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # Idempotency keys are kept IDEMPOTENCY_TTL_HOURS, then forgotten (interfaces.md §3).
    "purge-idempotency-keys": {
        "task": "apps.ingestion.tasks.purge_idempotency_keys",
        "schedule": crontab(minute=17),
    },
}
