"""Hostile input on the portal's own inputs (issue #8's pages): the log-in form, the park switcher, the audit
trail's filters and exports, the membership and rule forms, the readings browser's filters. Each answer is a
page or a refusal a person can act on: never a 500 (the test client re-raises a server error), never another
park's data, never a stored NUL."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.accounts.models import Membership
from apps.accounts.services import set_membership
from apps.core.models import AuditEntry
from apps.quality.models import Rule

# What an attacker types into a text field or a query parameter.
TEXTS = ["\x00", "a\x00b", "x" * 20_000, "99999999999999999999999999", "-1", "1e999", "NaN", "' OR 1=1 --",
         "<script>alert(1)</script>", "[" * 2_000, "%00", "\u202e\ufeff"]


@pytest.fixture
def park_admin(park):
    user = get_user_model().objects.create_user("pa", password="x-Unused-123")
    set_membership(actor="test", user=user, park=park, role="admin")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_login_form_refuses_hostile_credentials_with_a_page(park):
    get_user_model().objects.create_user("real", password="x-Unused-123")
    client = Client()
    for text in TEXTS:
        r = client.post("/login/", {"username": text, "password": text})
        assert r.status_code in (200, 403, 429), text[:20]
        assert "_auth_user_id" not in client.session
    # bytes that are not UTF-8 at all, as a raw form body
    r = client.post("/login/", b"username=%FF%FE%00&password=%C0%AF", content_type="application/x-www-form-urlencoded")
    assert r.status_code in (200, 403, 429)
    # the failures are audited, and no NUL reached a stored label (PostgreSQL would have refused it: a 500)
    labels = list(AuditEntry.objects.filter(action__startswith="auth.").values_list("actor_label", flat=True))
    assert labels and not any("\x00" in label for label in labels)


@pytest.mark.django_db
def test_the_park_switcher_refuses_every_park_but_the_users_own(park, other_park, park_admin):
    for value in [*TEXTS, str(other_park.pk), str(2**63), str(-(2**63) - 1)]:
        r = park_admin.post("/switch-park/", {"park": value, "next": "/"})
        assert r.status_code in (302, 403), value[:20]
        assert park_admin.session.get("cp_park") in (None, park.pk)
    r = park_admin.post("/switch-park/", {"park": str(park.pk), "next": "https://evil.example/"})
    assert r.status_code == 302 and r["Location"] == "/"
    assert park_admin.session["cp_park"] == park.pk
    assert park_admin.get("/switch-park/").status_code == 405


@pytest.mark.django_db
def test_the_audit_trails_filters_and_exports_take_any_text(park, other_park):
    auditor = get_user_model().objects.create_user("aud", password="x-Unused-123")
    set_membership(actor="test", user=auditor, park=park, role="auditor")
    client = Client()
    client.force_login(auditor)
    for text in TEXTS:
        for name in ("who", "what", "text", "object_type", "park", "since", "until", "cursor"):
            r = client.get("/core/auditentry/", {name: text})
            assert r.status_code in (200, 400), (name, text[:20])
            r = client.get("/core/auditentry/export/", {name: text, "format": "csv"})
            assert r.status_code in (200, 400, 403), (name, text[:20])
    r = client.get("/core/auditentry/export/", {"format": "\x00xlsx"})
    assert r.status_code in (200, 400)
    # another park's code is not a filter the auditor may use: nothing of that park comes back
    r = client.get("/core/auditentry/export/", {"park": other_park.code, "format": "csv"})
    body = b"".join(r.streaming_content) if r.streaming else r.content
    assert other_park.code.encode() not in body


@pytest.mark.django_db
def test_membership_and_rule_forms_refuse_hostile_values_at_the_field(park, other_park, park_admin):
    clerk = get_user_model().objects.create_user("clerk", password="x-Unused-123")
    for text in TEXTS:
        r = park_admin.post("/accounts/membership/add/", {"user": text, "park": text, "role": text})
        assert r.status_code == 200, text[:20]  # the form again, with its errors
    r = park_admin.post("/accounts/membership/add/", {"user": clerk.pk, "park": other_park.pk, "role": "admin"})
    assert r.status_code in (200, 403)
    assert not Membership.objects.filter(user=clerk, park=other_park).exists()

    before = Rule.objects.count()
    for text in TEXTS:
        r = park_admin.post("/quality/rule/add/", {"name": text, "kind": "range", "severity": "flag", "stage": "pre",
                                                   "park": park.pk, "params": text, "enabled": "on"})
        assert r.status_code == 200, text[:20]
    deep = json.dumps({"min": [[[[[[[[[[]]]]]]]]]]})
    for body in [json.dumps({"max": 1e308 * 10}), json.dumps({"max": "\x00"}), deep,
                 '{"max": ' + "9" * 5000 + "}", "[" * 5000 + "]" * 5000]:
        r = park_admin.post("/quality/rule/add/", {"name": "r", "kind": "range", "severity": "flag", "stage": "pre",
                                                   "park": park.pk, "params": body, "enabled": "on"})
        assert r.status_code == 200, body[:40]
    r = park_admin.post("/quality/rule/add/", {"name": "theirs", "kind": "range", "severity": "flag", "stage": "pre",
                                               "park": other_park.pk, "params": '{"max": 10}', "enabled": "on"})
    assert r.status_code in (200, 403)
    assert Rule.objects.count() == before


@pytest.mark.django_db
def test_the_readings_browser_filters_take_any_text(park, park_admin):
    for text in TEXTS:
        for name in ("source__id__exact", "data_item__id__exact", "park__id__exact", "ts__gte", "flags", "q", "p",
                     "o", "id__in"):
            r = park_admin.get("/ingestion/reading/", {name: text})
            assert r.status_code in (200, 302, 400), (name, text[:20])
