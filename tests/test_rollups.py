"""Rollups (apps/ingestion/rollups.py, docs/rollups.md): current after one refresh of what ingest queued, right
under late data, backfill across park-local midnights and months, duplicates, invalid flags, two time zones,
long queued ranges and a full rebuild."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection

from apps.accounts.services import save_park
from apps.ingestion import rollups
from apps.ingestion.models import Flag, Rollup
from apps.ingestion.services import ingest_readings
from apps.ingestion.store import mark_rollups_dirty
from tests.conftest import add_source

SHANGHAI = ZoneInfo("Asia/Shanghai")


def send(source_id, *points, code=None):
    """points: (local 'YYYY-MM-DD HH:MM:SS' or an aware datetime, value)."""
    recs = []
    for ts, value in points:
        if isinstance(ts, datetime):
            ts = ts.isoformat()
        rec = {"sourceId": source_id, "timestamp": ts, "value": value}
        if code:
            rec["dataCode"] = code
        recs.append(rec)
    return ingest_readings(recs, channel="test", actor="test")


def table(interval: str) -> dict:
    """{(source, bucket in the park's zone): (count, sum, min, max, last)} of one interval."""
    out = {}
    for r in Rollup.objects.filter(interval=interval).select_related("source", "park"):
        local = r.bucket.astimezone(ZoneInfo(r.park.time_zone)).strftime("%Y-%m-%d %H:%M")
        out[(r.source.source_id, local)] = (r.count, r.sum, r.min, r.max, r.last)
    return out


def test_ingest_is_in_the_rollups_after_one_refresh(meter):
    send(meter.source_id, ("2026-11-23 10:05:00", 1.0), ("2026-11-23 10:20:00", 4.0), ("2026-11-23 11:10:00", 2.0))
    assert rollups.lag()[0] == 1  # one queued range for the series of the batch
    result = rollups.refresh()
    assert result.series == 1 and not result.busy
    assert rollups.lag() == (0, 0.0)
    assert table("h") == {("TP01-EM-0001", "2026-11-23 10:00"): (2, 5.0, 1.0, 4.0, 4.0),
                          ("TP01-EM-0001", "2026-11-23 11:00"): (1, 2.0, 2.0, 2.0, 2.0)}
    assert table("d") == {("TP01-EM-0001", "2026-11-23 00:00"): (3, 7.0, 1.0, 4.0, 2.0)}
    assert table("m") == {("TP01-EM-0001", "2026-11-01 00:00"): (3, 7.0, 1.0, 4.0, 2.0)}
    hour = Rollup.objects.get(interval="h", bucket=datetime(2026, 11, 23, 2, tzinfo=UTC))
    assert hour.last_ts == datetime(2026, 11, 23, 2, 20, tzinfo=UTC)


def test_late_data_changes_its_own_buckets_and_last_only_when_newer(meter):
    send(meter.source_id, ("2026-11-23 10:20:00", 4.0), ("2026-11-24 09:00:00", 8.0))
    rollups.refresh()
    send(meter.source_id, ("2026-11-23 10:01:00", 100.0))  # older than everything stored: arrives later
    rollups.refresh()
    assert table("h")[("TP01-EM-0001", "2026-11-23 10:00")] == (2, 104.0, 4.0, 100.0, 4.0)
    assert table("d")[("TP01-EM-0001", "2026-11-23 00:00")] == (2, 104.0, 4.0, 100.0, 4.0)
    assert table("d")[("TP01-EM-0001", "2026-11-24 00:00")] == (1, 8.0, 8.0, 8.0, 8.0)
    assert table("m") == {("TP01-EM-0001", "2026-11-01 00:00"): (3, 112.0, 4.0, 100.0, 8.0)}
    send(meter.source_id, ("2026-11-23 10:59:59", 0.5))  # newer within its hour and day: the new last there
    rollups.refresh()
    assert table("h")[("TP01-EM-0001", "2026-11-23 10:00")] == (3, 104.5, 0.5, 100.0, 0.5)
    assert table("d")[("TP01-EM-0001", "2026-11-23 00:00")][4] == 0.5
    assert table("m")[("TP01-EM-0001", "2026-11-01 00:00")][4] == 8.0  # the month's last is still 24th's


def test_backfill_across_a_park_local_midnight_and_a_month(meter):
    # 2026-03-31T17:00Z is 01:00 on April 1st in Shanghai; 15:30Z is 23:30 on March 31st.
    send(meter.source_id, (datetime(2026, 3, 31, 17, 0, tzinfo=UTC), 2.0),
         (datetime(2026, 3, 31, 15, 30, tzinfo=UTC), 3.0), (datetime(2026, 3, 1, 0, 0, tzinfo=UTC), 5.0))
    rollups.refresh()
    assert table("d") == {("TP01-EM-0001", "2026-03-01 00:00"): (1, 5.0, 5.0, 5.0, 5.0),
                          ("TP01-EM-0001", "2026-03-31 00:00"): (1, 3.0, 3.0, 3.0, 3.0),
                          ("TP01-EM-0001", "2026-04-01 00:00"): (1, 2.0, 2.0, 2.0, 2.0)}
    assert table("m") == {("TP01-EM-0001", "2026-03-01 00:00"): (2, 8.0, 3.0, 5.0, 3.0),
                          ("TP01-EM-0001", "2026-04-01 00:00"): (1, 2.0, 2.0, 2.0, 2.0)}
    april = Rollup.objects.get(interval="m", bucket__gte=datetime(2026, 3, 31, tzinfo=UTC))
    assert april.bucket == datetime(2026, 3, 31, 16, tzinfo=UTC)  # local midnight, in UTC


def test_two_parks_in_different_time_zones(meter):
    utc_park = save_park(actor="test", code="TP03", name_zh="伦敦园区", time_zone="UTC")
    add_source(utc_park, "TP03-EM-0001", ["CS010201"])
    when = datetime(2026, 3, 31, 17, 0, tzinfo=UTC)
    send(meter.source_id, (when, 1.0))
    send("TP03-EM-0001", (when, 1.0))
    rollups.refresh()
    assert set(table("m")) == {("TP01-EM-0001", "2026-04-01 00:00"), ("TP03-EM-0001", "2026-03-01 00:00")}
    assert set(table("h")) == {("TP01-EM-0001", "2026-04-01 01:00"), ("TP03-EM-0001", "2026-03-31 17:00")}
    assert Rollup.objects.get(interval="m", source__source_id="TP03-EM-0001").park_id == utc_park.pk


def test_duplicates_are_not_counted_twice(meter):
    points = [("2026-11-23 10:05:00", 1.0), ("2026-11-23 10:10:00", 2.0)]
    send(meter.source_id, *points)
    rollups.refresh()
    again = send(meter.source_id, *points, ("2026-11-23 10:15:00", 3.0))
    assert again.duplicates == 2
    rollups.refresh()
    assert table("h") == {("TP01-EM-0001", "2026-11-23 10:00"): (3, 6.0, 1.0, 3.0, 3.0)}
    send(meter.source_id, *points)  # nothing new: nothing queued
    assert rollups.lag()[0] == 0


def _write_invalid(meter, ts, value):
    """A reading flagged invalid, written as the pipeline writes (no channel sets that flag yet: corrections
    and quality checks of later issues will), and queued as every writer queues."""
    from apps.ingestion.models import IngestBatch

    batch = IngestBatch.objects.create(received_at=ts, channel="test", actor_label="test", park_id=meter.park_id)
    item = meter.data_items.get()
    with connection.cursor() as cur:
        cur.execute("SELECT set_config('carbonpark.writer', 'ingest_readings', true)")
        cur.execute("INSERT INTO ingestion_reading (park_id, source_id, data_item_id, ts, value, received_unit, "
                    "status, flags, channel, batch_id, received_at) VALUES (%s, %s, %s, %s, %s, '', 'N', %s, "
                    "'test', %s, now())", [meter.park_id, meter.pk, item.pk, ts, value, Flag.INVALID, batch.pk])
        mark_rollups_dirty(cur, "INSERT INTO ingestion_rollup_dirty (park_id, source_id, data_item_id, lo, hi) "
                                "VALUES (%s, %s, %s, %s, %s)", [meter.park_id, meter.pk, item.pk, ts, ts])
        cur.execute("SELECT set_config('carbonpark.writer', '', true)")


def test_invalid_flagged_readings_are_not_counted_and_emptied_buckets_go(meter):
    send(meter.source_id, ("2026-11-23 10:05:00", 1.0))
    _write_invalid(meter, datetime(2026, 11, 23, 2, 30, tzinfo=UTC), 1000.0)  # 10:30 local, same hour
    _write_invalid(meter, datetime(2026, 11, 23, 5, 0, tzinfo=UTC), 7.0)  # alone in its hour
    rollups.refresh()
    assert table("h") == {("TP01-EM-0001", "2026-11-23 10:00"): (1, 1.0, 1.0, 1.0, 1.0)}
    # A bucket no counted reading backs any longer (say, its only reading revised to invalid) goes.
    stale = Rollup.objects.get(interval="h")
    Rollup.objects.create(interval="h", park_id=meter.park_id, source_id=meter.pk, data_item_id=stale.data_item_id,
                          bucket=datetime(2026, 11, 23, 5, tzinfo=UTC), count=1, sum=7, min=7, max=7, last=7,
                          last_ts=datetime(2026, 11, 23, 5, tzinfo=UTC), updated_at=stale.updated_at)
    _write_invalid(meter, datetime(2026, 11, 23, 5, 10, tzinfo=UTC), 8.0)
    rollups.refresh()
    assert set(table("h")) == {("TP01-EM-0001", "2026-11-23 10:00")}
    assert table("d")[("TP01-EM-0001", "2026-11-23 00:00")] == (1, 1.0, 1.0, 1.0, 1.0)


def test_a_long_queued_range_is_done_in_pieces(meter):
    send(meter.source_id, ("2026-01-01 00:00:00", 1.0), ("2026-02-15 12:00:00", 2.0), ("2026-03-20 08:00:00", 3.0))
    result = rollups.refresh(limit=10)
    assert result.rounds > 70  # 78 days in 1-day pieces, one piece of the series a round
    assert rollups.lag()[0] == 0
    assert sorted(v[0] for v in table("m").values()) == [1, 1, 1]
    assert len(table("h")) == len(table("d")) == 3


def test_rebuild_recomputes_everything_from_the_readings(meter):
    send(meter.source_id, ("2026-11-23 10:05:00", 1.0), ("2026-12-01 00:30:00", 4.0))
    rollups.refresh()
    before = {i: table(i) for i in "hdm"}
    Rollup.objects.filter(interval="d").delete()
    Rollup.objects.filter(interval="h").update(sum=999)
    call_command("rebuild_rollups", "--park", "TP01", verbosity=0)
    assert {i: table(i) for i in "hdm"} == before


def test_rebuild_refuses_an_unknown_park(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("rebuild_rollups", "--park", "NOPE", verbosity=0)


def test_the_beat_runs_the_refresh_every_10_seconds():
    from carbonpark.celery import app

    entry = app.conf.beat_schedule["refresh-rollups"]
    assert entry["task"] == "apps.ingestion.tasks.refresh_rollups" and entry["schedule"] <= 10.0
    entry = app.conf.beat_schedule["rebuild-rollups"]
    assert entry["task"] == "apps.ingestion.tasks.rebuild_rollups"


def test_rollup_lag_is_in_the_metrics(meter, client):
    send(meter.source_id, ("2026-11-23 10:05:00", 1.0))
    body = client.get("/metrics").content.decode()
    assert "carbonpark_rollup_queued_ranges 1.0" in body
    assert "carbonpark_rollup_lag_seconds" in body


def test_the_rollups_page_and_the_link_from_the_readings_browser(meter, admin_client):
    send(meter.source_id, ("2026-11-23 23:30:00", 1.5), ("2026-11-24 00:10:00", 2.5))
    rollups.refresh()
    page = admin_client.get("/ingestion/rollup/", {"interval": "d", "source": "TP01-EM-0001",
                                                    "start": "2026-11-24 00:00:00"})
    assert page.status_code == 200
    rows = page.context["cl"].result_list
    assert [(r.interval, r.count, r.sum) for r in rows] == [("d", 1, 2.5)]
    assert "2026-11-24" in page.content.decode()  # the park's local day, not the UTC one (2026-11-23)
    browser = admin_client.get("/ingestion/reading/", {"source": "TP01-EM-0001"}).content.decode()
    assert "/ingestion/rollup/?source=TP01-EM-0001&amp;interval__exact=h" in browser
    assert admin_client.get("/ingestion/rollup/add/").status_code == 403


def test_overlapping_queued_ranges_count_each_reading_once(meter):
    send(meter.source_id, ("2026-11-23 10:05:00", 1.0), ("2026-11-23 12:40:00", 2.0))
    send(meter.source_id, ("2026-11-23 10:20:00", 4.0))  # inside the first batch's range
    send(meter.source_id, ("2026-11-23 12:59:00", 8.0), ("2026-11-23 13:00:00", 16.0))  # overlaps its end
    assert rollups.lag()[0] == 3
    rollups.refresh()
    assert table("h") == {("TP01-EM-0001", "2026-11-23 10:00"): (2, 5.0, 1.0, 4.0, 4.0),
                          ("TP01-EM-0001", "2026-11-23 12:00"): (2, 10.0, 2.0, 8.0, 8.0),
                          ("TP01-EM-0001", "2026-11-23 13:00"): (1, 16.0, 16.0, 16.0, 16.0)}
    assert table("d") == {("TP01-EM-0001", "2026-11-23 00:00"): (5, 31.0, 1.0, 16.0, 16.0)}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_upgraded_database_builds_its_rollups_one_partition_at_a_time(meter, monitor):
    from django.db.migrations.executor import MigrationExecutor

    from apps.ingestion import rollup_rebuild
    from apps.ingestion.partitions import partitions

    # December 2026 has a partition in the test database (its migration made this month and 3 ahead), November
    # goes to the DEFAULT partition; whatever month the suite runs in, both paths are exercised or one is.
    send(meter.source_id, ("2026-11-23 10:05:00", 5.0), ("2026-12-01 10:05:00", 1.0), ("2026-12-05 10:05:00", 2.0))
    send(monitor.source_id, ("2026-12-05 10:05:00", 3.0), code="CS030201")
    with connection.cursor() as cur:
        cur.execute("DELETE FROM ingestion_rollup_dirty")  # as before rollups existed
    MigrationExecutor(connection).migrate([("ingestion", "0010_rollups")])
    MigrationExecutor(connection).migrate([("ingestion", "0012_rollup_rebuild_pending")])
    assert rollups.lag()[0] == 0  # nothing queued in the dirty log: new readings never wait behind history
    months = [p.month for p in partitions()]
    assert rollup_rebuild.pending() == len(months) + (1 if _default_rows() else 0)
    first = rollup_rebuild.step()  # what the beat task does each run
    assert first.month == max(months)  # newest first
    send(meter.source_id, ("2026-12-05 11:05:00", 4.0))  # live data meanwhile: the refresh still takes it
    assert rollups.refresh().series == 1
    rollup_rebuild.run()
    assert rollup_rebuild.pending() == 0 and rollups.lag()[0] == 0
    assert table("m") == {("TP01-EM-0001", "2026-11-01 00:00"): (1, 5.0, 5.0, 5.0, 5.0),
                          ("TP01-EM-0001", "2026-12-01 00:00"): (3, 7.0, 1.0, 4.0, 4.0),
                          ("TP01-WW-0001", "2026-12-01 00:00"): (1, 3.0, 3.0, 3.0, 3.0)}
    assert len(table("h")) == 5


def _default_rows():
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM ingestion_reading_default")
        return cur.fetchone()[0]


def _everything():
    """Every rollup row, every field but updated_at."""
    return sorted(Rollup.objects.values_list("interval", "park_id", "source_id", "data_item_id", "bucket", "count",
                                             "sum", "min", "max", "last", "last_ts"))


def test_the_bulk_rebuild_gives_exactly_what_the_refresh_gives(meter):
    from apps.ingestion import rollup_rebuild

    with connection.cursor() as cur:
        for month in ("2026-03-01", "2026-04-01"):
            cur.execute("SELECT ingestion_reading_add_month(%s)", [month])
    utc = save_park(actor="test", code="TP03", name_zh="伦敦园区", time_zone="UTC")
    add_source(utc, "TP03-EM-0001", ["CS010201"])
    kolkata = save_park(actor="test", code="TP05", name_zh="加尔各答园区", time_zone="Asia/Kolkata")  # UTC+05:30
    add_source(kolkata, "TP05-EM-0001", ["CS010201"])
    # Across the local month boundary: 2026-03-31T16:00Z is April 1st in Shanghai, still March in UTC; the
    # Kolkata hour 05:00 of April 1st is 23:30Z-00:30Z, across the partitions' edge.
    edge = [datetime(2026, 3, 31, h, m, tzinfo=UTC) for h, m in ((15, 30), (16, 0), (17, 5), (23, 45))]
    edge += [datetime(2026, 4, 1, 0, 10, tzinfo=UTC), datetime(2026, 4, 2, 9, 0, tzinfo=UTC),
             datetime(2026, 3, 2, 3, 0, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)]  # the last: DEFAULT
    for k, source in enumerate((meter.source_id, "TP03-EM-0001", "TP05-EM-0001")):
        send(source, *[(ts, float(n * 3 + k)) for n, ts in enumerate(edge)])
    _write_invalid(meter, datetime(2026, 3, 31, 16, 20, tzinfo=UTC), 1000.0)  # beside counted ones
    _write_invalid(meter, datetime(2026, 4, 3, 5, 0, tzinfo=UTC), 7.0)  # alone in its hour, day
    rollups.refresh(budget=None)
    incremental = _everything()
    assert len(incremental) > 30
    # Wrong and stale rows the rebuild must put right: a day gone, sums off, an hour no reading backs.
    Rollup.objects.filter(interval="d", source__source_id="TP03-EM-0001").delete()
    Rollup.objects.filter(interval="h").update(sum=999)
    stale = Rollup.objects.filter(interval="h").first()
    gone = datetime(2026, 3, 10, 4, tzinfo=UTC)
    Rollup.objects.create(interval="h", park_id=stale.park_id, source_id=stale.source_id,
                          data_item_id=stale.data_item_id, bucket=gone, count=1, sum=1, min=1, max=1, last=1,
                          last_ts=gone, updated_at=stale.updated_at)
    rollup_rebuild.queue()
    while not (step := rollup_rebuild.step()).done:
        assert not step.busy
    with connection.cursor() as cur:
        cur.execute("SELECT DISTINCT source_id FROM ingestion_rollup_dirty")
        queued = {row[0] for row in cur.fetchall()}
    # Only the DEFAULT partition's series and the Kolkata hour across the edge go through the refresh.
    kolkata_id = Rollup.objects.filter(park_id=kolkata.pk).values_list("source_id", flat=True).first()
    assert kolkata_id in queued and len(queued) == 3
    rollups.refresh(budget=None)
    assert _everything() == incremental
    # From nothing at all, the same again.
    Rollup.objects.all().delete()
    rollup_rebuild.rebuild()
    assert _everything() == incremental


def test_a_daylight_saving_day_has_23_hours(db):
    berlin = save_park(actor="test", code="TP04", name_zh="柏林园区", time_zone="Europe/Berlin")
    add_source(berlin, "TP04-EM-0001", ["CS010201"])
    # 2026-03-29: clocks go from 02:00 CET to 03:00 CEST; local midnight of the 30th is 22:00Z on the 29th.
    send("TP04-EM-0001", (datetime(2026, 3, 28, 23, 0, tzinfo=UTC), 1.0),
         (datetime(2026, 3, 29, 0, 30, tzinfo=UTC), 2.0),
         (datetime(2026, 3, 29, 1, 30, tzinfo=UTC), 4.0), (datetime(2026, 3, 29, 21, 59, tzinfo=UTC), 8.0),
         (datetime(2026, 3, 29, 22, 0, tzinfo=UTC), 16.0))
    rollups.refresh()
    assert sorted(table("h")) == [("TP04-EM-0001", "2026-03-29 00:00"), ("TP04-EM-0001", "2026-03-29 01:00"),
                                  ("TP04-EM-0001", "2026-03-29 03:00"), ("TP04-EM-0001", "2026-03-29 23:00"),
                                  ("TP04-EM-0001", "2026-03-30 00:00")]
    assert table("d") == {("TP04-EM-0001", "2026-03-29 00:00"): (4, 15.0, 1.0, 8.0, 8.0),
                          ("TP04-EM-0001", "2026-03-30 00:00"): (1, 16.0, 16.0, 16.0, 16.0)}
