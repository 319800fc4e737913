from django.db.models import QuerySet

from apps.accounts import access
from apps.accounts.access import Action
from apps.sources.models import Command, DataSource


def sources_for(principal, action: Action = Action.VIEW, *, park_code: str | None = None) -> QuerySet[DataSource]:
    """The sources of the parks where ``principal`` may ``action`` (R-7.3.3), optionally narrowed to one
    park by its code (a park the principal cannot see simply yields nothing)."""
    qs = access.restrict(DataSource.objects.select_related("park").prefetch_related("data_items"), principal, action)
    return qs.filter(park__code=park_code) if park_code else qs


def commands_of(source: DataSource, principal, action: Action = Action.VIEW) -> QuerySet[Command]:
    """A source's downlink commands, newest first, if ``principal`` may ``action`` in its park."""
    return access.restrict(Command.objects.filter(source=source), principal, action).order_by("-created_at", "-pk")


def gateways_with_members() -> list[tuple[DataSource, list[DataSource]]]:
    """Every enabled gateway with its enabled members, for the broker's ACL (R-8.2.2.1). Every park: only the
    system reads it (``manage.py mosquitto_acl``)."""
    gateways = (DataSource.objects.filter(kind=DataSource.Kind.GATEWAY, enabled=True).select_related("park")
                .prefetch_related("members__park").order_by("source_id"))
    return [(g, sorted((m for m in g.members.all() if m.enabled), key=lambda m: m.source_id)) for g in gateways]
