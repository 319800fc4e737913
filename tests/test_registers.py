"""Meter registers to consumption (issue #12 item 2, apps/quality/registers/derive.py): series with injected faults
(rollovers, resets, a meter replacement, gaps from minutes to days, a late reading, a corrected register value,
CT/PT), every interval told apart, nothing healthy flagged, and the totals reconciled to the kWh."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model

from apps.accounts.services import set_membership
from apps.corrections import services as corrections
from apps.ingestion import rollups
from apps.ingestion.services import ingest_readings
from apps.quality.models import Consumption, RegisterInterval
from apps.quality.registers.derive import derive_consumption
from apps.quality.registers.services import save_register_setting, save_replacement
from tests.conftest import add_source

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 2, 0, 0)
FMT = "%Y-%m-%d %H:%M:%S"


def at(h=0, m=0, d=0):
    return T0 + timedelta(days=d, hours=h, minutes=m)


def ingest(source, points):
    result = ingest_readings([{"sourceId": source.source_id, "dataCode": "CS010201", "timestamp": t.strftime(FMT),
                               "value": float(v)} for t, v in points], channel="test", actor="test")
    assert result.accepted == len(points), result.rejected


def run():
    """What the beat does: the rollup refresh takes the queue (the trigger copies it), then the derivation."""
    rollups.refresh(budget=None)
    return derive_consumption()


def register(source, **fields):
    from apps.catalog.models import DataItem

    return save_register_setting(actor="test", source=source, data_item=DataItem.objects.get(code="CS010201"),
                                 **fields)


def steady(start, end, step_min, first, per_min):
    """A register advancing ``per_min`` each minute from ``first``: [(time, reading)]."""
    out, t = [], start
    while t <= end:
        out.append((t, round(first + per_min * (t - start).total_seconds() / 60, 6)))
        t += timedelta(minutes=step_min)
    return out


def intervals(setting):
    return list(RegisterInterval.objects.filter(setting=setting).order_by("end"))


def consumption(setting, level):
    return {c.bucket.astimezone(TZ).replace(tzinfo=None): c for c in
            Consumption.objects.filter(setting=setting, level=level).order_by("bucket")}


def totals(setting):
    ivs = intervals(setting)
    return (sum(i.consumption for i in ivs),
            *(sum(c.value for c in consumption(setting, level).values()) for level in ("hour", "day", "month")))


def assert_reconciled(setting, expected):
    for total in totals(setting):
        assert total == pytest.approx(expected, rel=1e-9, abs=1e-6)


@pytest.fixture
def meter(park):
    return add_source(park, "TP01-EM-0001", ["CS010201"], expected_interval_s=300)


def test_a_healthy_register_gives_its_advance_and_nothing_is_flagged(meter):
    s = register(meter, modulus=1_000_000, rated_power_kw=100)
    pts = steady(at(), at(d=2), 5, 1000.0, 1.0)  # 60 kWh an hour
    ingest(meter, pts)
    r = run()
    assert r.series == 1 and r.derived == len(pts) - 1
    ivs = intervals(s)
    assert {i.kind for i in ivs} == {"ok"} and not any(i.gap for i in ivs)
    hours = consumption(s, "hour")
    assert len(hours) == 48 and all(h.value == pytest.approx(60.0) and h.flagged == 0 for h in hours.values())
    days = consumption(s, "day")
    assert list(days) == [at(), at(d=1)] and all(d.value == pytest.approx(1440.0) for d in days.values())
    assert list(consumption(s, "month")) == [datetime(2026, 11, 1)]
    assert_reconciled(s, pts[-1][1] - pts[0][1])
    # a second run, and a full one, change nothing
    assert run().series == 0
    before = [(c.level, c.bucket, c.value) for c in Consumption.objects.order_by("level", "bucket")]
    derive_consumption(full=True)
    assert [(c.level, c.bucket, c.value) for c in Consumption.objects.order_by("level", "bucket")] == before


def test_rollover_reset_and_implausible_advances_are_told_apart(meter):
    s = register(meter, modulus=1_000_000, rated_power_kw=1000)  # at most 1 200 kWh an hour: 100 in 5 min
    ingest(meter, [(at(0, 0), 999_900.0), (at(0, 5), 999_960.0), (at(0, 10), 20.0),  # rolls over: 60
                   (at(0, 15), 80.0), (at(0, 20), 5.0),  # falls 75: wrapping would be 999 925: a reset, from 0: 5
                   (at(0, 25), 65.0), (at(0, 30), 5065.0),  # 5 000 in 5 min at most 1 000 kW: implausible
                   (at(0, 35), 5100.0)])
    run()
    got = [(i.end.astimezone(TZ).replace(tzinfo=None), i.kind, i.delta) for i in intervals(s)]
    assert got == [(at(0, 5), "ok", 60.0), (at(0, 10), "rollover", pytest.approx(60.0)), (at(0, 15), "ok", 60.0),
                   (at(0, 20), "reset", 5.0), (at(0, 25), "ok", 60.0), (at(0, 30), "implausible", 5000.0),
                   (at(0, 35), "ok", 35.0)]
    hour = consumption(s, "hour")[at()]
    assert hour.flagged == 3 and hour.value == pytest.approx(60 + 60 + 60 + 5 + 60 + 5000 + 35)
    # reconciled: last − first, plus one rollover point, plus what the reset counted before it (80) from zero
    assert_reconciled(s, 5100.0 - 999_900.0 + 1_000_000 + 80.0)


def test_a_reset_to_an_implausible_value_books_zero_and_no_limit_books_from_zero(park):
    a = add_source(park, "TP01-EM-0001", ["CS010201"])
    b = add_source(park, "TP01-EM-0002", ["CS010201"])
    sa = register(a, max_delta_per_hour=120)  # 10 in 5 min
    sb = register(b)  # no rollover point, no limit
    ingest(a, [(at(0, 0), 500.0), (at(0, 5), 505.0), (at(0, 10), 300.0), (at(0, 15), 305.0)])
    ingest(b, [(at(0, 0), 500.0), (at(0, 5), 505.0), (at(0, 10), 300.0), (at(0, 15), 305.0)])
    run()
    assert [(i.kind, i.delta) for i in intervals(sa)] == [("ok", 5.0), ("reset", 0.0), ("ok", 5.0)]
    assert [(i.kind, i.delta) for i in intervals(sb)] == [("ok", 5.0), ("reset", 300.0), ("ok", 5.0)]


def test_ct_and_pt_multiply_and_a_meter_replacement_books_both_meters(meter):
    s = register(meter, modulus=100_000, ct_ratio=40, pt_ratio=100, rated_power_kw=200_000)
    # the old meter reads 1 000.0 … 1 002.0, is replaced at 02:02 after reading 1 002.3; the new one starts at 0.5
    ingest(meter, [(at(1, 50), 1000.0), (at(1, 55), 1001.0), (at(2, 0), 1002.0),
                   (at(2, 5), 0.9), (at(2, 10), 1.9)])
    swap = at(2, 2).replace(tzinfo=TZ)
    save_replacement(actor="test", setting=s, ts=swap, old_last=1002.3, new_first=0.5)
    run()
    got = [(i.kind, round(i.delta, 6), round(i.consumption, 3)) for i in intervals(s)]
    assert got == [("ok", 1.0, 4000.0), ("ok", 1.0, 4000.0), ("replacement", 0.7, 2800.0), ("ok", 1.0, 4000.0)]
    # old meter 1 002.3 − 1 000.0, new meter 1.9 − 0.5, times CT × PT
    assert_reconciled(s, (1002.3 - 1000.0 + 1.9 - 0.5) * 4000)
    assert consumption(s, "hour")[at(2)].flagged == 1


def test_gaps_from_minutes_to_days_are_spread_over_the_hours_they_span(meter):
    s = register(meter, modulus=1_000_000)
    pts = steady(at(), at(d=5), 5, 10_000.0, 2.0)  # 120 an hour
    missing = [(at(1, 0), at(1, 15)), (at(5, 0), at(11, 0)), (at(d=2), at(d=4))]
    pts = [p for p in pts if not any(a < p[0] < b for a, b in missing)]
    ingest(meter, pts)
    run()
    gaps = [(i.start.astimezone(TZ).replace(tzinfo=None), i.end.astimezone(TZ).replace(tzinfo=None))
            for i in intervals(s) if i.gap]
    assert gaps == missing
    hours = consumption(s, "hour")
    # every hour of the series has its share, the gaps' hours included: never a lump, never zeros
    assert len(hours) == 5 * 24
    assert all(h.value == pytest.approx(120.0) for h in hours.values())
    assert hours[at(7)].spread and hours[at(0, 0, d=3)].spread and not hours[at(12)].spread
    assert [round(d.value, 6) for d in consumption(s, "day").values()] == [2880.0] * 5
    assert_reconciled(s, pts[-1][1] - pts[0][1])


def test_a_gap_spreads_in_proportion_to_time_across_uneven_hours(meter):
    s = register(meter)
    ingest(meter, [(at(0, 30), 100.0), (at(3, 0), 250.0)])  # 150 over 2.5 h: 30 in the first half hour
    run()
    assert {k: round(v.value, 6) for k, v in consumption(s, "hour").items()} == {at(0): 30.0, at(1): 60.0,
                                                                                at(2): 60.0}


def test_late_reading_in_the_middle_and_incremental_runs_agree_with_a_full_one(meter):
    s = register(meter, modulus=1_000_000)
    ingest(meter, [(at(0), 100.0), (at(1), 160.0), (at(6), 460.0), (at(7), 520.0)])
    run()
    assert consumption(s, "hour")[at(3)].value == pytest.approx(60.0)
    ingest(meter, [(at(2), 400.0)])  # late: most of the gap's consumption was in its first hour
    r = run()
    assert r.dropped == 1 and r.derived == 2
    hours = consumption(s, "hour")
    assert hours[at(1)].value == pytest.approx(240.0) and hours[at(3)].value == pytest.approx(15.0)
    assert_reconciled(s, 420.0)
    incremental = {(c.level, c.bucket): c.value for c in Consumption.objects.all()}
    derive_consumption(full=True)
    assert {(c.level, c.bucket): c.value for c in Consumption.objects.all()} == pytest.approx(incremental)
    # a backfill before the first reading and one after a day's silence
    ingest(meter, [(at(-2), 0.0), (at(d=1, h=7), 1960.0)])
    run()
    assert_reconciled(s, 1960.0)
    assert sorted(consumption(s, "day")) == [at(d=-1), at(), at(d=1)]


def test_a_corrected_register_value_flows_through(meter, park):
    s = register(meter, modulus=1_000_000)
    ingest(meter, [(at(10, m), 100.0 + m) for m in range(0, 60, 5)])
    ingest(meter, [(at(11, 0), 60.0)])  # a misread: looks like a reset
    ingest(meter, [(at(11, 5), 165.0)])
    run()
    assert [i.kind for i in intervals(s)][-2:] == ["reset", "ok"]
    users = {}
    for role in ("operator", "approver"):
        users[role] = get_user_model().objects.create_user(f"{role}-1")
        set_membership(actor="test", user=users[role], park=park, role=role)
    c = corrections.request_correction(actor=users["operator"], source_id=meter.source_id,
                                       start="2026-11-02 11:00:00", end="2026-11-02 11:00:00", new_value=160.0,
                                       reason="misread register")
    corrections.approve_correction(actor=users["approver"], correction_id=c.pk)
    corrections.apply_correction(c.pk)
    run()
    assert {i.kind for i in intervals(s)} == {"ok"}
    assert_reconciled(s, 65.0)
    assert consumption(s, "hour")[at(11)].flagged == 0


def test_a_changed_setting_derives_the_register_again(meter):
    s = register(meter)
    ingest(meter, [(at(0), 999_990.0), (at(0, 5), 10.0)])
    run()
    assert [(i.kind, i.delta) for i in intervals(s)] == [("reset", 10.0)]
    save_register_setting(actor="test", setting=s, modulus=1_000_000, ct_ratio=2)
    run()
    assert [(i.kind, i.delta, i.consumption) for i in intervals(s)] == [("rollover", 20.0, 40.0)]


def test_huge_register_values_are_skipped_not_fatal(meter):
    s = register(meter, modulus=1_000_000, ct_ratio=1e6, pt_ratio=1e6)
    ingest(meter, [(at(0), 10.0), (at(0, 5), 1e300), (at(0, 10), 12.0), (at(0, 15), 5e299), (at(0, 20), 13.0)])
    run()
    assert [(i.delta, i.consumption) for i in intervals(s)] == [(2.0, 2e12), (1.0, 1e12)]


def test_the_queue_is_fed_only_when_the_refresher_takes_and_only_for_registers(park, meter):
    from django.db import connection

    other = add_source(park, "TP01-EM-0002", ["CS010201"])
    register(meter)
    derive_consumption()  # the setting's own queue row
    ingest(meter, [(at(0), 1.0), (at(d=3), 2.0)])
    ingest(other, [(at(0), 1.0)])
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM quality_register_dirty")
        assert cur.fetchone()[0] == 0  # not on the ingest path
        rollups.refresh(budget=None)
        cur.execute("SELECT source_id, lo, hi FROM quality_register_dirty ORDER BY lo")
        rows = cur.fetchall()
    assert {r[0] for r in rows} == {meter.pk}
    assert all(hi - lo <= timedelta(days=1) for _s, lo, hi in rows)  # a day at a time, the rest re-queued
    assert derive_consumption().derived == 1


def test_the_demo_meters_are_registers_and_the_demo_stream_gives_consumption(db, tmp_path, monkeypatch):
    import io

    from django.core.management import call_command

    from apps.demo.management.commands import demo_setup, demo_stream
    from apps.quality.models import RegisterSetting

    monkeypatch.setattr(demo_setup, "VAR_DIR", tmp_path)
    call_command("demo_setup", stdout=io.StringIO())
    call_command("demo_setup", stdout=io.StringIO())  # idempotent
    settings = {s.source.source_id: s for s in RegisterSetting.objects.select_related("source")}
    assert set(settings) == {"JSTZ01-EM-0001", "JSTZ01-EM-0002"}
    assert {settings[k].source.protocol for k in settings} == {"dlt645", "modbus_tcp"}
    assert settings["JSTZ01-EM-0001"].ct_ratio == 40 and settings["JSTZ01-EM-0001"].modulus == 1_000_000
    import random

    start = datetime(2026, 12, 7, 7, 0, tzinfo=TZ)
    for k in range(24):  # two hours of the demo stream, every five minutes
        batch = demo_stream.demo_batch(start + timedelta(minutes=5 * k), random.Random(k), bad=False)
        ingest_readings(batch, channel="demo", actor="demo")
    run()
    for sid, s in settings.items():
        kinds = set(RegisterInterval.objects.filter(setting=s).values_list("kind", flat=True))
        assert kinds == {"ok"}, sid  # a register that only advances, within the rated power: nothing flagged
        hours = consumption(s, "hour")
        assert len(hours) == 2 and all(h.value > 0 for h in hours.values())
    # 1# meter: about 36 kWh an hour on its register, times CT 40
    assert 800 < consumption(settings["JSTZ01-EM-0001"], "hour")[datetime(2026, 12, 7, 7)].value < 2400


def test_a_source_moved_to_another_park_takes_its_register_along(meter, other_park):
    from apps.sources.services import save_source

    s = register(meter)
    ingest(meter, [(at(0), 1.0), (at(1), 2.0)])
    run()
    save_source(actor="test", source=meter, park=other_park, reason="moved")
    derive_consumption()
    s.refresh_from_db()
    assert s.park == other_park
    assert set(RegisterInterval.objects.values_list("park_id", flat=True)) == {other_park.pk}
    assert set(Consumption.objects.values_list("park_id", flat=True)) == {other_park.pk}


def test_the_beat_derives_every_30_seconds():
    from carbonpark.celery import app

    entry = app.conf.beat_schedule["derive-consumption"]
    assert entry["task"] == "apps.quality.tasks.derive_consumption" and entry["schedule"] <= 60


def test_the_command_runs_a_derivation(meter):
    import io

    from django.core.management import call_command

    s = register(meter)
    ingest(meter, [(at(0), 1.0), (at(1), 2.0)])
    rollups.refresh(budget=None)
    out = io.StringIO()
    call_command("derive_consumption", stdout=out)
    assert "1 registers" in out.getvalue() and len(intervals(s)) == 1
    out = io.StringIO()
    call_command("derive_consumption", "--full", stdout=out)
    assert "1 registers, 1 intervals dropped, 1 derived" in out.getvalue()
