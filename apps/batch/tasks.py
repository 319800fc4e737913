"""Celery tasks of batch files: thin, over one service each (ARCHITECTURE.md rule 6). They act for the platform
(docs/roles.md, "Processes"): the shared folder loads each park's files into that park only."""

from celery import shared_task


@shared_task(time_limit=3600, soft_time_limit=3500)
def scan_batch_folder():
    """R-7.4.1.2: the legacy shared folder, every minute (carbonpark/celery.py)."""
    from apps.batch.folder import scan_folder

    return [r.report.to_json() for r in scan_folder()]


@shared_task(time_limit=300)
def recover_interrupted_loads():
    """Loads whose process died mid-file end as refused (E9126): nothing of them was stored."""
    from apps.batch.loading import recover_interrupted_loads as recover

    return recover()
