"""Celery tasks of data quality: thin, each calls one service."""

from celery import shared_task
from django.db import OperationalError


@shared_task(time_limit=600, soft_time_limit=540, autoretry_for=(OperationalError, OSError), retry_backoff=True,
             max_retries=3)
def send_deadline_reminders():
    """R-6.2.b–d: remind the responsible staff of overdue data, escalate to the park's administrators."""
    from apps.quality.deadlines.services import send_reminders

    return send_reminders()
