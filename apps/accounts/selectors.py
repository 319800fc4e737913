"""Park scoping: the one place that says which parks a person or token may see (restrict(user))."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import Membership, Park

MANAGE_ROLES = (Membership.Role.ADMIN,)


def parks_for(user) -> QuerySet[Park]:
    if user is None or not user.is_authenticated:
        return Park.objects.none()
    token = getattr(user, "token", None)
    if token is not None:
        return Park.objects.filter(pk=token.park_id)
    if user.is_superuser:
        return Park.objects.all()
    return Park.objects.filter(memberships__user=user)


def park_ids_for(user) -> list[int]:
    return list(parks_for(user).values_list("pk", flat=True))


def can_manage(user, park: Park) -> bool:
    """May this principal change sources and settings of the park?"""
    token = getattr(user, "token", None)
    if token is not None:
        return token.park_id == park.pk and token.role == token.Role.INTEGRATOR
    if user.is_superuser:
        return True
    return Membership.objects.filter(user=user, park=park, role__in=MANAGE_ROLES).exists()


WRITE_ROLES = (Membership.Role.OPERATOR, Membership.Role.ADMIN)


def writable_park_ids(user) -> list[int] | None:
    """Parks whose readings the principal may push; None means every park (superusers)."""
    token = getattr(user, "token", None)
    if token is not None:
        return [token.park_id]
    if user.is_superuser:
        return None
    return list(Membership.objects.filter(user=user, role__in=WRITE_ROLES).values_list("park_id", flat=True))
