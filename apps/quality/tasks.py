"""Celery tasks of data quality: thin, each calls one service. They act for the platform, on behalf of no one:
every park (the system; docs/roles.md, "Processes")."""

from celery import shared_task
from django.db import OperationalError


@shared_task(time_limit=600, soft_time_limit=570)
def find_gaps():
    """Gaps of the readings stored since the last run (apps/quality/gaps.py, R-9.1.2)."""
    from apps.quality.gaps import find_gaps as find

    r = find()
    return {"full": r.full, "series": r.series, "opened": r.opened, "changed": r.changed, "closed": r.closed,
            "busy": r.busy, "seconds": round(r.seconds, 3)}


@shared_task(time_limit=600, soft_time_limit=540, autoretry_for=(OperationalError, OSError), retry_backoff=True,
             max_retries=3)
def send_deadline_reminders():
    """R-6.2.b–d: remind the responsible staff of overdue data, escalate to the park's administrators."""
    from apps.quality.deadlines.services import send_reminders

    return send_reminders()


@shared_task(time_limit=600, soft_time_limit=570)
def post_checks():
    """Checks after storage of the readings stored since the last run (apps/quality/postchecks/, R-9.2.2)."""
    from apps.quality.postchecks import run_post_checks

    r = run_post_checks()
    return {"full": r.full, "series": r.series, "checked": r.checked, "hits": r.hits, "busy": r.busy,
            "seconds": round(r.seconds, 3)}


@shared_task(time_limit=600, soft_time_limit=570)
def derive_consumption():
    """Consumption derived from the meter registers queued since the last run (apps/quality/registers/derive.py)."""
    from apps.quality.registers.derive import derive_consumption as derive

    r = derive()
    return {"series": r.series, "dropped": r.dropped, "derived": r.derived, "hours": r.hours, "busy": r.busy,
            "seconds": round(r.seconds, 3)}


@shared_task(time_limit=900, soft_time_limit=870)
def fill_gaps():
    """Open gaps filled in the standard's order, minor anomalies repaired (apps/quality/filling, R-9.3.2.1)."""
    from apps.quality.filling import fill_gaps as fill

    return fill().as_dict()


@shared_task(time_limit=1800, soft_time_limit=1740)
def quality_indicators():
    """The monthly quality indicators of this month and the last (apps/quality/indicators/compute.py, R-9.1)."""
    from apps.quality.indicators.compute import refresh

    return [{"month": r.month.isoformat(), "rows": r.rows, "seconds": round(r.seconds, 3)} for r in refresh()]
