"""GET /api/v1/overdue and the portal's overdue page (R-6.2.b–d): scoped by park, matching the OpenAPI document,
hostile parameters answered without a 500; the page in Chinese by default and in English."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model

from apps.accounts.services import set_membership
from apps.sources.models import DataSource
from tests.conftest import add_source
from tests.test_api_contract import assert_matches, openapi  # noqa: F401  (the fixture)

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def silent(park, other_park):
    mine = add_source(park, "TP01-EM-0009", ["CS010201"])
    theirs = add_source(other_park, "TP02-EM-0009", ["CS010201"])
    DataSource.objects.filter(pk__in=[mine.pk, theirs.pk]).update(created_at=datetime(2026, 1, 1, tzinfo=SH))
    return mine, theirs


@pytest.mark.django_db
def test_the_api_lists_the_callers_parks_only_and_matches_the_schema(api, openapi, silent):  # noqa: F811
    mine, theirs = silent
    body = assert_matches(openapi, "/api/v1/overdue", "get", api.get("/api/v1/overdue"))
    codes = {r["code"] for r in body["results"]}
    assert mine.source_id in codes and theirs.source_id not in codes
    row = next(r for r in body["results"] if r["code"] == mine.source_id)
    assert row["itemKind"] == "source" and row["deadlineKind"] == "daily" and row["state"] == "missing"
    assert row["dueAt"].endswith("+08:00") and row["dueAt"][11:16] == "12:00" and row["overdueSeconds"] >= 0
    # another park's code narrows to nothing, like an unknown one; hostile values are no 500
    for value in ("TP02", "NOPE", "TP01 ", "x" * 5000, "🙂"):
        r = api.get("/api/v1/overdue", {"park": value})
        assert r.status_code == 200 and assert_matches(openapi, "/api/v1/overdue", "get", r)["results"] == []
    assert api.get("/api/v1/overdue", {"park": "TP01\x00"}).json()["code"] == "E1009"  # NUL: refused up front
    assert {r["code"] for r in api.get("/api/v1/overdue", {"park": "TP01"}).json()["results"]} == codes


@pytest.mark.django_db
def test_the_api_refuses_anonymous_callers(client, db):
    assert client.get("/api/v1/overdue").status_code in (401, 403)


@pytest.mark.django_db
def test_the_overdue_page_in_chinese_and_english(client, park, silent):
    mine, theirs = silent
    user = get_user_model().objects.create_user("viewer", "v@example.invalid", "s3cret-Deadline-pw")
    set_membership(actor="test", user=user, park=park, role="viewer")
    client.force_login(user)
    page = client.get("/overdue/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "逾期数据" in text and mine.source_id in text and theirs.source_id not in text
    assert " 12:00</td>" in text  # daily data is due at noon, park-local
    client.post("/i18n/setlang/", {"language": "en", "next": "/overdue/"})
    english = client.get("/overdue/").content.decode()
    assert "Overdue data" in english and mine.source_id in english
    assert "逾期数据" not in english
    landing = client.get("/").content.decode()
    assert "/overdue/" in landing  # the shortcut on the landing page
    stranger = get_user_model().objects.create_user("nobody", "n@example.invalid", "s3cret-Deadline-pw")
    client.force_login(stranger)
    assert client.get("/overdue/").status_code in (302, 403)


@pytest.mark.django_db
def test_the_working_day_table_in_the_portal(client, park):
    from apps.core.models import AuditEntry
    from apps.quality.models import WorkdayOverride

    boss = get_user_model().objects.create_user("boss", "b@example.invalid", "s3cret-Deadline-pw")
    set_membership(actor="test", user=boss, park=park, role="admin")
    client.force_login(boss)
    assert client.get("/quality/workdayoverride/").status_code == 200  # everyone may read the table
    r = client.post("/quality/workdayoverride/add/", {"date": "2099-01-05", "is_workday": "", "note": "x"})
    assert r.status_code == 403 and not WorkdayOverride.objects.exists()  # a park administrator may not write it
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.invalid", "s3cret-Deadline-pw"))
    r = client.post("/quality/workdayoverride/add/", {"date": "2099-01-05", "is_workday": "", "note": "春节"})
    assert r.status_code == 302
    day = WorkdayOverride.objects.get()
    assert (day.date.isoformat(), day.is_workday, day.note) == ("2099-01-05", False, "春节")
    assert AuditEntry.objects.filter(object_type="quality.workdayoverride", action="workday.create").exists()
    r = client.post(f"/quality/workdayoverride/{day.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302 and not WorkdayOverride.objects.exists()
    assert AuditEntry.objects.filter(object_type="quality.workdayoverride", action="workday.delete").exists()
