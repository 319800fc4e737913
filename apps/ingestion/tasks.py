"""Celery tasks of ingestion. They act for the platform, on behalf of no one: every park (the system;
docs/roles.md, "Processes")."""

from celery import shared_task

from apps.ingestion.services import purge_idempotency_keys as purge


@shared_task(time_limit=600)
def purge_idempotency_keys():
    return purge()


@shared_task(time_limit=3600)
def maintain_reading_partitions():
    """Monthly partitions ahead and the retention policy (apps/ingestion/partitions.py)."""
    from apps.ingestion.partitions import maintain

    return maintain()


@shared_task(time_limit=120, soft_time_limit=100)
def poll_source(source_pk: int, mode: str = "incremental"):
    """One poll of one due source (scheduled per source by django-celery-beat)."""
    from apps.ingestion.polling import poll_source as poll

    return poll(source_pk, mode=mode).accepted


@shared_task(time_limit=60, soft_time_limit=50)
def refresh_rollups():
    """Rollups current with the dirty log (apps/ingestion/rollups.py); every 10 s, ~8 s at most."""
    from apps.ingestion.rollups import refresh

    r = refresh()
    return {"series": r.series, "hours": r.hours, "busy": r.busy, "seconds": round(r.seconds, 3)}


@shared_task(time_limit=1800, soft_time_limit=1700)
def rebuild_rollups():
    """One pending rollup rebuild partition (an upgrade's, apps/ingestion/rollup_rebuild.py), newest first;
    a cheap query when nothing is pending."""
    from apps.ingestion.rollup_rebuild import step

    r = step()
    return {"month": str(r.month) if r.month else None, "readings": r.readings, "busy": r.busy, "done": r.done,
            "seconds": round(r.seconds, 3)}
