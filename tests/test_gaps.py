"""Gap detection (R-9.1.2, apps/quality/gaps.py): gaps of minutes to days found and listed, healthy series left
alone, late readings closing or splitting gaps, idempotent re-runs, and another park's gaps out of sight."""

from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.accounts.access import SystemPrincipal, restrict
from apps.accounts.services import set_membership
from apps.catalog.models import DataItem
from apps.ingestion import rollups
from apps.ingestion.services import ingest_readings
from apps.quality.gaps import find_gaps
from apps.quality.models import Gap
from tests.conftest import add_source

T0 = datetime(2026, 11, 2, 0, 0)
FMT = "%Y-%m-%d %H:%M:%S"


def ingest(source, times, code=None):
    records = [{"sourceId": source.source_id, "timestamp": t.strftime(FMT), "value": float(n)}
               for n, t in enumerate(times)]
    if code:
        for r in records:
            r["dataCode"] = code
    result = ingest_readings(records, channel="test", actor="test")
    assert result.accepted == len(records)
    rollups.refresh(budget=None)  # what the beat does every 10 s: it queues the stored ranges for the checks


def every(start, end, step_s):
    t, out = start, []
    while t <= end:
        out.append(t)
        t += timedelta(seconds=step_s)
    return out


def minus(times, start, end):
    """The times without those strictly between start and end: a gap from start to end."""
    return [t for t in times if not start < t < end]


def gaps(source):
    return [(g.start.replace(tzinfo=None) + timedelta(hours=8), g.end.replace(tzinfo=None) + timedelta(hours=8),
             g.missing, g.state) for g in Gap.objects.filter(source=source).order_by("start")]


def at(h=0, m=0, d=0):
    return T0 + timedelta(days=d, hours=h, minutes=m)


def test_gaps_of_minutes_to_days_are_found_and_nothing_healthy_is_flagged(park):
    find_gaps()  # the first run: a full scan of nothing
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])  # 300 s
    healthy = add_source(park, "TP01-EM-0002", ["CS010201"])
    jittery = add_source(park, "TP01-EM-0003", ["CS010201"], expected_interval_s=60)
    series = every(at(), at(d=5), 300)
    series = minus(series, at(1, 0), at(1, 15))  # 15 min: 2 missing
    series = minus(series, at(5, 0), at(11, 0))  # 6 h: 71 missing
    series = minus(series, at(0, 0, d=2), at(0, 0, d=4))  # 2 days: 575 missing
    ingest(meter, series)
    ingest(healthy, every(at(), at(d=1), 300))
    # a minute's cadence with readings up to 89 s apart: within the 50 % tolerance
    ingest(jittery, [at() + timedelta(seconds=s) for s in (0, 60, 149, 209, 298, 358)])
    run = find_gaps()
    assert not run.full and run.opened == 3
    assert gaps(meter) == [(at(1, 0), at(1, 15), 2, "open"), (at(5, 0), at(11, 0), 71, "open"),
                           (at(d=2), at(d=4), 575, "open")]
    assert gaps(healthy) == [] and gaps(jittery) == []
    assert {g.park for g in Gap.objects.filter(source=meter)} == {park}


def test_one_missing_point_is_a_gap_and_the_tolerance_is_the_threshold(park):
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])
    ingest(meter, [at(), at(0, 5), at(0, 12), at(0, 20)])  # 7 min (< 7.5): no gap; 8 min: one missing point
    find_gaps(full=True)
    assert gaps(meter) == [(at(0, 12), at(0, 20), 1, "open")]
    find_gaps(full=True, tolerance=0.2)  # 6 min threshold: the 7 min step too
    assert [g[:2] for g in gaps(meter)] == [(at(0, 5), at(0, 12)), (at(0, 12), at(0, 20))]


def test_a_rerun_changes_nothing(park):
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])
    ingest(meter, minus(every(at(), at(3), 300), at(1), at(2)))
    assert find_gaps().opened == 1
    before = list(Gap.objects.values())
    again = find_gaps()
    assert (again.opened, again.changed, again.closed) == (0, 0, 0)
    full = find_gaps(full=True)
    assert (full.opened, full.changed, full.closed) == (0, 0, 0)
    assert list(Gap.objects.values()) == before


def test_late_readings_close_and_split_gaps(park):
    find_gaps()
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])
    ingest(meter, minus(every(at(), at(d=3), 300), at(1), at(d=2)))  # a gap of nearly two days
    find_gaps()
    assert gaps(meter) == [(at(1), at(d=2), 563, "open")]
    ingest(meter, every(at(10), at(12), 300))  # the buffer of an edge box, delivered late: the middle
    run = find_gaps()
    assert (run.opened, run.changed) == (1, 1)
    assert gaps(meter) == [(at(1), at(10), 107, "open"), (at(12), at(d=2), 431, "open")]
    ingest(meter, every(at(1, 5), at(9, 55), 300))  # the first part whole
    run = find_gaps()
    assert run.closed == 1
    assert gaps(meter) == [(at(12), at(d=2), 431, "open")]
    ingest(meter, [at(d=2) - timedelta(minutes=5)])  # the last point only: the gap shrinks from its end
    find_gaps()
    assert gaps(meter) == [(at(12), at(d=2) - timedelta(minutes=5), 430, "open")]
    ingest(meter, [at(d=3, h=2)])  # a new reading after a silence: a new gap at the end
    find_gaps()
    assert gaps(meter)[-1] == (at(d=3), at(d=3, h=2), 23, "open")
    # the incremental runs agree with a full scan
    listed = gaps(meter)
    assert find_gaps(full=True).opened == 0 and gaps(meter) == listed


def test_ignored_gaps_stay_ignored(park):
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])
    ingest(meter, minus(every(at(), at(3), 300), at(1), at(2)))
    find_gaps(full=True)
    Gap.objects.update(state="ignored")
    find_gaps(full=True)
    assert gaps(meter) == [(at(1), at(2), 11, "ignored")]


def test_text_items_and_manual_sources_are_not_checked(park):
    text_item = DataItem.objects.filter(data_type="string").first()
    numeric = DataItem.objects.get(code="CS010201")
    manual = add_source(park, "TP01-MN-0001", ["CS010201"], collection_method="manual")
    ingest(manual, [at(), at(d=1)])
    both = add_source(park, "TP01-EM-0009", ["CS010201", text_item.code])
    ingest_readings([{"sourceId": both.source_id, "dataCode": text_item.code, "timestamp": t.strftime(FMT),
                      "value": "x"} for t in (at(), at(d=1))], channel="test", actor="test")
    ingest(both, [at(), at(d=1)], code=numeric.code)
    find_gaps(full=True)
    assert gaps(manual) == []
    assert [g.data_item_id for g in Gap.objects.filter(source=both)] == [numeric.pk]


def test_another_parks_gaps_are_invisible_through_the_seam(park, other_park, django_user_model):
    mine = add_source(park, "TP01-EM-0001", ["CS010201"])
    theirs = add_source(other_park, "TP02-EM-0001", ["CS010201"])
    for source in (mine, theirs):
        ingest(source, [at(), at(2)])
    find_gaps(full=True)
    user = django_user_model.objects.create_user("viewer", "v@example.invalid", "pw-123456789")
    set_membership(actor="test", user=user, park=park, role="viewer")
    assert [g.source_id for g in restrict(Gap.objects.all(), user, "view")] == [mine.pk]
    assert restrict(Gap.objects.all(), SystemPrincipal("test"), "view").count() == 2


def test_the_command_runs_a_detection(park):
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])
    ingest(meter, [at(), at(2)])
    out = StringIO()
    call_command("find_gaps", "--full", stdout=out)
    assert "full scan" in out.getvalue() and "1 gaps opened" in out.getvalue()
    assert gaps(meter) == [(at(), at(2), 23, "open")]
    for bad in ("-1", "nan", "1e308"):
        with pytest.raises(CommandError, match="tolerance"):
            call_command("find_gaps", "--tolerance", bad, stdout=StringIO())


def test_the_interpolation_plan_fills_short_gaps_between_valid_neighbours(park):
    from apps.quality.gaps import interpolation_plan

    meter = add_source(park, "TP01-EM-0001", ["CS010201"])
    records = [(at(0, 0), 10.0), (at(0, 20), 30.0), (at(0, 25), 31.0), (at(2, 0), 40.0)]  # 20 min, then 95 min
    ingest_readings([{"sourceId": meter.source_id, "timestamp": t.strftime(FMT), "value": v} for t, v in records],
                    channel="test", actor="test")
    find_gaps(full=True)
    ids = list(Gap.objects.filter(source=meter).order_by("start").values_list("id", flat=True))
    assert len(ids) == 2
    plan = interpolation_plan(ids)  # the 95-minute gap is longer than the default hour
    assert [(p.gap_id, p.ts.replace(tzinfo=None) + timedelta(hours=8), round(p.value, 6)) for p in plan] == [
        (ids[0], at(0, 5), 15.0), (ids[0], at(0, 10), 20.0), (ids[0], at(0, 15), 25.0)]
    longer = interpolation_plan(ids, span_s=2 * 3600)
    assert len(longer) == 3 + 18 and longer[-1].ts.replace(tzinfo=None) + timedelta(hours=8) == at(1, 55)
    Gap.objects.filter(pk=ids[0]).update(state="ignored")
    assert [p.gap_id for p in interpolation_plan(ids)] == []


def test_the_checks_queues_fill_when_the_rollups_take_the_log_not_in_the_ingest_transaction(park):
    """Migration quality 0007: storing readings queues only the rollups' dirty log; the refresher's take copies each
    range into both quality queues, a long one a day at a time, every part once."""
    from django.db import connection

    def queued(table):
        with connection.cursor() as cur:
            cur.execute(f"SELECT source_id, lo, hi FROM {table} WHERE source_id IS NOT NULL ORDER BY lo")
            return [(s, lo.replace(tzinfo=None), hi.replace(tzinfo=None)) for s, lo, hi in cur.fetchall()]

    find_gaps()  # the migration's full-scan request taken
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])
    ingest_readings([{"sourceId": meter.source_id, "timestamp": t.strftime(FMT), "value": 1.0}
                     for t in (at(), at(d=3))], channel="test", actor="test")
    assert queued("quality_gap_dirty") == [] and queued("quality_postcheck_dirty") == []
    rollups.refresh(budget=None)
    for table in ("quality_gap_dirty", "quality_postcheck_dirty"):
        parts = queued(table)
        assert [p[0] for p in parts] == [meter.pk] * 4  # 3 days and an instant: 4 takes of at most a day
        assert parts[0][1] == at() - timedelta(hours=8) and parts[-1][2] == at(d=3) - timedelta(hours=8)
        assert all(a[2] == b[1] for a, b in zip(parts, parts[1:], strict=False))  # contiguous, none twice
    assert find_gaps().opened == 1
