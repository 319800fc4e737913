"""Accounts (issue #8 deliverable 4): log-in lockout (django-axes), password rules, sessions that end, and
every log-in, failure, lockout and log-out as an audit record."""

import pytest
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

from apps.accounts.middleware import LAST_SEEN
from apps.core.models import AuditEntry
from apps.core.selectors import verify_chain

PASSWORD = "Carbon-Park-2026!"



@pytest.fixture(autouse=True)
def fast_hashes(settings):
    """Many log-ins: the production hasher's deliberate slowness is not what these tests are about."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

@pytest.fixture
def staff(django_user_model, park):
    # a membership is what lets park staff into the portal (apps/accounts/portal.py), not is_staff
    from apps.accounts.services import set_membership

    user = django_user_model.objects.create_user("clerk.wang", password=PASSWORD)
    set_membership(actor="test", user=user, park=park, role="operator")
    return user


def post_login(client, username, password):
    return client.post("/login/?next=/", {"username": username, "password": password})


def actions():
    return list(AuditEntry.objects.filter(action__startswith="auth.").order_by("seq").values_list("action", flat=True))


@pytest.mark.django_db
def test_lockout_after_the_configured_failures_and_only_for_that_name_and_address(staff):
    limit = settings.AXES_FAILURE_LIMIT
    assert limit == 5 and settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60
    client = Client(REMOTE_ADDR="10.0.0.7")
    for _ in range(limit - 1):
        assert post_login(client, "clerk.wang", "wrong-password").status_code == 200  # the form again
    answer = post_login(client, "clerk.wang", "wrong-password")
    assert answer.status_code == 429
    assert "15" in answer.content.decode() and "登录失败次数过多" in answer.content.decode()
    # Locked: even the right password is refused from this address ...
    answer = post_login(client, "clerk.wang", PASSWORD)
    assert answer.status_code == 429 and "_auth_user_id" not in client.session
    # ... but not from another address, nor for another name from this one.
    other = Client(REMOTE_ADDR="10.0.0.8")
    assert post_login(other, "clerk.wang", PASSWORD).status_code == 302
    assert post_login(client, "someone.else", "wrong-password").status_code == 200

    recorded = actions()
    assert recorded.count("auth.login_failed") == limit + 1  # five for clerk.wang, one for someone.else
    assert recorded.count("auth.lockout") == 1 and recorded.count("auth.login_refused") == 1
    assert recorded.count("auth.login") == 1
    lockout = AuditEntry.objects.get(action="auth.lockout")
    assert lockout.object_id == "clerk.wang" and lockout.after["ip"] == "10.0.0.7"
    assert lockout.park_code == "" and verify_chain("").ok
    assert not AuditEntry.objects.filter(after__icontains="wrong-password").exists()


@pytest.mark.django_db
def test_success_resets_the_count_and_login_logout_are_recorded(staff):
    client = Client(REMOTE_ADDR="10.0.0.9", HTTP_USER_AGENT="pytest")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        post_login(client, "clerk.wang", "wrong-password")
    assert post_login(client, "clerk.wang", PASSWORD).status_code == 302
    client.post("/logout/")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        post_login(client, "clerk.wang", "wrong-password")
    assert post_login(client, "clerk.wang", PASSWORD).status_code == 302  # counting started again
    login = AuditEntry.objects.filter(action="auth.login").first()
    assert login.actor_id == staff.pk and login.object_id == str(staff.pk) and login.after["user_agent"] == "pytest"
    assert "auth.logout" in actions()


@pytest.mark.django_db
def test_idle_session_ends_and_is_recorded(staff):
    assert settings.SESSION_COOKIE_AGE == 8 * 3600 and settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
    client = Client()
    assert post_login(client, "clerk.wang", PASSWORD).status_code == 302
    assert client.get("/").status_code == 200
    session = client.session
    session[LAST_SEEN] -= settings.SESSION_IDLE_SECONDS + 1
    session.save()
    answer = client.get("/core/auditentry/")
    assert answer.status_code == 302 and answer["Location"].startswith("/login/?next=")
    assert client.get("/").status_code == 302
    assert AuditEntry.objects.get(action="auth.logout").reason == "idle"


@pytest.mark.parametrize("password", ["short-1A", "1234567890123", "clerk.wang.2026", "password123"])
def test_password_rules_refuse(django_user_model, password):
    user = django_user_model(username="clerk.wang", email="clerk.wang@example.com")
    with pytest.raises(ValidationError):
        validate_password(password, user)


def test_password_rules_accept_a_good_one(django_user_model):
    validate_password("Tide-Lantern-Grid-42", django_user_model(username="clerk.wang"))
