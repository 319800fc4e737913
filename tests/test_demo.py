"""The demo park `make run` sets up (apps/demo): one login per park role, passwords generated once and kept."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from apps.accounts.models import Membership
from apps.demo.management.commands import demo_setup

pytestmark = pytest.mark.django_db


def test_demo_setup_makes_one_login_per_park_role_and_keeps_their_passwords(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_setup, "VAR_DIR", tmp_path)  # the state directory of this run, not the suite's
    call_command("demo_setup", stdout=io.StringIO())
    users = demo_setup.demo_role_users()
    assert set(users) == set(Membership.Role.values) == {"viewer", "operator", "approver", "auditor", "admin"}
    passwords = {}
    for role, name in users.items():
        user = get_user_model().objects.get(username=name)
        membership = Membership.objects.get(user=user)
        assert (membership.park.code, membership.role) == (demo_setup.DEMO_PARK, role)
        assert not user.is_staff and not user.is_superuser and user.is_active
        kept = tmp_path / f"{name}_password"
        assert kept.stat().st_mode & 0o777 == 0o600
        passwords[name] = kept.read_text().strip()
        assert len(passwords[name]) >= 16 and user.check_password(passwords[name])
    assert len(set(passwords.values())) == len(users)
    assert get_user_model().objects.get(username="admin").is_superuser

    call_command("demo_setup", stdout=io.StringIO())  # the next start: nothing changes
    for name, password in passwords.items():
        assert (tmp_path / f"{name}_password").read_text().strip() == password
        assert get_user_model().objects.get(username=name).check_password(password)
    assert Membership.objects.filter(park__code=demo_setup.DEMO_PARK).count() == len(users) + 1  # + admin

    from django.test import Client

    for name, password in passwords.items():  # each gets into the portal with its own password
        client = Client()
        assert client.login(username=name, password=password)
        assert client.get("/").status_code == 200, name
