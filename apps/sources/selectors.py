from django.db.models import QuerySet

from apps.accounts.selectors import parks_for
from apps.sources.models import DataSource


def sources_for(user) -> QuerySet[DataSource]:
    return DataSource.objects.filter(park__in=parks_for(user)).select_related("park").prefetch_related("data_items")


def gateways_with_members() -> list[tuple[DataSource, list[DataSource]]]:
    """Every enabled gateway with its enabled members, for the broker's ACL (R-8.2.2.1)."""
    gateways = (DataSource.objects.filter(kind=DataSource.Kind.GATEWAY, enabled=True).select_related("park")
                .prefetch_related("members__park").order_by("source_id"))
    return [(g, sorted((m for m in g.members.all() if m.enabled), key=lambda m: m.source_id)) for g in gateways]
