"""Alarm pop-ups on every portal page (R-7.4.4.2, apps/quality/popups.py): open platform alarms of the user's parks,
through the access seam, until the user dismisses them; one query whatever the number of alarms."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.services import set_membership
from apps.quality.models import Alarm
from apps.quality.services import AlarmRaise, raise_alarms


def _user(name, park, role="admin"):
    user = get_user_model().objects.create_user(name, f"{name}@example.invalid")  # force_login: no password
    set_membership(actor="test", user=user, park=park, role=role)
    return user


def _alarm(park, code="E7420", kind="integration", msg="第三方平台 绿证平台 接口异常"):
    raise_alarms([AlarmRaise(park.pk, None, kind, code, msg, "Third-party platform endpoint failing")])
    return Alarm.objects.get(park=park, kind=kind, code=code, state="open")


def _portal(client, user, path="/"):
    client.force_login(user)
    return client.get(path, HTTP_ACCEPT_LANGUAGE="zh-hans")


@pytest.mark.django_db
def test_a_platform_alarm_pops_up_for_its_park_only_until_dismissed(client, park, other_park):
    alarm = _alarm(park)
    _alarm(park, code="E9999", kind="validation", msg="一条校验告警")  # not a pop-up kind
    mine, theirs = _user("boss-a", park), _user("boss-b", other_park)
    page = _portal(client, mine).content.decode()
    assert 'id="alarm-popups"' in page and "绿证平台" in page and f"/quality/alarm/{alarm.pk}/change/" in page
    assert "一条校验告警" not in page
    assert 'id="alarm-popups"' not in _portal(client, theirs).content.decode()
    client.force_login(mine)
    answer = client.post("/alarm-popups/dismiss/", {"alarm": [alarm.pk], "next": "/quality/alarm/"})
    assert answer.status_code == 302 and answer["Location"] == "/quality/alarm/"
    assert 'id="alarm-popups"' not in client.get("/").content.decode()
    # a new problem pops up again although the first stays dismissed
    second = _alarm(park, code="E7421")
    page = client.get("/").content.decode()
    assert f"/quality/alarm/{second.pk}/change/" in page and f"/quality/alarm/{alarm.pk}/change/" not in page


@pytest.mark.django_db
def test_english_message_and_configured_kinds(client, park, settings):
    _alarm(park, code="E1001", kind="offline", msg="采集源离线")
    user = _user("boss-a", park)
    assert 'id="alarm-popups"' not in _portal(client, user).content.decode()
    settings.PORTAL_POPUP_ALARM_KINDS = ["integration", "offline"]
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get("/").content.decode()
    assert 'id="alarm-popups"' in page and "Third-party platform endpoint failing" in page and "Dismiss" in page
    settings.PORTAL_POPUP_ALARM_KINDS = []
    assert 'id="alarm-popups"' not in client.get("/").content.decode()


@pytest.mark.django_db
def test_one_query_whatever_the_number_of_alarms(client, park):
    user = _user("boss-a", park)
    _alarm(park)
    client.force_login(user)
    client.get("/")  # warm the session and the role cache

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/").status_code == 200
        return len(ctx.captured_queries)

    few = queries()
    now = timezone.now()
    Alarm.objects.bulk_create([Alarm(park=park, kind="integration", code=f"E{i:04d}", message_zh=f"告警{i}",
                                     last_at=now) for i in range(40)])
    assert queries() == few
    page = client.get("/").content.decode()
    assert page.count('class="alarm-popup"') == 3 and "?state__exact=open" in page  # three shown, a link to more


@pytest.mark.django_db
def test_hostile_dismissals(client, park, other_park):
    alarm = _alarm(park)
    user = _user("boss-a", park)
    client.force_login(user)
    assert client.get("/alarm-popups/dismiss/").status_code == 405
    for bad in (["x\x00"], ["99999999999999999999999"], ["-1"], ["١٢"], []):
        answer = client.post("/alarm-popups/dismiss/", {"alarm": bad, "next": "https://evil.example/"})
        assert answer.status_code == 302 and answer["Location"] == "/"
    assert 'id="alarm-popups"' in client.get("/").content.decode()  # nothing above dismissed the real alarm
    client.logout()
    answer = client.post("/alarm-popups/dismiss/", {"alarm": [alarm.pk]})
    assert answer.status_code == 302 and "/login/" in answer["Location"]
