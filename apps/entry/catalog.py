"""The catalog as a form definition sees it: ``ItemInfo`` by code for the standard's items and one park's own."""

from __future__ import annotations

from django.db.models import Q

from apps.catalog.models import DataItem
from apps.entry.definitions import ItemInfo


def item_info(item) -> ItemInfo:
    """``ItemInfo`` of a DataItem (live or a migration's historical row) with its enumeration's values."""
    options = ()
    if item.enumeration_id:
        options = tuple((v.code, v.label_zh, v.label_en)
                         for v in item.enumeration.values.order_by("order", "code"))
    return ItemInfo(code=item.code, name_zh=item.name_zh, name_en=item.name_en, data_type=item.data_type,
                    unit=item.unit, precision=item.precision, options=options)


def catalog_lookup(park=None):
    """A lookup over the active items a form of ``park`` (None: a platform default) may name: the standard's
    and, for a park, its own. Reads each code once."""
    park_id = getattr(park, "pk", park)
    scope = Q(park__isnull=True) | Q(park_id=park_id) if park_id else Q(park__isnull=True)
    cache: dict[str, ItemInfo | None] = {}

    def lookup(code: str) -> ItemInfo | None:
        if code not in cache:
            item = (DataItem.objects.filter(scope, code=code, is_active=True).select_related("enumeration")
                    .first())
            cache[code] = item_info(item) if item else None
        return cache[code]

    return lookup
