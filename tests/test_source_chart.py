"""A data source's chart page (issue #12 item 6): the points told apart by kind, open gaps as spans, hourly
rollups above ROLLUP_ABOVE points; the page through the seam (another park's source is a 404 like an unknown
one; hostile ids are 404s, never 500s); a constant number of queries whatever the number of items."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.services import set_membership
from apps.corrections import services as corrections
from apps.ingestion.models import Flag, IngestBatch
from apps.ingestion.services import ingest_readings
from apps.ingestion.store import mark_rollups_dirty
from apps.quality import charts
from apps.quality.models import Gap
from tests.conftest import add_source

SHANGHAI = ZoneInfo("Asia/Shanghai")
CODE = "CS010201"


def local(ts: datetime) -> str:
    return ts.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def write_flagged(source, code, ts: datetime, value: float, flags: int):
    """A reading carrying platform flags no channel can set yet (PATCHED, REPAIRED, SUSPECT), written as the
    pipeline writes it: under the one-way-in guard's writer name, inside the test only (as tests/test_rollups.py
    writes invalid ones)."""
    item = source.data_items.get(code=code)
    batch = IngestBatch.objects.create(received_at=ts, channel="test", actor_label="test", park_id=source.park_id)
    with transaction.atomic(), connection.cursor() as cur:  # the writer's name holds for one transaction
        cur.execute("SELECT set_config('carbonpark.writer', 'ingest_readings', true)")
        cur.execute("INSERT INTO ingestion_reading (park_id, source_id, data_item_id, ts, value, received_unit, "
                    "status, flags, channel, batch_id, received_at) VALUES (%s, %s, %s, %s, %s, '', 'N', %s, "
                    "'test', %s, now())", [source.park_id, source.pk, item.pk, ts, value, flags, batch.pk])
        mark_rollups_dirty(cur, "INSERT INTO ingestion_rollup_dirty (park_id, source_id, data_item_id, lo, hi) "
                                "VALUES (%s, %s, %s, %s, %s)", [source.park_id, source.pk, item.pk, ts, ts])
        cur.execute("SELECT set_config('carbonpark.writer', '', true)")


def chart_scene(park, now: datetime | None = None):
    """TP01-EM-0001: eleven readings two hours apart ending an hour ago; the 4th suspect, the 5th patched (a
    filled hole), the 6th repaired, the 8th corrected to 99; an open gap between the 9th and 10th."""
    now = now or timezone.now()
    meter = add_source(park, "TP01-EM-0001", [CODE])
    times = [now - timedelta(hours=1 + 2 * (10 - n)) for n in range(11)]
    plain = [n for n in range(11) if n not in (3, 4, 5)]
    r = ingest_readings([{"sourceId": meter.source_id, "dataCode": CODE, "timestamp": local(times[n]),
                          "value": float(n)} for n in plain], channel="test", actor="test", now=now)
    assert r.accepted == len(plain), r
    for n, flag in ((3, Flag.SUSPECT), (4, Flag.PATCHED), (5, Flag.REPAIRED)):
        write_flagged(meter, CODE, times[n].replace(microsecond=0), float(n), flag)
    return meter, [t.replace(microsecond=0) for t in times]


def person(name, park, role):
    user = get_user_model().objects.create_user(name, f"{name}@example.invalid", "pw-Chart-123", is_staff=True)
    if park is not None:
        set_membership(actor="test", user=user, park=park, role=role)
    return user


def correct(meter, ts: datetime, value: float, park):
    operator, approver = person("op", park, "operator"), person("ap", park, "approver")
    c = corrections.request_correction(actor=operator, source_id=meter.source_id, start=local(ts), end=local(ts),
                                       new_value=value, reason="meter swap")
    corrections.approve_correction(actor=approver, correction_id=c.pk)
    corrections.apply_correction(c.pk)


@pytest.mark.django_db
def test_points_are_told_apart_and_gaps_are_spans(park):
    meter, times = chart_scene(park)
    correct(meter, times[7], 99.0, park)
    item = meter.data_items.get()
    Gap.objects.create(park=park, source=meter, data_item=item, start=times[8], end=times[9], interval_s=600,
                       missing=11, found_at=timezone.now(), updated=timezone.now())
    Gap.objects.create(park=park, source=meter, data_item=item, start=times[0], end=times[1], interval_s=600,
                       missing=11, state=Gap.State.FILLED, found_at=timezone.now(), updated=timezone.now())
    root = get_user_model().objects.create_superuser("root", "root@example.invalid", "pw-Chart-123")
    data = charts.source_chart(root, meter, charts.chart_range("week"))
    [s] = data["series"]
    assert (s["code"], s["count"], s["rollup"]) == (CODE, 11, False)
    kinds = {p[0]: (p[1], p[2], p[3]) for p in s["points"]}
    assert kinds[local(times[3])] == (3.0, "suspect", None)
    assert kinds[local(times[4])] == (4.0, "patched", None)
    assert kinds[local(times[5])] == (5.0, "repaired", None)
    assert kinds[local(times[7])] == (99.0, "corrected", 7.0)  # the effective value, the stored one beside
    assert kinds[local(times[0])] == (0.0, "raw", None)
    assert s["kinds"] == {"raw": 7, "suspect": 1, "patched": 1, "repaired": 1, "corrected": 1}
    assert s["gaps"] == [[local(times[8]), local(times[9]), 11]]  # the filled gap is no hole any longer
    # The last day leaves out what is older.
    day = charts.source_chart(root, meter, charts.chart_range("day"))
    assert day["series"][0]["count"] == 11 - 0 and day["range"] == "day"
    short = charts.source_chart(root, meter, charts.ChartRange("x", times[6], times[10]))
    assert short["series"][0]["count"] == 5


@pytest.mark.django_db
def test_above_the_threshold_hourly_rollups_are_drawn(park, monkeypatch):
    from apps.ingestion import rollups

    meter, times = chart_scene(park)
    rollups.refresh()
    monkeypatch.setattr(charts, "ROLLUP_ABOVE", 5)
    root = get_user_model().objects.create_superuser("root", "root@example.invalid", "pw-Chart-123")
    [s] = charts.source_chart(root, meter, charts.chart_range("week"))["series"]
    assert s["rollup"] is True and s["count"] == 11
    assert {p[2] for p in s["points"]} == {"rollup"}
    assert len(s["points"]) == 11  # one reading per hour bucket: each bucket's mean is its reading
    assert sorted(p[1] for p in s["points"]) == [float(n) for n in range(11)]


def chart_url(source_pk) -> str:
    return f"/sources/datasource/{source_pk}/chart/"


@pytest.mark.django_db
def test_page_access_through_the_seam(park, other_park, client):
    meter, _times = chart_scene(park)
    theirs = add_source(other_park, "TP02-EM-0001", [CODE])
    viewer = person("viewer", park, "viewer")
    client.force_login(viewer)
    r = client.get(chart_url(meter.pk))
    assert r.status_code == 200
    body = r.content.decode()
    assert 'id="source-chart"' in body and "source-chart.js" in body and "<script>" not in body
    assert '<script id="source-chart-data" type="application/json">' in body
    data = json.loads(body.split('<script id="source-chart-data" type="application/json">')[1].split("</script>")[0])
    assert data["series"][0]["count"] == 11
    unknown = client.get(chart_url(999999))
    other = client.get(chart_url(theirs.pk))
    assert (unknown.status_code, other.status_code) == (404, 404)
    # The page is linked from the list and from the change page.
    assert chart_url(meter.pk) in client.get("/sources/datasource/").content.decode()
    assert chart_url(meter.pk) in client.get(f"/sources/datasource/{meter.pk}/change/").content.decode()
    # Nobody without a role in the park: the portal's login page.
    client.force_login(person("nobody", None, None))
    assert client.get(chart_url(meter.pk)).status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize("object_id", ["abc", "1%00", "99999999999999999999", "-1", "1.5", "%27%3B--"])
def test_hostile_ids_are_404(park, client, object_id):
    chart_scene(park)
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.invalid", "pw-Chart-123"))
    assert client.get(f"/sources/datasource/{object_id}/chart/").status_code == 404


@pytest.mark.django_db
def test_hostile_range_falls_back_to_the_default(park, client):
    meter, _times = chart_scene(park)
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.invalid", "pw-Chart-123"))
    for value in ("year", "9" * 50, "", "周"):
        r = client.get(chart_url(meter.pk), {"range": value})
        assert r.status_code == 200 and r.context["chart"]["range"] == "week"
    assert client.get(chart_url(meter.pk), {"range": "\x00"}).status_code == 400  # the house's NUL refusal
    assert client.get(chart_url(meter.pk), {"range": "month"}).context["chart"]["range"] == "month"


@pytest.mark.django_db
def test_query_count_does_not_grow_with_items_or_points(park, client):
    client.force_login(person("viewer", park, "viewer"))
    meter, _times = chart_scene(park)

    def count(source) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(chart_url(source.pk)).status_code == 200
        return len(ctx.captured_queries)

    count(meter)  # the first request warms the caches (the configuration, the user's roles)
    one = count(meter)
    codes = ["CS010201", "CS010202", "CS010203", "CS010204"]
    many = add_source(park, "TP01-EM-0009", codes)
    now = timezone.now()
    ingest_readings([{"sourceId": many.source_id, "dataCode": c, "timestamp": local(now - timedelta(minutes=m)),
                      "value": 1.0} for c in codes for m in range(1, 40)], channel="test", actor="test", now=now)
    Gap.objects.create(park=park, source=many, data_item=many.data_items.get(code=codes[1]),
                       start=now - timedelta(hours=3), end=now - timedelta(hours=2), interval_s=60, missing=59,
                       found_at=now, updated=now)
    count(many)
    assert count(many) == one
    assert one <= 12  # session, user, roles, the source, its park, items, counts, readings, gaps…


def test_kind_precedence():
    assert charts.kind_of(0, False) == "raw"
    assert charts.kind_of(Flag.SUSPECT | Flag.PATCHED, False) == "patched"
    assert charts.kind_of(Flag.PATCHED, True) == "corrected"
    assert charts.kind_of(Flag.BACKFILL, False) == "raw"
    assert charts.kind_of(Flag.INVALID | Flag.SUSPECT, False) == "invalid"
