"""Checks after storage (R-9.2.2, apps/quality/postchecks.py): jumps, frozen runs and outliers found in stored
series, a healthy noisy series left alone, idempotent re-runs, late readings checked with their neighbours,
rules scoped to their park, source and item, hits alarmed and shown in the readings browser, another park's hits
out of sight, and post rules that would reject refused."""

import math
import random
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command

from apps.accounts.access import SystemPrincipal, restrict
from apps.accounts.services import set_membership
from apps.ingestion import rollups
from apps.ingestion.services import ingest_readings
from apps.quality.models import Alarm, PostHit
from apps.quality.postchecks import run_post_checks
from apps.quality.services import save_rule
from tests.conftest import add_source

T0 = datetime(2026, 11, 2, 0, 0)
FMT = "%Y-%m-%d %H:%M:%S"


def at(minutes):
    return T0 + timedelta(minutes=minutes)


def ingest(source, values, start=0, step=5):
    """Readings every ``step`` minutes from minute ``start``; ``values`` a list, or a dict minute -> value."""
    points = values.items() if isinstance(values, dict) else ((start + k * step, v) for k, v in enumerate(values))
    records = [{"sourceId": source.source_id, "timestamp": at(m).strftime(FMT), "value": v} for m, v in points]
    assert ingest_readings(records, channel="test", actor="test").accepted == len(records)
    rollups.refresh(budget=None)  # what the beat does every 10 s: it queues the stored ranges for the checks


def rule(kind, params, **scope):
    return save_rule(actor="test", name=f"{kind} {params}", kind=kind, params=params,
                     severity=scope.pop("severity", "flag"), **scope)


def hits(source, kind=None):
    """Minutes after T0 (park time, UTC+8) of the hits on ``source``."""
    qs = PostHit.objects.filter(source=source).order_by("ts")
    if kind:
        qs = qs.filter(kind=kind)
    return [round(((h.ts.replace(tzinfo=None) + timedelta(hours=8)) - T0).total_seconds() / 60) for h in qs]


def noisy(n, seed=1, base=100.0, sd=1.0):
    rnd = random.Random(seed)
    return [round(base + rnd.gauss(0, sd), 3) for _ in range(n)]


def test_spikes_are_found_and_a_noisy_series_is_not(park):
    spiky = add_source(park, "TP01-EM-0001", ["CS010201"])
    healthy = add_source(park, "TP01-EM-0002", ["CS010201"])
    rule("jump", {"absolute": 20})
    values = noisy(50)
    values[10] = 180.0  # a spike: up at minute 50, back down at 55
    values[30] = values[29] - 40  # a drop that stays: one jump, at minute 150
    values[31:] = [v - 40 for v in values[31:]]
    ingest(spiky, values)
    ingest(healthy, noisy(50, seed=2))
    run = run_post_checks()
    assert hits(spiky) == [50, 55, 150]
    assert hits(healthy) == []
    assert run.hits["jump"] == 3
    h = PostHit.objects.filter(source=spiky).order_by("ts").first()
    assert h.value == 180.0 and h.severity == "flag" and h.kind == "jump"
    assert h.reason["previous"] == values[9] and math.isclose(h.reason["change"], 180.0 - values[9])
    alarm = Alarm.objects.get(source=spiky, code="E3010")
    assert alarm.count == 3 and alarm.park == park and "3" in alarm.message_zh and alarm.severity == "flag"
    assert not Alarm.objects.filter(source=healthy).exists()


def test_relative_and_per_interval_jumps(park):
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])
    rule("jump", {"relative": 0.5}, source=meter)
    ingest(meter, {0: 100, 5: 140, 10: 220, 15: 0.0, 20: 0.0, 25: 5})  # +40 %: no; +57 %: yes; -100 %: yes;
    run_post_checks()  # from 0: no relative limit (nothing to compare with); 0 -> 5: the same
    assert hits(meter) == [10, 15]
    other = add_source(park, "TP01-EM-0002", ["CS010201"])
    PostHit.objects.all().delete()
    rule("jump", {"absolute": 10, "per_s": 300}, source=other)  # at most 10 per 5 minutes
    ingest(other, {0: 0, 5: 9, 65: 30, 70: 45})  # 9 / 5 min ok; 21 over an hour ok; 15 / 5 min too much
    run_post_checks()
    assert hits(other) == [70]
    assert hits(meter) == []  # the relative rule saw nothing new of meter


def test_frozen_runs_are_found_zero_runs_are_not(park):
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])
    rule("frozen", {"n": 4})
    values = noisy(40)
    values[5:10] = [77.5] * 5  # a run of 5: found (minutes 25-45)
    values[20:23] = [66.0] * 3  # a run of 3: short of 4
    values[30:38] = [0.0] * 8  # zeros: a meter at rest, not frozen
    ingest(meter, values)
    run_post_checks()
    assert hits(meter, "frozen") == [25, 30, 35, 40, 45]
    assert PostHit.objects.filter(source=meter).first().reason["n"] == 4
    assert Alarm.objects.get(source=meter, code="E3011").count == 5


def test_a_run_completed_by_a_later_batch_is_found_whole(park):
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])
    rule("frozen", {"n": 4})
    ingest(meter, [1.0, 2.0, 5.0, 5.0, 5.0])  # three of the same: not yet
    run_post_checks()
    assert hits(meter) == []
    ingest(meter, [5.0, 6.0], start=25)  # the fourth
    run_post_checks()
    assert hits(meter) == [10, 15, 20, 25]


def test_a_rerun_adds_nothing_and_alarms_nothing(park):
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])
    rule("jump", {"absolute": 20})
    rule("frozen", {"n": 3})
    ingest(meter, [10, 10, 10, 50, 11, 12])
    first = run_post_checks()
    assert first.hits == {"jump": 2, "frozen": 3, "outlier": 0}
    before = list(PostHit.objects.order_by("id").values())
    again = run_post_checks()  # the queue is empty
    assert again.series == 0 and sum(again.hits.values()) == 0
    full = run_post_checks(full=True)  # everything checked again
    assert full.full and full.series >= 1 and sum(full.hits.values()) == 0
    assert list(PostHit.objects.order_by("id").values()) == before
    assert Alarm.objects.get(source=meter, code="E3010").count == 2
    assert Alarm.objects.get(source=meter, code="E3011").count == 3


def test_a_late_reading_next_to_a_spike_is_checked_with_its_neighbours(park):
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])
    rule("jump", {"absolute": 20})
    ingest(meter, {0: 10, 5: 11, 10: 100, 15: 12, 20: 11})
    run_post_checks()
    assert hits(meter) == [10, 15]
    ingest(meter, {12: 99})  # late, between the spike and the reading after it: the jump is now 99 -> 12
    ingest(meter, {2: 60})  # late, between two quiet readings: 10 -> 60 -> 11, both sides jump
    run_post_checks()
    assert hits(meter) == [2, 5, 10, 15]  # 12 (99 after 100) is no jump; the logged hits stay


def test_rules_check_only_their_scope(park, other_park):
    mine = add_source(park, "TP01-EM-0001", ["CS010201"])
    other = add_source(park, "TP01-EM-0002", ["CS010201"])
    theirs = add_source(other_park, "TP02-EM-0001", ["CS010201"])
    rule("jump", {"absolute": 20}, source=mine)
    rule("frozen", {"n": 3}, park=other_park)
    spiky_and_frozen = [10, 50, 10, 10, 10, 10]
    for s in (mine, other, theirs):
        ingest(s, spiky_and_frozen)
    run_post_checks()
    assert hits(mine, "jump") == [5, 10] and hits(mine, "frozen") == []
    assert hits(other) == []
    assert hits(theirs, "frozen") == [10, 15, 20, 25] and hits(theirs, "jump") == []
    assert {h.park_id for h in PostHit.objects.filter(source=theirs)} == {other_park.pk}
    disabled = rule("outlier", {"window": 3, "k": 1})
    save_rule(actor="test", rule=disabled, enabled=False)
    run_post_checks(full=True)
    assert not PostHit.objects.filter(kind="outlier").exists()


def test_outliers_against_the_rolling_window(park):
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])
    healthy = add_source(park, "TP01-EM-0002", ["CS010201"])
    rule("outlier", {"window": 12, "k": 5})
    values = noisy(60)
    values[40] = 112.0  # 12 standard deviations off
    ingest(meter, values)
    ingest(healthy, noisy(60, seed=3))
    run_post_checks()
    assert hits(meter) == [200]
    assert hits(healthy) == []
    h = PostHit.objects.get(source=meter)
    assert h.reason["window"] == 12 and h.reason["z"] > 5
    assert Alarm.objects.get(source=meter, code="E3012").count == 1


def test_the_robust_outlier_sees_past_an_earlier_spike(park):
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])
    plain = rule("outlier", {"window": 12, "k": 5}, source=meter)
    robust = rule("outlier", {"window": 12, "k": 5, "robust": True}, source=meter)
    values = noisy(60)
    values[30] = 150.0  # a spike: both see it
    values[33] = 120.0  # 20 off, but the spike in the window inflates the standard deviation
    ingest(meter, values)
    run_post_checks()
    found = {r.pk: hits_of(r) for r in (plain, robust)}
    assert found[plain.pk] == [150]
    assert found[robust.pk] == [150, 165]
    h = PostHit.objects.get(rule=robust, ts__gt=PostHit.objects.get(rule=plain).ts)
    assert h.reason["robust"] is True and h.reason["z"] > 5 and abs(h.reason["median"] - 100) < 2
    assert Alarm.objects.get(source=meter, code="E3012").count == 3


def hits_of(r):
    return [round(((h.ts.replace(tzinfo=None) + timedelta(hours=8)) - T0).total_seconds() / 60)
            for h in PostHit.objects.filter(rule=r).order_by("ts")]


def test_another_parks_hits_are_invisible_through_the_seam(park, other_park, django_user_model):
    mine = add_source(park, "TP01-EM-0001", ["CS010201"])
    theirs = add_source(other_park, "TP02-EM-0001", ["CS010201"])
    rule("jump", {"absolute": 20})
    for s in (mine, theirs):
        ingest(s, [10, 50])
    run_post_checks()
    user = django_user_model.objects.create_user("viewer", "v@example.invalid", "pw-123456789")
    set_membership(actor="test", user=user, park=park, role="viewer")
    assert [h.source_id for h in restrict(PostHit.objects.all(), user, "view")] == [mine.pk]
    assert restrict(PostHit.objects.all(), SystemPrincipal("test"), "view").count() == 2


def test_the_readings_browser_shows_the_hit(client, park):
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])
    rule("jump", {"absolute": 20})
    ingest(meter, [10, 11, 90, 12])
    run_post_checks()
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.invalid", "pw-123456789"))
    page = client.get("/ingestion/reading/?flag=postcheck")  # the portal speaks Chinese by default
    assert page.status_code == 200
    shown = page.context["cl"].result_list
    assert sorted(r.value for r in shown) == [12.0, 90.0]
    assert page.content.decode().count("可疑（存储后检查）") == 1 + 2  # the flag filter's choice and two rows
    every = client.get("/ingestion/reading/")
    assert len(every.context["cl"].result_list) == 4
    assert every.content.decode().count("可疑（存储后检查）") == 1 + 2


def test_the_hits_list_says_what_each_check_saw_in_the_pages_language(client, park):
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])
    rule("jump", {"absolute": 20})
    rule("frozen", {"n": 3})
    ingest(meter, [10, 11, 90.123456789, 12, 12, 12])
    run_post_checks()
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.invalid", "pw-123456789"))
    zh = client.get("/quality/posthit/").content.decode()
    assert "较 2026-" in zh and "变化 79.1235" in zh and "连续 3 个相同读数" in zh
    assert "90.1235" in zh and "90.123456789" not in zh.split("title=")[0]  # six significant digits in the cells
    client.post("/i18n/setlang/", {"language": "en", "next": "/quality/posthit/"})
    en = client.get("/quality/posthit/").content.decode()
    assert "change 79.1235 from 11 at 2026-" in en and "3 identical readings" in en


@pytest.mark.parametrize("kind, params, message", [
    ("jump", {}, "absolute, relative"), ("jump", {"absolute": -1}, "greater than 0"),
    ("jump", {"absolute": 1, "limit": 2}, "unknown parameters"), ("frozen", {"n": 1}, "≥ 2"),
    ("frozen", {"n": "5"}, "whole number"), ("frozen", {"n": True}, "whole number"),
    ("outlier", {"window": 2, "k": 3}, "≥ 3"), ("outlier", {"window": 10}, "give k"),
    ("outlier", {"window": 10, "k": 3, "robust": "yes"}, "true or false"),
])
def test_bad_parameters_are_refused(park, kind, params, message):
    with pytest.raises(ValidationError, match=message):
        rule(kind, params)


def test_a_post_rule_cannot_reject(park, client):
    with pytest.raises(ValidationError) as exc:
        rule("jump", {"absolute": 5}, severity="reject")
    assert "severity" in exc.value.message_dict
    assert rule("jump", {"absolute": 5}, severity="warn").severity == "warn"
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.invalid", "pw-123456789"))
    r = client.post("/quality/rule/add/", {"name": "j", "kind": "jump", "params": '{"absolute": 5}',
                                           "severity": "reject", "enabled": "on"})
    assert r.status_code == 200 and "存储后检查不能拒收" in r.content.decode()


def test_the_command_runs_the_checks(park):
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])
    ingest(meter, [10, 50])
    rule("jump", {"absolute": 20})
    PostHit.objects.all().delete()
    out = StringIO()
    call_command("post_checks", "--full", stdout=out)
    assert "full scan" in out.getvalue() and "jump 1" in out.getvalue()
    assert hits(meter) == [5]


def test_the_beat_task_runs_the_checks(park):
    from apps.quality.tasks import post_checks
    from carbonpark.celery import app

    assert app.conf.beat_schedule["post-checks"]["task"] == "apps.quality.tasks.post_checks"
    meter = add_source(park, "TP01-EM-0001", ["CS010201"])
    rule("frozen", {"n": 3})
    ingest(meter, [7, 7, 7])
    result = post_checks()
    assert result["hits"]["frozen"] == 3 and not result["busy"] and result["series"] == 1
