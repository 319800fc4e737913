"""Reads of the catalog, scoped by the park-access seam: the standard's rows are shared reference data, a
park's own codes and classes are its members' (R-6.3–6.5, R-7.3.3)."""

from django.db.models import QuerySet

from apps.accounts import access
from apps.accounts.access import Action
from apps.catalog.models import CatalogClass, DataItem, Enumeration


def items_for(principal, action: Action = Action.VIEW, *, table=None, prefix: str | None = None) -> QuerySet[DataItem]:
    """The standard's items and the park-defined items of the parks where ``principal`` may ``action``;
    ``table`` (1–3) and ``prefix`` narrow it (others ignored)."""
    qs = access.restrict(DataItem.objects.select_related("enumeration", "minor", "park"), principal, action)
    if str(table) in ("1", "2", "3"):
        qs = qs.filter(table=int(table))
    if prefix:
        qs = qs.filter(code__startswith=prefix.upper())
    return qs


def classes_for(principal, action: Action = Action.VIEW) -> QuerySet[CatalogClass]:
    return access.restrict(CatalogClass.objects.all(), principal, action)


def enumerations(principal) -> QuerySet[Enumeration]:
    """Every enumeration with its values: the standard's reference lists, shared by all parks."""
    return access.restrict(Enumeration.objects.prefetch_related("values"), principal, Action.VIEW)


def code_taken(code: str | None) -> bool:
    """Is ``code`` used by any item, the standard's or any park's? Deliberately unscoped: data codes are one
    platform-wide namespace (a reading names only its code), so a new code must be free everywhere."""
    return bool(code) and DataItem.objects.filter(code=code).exists()
