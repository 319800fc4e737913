from django.db.models import Q, QuerySet

from apps.catalog.models import DataItem, Enumeration


def items_for(user=None, park_ids=None) -> QuerySet[DataItem]:
    """The standard's items and the park-defined items of the parks the caller sees."""
    qs = DataItem.objects.select_related("enumeration", "minor")
    if park_ids is None:
        return qs
    return qs.filter(Q(park__isnull=True) | Q(park_id__in=park_ids))


def enumerations() -> QuerySet[Enumeration]:
    return Enumeration.objects.prefetch_related("values")
