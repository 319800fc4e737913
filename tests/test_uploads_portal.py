"""The upload page and the load log through the access seam (issue #11 item 2): the page needs push in some park
(a viewer or an approver gets 403 and no menu link); it offers and lists only the parks where the user may push;
another park's uploads and loads never show; the FileLoad admin is read-only and park-scoped."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.accounts.services import set_membership
from apps.batch.models import FileLoad
from apps.uploads.models import Upload

pytestmark = pytest.mark.django_db


def _user(name, park, role):
    user = get_user_model().objects.create_user(name)
    set_membership(actor="test", user=user, park=park, role=role)
    client = Client()
    client.force_login(user)
    return user, client


def _upload(park, filename, **extra):
    from django.utils import timezone

    return Upload.objects.create(park=park, created_by_label="someone", filename=filename, kind="csv", length=10,
                                 expires_at=timezone.now(), **extra)


def _load(park, filename):
    return FileLoad.objects.create(park=park, filename=filename, md5="0" * 32, actor_label="someone",
                                   state=FileLoad.State.DONE, rows=3, accepted=3)


def test_the_page_needs_push_and_shows_only_the_users_parks(park, other_park):
    _upload(park, "TP01_CS_202611_20261201083000_001.csv", accepted=7)
    _upload(other_park, "TP02_CS_202611_20261201083000_001.csv")
    _load(park, "TP01_CS_202611_20261201083000_001.csv")
    _load(other_park, "TP02_CS_202611_20261201083000_009.csv")
    _clerk, client = _user("clerk", park, "operator")
    r = client.get("/uploads/")
    assert r.status_code == 200
    html = r.content.decode()
    assert 'value="TP01"' in html and 'value="TP02"' not in html
    assert "TP01_CS_202611_20261201083000_001.csv" in html and "TP02_CS_" not in html
    assert 'id="uploads-link"' in html
    assert "<script>" not in html and "onclick" not in html  # CSP: scripts only from files
    assert "'unsafe-inline'" not in r.headers["Content-Security-Policy"].split("script-src")[1].split(";")[0]

    for role in ("viewer", "approver", "auditor"):
        _u, other = _user(f"{role}-1", park, role)
        assert other.get("/uploads/").status_code == 403
        assert 'id="uploads-link"' not in other.get("/").content.decode()


def test_the_load_log_admin_is_read_only_and_scoped(park, other_park):
    mine = _load(park, "TP01_CS_202611_20261201083000_001.csv")
    theirs = _load(other_park, "TP02_CS_202611_20261201083000_009.csv")
    _viewer, client = _user("viewer", park, "viewer")
    r = client.get("/batch/fileload/")
    assert r.status_code == 200
    html = r.content.decode()
    assert mine.filename in html and theirs.filename not in html
    assert client.get(f"/batch/fileload/{theirs.pk}/change/").status_code in (302, 404)
    assert client.get("/batch/fileload/add/").status_code == 403
    r = client.post(f"/batch/fileload/{mine.pk}/delete/", {"post": "yes"})
    assert r.status_code == 403 and FileLoad.objects.filter(pk=mine.pk).exists()
