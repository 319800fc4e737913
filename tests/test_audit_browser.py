"""The audit browser (issue #8 deliverable 5, R-7.3.2): action records and row versions together, per park
and per object, searchable, exported to CSV and XLSX, scoped to the parks the user may audit."""

import csv
import io

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from openpyxl import load_workbook

from apps.accounts.services import set_membership
from apps.core.models import AuditEntry
from apps.core.services import record_change
from tests.conftest import add_source

BROWSER = "/core/auditentry/"



@pytest.fixture(autouse=True)
def fast_hashes(settings):
    """Many log-ins: the production hasher's deliberate slowness is not what these tests are about."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

@pytest.fixture
def auditor(django_user_model, park):
    # is_staff: the admin site lets staff in; per-park portal access is another part of issue #8
    user = django_user_model.objects.create_user("auditor.li", password="Audit-Trail-2026!", is_staff=True)
    set_membership(actor="test", user=user, park=park, role="auditor")
    return user


@pytest.fixture
def client_of(auditor):
    client = Client()
    client.force_login(auditor)
    return client


@pytest.fixture
def two_parks(park, other_park):
    a = add_source(park, "TP01-EM-0001", ["CS010201"])
    b = add_source(other_park, "TP02-EM-0001", ["CS010201"])
    from apps.sources.services import save_source

    save_source(actor="test", source=a, source_id=a.source_id, park=park, name="电表一号", data_items=[])
    return a, b


def rows(response):
    return response.context["rows"]


@pytest.mark.django_db
def test_auditor_sees_own_park_only_actions_and_versions_together(client_of, two_parks):
    a, b = two_parks
    answer = client_of.get(BROWSER)
    assert answer.status_code == 200
    found = rows(answer)
    assert {r.park_code for r in found} == {"TP01"}
    kinds = {(r.kind, r.object_type) for r in found}
    assert ("action", "sources.datasource") in kinds and ("version", "sources.datasource") in kinds
    assert ("version", "accounts.park") in kinds and ("action", "membership.set") not in kinds
    assert not any("TP02" in r.object_repr for r in found)
    assert any(("name", "TP01-EM-0001", "电表一号") in r.changes for r in found if r.action == "version.changed")
    page = answer.content.decode()
    assert "TP02-EM-0001" not in page and "电表一号" in page
    # another park's record does not open either
    other = AuditEntry.objects.filter(park_code="TP02").first()
    assert client_of.get(f"{BROWSER}{other.pk}/change/").status_code in (302, 403, 404)
    own = AuditEntry.objects.filter(park_code="TP01").first()
    assert client_of.get(f"{BROWSER}{own.pk}/change/").status_code == 200
    # asking for the other park by name gives nothing
    assert rows(client_of.get(BROWSER, {"park": "TP02"})) == []


@pytest.mark.django_db
def test_search_by_who_what_when_and_type(client_of, two_parks, auditor):
    record_change(actor=auditor, action="reading.note", object_type="ingestion.reading", object_id="1",
                  park_code="TP01", reason="checked by hand")
    by_who = rows(client_of.get(BROWSER, {"who": "auditor.li"}))
    assert by_who and all(r.who == "auditor.li" for r in by_who)
    by_what = rows(client_of.get(BROWSER, {"what": "source."}))
    assert by_what and all(r.action.startswith("source.") for r in by_what)
    versions = rows(client_of.get(BROWSER, {"what": "version.created", "object_type": "sources.datasource"}))
    assert [(r.kind, r.object_id) for r in versions] == [("version", str(two_parks[0].pk))]
    assert [r.reason for r in rows(client_of.get(BROWSER, {"text": "by hand"}))] == ["checked by hand"]
    assert rows(client_of.get(BROWSER, {"since": "2000-01-01T00:00", "until": "2000-01-02T00:00"})) == []
    assert rows(client_of.get(BROWSER, {"since": "2000-01-01T00:00"}))


@pytest.mark.django_db
def test_pages_follow_by_cursor_with_constant_queries(client_of, park):
    def count_queries(n_more):
        for i in range(n_more):
            record_change(actor="test", action="test.step", object_type="t", object_id=str(i), park_code="TP01")
        with CaptureQueriesContext(connection) as ctx:
            assert client_of.get(BROWSER).status_code == 200
        return len(ctx)

    client_of.get(BROWSER)  # the session's first request writes its last-seen mark
    few = count_queries(3)
    many = count_queries(120)
    assert many <= few  # 50 rows cost no more queries than 12 (the park-code lookup only runs for versions)
    first = client_of.get(BROWSER)
    assert len(rows(first)) == 50 and first.context["page"].next_cursor
    second = client_of.get(BROWSER, {"cursor": first.context["page"].next_cursor})
    seen = [(r.kind, r.id) for r in rows(first)] + [(r.kind, r.id) for r in rows(second)]
    assert len(set(seen)) == 100
    assert rows(first)[-1].at >= rows(second)[0].at


@pytest.mark.django_db
def test_exports_csv_and_xlsx_are_scoped_and_recorded(client_of, two_parks):
    answer = client_of.get(BROWSER + "export/", {"format": "csv", "what": "source."})
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
    text = b"".join(answer.streaming_content).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0][:4] == ["时间", "记录", "操作人", "操作"]
    assert len(table) > 1 and all(line[7] == "TP01" for line in table[1:])
    assert all(len(line[12]) == 64 for line in table[1:])  # the hash column

    answer = client_of.get(BROWSER + "export/", {"format": "xlsx"})
    assert answer.status_code == 200
    sheet = load_workbook(io.BytesIO(answer.content)).active
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) > 2 and {v[7] for v in values[1:]} == {"TP01"}
    exports = AuditEntry.objects.filter(action="audit.export").order_by("seq")
    assert [e.after["format"] for e in exports] == ["csv", "xlsx"]
    assert exports[0].after["filters"] == {"what": "source."}


@pytest.mark.django_db
def test_object_history_page_shows_versions_and_actions(client_of, two_parks):
    a, b = two_parks
    answer = client_of.get(f"/sources/datasource/{a.pk}/history/")
    assert answer.status_code == 200
    found = rows(answer)
    assert {r.object_id for r in found} == {str(a.pk)}
    assert {r.kind for r in found} == {"action", "version"}
    assert [r.action for r in found if r.kind == "action"] == ["source.update", "source.create"]
    assert client_of.get(f"/sources/datasource/{b.pk}/history/").status_code in (302, 403, 404)
    assert client_of.get(f"/accounts/park/{a.park_id}/history/").status_code == 200


@pytest.mark.django_db
def test_a_viewer_gets_no_audit_trail(django_user_model, park):
    viewer = django_user_model.objects.create_user("viewer.zhao", password="x" * 12, is_staff=True)
    set_membership(actor="test", user=viewer, park=park, role="viewer")
    client = Client()
    client.force_login(viewer)
    assert client.get(BROWSER).status_code == 403
    assert client.get(BROWSER + "export/", {"format": "csv"}).status_code == 403


@pytest.mark.django_db
def test_the_park_switcher_picks_the_park_shown_first(client_of, auditor, other_park, park):
    from apps.accounts import access

    set_membership(actor="test", user=auditor, park=other_park, role="auditor")
    assert {r.park_code for r in rows(client_of.get(BROWSER))} == {"TP01", "TP02"}
    session = client_of.session
    session[access.SESSION_PARK] = other_park.pk
    session.save()
    assert {r.park_code for r in rows(client_of.get(BROWSER))} == {"TP02"}
    assert {r.park_code for r in rows(client_of.get(BROWSER, {"park": ""}))} == {"TP01", "TP02"}
