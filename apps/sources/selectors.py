from django.db.models import QuerySet

from apps.accounts.selectors import parks_for
from apps.sources.models import DataSource


def sources_for(user) -> QuerySet[DataSource]:
    return DataSource.objects.filter(park__in=parks_for(user)).select_related("park").prefetch_related("data_items")
