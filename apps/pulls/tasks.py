"""Celery tasks of pull connectors: thin, over one service each (ARCHITECTURE.md rule 6). They act for the platform
(docs/roles.md, "Processes"); each connector writes into its own park only."""

from celery import shared_task


@shared_task(time_limit=60, soft_time_limit=50)
def run_due_pulls():
    """R-7.1.1.2: every minute (carbonpark/celery.py), the connectors whose next run is due, one task each."""
    from apps.pulls.services import due_connectors

    due = due_connectors()
    for pk in due:
        run_pull.delay(pk)
    return due


@shared_task(time_limit=3600, soft_time_limit=3500)
def run_pull(connector_pk: int, mode: str = "incremental"):
    """One run of one connector; a connector already running elsewhere is skipped (its lock)."""
    from apps.pulls.services import run_connector

    run = run_connector(connector_pk, mode=mode)
    return None if run is None else {"run": run.pk, "state": run.state, "accepted": run.accepted,
                                     "error": run.error_code}
