"""Memberships drive django-guardian's per-park object permissions (apps/accounts/services.py, R-7.3.3): after a
grant, a role change and a revoke, guardian says what apps.accounts.access says; a failing grant leaves
neither; manage.py sync_park_permissions repairs."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import DatabaseError, connection
from guardian.core import ObjectPermissionChecker
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm, get_perms

from apps.accounts import access
from apps.accounts.access import Action
from apps.accounts.models import Membership
from apps.accounts.services import revoke_membership, set_membership
from apps.core.models import AuditEntry


def by_guardian(user, park) -> set[Action]:
    """The actions guardian grants, asked three ways that must agree."""
    user = get_user_model().objects.get(pk=user.pk)  # no cached permissions
    perms = set(get_perms(user, park))
    checker = ObjectPermissionChecker(user)
    assert set(checker.get_perms(park)) == perms
    held = {a for a in Action if access.permission_codename(a) in perms}
    assert held == {a for a in Action if user.has_perm(f"accounts.{access.permission_codename(a)}", park)}
    return held


def by_seam(user, park) -> set[Action]:
    """The actions access.check allows in some scope (own entries for OWN, others' for OTHERS)."""
    access.forget(user)
    return {a for a in Action if access.check(user, a, park) or access.check(user, a, park, owner=user)}


@pytest.mark.django_db
def test_guardian_agrees_with_the_seam_after_grant_change_and_revoke(park, other_park):
    user = get_user_model().objects.create_user("member")
    roles = Membership.Role.values
    for role in [*roles, roles[0]]:  # a first grant, then a change to each other role and back
        set_membership(actor="test", user=user, park=park, role=role)
        assert by_guardian(user, park) == by_seam(user, park) == set(access.ROLES[role].actions), role
        assert by_guardian(user, other_park) == by_seam(user, other_park) == set()
    set_membership(actor="test", user=user, park=other_park, role="auditor")
    assert revoke_membership(actor="test", user=user, park=park, reason="left the park")
    assert by_guardian(user, park) == by_seam(user, park) == set()
    assert by_guardian(user, other_park) == by_seam(user, other_park) == {Action.VIEW, Action.AUDIT, Action.EXPORT}
    assert not revoke_membership(actor="test", user=user, park=park)  # nothing left: nothing recorded

    trail = list(AuditEntry.objects.filter(action__startswith="membership.", park_code=park.code).order_by("id")
                 .values_list("action", "before", "after", "reason"))
    assert [t[0] for t in trail] == ["membership.grant"] * (len(roles) + 1) + ["membership.revoke"]
    assert trail[0][1] is None and trail[0][2] == {"user": "member", "role": roles[0]}
    assert trail[1][1] == {"user": "member", "role": roles[0]} and trail[1][2]["role"] == roles[1]
    assert trail[-1][1:] == ({"user": "member", "role": roles[0]}, None, "left the park")


@pytest.mark.django_db
def test_a_failing_grant_rolls_back_the_membership_and_the_guardian_rows(park):
    user = get_user_model().objects.create_user("clerk")
    set_membership(actor="test", user=user, park=park, role="viewer")
    with connection.cursor() as cur:  # the audit write, the last step of a grant, fails in the database
        cur.execute("""
            CREATE FUNCTION test_refuse_grant() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'audit store refused'; END $$;
            CREATE TRIGGER test_refuse_grant BEFORE INSERT ON core_auditentry FOR EACH ROW
            WHEN (NEW.action = 'membership.grant') EXECUTE FUNCTION test_refuse_grant();""")
    with pytest.raises(DatabaseError, match="audit store refused"):
        set_membership(actor="test", user=user, park=park, role="admin")
    assert Membership.objects.get(user=user, park=park).role == "viewer"
    assert by_guardian(user, park) == by_seam(user, park) == {Action.VIEW}
    newcomer = get_user_model().objects.create_user("newcomer")
    with pytest.raises(DatabaseError):
        set_membership(actor="test", user=newcomer, park=park, role="auditor")
    assert not Membership.objects.filter(user=newcomer).exists()
    assert not UserObjectPermission.objects.filter(user=newcomer).exists()


@pytest.mark.django_db
def test_sync_park_permissions_repairs_and_is_idempotent(park, other_park, capsys):
    users = {role: get_user_model().objects.create_user(role)
             for role in Membership.Role.values}
    for role, user in users.items():
        set_membership(actor="test", user=user, park=park, role=role)
    UserObjectPermission.objects.filter(user=users["admin"]).delete()  # rows lost
    assign_perm(f"accounts.{access.permission_codename(Action.MANAGE)}", users["viewer"], park)  # a stray grant
    assign_perm(f"accounts.{access.permission_codename(Action.VIEW)}", users["viewer"], other_park)  # no membership
    call_command("sync_park_permissions")
    assert "8 added, 2 removed" in capsys.readouterr().out
    for user in users.values():
        assert by_guardian(user, park) == by_seam(user, park)
        assert by_guardian(user, other_park) == by_seam(user, other_park) == set()
    call_command("sync_park_permissions")
    assert "0 added, 0 removed (already in step)" in capsys.readouterr().out
