"""Reads of the load log, scoped by the access seam (R-7.2.3, R-8.4.1): a park's file loads are seen by those who
may view the park."""

from __future__ import annotations

from apps.accounts import access
from apps.accounts.access import Action
from apps.batch.models import FileLoad


def file_loads(actor, park_ids=None):
    """The loads ``actor`` may see, newest first; only those of ``park_ids`` when given."""
    qs = access.restrict(FileLoad.objects.select_related("park"), actor, Action.VIEW)
    if park_ids is not None:
        qs = qs.filter(park_id__in=park_ids)
    return qs.order_by("-started_at")
