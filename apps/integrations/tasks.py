"""Thin tasks over apps.integrations services: callbacks (R-7.4.4.3) and health probes (R-7.4.4.2)."""

from celery import shared_task

from apps.integrations import callbacks, health


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def deliver_callback(delivery_id: int) -> str:
    return callbacks.deliver(delivery_id)


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=60)
def dispatch_callbacks(queue: str | None = None) -> int:
    """Queue the anomalies not notified yet and send what is due (new notices, and retries whose back-off has
    passed: the back-off lives in the row, so a retry survives a worker's restart). ``queue``: where the sends go
    (default: the default queue)."""
    callbacks.collect_anomalies()
    ids = callbacks.due_ids()
    for pk in ids:
        deliver_callback.apply_async((pk,), queue=queue) if queue else deliver_callback.delay(pk)
    return len(ids)


@shared_task(ignore_result=True, soft_time_limit=100, time_limit=120)
def probe_platforms() -> int:
    return health.probe_all()
