"""Pull connectors in the portal and on the command line (issue #13 item 6): park administrators set them up
(validated, audited, the secret sealed and never shown), viewers see them and their run log, another park's
connectors answer like unknown ones; `manage.py run_pulls` and the beat entry."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from apps.accounts.services import set_membership
from apps.core.models import AuditEntry
from apps.ingestion.models import Reading
from apps.pulls.models import Connector, PullRun
from apps.pulls.services import save_connector
from tests.pull_fakes import MAPPING, FakePlatform, item, page

REST = {"url": "https://platform.example.invalid/readings", "records": "/data", "next": "/next", "auth": "bearer"}


def member(park, role, name=None):
    user = get_user_model().objects.create_user(name or f"{role}-{park.code}", password="pw-Portal-123")
    set_membership(actor="test", user=user, park=park, role=role)
    client = Client()
    client.force_login(user)
    return client


def form(**over):
    import json

    data = {"park": "", "name": "Grid platform", "kind": "rest", "enabled": "on", "interval_minutes": "15",
            "settings": json.dumps(REST), "mapping": json.dumps(MAPPING), "secret": "s3cret-token"}
    data.update(over)
    return data


def test_a_park_administrator_adds_a_connector_sealed_and_audited(park):
    admin = member(park, "admin")
    r = admin.post("/pulls/connector/add/", form(park=park.pk))
    assert r.status_code == 302, r.content.decode()[:2000]
    c = Connector.objects.get()
    assert c.park == park and c.secret_sealed and b"s3cret-token" not in bytes(c.secret_sealed)
    entry = AuditEntry.objects.get(action="pulls.connector.create")
    assert entry.actor_label == f"admin-{park.code}" and entry.park_code == park.code
    assert "s3cret-token" not in str(entry.after)
    page_html = admin.get(f"/pulls/connector/{c.pk}/change/").content.decode()
    assert "s3cret-token" not in page_html and 'type="password"' in page_html
    # saving again with the secret left empty keeps it
    r = admin.post(f"/pulls/connector/{c.pk}/change/", form(park=park.pk, secret="", interval_minutes="30"))
    assert r.status_code == 302
    c.refresh_from_db()
    assert c.interval_minutes == 30 and c.secret_sealed
    assert AuditEntry.objects.get(action="pulls.connector.update").after["secret"] == "set"


@pytest.mark.parametrize("over", [
    {"settings": '{"engine": "mysql", "host": "h", "user": "u", "database": "d", "table": "t; DROP TABLE t", '
                 '"watermark": "id"}', "kind": "database"},
    {"settings": '{"url": "https://x.invalid/", "read_timeout": 1e999}'},
    {"mapping": '{"sourceId": "/a"}'},
    {"name": "a\x00b"},
    {"interval_minutes": "99999999999999999999"},
    {"secret": "to\x00ken"},
    {"settings": "[1, 2"},
])
def test_bad_configurations_come_back_with_an_error_never_a_500(park, over):
    admin = member(park, "admin")
    r = admin.post("/pulls/connector/add/", form(park=park.pk, **over))
    assert r.status_code == 200 and "errornote" in r.content.decode()
    assert not Connector.objects.exists()


def test_viewers_see_the_run_log_but_do_not_edit_and_other_parks_look_unknown(park, other_park):
    mine = save_connector(actor="test", park=park, name="mine", kind="rest", settings=REST, mapping=MAPPING)
    theirs = save_connector(actor="test", park=other_park, name="theirs", kind="rest", settings=REST,
                            mapping=MAPPING)
    PullRun.objects.create(connector=mine, state="failed", error_code="E7503",
                           error_params={"target": "platform.example.invalid", "detail": "refused"})
    PullRun.objects.create(connector=theirs, state="done")
    viewer = member(park, "viewer")
    assert viewer.get("/pulls/connector/add/").status_code == 403
    listing = viewer.get("/pulls/connector/").content.decode()
    assert "mine" in listing and "theirs" not in listing
    runs = viewer.get("/pulls/pullrun/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "E7503" in runs and runs.count('class="field-state"') == 1
    r = viewer.get(f"/pulls/connector/{mine.pk}/change/")
    assert r.status_code == 200 and 'name="_save"' not in r.content.decode()
    run = PullRun.objects.get(connector=mine)
    r = viewer.get(f"/pulls/pullrun/{run.pk}/change/")
    assert r.status_code == 200 and "E7503 无法连接 platform.example.invalid：refused" in r.content.decode()
    assert viewer.get(f"/pulls/pullrun/{PullRun.objects.get(connector=theirs).pk}/change/").status_code == 302
    admin = member(park, "admin")
    unknown = admin.get("/pulls/connector/999999/change/")
    foreign = admin.get(f"/pulls/connector/{theirs.pk}/change/")
    assert (foreign.status_code, foreign.get("Location", "").replace(str(theirs.pk), "ID")) == (
        unknown.status_code, unknown.get("Location", "").replace("999999", "ID"))
    r = admin.post(f"/pulls/connector/{mine.pk}/change/", form(park=other_park.pk))  # moving it away: refused
    assert r.status_code in (200, 403) and Connector.objects.get(pk=mine.pk).park == park


def test_run_pulls_command_incremental_and_full(park, meter, settings):
    settings.PULLS_ALLOW_PLAIN_HTTP = True
    with FakePlatform() as fake:
        fake.handler = lambda q: page([item(0), item(5)])
        c = save_connector(actor="test", park=park, name="cmd", kind="rest",
                           settings={"url": fake.url, "records": "/data"}, mapping=MAPPING)
        call_command("run_pulls", "--connector", str(c.pk))
        assert Reading.objects.count() == 2
        call_command("run_pulls", "--connector", str(c.pk), "--full", "--from", "2026-11-23", "--to",
                     "2026-11-24 00:00:00")
        assert fake.requests[-1][2]["from"].startswith("2026-11-23T00:00:00")
        assert PullRun.objects.filter(mode="full", duplicates=2).exists()
        # every due connector: this one is due again only after its interval
        call_command("run_pulls")
        assert PullRun.objects.count() == 2
    with pytest.raises(CommandError):
        call_command("run_pulls", "--connector", "424242")
    with pytest.raises(CommandError):
        call_command("run_pulls", "--from", "2026-11-23")
    with pytest.raises(CommandError):
        call_command("run_pulls", "--full", "--from", "yesterday")


def test_the_beat_runs_due_pulls_every_minute(park):
    from datetime import timedelta

    from django.utils import timezone

    from apps.pulls.services import due_connectors
    from carbonpark.celery import app

    entry = app.conf.beat_schedule["run-due-pulls"]
    assert entry["task"] == "apps.pulls.tasks.run_due_pulls" and entry["schedule"] == 60.0
    c = save_connector(actor="test", park=park, name="due", kind="rest", settings=REST, mapping=MAPPING)
    assert due_connectors() == [c.pk]
    Connector.objects.filter(pk=c.pk).update(next_run_at=timezone.now() + timedelta(minutes=5))
    assert due_connectors() == []
    Connector.objects.filter(pk=c.pk).update(next_run_at=timezone.now() - timedelta(minutes=1), enabled=False)
    assert due_connectors() == []


def test_pull_now_queues_a_run_after_the_commit(park, django_capture_on_commit_callbacks, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from apps.pulls import tasks

    c = save_connector(actor="test", park=park, name="now", kind="rest", settings=REST, mapping=MAPPING)
    Connector.objects.filter(pk=c.pk).update(next_run_at=timezone.now() + timedelta(hours=1))
    queued = []
    monkeypatch.setattr(tasks.run_pull, "delay", lambda pk: queued.append(pk))
    admin = member(park, "admin")
    with django_capture_on_commit_callbacks(execute=True):
        r = admin.post("/pulls/connector/", {"action": "pull_now", "_selected_action": [c.pk]})
    assert r.status_code == 302 and queued == [c.pk]
    assert Connector.objects.get(pk=c.pk).next_run_at <= timezone.now()
    viewer = member(park, "viewer")
    viewer.post("/pulls/connector/", {"action": "pull_now", "_selected_action": [c.pk]})
    assert queued == [c.pk]
