"""The Celery app and the whole beat schedule (one place for every periodic job)."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")

app = Celery("carbonpark")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # R-5.2.2.6: keys rotate at most every 30 days; the rotation waits for the device's ack.
    "rotate-due-keys": {"task": "apps.sources.tasks.rotate_due_keys", "schedule": crontab(minute=5)},
    # sources silent for three expected intervals are flagged and alarmed.
    "flag-silent-sources": {"task": "apps.sources.tasks.flag_silent_sources", "schedule": 60.0},
    # Downlink commands past their expiresAt end as expired.
    "expire-commands": {"task": "apps.sources.tasks.expire_commands", "schedule": 60.0},
    # Idempotency keys are kept IDEMPOTENCY_TTL_HOURS, then forgotten (interfaces.md §3).
    "purge-idempotency-keys": {
        "task": "apps.ingestion.tasks.purge_idempotency_keys",
        "schedule": crontab(minute=17),
    },
}
