"""Platform-side polling schedules (R-7.1.1.2 passive collection at a configurable frequency): one
django-celery-beat periodic task per source the platform reaches directly, every expected interval."""

from __future__ import annotations

import json

from apps.sources.models import DataSource

POLLED_PROTOCOLS = {"opcua", "modbus_tcp", "dlt645"}
TASK = "apps.ingestion.tasks.poll_source"


def task_name(source: DataSource) -> str:
    return f"poll {source.source_id}"


def polled_by_platform(source: DataSource) -> bool:
    return (source.enabled and source.protocol in POLLED_PROTOCOLS
            and bool((source.settings or {}).get("poll", {}).get("platform")))


def sync_poll_schedule(source: DataSource) -> None:
    """Create, change or disable the source's periodic poll to match its settings."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    name = task_name(source)
    if not polled_by_platform(source):
        PeriodicTask.objects.filter(name=name).update(enabled=False)
        return
    interval, _ = IntervalSchedule.objects.get_or_create(every=source.expected_interval_s,
                                                         period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(name=name, defaults={
        "task": TASK, "interval": interval, "args": json.dumps([source.pk]),
        "kwargs": json.dumps({"mode": "incremental"}), "enabled": True,
        "description": f"poll {source.protocol} source {source.source_id} (R-7.1.1.2)"})
