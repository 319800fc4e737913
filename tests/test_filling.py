"""Filling gaps (R-9.3.2.1) and repairing minor anomalies (R-9.3.1), apps/quality/filling: the resend asked and
waited for, interpolation within the span, profiles beyond it with register totals reconciled, a late real reading
winning over a fill, the "patched" flag refused to senders, idempotent runs, and another park's gap unknown."""

from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from apps.accounts.access import AccessDenied, SystemPrincipal
from apps.accounts.services import set_membership
from apps.core.errors import CarbonParkError
from apps.core.models import AuditEntry
from apps.corrections.models import Revision
from apps.ingestion import rollups
from apps.ingestion.models import Flag, Reading
from apps.ingestion.services import ingest_readings
from apps.quality.filling import fill_gap_now, fill_gaps, ignore_gap
from apps.quality.gaps import find_gaps
from apps.quality.models import Fill, Gap
from apps.sources.models import Command
from tests.conftest import add_source

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 2, 0, 0, tzinfo=SH)
FMT = "%Y-%m-%d %H:%M:%S"
CODE = "CS010201"


def at(h=0, m=0, d=0):
    return T0 + timedelta(days=d, hours=h, minutes=m)


def every(start, end, step_s=300):
    t, out = start, []
    while t <= end:
        out.append(t)
        t += timedelta(seconds=step_s)
    return out


def ingest(source, points, **extra):
    """points: [(time, value)]."""
    records = [{"sourceId": source.source_id, "dataCode": CODE, "timestamp": t.astimezone(SH).strftime(FMT),
                "value": float(v), **extra} for t, v in points]
    result = ingest_readings(records, channel="test", actor="test")
    assert not result.rejected, result.rejected
    rollups.refresh(budget=None)  # what the beat does every 10 s (it may feed the quality queues)
    return result


def series(source):
    """[(local time, stored value, flags, effective value)] of the source, in time order."""
    with connection.cursor() as cur:
        cur.execute("SELECT ts, raw_value, flags, effective_value FROM corrections_effective_reading "
                    "WHERE source_id = %s ORDER BY ts", [source.pk])
        return [(ts.astimezone(SH), raw, flags, eff) for ts, raw, flags, eff in cur.fetchall()]


def patched(source):
    return [row for row in series(source) if row[2] & Flag.PATCHED]


@pytest.fixture
def edge(park):
    """A meter behind an edge agent (MQTT): it can resend."""
    return add_source(park, "TP01-EM-0001", [CODE], protocol="mqtt_json")


@pytest.fixture
def pusher(park):
    """A meter pushing over HTTP: nothing to ask, the filling goes straight to interpolation."""
    return add_source(park, "TP01-EM-0002", [CODE])


def linear(start, end, v0, v1):
    return [(t, v0 + (v1 - v0) * (t - start) / (end - start)) for t in every(start, end)]


def test_a_resend_is_asked_and_real_readings_within_the_wait_leave_nothing_to_fill(edge):
    points = linear(at(), at(2), 100.0, 124.0)
    hole = [p for p in points if at(0, 30) < p[0] < at(1, 0)]  # 30 min: 5 points missing
    ingest(edge, [p for p in points if p not in hole])
    now = timezone.now()
    run = fill_gaps(now=now)
    assert (run.asked, run.linear, run.profile, run.points) == (1, 0, 0, 0)
    cmd = Command.objects.get(source=edge, type="resend")
    assert cmd.params == {"from": "2026-11-02 00:30:01", "to": "2026-11-02 00:59:59"}
    assert cmd.created_by == "fill_gaps" and cmd.expires_at > now
    gap = Gap.objects.get(source=edge)
    assert gap.refetch_at == now and gap.refetch_command == cmd and gap.state == "open"
    assert fill_gaps(now=now + timedelta(seconds=30)).waiting == 1  # within the wait: nothing more
    assert Command.objects.filter(source=edge).count() == 1  # asked once
    ingest(edge, hole, backfill=True)  # the edge agent answers from its buffer
    run = fill_gaps(now=now + timedelta(seconds=60))
    assert (run.asked, run.waiting, run.points) == (0, 0, 0)
    assert not Gap.objects.filter(source=edge).exists()  # a real reading wins: the gap is gone
    assert patched(edge) == [] and not Fill.objects.exists()


def test_no_answer_within_the_wait_then_interpolation_within_the_span(edge):
    points = linear(at(), at(2), 100.0, 124.0)
    ingest(edge, [p for p in points if not at(0, 30) < p[0] < at(1, 0)])
    now = timezone.now()
    assert fill_gaps(now=now).asked == 1
    assert fill_gaps(now=now + timedelta(seconds=599)).points == 0  # GAP_REFETCH_WAIT_S = 600
    run = fill_gaps(now=now + timedelta(seconds=601))
    assert (run.linear, run.points) == (1, 5)
    fills = patched(edge)
    assert [(t, round(v, 9)) for t, v, _f, _e in fills] == [(t, round(v, 9)) for t, v in points
                                                            if at(0, 30) < t < at(1, 0)]
    gap = Gap.objects.get(source=edge)
    assert (gap.state, gap.method, gap.filled_points) == ("filled", "linear", 5)
    before = Reading.objects.get(source=edge, ts=at(0, 30))
    after = Reading.objects.get(source=edge, ts=at(1, 0))
    f = Fill.objects.order_by("ts").first()
    assert f.method == "linear" and f.gap == gap and f.ts == at(0, 35)
    assert f.basis["from"]["reading"] == before.pk and f.basis["from"]["value"] == 106.0
    assert datetime.fromisoformat(f.basis["from"]["ts"]) == before.ts == at(0, 30)
    assert f.basis["to"]["reading"] == after.pk and f.basis["to"]["value"] == 112.0
    assert Reading.objects.get(pk=f.reading_id).flags & Flag.PATCHED
    entry = AuditEntry.objects.get(action="gap.fill")
    assert entry.after["method"] == "linear" and entry.after["points"] == 5
    # idempotent: nothing filled twice, the gap not looked at again
    again = fill_gaps(now=now + timedelta(seconds=900), force=True)
    assert (again.linear, again.profile, again.points, again.asked) == (0, 0, 0, 0)
    assert len(patched(edge)) == 5 and Fill.objects.count() == 5
    find_gaps(full=True)
    assert list(Gap.objects.filter(source=edge).values_list("state", flat=True)) == ["filled"]


def load(h):
    """kWh per hour of a working day: 10 at night, 40 from 08:00 to 18:00."""
    return 40.0 if 8 <= h < 18 else 10.0


def register(start_value, start, end, factor=1.0):
    """A cumulative energy register every 5 minutes from ``start`` to ``end`` (a profile by the hour)."""
    out, v = [], start_value
    for t in every(start, end):
        out.append((t, round(v, 6)))
        v += load(t.hour) / 12 * factor
    return out


def test_a_long_gap_is_filled_by_the_previous_days_profile_and_the_register_reconciles(pusher):
    day1 = register(1000.0, at(), at(d=1))
    day2 = register(day1[-1][1], at(d=1), at(d=2), factor=1.1)  # the second day used 10 % more
    ingest(pusher, day1)
    gap_start, gap_end = at(6, 0, d=1), at(18, 0, d=1)  # 12 h: beyond the hour of interpolation
    ingest(pusher, [p for p in day2[1:] if not gap_start < p[0] < gap_end])
    run = fill_gaps()
    assert run.asked == 0 and (run.linear, run.profile) == (0, 1) and run.points == 143
    gap = Gap.objects.get(source=pusher)
    assert (gap.state, gap.method) == ("filled", "profile_day")
    rows = series(pusher)
    day = [(t, eff) for t, _raw, _f, eff in rows if at(d=1) <= t <= at(d=2)]
    va, vb = dict(day)[gap_start], dict(day)[gap_end]
    inside = [(t, v) for t, v in day if gap_start <= t <= gap_end]
    steps = [b[1] - a[1] for a, b in zip(inside, inside[1:], strict=False)]
    assert all(s >= 0 for s in steps)  # a register never runs backwards
    assert inside[-1][1] == vb and abs(sum(steps) - (vb - va)) < 1e-6  # ends exactly at the real reading
    # the shape is the day before's: its increments scaled by one factor (day 2 used 10 % more)
    ref = dict(day1)
    ref_steps = [ref[b[0] - timedelta(days=1)] - ref[a[0] - timedelta(days=1)]
                 for a, b in zip(inside, inside[1:], strict=False)]
    ratios = {round(s / r, 6) for s, r in zip(steps, ref_steps, strict=True)}
    assert ratios == {round((vb - va) / (ref[gap_end - timedelta(days=1)] - ref[gap_start - timedelta(days=1)]), 6)}
    # the day's consumption from the register reconciles to the kWh
    consumption = sum(b[1] - a[1] for a, b in zip(day, day[1:], strict=False))
    assert round(consumption, 3) == round(day2[-1][1] - day2[0][1], 3)
    f = Fill.objects.get(ts=gap_start + timedelta(hours=1))
    assert f.basis["profileLagS"] == 86400 and f.basis["scaling"] == "register"
    assert fill_gaps().points == 0 and Fill.objects.count() == 143  # nothing filled twice
    assert datetime.fromisoformat(f.basis["reference"]["ts"]) == gap_start + timedelta(hours=1) - timedelta(days=1)


def test_a_gap_of_days_takes_the_previous_weeks_profile_and_joins_both_neighbours(pusher):
    # an instantaneous value with a daily shape over nine days; a two-day hole in the last three
    def power(t):
        return 50.0 + (30.0 if 8 <= t.hour < 18 else 0.0) + t.minute / 10

    points = [(t, power(t)) for t in every(at(), at(d=10), 900)]
    hole_start, hole_end = at(12, 0, d=7), at(12, 0, d=9)
    pusher.expected_interval_s = 900  # a reading every 15 minutes
    pusher.save(update_fields=["expected_interval_s"])
    ingest(pusher, [(t, v + (5 if t >= hole_end else 0)) for t, v in points if not hole_start < t < hole_end])
    run = fill_gaps()
    assert run.profile == 1 and run.points == 191
    gap = Gap.objects.get(source=pusher, start=hole_start)
    assert gap.method == "profile_week"  # the day before lies in the hole itself
    fills = {t: v for t, v, _f, _e in patched(pusher)}
    # the week before's shape plus an offset running from 0 (start) to 5 (end): continuous with both neighbours
    for t, v in fills.items():
        frac = (t - hole_start) / (hole_end - hole_start)
        assert abs(v - (power(t - timedelta(days=7)) + 5 * frac)) < 1e-9
    assert Fill.objects.filter(gap=gap).first().basis["scaling"] == "offset"


@override_settings(GAP_PROFILE_MAX_S=86400)
def test_a_gap_beyond_every_method_stays_open(pusher):
    ingest(pusher, [(at(), 1.0), (at(d=2), 2.0)])  # two days, nothing before: no profile, too long to interpolate
    run = fill_gaps()
    assert (run.unfilled, run.points) == (1, 0)
    assert Gap.objects.get(source=pusher).state == "open"


def api_flags(api, source) -> dict:
    """{local time: (value, rawValue, flags)} as the readings API gives them."""
    page = api.get("/api/v1/readings", {"sourceId": source.source_id, "limit": 1000})
    assert page.status_code == 200
    body = page.json()
    rows = body["results"] if isinstance(body, dict) else body
    return {r["timestamp"][:19]: (r["value"], r["rawValue"], r["flags"]) for r in rows}


def test_a_real_reading_arriving_later_wins_over_a_fill(pusher, api):
    ingest(pusher, [(at(), 100.0), (at(0, 20), 104.0)])
    assert fill_gaps().points == 3
    fill = Fill.objects.get(ts=at(0, 10))
    assert fill.value == 102.0
    # the real reading for 00:10, late, in a batch with a new one: both accepted
    r = ingest(pusher, [(at(0, 10), 101.5), (at(0, 25), 105.0)], backfill=True)
    assert (r.accepted, r.duplicates) == (2, 0)
    row = {t: (raw, flags, eff) for t, raw, flags, eff in series(pusher)}
    assert row[at(0, 10)] == (102.0, Flag.PATCHED, 101.5)  # the fill kept as it was, the real value effective
    rev = Revision.objects.get(ts=at(0, 10))
    assert rev.flags == Flag.BACKFILL and rev.previous_value == 102.0
    assert rev.correction.kind == "late_reading" and rev.correction.state == "applied"
    fill.refresh_from_db()
    assert fill.superseded_at is not None
    assert AuditEntry.objects.filter(action="correction.late_reading").count() == 1
    # the API: the real value with the real reading's flags; the fill not replaced still patched
    seen = api_flags(api, pusher)
    assert seen["2026-11-02 00:10:00"] == (101.5, 102.0, ["backfill"])
    assert seen["2026-11-02 00:05:00"] == (101.0, 101.0, ["patched"])
    # one reading alone (the single-row path), then the same real reading again: the second is a duplicate
    one = ingest_readings([{"sourceId": pusher.source_id, "timestamp": at(0, 15).strftime(FMT), "value": 103.0}],
                          channel="test", actor="test")
    assert (one.accepted, one.duplicates) == (1, 0)
    again = ingest_readings([{"sourceId": pusher.source_id, "timestamp": at(0, 15).strftime(FMT), "value": 9.0}],
                            channel="test", actor="test")
    assert (again.accepted, again.duplicates) == (0, 1)
    row = {t: eff for t, _raw, _f, eff in series(pusher)}
    assert row[at(0, 15)] == 103.0 and row[at(0, 5)] == 101.0  # first real value kept; the untouched fill stays
    assert Revision.objects.count() == 2


def test_a_device_cannot_send_the_patched_flag(pusher, api, park):
    body = [{"sourceId": pusher.source_id, "timestamp": at(0, n).strftime(FMT), "value": 1.0, **extra}
            for n, extra in enumerate([{"flags": 16}, {"flag": "patched"}, {"patched": True},
                                       {"flags": ["patched"], "channel": "fill"}])]
    response = api.post("/api/v1/readings", body, format="json")
    assert response.status_code in (200, 400) and response.json()["accepted"] == 4
    assert set(Reading.objects.filter(source=pusher).values_list("flags", flat=True)) == {0}
    with pytest.raises(ValueError):  # only a trusted process (parks None) may ask
        ingest_readings([], channel="fill", actor="x", parks=[park.pk], patched=True)
    assert not Fill.objects.exists()


def test_a_minor_anomaly_is_repaired_as_a_revision_flagged_repaired(pusher, api):
    from apps.quality.postchecks import run_post_checks
    from apps.quality.services import save_rule

    save_rule(actor="test", name="outlier", kind="outlier", params={"window": 12, "k": 5, "robust": True},
              severity="flag")
    values = [100 + (k % 3) / 2 for k in range(20)]
    values[15] = 500.0  # one spike between healthy neighbours
    ingest(pusher, [(at(0, 5 * k), v) for k, v in enumerate(values)])
    assert run_post_checks().hits["outlier"] == 1
    run = fill_gaps()
    assert run.repaired == 1
    rev = Revision.objects.get()
    assert (rev.ts, rev.value, rev.previous_value, rev.flags) == (at(1, 15), 100.75, 500.0, Flag.REPAIRED)
    assert rev.correction.kind == "repair"
    entry = AuditEntry.objects.get(action="correction.repair")
    assert entry.after["values"][0]["method"] == "linear" and entry.after["values"][0]["was"] == 500.0
    assert Reading.objects.get(source=pusher, ts=at(1, 15)).value == 500.0  # the value as received stays
    assert fill_gaps().repaired == 0 and Revision.objects.count() == 1  # never twice
    assert api_flags(api, pusher)["2026-11-02 01:15:00"] == (100.75, 500.0, ["repaired"])  # not "corrected"
    from apps.quality import charts

    data = charts.source_chart(SystemPrincipal("test"), pusher, charts.ChartRange("x", at(), at(2)))
    assert data["series"][0]["kinds"] == {"raw": 19, "repaired": 1}


def test_another_parks_gap_looks_unknown_and_only_an_administrator_acts(park, other_park, pusher,
                                                                         django_user_model):
    ingest(pusher, [(at(), 1.0), (at(0, 30), 4.0)])
    find_gaps()
    gap = Gap.objects.get(source=pusher)
    stranger = django_user_model.objects.create_user("stranger", "s@example.invalid", "pw-123456789")
    set_membership(actor="test", user=stranger, park=other_park, role="admin")
    codes = []
    for gap_id in (gap.pk, 987654321, "abc", "1\x00", 2**80, None):
        with pytest.raises(CarbonParkError) as exc:
            fill_gap_now(actor=stranger, gap_id=gap_id)
        codes.append(exc.value.error.code)
    assert set(codes) == {"E3030"}
    viewer = django_user_model.objects.create_user("viewer", "v@example.invalid", "pw-123456789")
    set_membership(actor="test", user=viewer, park=park, role="viewer")
    with pytest.raises(AccessDenied):
        ignore_gap(actor=viewer, gap_id=gap.pk)
    admin = django_user_model.objects.create_user("admin", "a@example.invalid", "pw-123456789")
    set_membership(actor="test", user=admin, park=park, role="admin")
    run = fill_gap_now(actor=admin, gap_id=gap.pk)
    assert run.linear == 1 and len(patched(pusher)) == 5
    assert AuditEntry.objects.filter(action="gap.fill_now", actor_label="admin").exists()
    with pytest.raises(CarbonParkError) as exc:
        ignore_gap(actor=admin, gap_id=gap.pk)
    assert exc.value.error.code == "E3031"


def test_the_portal_actions_fill_and_ignore_for_the_parks_administrator(park, pusher, client, django_user_model):
    ingest(pusher, [(at(), 1.0), (at(0, 30), 4.0), (at(2), 5.0), (at(2, 30), 6.0)])
    find_gaps()
    gaps = list(Gap.objects.filter(source=pusher).order_by("start"))
    first, second = gaps[0], gaps[-1]
    admin = django_user_model.objects.create_user("admin", "a@example.invalid", "pw-123456789", is_staff=True)
    set_membership(actor="test", user=admin, park=park, role="admin")
    client.force_login(admin)
    r = client.post("/quality/gap/", {"action": "fill_now", "_selected_action": [first.pk]})
    assert r.status_code == 302
    r = client.post("/quality/gap/", {"action": "ignore", "_selected_action": [second.pk]})
    assert r.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, second.state) == ("filled", "ignored")
    assert AuditEntry.objects.filter(action="gap.ignore", actor_label="admin").exists()
    page = client.get("/quality/gap/")
    assert page.status_code == 200 and b"fill_now" in page.content
    viewer = django_user_model.objects.create_user("viewer", "v@example.invalid", "pw-123456789", is_staff=True)
    set_membership(actor="test", user=viewer, park=park, role="viewer")
    client.force_login(viewer)
    page = client.get("/quality/gap/")
    assert page.status_code == 200 and b"fill_now" not in page.content


def test_fills_draw_as_patched_on_the_source_chart(pusher):
    from apps.quality import charts

    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(hours=3)
    ingest(pusher, [(start, 10.0), (start + timedelta(minutes=30), 16.0)])
    fill_gaps()
    data = charts.source_chart(SystemPrincipal("test"), pusher, charts.chart_range("day", now))
    s = data["series"][0]
    assert s["kinds"] == {"raw": 2, "patched": 5} and s["gaps"] == []
    assert [p[2] for p in s["points"]] == ["raw"] + ["patched"] * 5 + ["raw"]


def test_the_command_and_the_beat(pusher):
    from carbonpark.celery import app

    ingest(pusher, [(at(), 1.0), (at(0, 30), 4.0)])
    out = StringIO()
    call_command("fill_gaps", "--now", stdout=out)
    assert "1 gap(s) interpolated" in out.getvalue() and "5 point(s) stored" in out.getvalue()
    assert app.conf.beat_schedule["fill-gaps"]["task"] == "apps.quality.tasks.fill_gaps"
