"""Celery tasks of corrections: thin, each calls one service (enqueued on commit by the services)."""

from celery import shared_task
from django.db import OperationalError


@shared_task(time_limit=900, soft_time_limit=840, autoretry_for=(OperationalError,), retry_backoff=True,
             max_retries=5)
def apply_correction(correction_id: int):
    from apps.corrections.services import apply_correction as apply

    c = apply(correction_id)
    return c.revised_count if c is not None else None


@shared_task(time_limit=120, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def notify_approvers(correction_id: int):
    from apps.corrections.services import notify_approvers as notify

    return notify(correction_id)
