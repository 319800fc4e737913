"""The park-access seam itself (apps/accounts/access.py): roles, scopes, restrict, moves."""

import pytest
from django.contrib.auth import get_user_model

from apps.accounts import access
from apps.accounts.access import AccessDenied, Action
from apps.accounts.models import Membership
from apps.accounts.services import issue_token, set_membership
from apps.sources.models import DataSource
from tests.conftest import add_source


def member(park, role, name=None):
    user = get_user_model().objects.create_user(name or f"{role}-{park.code}", password="x-Unused-123")
    set_membership(actor="test", user=user, park=park, role=role)
    return user


@pytest.mark.django_db
def test_each_member_role_gets_its_row_and_nothing_in_other_parks(park, other_park):
    for role in Membership.Role.values:
        user = member(park, role)
        row = access.ROLES[role].actions
        for action in Action:
            owner = user if action in (Action.MODIFY, Action.DELETE) else None
            assert access.check(user, action, park, owner=owner) == (action in row), (role, action)
            assert not access.check(user, action, other_park), (role, action)


@pytest.mark.django_db
def test_scopes_own_and_others(park):
    clerk, other_clerk, approver = member(park, "operator"), member(park, "operator", "c2"), member(park, "approver")
    assert access.check(clerk, Action.MODIFY, park, owner=clerk)
    assert not access.check(clerk, Action.MODIFY, park, owner=other_clerk)
    assert not access.check(clerk, Action.DELETE, park)  # OWN needs an owner
    assert access.check(approver, Action.APPROVE, park, owner=clerk)
    assert not access.check(approver, Action.APPROVE, park, owner=approver)
    root = get_user_model().objects.create_superuser("root", password="x-Unused-123")
    assert access.check(root, Action.MANAGE, park) and not access.check(root, Action.APPROVE, park, owner=root)


@pytest.mark.django_db
def test_restrict_and_moves(park, other_park, django_assert_num_queries):
    add_source(park, "TP01-A", ["CS010201"])
    add_source(other_park, "TP02-A", ["CS010201"])
    admin = member(park, "admin")
    set_membership(actor="test", user=admin, park=other_park, role="viewer")
    access.forget(admin)
    with django_assert_num_queries(2):  # the roles once, then the rows
        assert [s.source_id for s in access.restrict(DataSource.objects.all(), admin, Action.VIEW)
                .order_by("source_id")] == ["TP01-A", "TP02-A"]
    assert [s.source_id for s in access.restrict(DataSource.objects.all(), admin, Action.MANAGE)] == ["TP01-A"]
    with pytest.raises(AccessDenied):
        access.require_move(admin, Action.MANAGE, other_park, park)  # takes B's object into A
    access.require_move(admin, Action.MANAGE, park, park)


@pytest.mark.django_db
def test_tokens(park, other_park):
    device, _ = issue_token(actor="test", park=park, name="d", role="device")
    principal = type("P", (), {"token": device, "is_authenticated": True, "is_active": True, "pk": None})()
    assert access.park_ids(principal, Action.PUSH) == [park.pk]
    assert access.park_ids(principal, Action.VIEW) == []
    assert not access.restrict(DataSource.objects.all(), principal, Action.VIEW).exists()


@pytest.mark.django_db
def test_audit_entries_belong_to_the_park_they_name(park, other_park):
    from apps.core.models import AuditEntry

    auditor = member(park, "auditor")
    mine, theirs = (AuditEntry.objects.filter(park_code=p.code).first() for p in (park, other_park))
    assert access.check_object(auditor, Action.AUDIT, mine)
    assert not access.check_object(auditor, Action.AUDIT, theirs)
    assert set(access.restrict(AuditEntry.objects.all(), auditor, Action.AUDIT).values_list("park_code", flat=True)) \
        == {park.code}
