"""Members and tokens in the portal go through the accounts services: removing a member is a revoke
(guardian rows gone, audited), a token is withdrawn, never deleted."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from guardian.shortcuts import get_perms

from apps.accounts.models import Membership
from apps.accounts.services import issue_token, set_membership
from apps.core.models import AuditEntry


@pytest.fixture
def park_admin(park):
    user = get_user_model().objects.create_user("pa", password="x-Unused-123")
    set_membership(actor="test", user=user, park=park, role="admin")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_removing_a_member_in_the_portal_revokes_it(park, other_park, park_admin):
    clerk = get_user_model().objects.create_user("clerk", password="x-Unused-123")
    mine = set_membership(actor="test", user=clerk, park=park, role="operator")
    theirs = set_membership(actor="test", user=clerk, park=other_park, role="operator")
    assert "park_enter" in get_perms(clerk, park)
    r = park_admin.post(f"/accounts/membership/{mine.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert not Membership.objects.filter(pk=mine.pk).exists()
    assert get_perms(clerk, park) == []
    assert AuditEntry.objects.filter(action="membership.revoke", park_code=park.code, object_id=str(mine.pk)).exists()
    # the bulk action revokes too, and only in the parks the administrator manages
    r = park_admin.post("/accounts/membership/", {"action": "delete_selected", "_selected_action": [theirs.pk],
                                                   "post": "yes"})
    assert Membership.objects.filter(pk=theirs.pk).exists() and "park_enter" in get_perms(clerk, other_park)


@pytest.mark.django_db
def test_a_token_is_withdrawn_not_deleted(park, park_admin):
    token, _key = issue_token(actor="test", park=park, name="meter gateway", role="device")
    assert park_admin.get(f"/accounts/apitoken/{token.pk}/delete/").status_code == 403
    root = get_user_model().objects.create_superuser("root", password="x-Unused-123")
    client = Client()
    client.force_login(root)
    assert client.get(f"/accounts/apitoken/{token.pk}/delete/").status_code == 403
    token.refresh_from_db()
    assert token.is_active


@pytest.mark.django_db
def test_a_park_administrator_is_asked_for_the_rules_park_at_the_field(park, park_admin):
    from apps.quality.models import Rule

    before = Rule.objects.count()
    r = park_admin.post("/quality/rule/add/", {"name": "too high", "kind": "range", "severity": "flag",
                                               "stage": "pre", "params": '{"max": 10}', "enabled": "on"})
    assert r.status_code == 200  # the form again, not a 403 after the post
    assert "park" in r.context["adminform"].form.errors
    assert Rule.objects.count() == before
