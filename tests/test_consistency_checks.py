"""Consistency checks after storage (R-9.2.2, R-9.1.3; apps/quality/postchecks/consistency.py): a sub-meter drifting
from its main meter found and a balanced group left alone, a ratio out of bounds found (of a source and of a whole
park), a duplicated series found and two independent similar series not, intervals judged only once settled,
idempotent re-runs, scoping to parks, and the balance group's admin behind the access seam."""

import random
from datetime import datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from apps.accounts.access import restrict
from apps.accounts.services import set_membership
from apps.catalog.models import DataItem
from apps.ingestion.rollups import refresh
from apps.ingestion.services import ingest_readings
from apps.quality.models import Alarm, BalanceGroup, PostHit
from apps.quality.postchecks import run_post_checks
from apps.quality.services import save_balance_group, save_rule
from tests.conftest import add_source

T0 = datetime(2026, 11, 2, 0, 0)  # park time (Asia/Shanghai)
FMT = "%Y-%m-%d %H:%M:%S"
ENERGY, OUTPUT = "CS010201", "CS020101"


def ingest(source, values, start=0, step=5, code=None):
    """Readings every ``step`` minutes from minute ``start`` after T0."""
    records = [{"sourceId": source.source_id, "timestamp": (T0 + timedelta(minutes=start + k * step)).strftime(FMT),
                "value": v, **({"dataCode": code} if code else {})} for k, v in enumerate(values)]
    assert ingest_readings(records, channel="test", actor="test").accepted == len(records)


def check(**kw):
    refresh(budget=None)
    return run_post_checks(**kw)


def hours(source, kind):
    """Hours after T0 (park time) of the period hits of ``kind`` on ``source``."""
    return [round(((h.ts.replace(tzinfo=None) + timedelta(hours=8)) - T0).total_seconds() / 3600)
            for h in PostHit.objects.filter(source=source, kind=kind).order_by("ts")]


def item(code):
    return DataItem.objects.get(code=code)


def group(park, main, members, **kw):
    kw.setdefault("tolerance_pct", 5)
    return save_balance_group(actor="test", name=kw.pop("name", f"group {main.source_id}"), park=park,
                              main_source=main, main_item=item(ENERGY),
                              members=[(m, item(ENERGY)) for m in members], **kw)


def test_a_sub_meter_drifting_from_its_main_meter_is_found_a_balanced_group_is_not(park):
    main, a, b = (add_source(park, f"TP01-EM-000{i}", [ENERGY]) for i in (1, 2, 3))
    main2, c, d = (add_source(park, f"TP01-EM-001{i}", [ENERGY]) for i in (1, 2, 3))
    drifting = group(park, main, [a, b])
    balanced = group(park, main2, [c, d], tolerance_pct=None, tolerance_abs=0.5)
    ingest(main, [10.0] * 48)  # 4 hours, 120 per hour
    ingest(a, [6.0] * 24 + [5.0] * 24)  # the sub-meter drifts from hour 2: 108 against 120
    ingest(b, [4.0] * 48)
    ingest(main2, [10.0] * 48)
    ingest(c, [6.02] * 48)  # 0.24 off per hour: within 0.5
    ingest(d, [3.98] * 48)
    run = check()
    assert hours(main, "balance") == [2, 3]
    assert hours(main2, "balance") == [] and not PostHit.objects.filter(group=balanced).exists()
    assert run.hits["balance"] == 2
    h = PostHit.objects.filter(group=drifting).order_by("ts").first()
    assert h.value == 120 and h.rule_id is None and h.until - h.ts == timedelta(hours=1)
    assert h.reason["sum"] == 108 and h.reason["difference"] == 12 and h.reason["tolerance"] == 6
    alarm = Alarm.objects.get(source=main, code="E3013")
    assert alarm.count == 2 and "120" in alarm.message_zh and "108" in alarm.message_en
    assert not Alarm.objects.filter(source=main2).exists()


def test_daily_mean_groups_and_a_missing_sub_meter_is_not_an_imbalance(park):
    main, a, b = (add_source(park, f"TP01-EM-000{i}", [ENERGY]) for i in (1, 2, 3))
    group(park, main, [a, b], interval="d", aggregate="mean", tolerance_pct=1)
    ingest(main, [100.0] * 12)  # a power-like series: the mean of the day, 100
    ingest(a, [70.0] * 12)
    ingest(b, [20.0] * 12)  # 90 of 100
    other_main, c, d = (add_source(park, f"TP01-EM-001{i}", [ENERGY]) for i in (1, 2, 3))
    group(park, other_main, [c, d], interval="d")
    ingest(other_main, [100.0] * 12)
    ingest(c, [10.0] * 12)  # d sent nothing that day: not judged
    check()
    assert hours(main, "balance") == [0]  # the park-local day from 00:00, T0
    assert PostHit.objects.get(source=main).reason["sum"] == 90
    assert hours(other_main, "balance") == []


def test_an_interval_is_judged_only_once_settled(park):
    main, a = add_source(park, "TP01-EM-0001", [ENERGY]), add_source(park, "TP01-EM-0002", [ENERGY])
    group(park, main, [a])
    now = timezone.localtime()
    hour = now.replace(minute=0, second=0, microsecond=0)
    for s, v in ((main, 10.0), (a, 4.0)):
        ingest_readings([{"sourceId": s.source_id, "timestamp": (hour + timedelta(seconds=k)).strftime(FMT),
                          "value": v} for k in range(3)], channel="test", actor="test")
    check()  # the hour has not ended
    assert hours(main, "balance") == []
    check(settle=-7200)  # as if two hours later: the hour has ended and settled; judged though nothing was queued
    assert PostHit.objects.filter(source=main, kind="balance").count() == 1


def test_reruns_add_nothing_and_alarm_nothing(park):
    main, a = add_source(park, "TP01-EM-0001", [ENERGY]), add_source(park, "TP01-EM-0002", [ENERGY])
    x, y = add_source(park, "TP01-EM-0003", [ENERGY]), add_source(park, "TP01-EM-0004", [ENERGY])
    group(park, main, [a])
    save_rule(actor="test", name="dup", kind="duplicate", params={"min_points": 6}, severity="flag", park=park)
    ingest(main, [10.0] * 24)
    ingest(a, [5.0] * 24)
    series = [round(50 + random.Random(4).gauss(0, 3), 2) for _ in range(24)]
    ingest(x, series)
    ingest(y, series)
    first = check()
    assert first.hits["balance"] == 2 and first.hits["duplicate"] == 2
    before = list(PostHit.objects.order_by("id").values_list("id", "kind", "source_id", "ts"))
    again = check(full=True)
    assert again.hits["balance"] == 0 and again.hits["duplicate"] == 0
    assert list(PostHit.objects.order_by("id").values_list("id", "kind", "source_id", "ts")) == before
    assert Alarm.objects.get(source=main, code="E3013").count == 2
    assert Alarm.objects.get(source=x, code="E3015").count == 1


def test_a_ratio_out_of_bounds_is_found_for_a_source_and_for_a_park(park, other_park):
    plant = add_source(park, "TP01-PL-0001", [ENERGY, OUTPUT])
    save_rule(actor="test", name="kWh per t", kind="ratio", severity="warn", source=plant, park=park,
              params={"numerator": ENERGY, "denominator": OUTPUT, "min": 0.5, "max": 2, "interval": "day"})
    ingest(plant, [10.0] * 10, code=ENERGY)  # day 1: 100 kWh
    ingest(plant, [100.0], code=OUTPUT)  # for 100 t: 1.0
    ingest(plant, [50.0] * 10, start=1440, code=ENERGY)  # day 2: 500 kWh
    ingest(plant, [100.0], start=1440, code=OUTPUT)  # for 100 t: 5.0
    ingest(plant, [10.0] * 10, start=2880, code=ENERGY)  # day 3: no output, not judged
    meter, line = add_source(park, "TP01-EM-0001", [ENERGY]), add_source(park, "TP01-PL-0002", [OUTPUT])
    theirs = add_source(other_park, "TP02-EM-0001", [ENERGY, OUTPUT])
    save_rule(actor="test", name="park kWh per t", kind="ratio", severity="flag",
              params={"numerator": ENERGY, "denominator": OUTPUT, "max": 3, "interval": "month"})
    ingest(meter, [100.0] * 6)  # the park this month: 100 + 500 + 100 + 600 = 1300 kWh for 200 + 100 t
    ingest(line, [100.0])
    ingest(theirs, [1.0] * 3, code=ENERGY)  # the other park: 3 kWh for 1 t, within bounds
    ingest(theirs, [1.0], code=OUTPUT)
    run = check()
    source_hits = PostHit.objects.filter(kind="ratio", source=plant)
    assert [h.value for h in source_hits] == [5.0] and hours(plant, "ratio") == [24]  # day 2 from 00:00 park time
    park_hit = PostHit.objects.get(kind="ratio", source=None)
    assert park_hit.park == park and park_hit.reason["numerator"] == 1300 and park_hit.reason["denominator"] == 300
    assert run.hits["ratio"] == 2
    assert Alarm.objects.get(source=plant, code="E3014").severity == "warn"
    assert Alarm.objects.get(park=park, source=None, code="E3014").count == 1
    assert not Alarm.objects.filter(park=other_park).exists()


def test_a_duplicated_series_is_found_and_independent_similar_ones_are_not(park, other_park):
    rnd = random.Random(7)
    x, y, z = (add_source(park, f"TP01-EM-000{i}", [ENERGY]) for i in (1, 2, 3))
    q1, q2 = add_source(park, "TP01-EM-0004", [ENERGY]), add_source(park, "TP01-EM-0005", [ENERGY])
    idle1, idle2 = add_source(park, "TP01-EM-0006", [ENERGY]), add_source(park, "TP01-EM-0007", [ENERGY])
    theirs = add_source(other_park, "TP02-EM-0001", [ENERGY])
    save_rule(actor="test", name="dup", kind="duplicate", params={"min_points": 12, "epsilon": 0.001},
              severity="flag")
    series = [round(100 + rnd.gauss(0, 2), 3) for _ in range(48)]
    ingest(x, series)
    ingest(y, [v + 0.0005 for v in series])  # near-identical within epsilon: a duplicated device
    ingest(z, [round(100 + rnd.gauss(0, 2), 3) for _ in range(48)])  # similar, independent
    ingest(q1, [rnd.randint(1, 3) for _ in range(48)])  # quantized: many coincidences, not most
    ingest(q2, [rnd.randint(1, 3) for _ in range(48)])
    ingest(idle1, [0.0] * 48)  # two meters at rest agree: not a duplicate
    ingest(idle2, [0.0] * 48)
    ingest(theirs, series)  # the same values in another park: not this park's duplicate
    run = check()
    assert run.hits["duplicate"] == 2
    hx, hy = PostHit.objects.get(source=x, kind="duplicate"), PostHit.objects.get(source=y, kind="duplicate")
    assert hx.reason["other"] == y.source_id and hy.reason["other"] == x.source_id
    assert hx.reason["matched"] == 48 and hx.until - hx.ts == timedelta(days=1)
    for s in (z, q1, q2, idle1, idle2, theirs):
        assert not PostHit.objects.filter(source=s).exists(), s.source_id
    assert "TP01-EM-0002" in Alarm.objects.get(source=x, code="E3015").message_zh


def test_members_must_be_of_the_groups_park(park, other_park):
    main = add_source(park, "TP01-EM-0001", [ENERGY])
    theirs = add_source(other_park, "TP02-EM-0001", [ENERGY])
    mine = add_source(park, "TP01-EM-0002", [ENERGY])
    with pytest.raises(ValidationError, match="members.*其他园区"):
        group(park, main, [theirs])
    with pytest.raises(ValidationError, match="main_source.*其他园区"):
        save_balance_group(actor="test", name="g", park=other_park, main_source=main, main_item=item(ENERGY),
                           members=[(theirs, item(ENERGY))], tolerance_pct=5)
    with pytest.raises(ValidationError, match="tolerance_pct"):
        group(park, main, [mine], tolerance_pct=None)
    with pytest.raises(ValidationError, match="members"):
        group(park, main, [main])
    with pytest.raises(ValidationError, match="members.*TP01-EM-0002"):
        save_balance_group(actor="test", name="g", park=park, main_source=main, main_item=item(ENERGY),
                           members=[(mine, item(OUTPUT))], tolerance_pct=5)
    assert not BalanceGroup.objects.exists()


@pytest.mark.parametrize("kind, params, message", [
    ("ratio", {"numerator": ENERGY, "min": 1}, "denominator"),
    ("ratio", {"numerator": ENERGY, "denominator": "XX999999", "min": 1}, "no numeric data item"),
    ("ratio", {"numerator": ENERGY, "denominator": ENERGY, "max": 1}, "different"),
    ("ratio", {"numerator": ENERGY, "denominator": OUTPUT}, "min, max"),
    ("ratio", {"numerator": ENERGY, "denominator": OUTPUT, "min": 3, "max": 1}, "exceed"),
    ("ratio", {"numerator": ENERGY, "denominator": OUTPUT, "max": 1, "interval": "week"}, "hour, day or month"),
    ("ratio", {"numerator": "\x00", "denominator": OUTPUT, "max": 1}, "no numeric data item"),
    ("ratio", {"numerator": ENERGY, "denominator": OUTPUT, "max": "1"}, "must be a number"),
    ("duplicate", {}, "give min_points"), ("duplicate", {"min_points": 1}, "≥ 2"),
    ("duplicate", {"min_points": 5, "epsilon": -1}, "≥ 0"), ("duplicate", {"min_points": 5, "share": 2}, "at most 1"),
    ("duplicate", {"min_points": 10**12}, "at most"),
])
def test_bad_parameters_are_refused(park, kind, params, message):
    with pytest.raises(ValidationError, match=message):
        save_rule(actor="test", name="r", kind=kind, params=params, severity="flag")


@pytest.fixture
def park_admin(park):
    user = get_user_model().objects.create_user("pa", password="x-Unused-123")
    set_membership(actor="test", user=user, park=park, role="admin")
    client = Client()
    client.force_login(user)
    return client


def form(park, name, main, members, **extra):
    data = {"name": name, "park": park.pk, "main_source": main.pk, "main_item": item(ENERGY).pk, "interval": "h",
            "aggregate": "sum", "tolerance_pct": "5", "tolerance_abs": "", "severity": "flag", "enabled": "on",
            "members-TOTAL_FORMS": str(len(members)), "members-INITIAL_FORMS": "0", "members-MIN_NUM_FORMS": "0",
            "members-MAX_NUM_FORMS": "1000", **extra}
    for k, m in enumerate(members):
        data[f"members-{k}-source"] = m
        data[f"members-{k}-data_item"] = item(ENERGY).pk
    return data


def test_the_admin_page_saves_a_group_through_the_seam(park, other_park, park_admin):
    main, sub = add_source(park, "TP01-EM-0001", [ENERGY]), add_source(park, "TP01-EM-0002", [ENERGY])
    theirs = add_source(other_park, "TP02-EM-0001", [ENERGY])
    page = park_admin.get("/quality/balancegroup/add/")
    assert page.status_code == 200 and "TP02-EM-0001" not in page.content.decode()
    # another park's source as a sub-meter, and as the main meter, answer like an id that does not exist
    answers = []
    for bad in (theirs.pk, 10**9):
        r = park_admin.post("/quality/balancegroup/add/", form(park, "g", main, [bad]))
        r2 = park_admin.post("/quality/balancegroup/add/", {**form(park, "g", main, [sub.pk]), "main_source": bad})
        assert r.status_code == 200 and r2.status_code == 200
        answers.append((r.context["inline_admin_formsets"][0].formset.errors,
                        r2.context["adminform"].form.errors))
    assert answers[0] == answers[1]
    for hostile in ("\x00", "x" * 5000, "1e999", "-1"):
        r = park_admin.post("/quality/balancegroup/add/", form(park, "g", main, [sub.pk], tolerance_pct=hostile))
        assert r.status_code in (200, 302) and not BalanceGroup.objects.filter(tolerance_pct__lt=0).exists()
    BalanceGroup.objects.all().delete()
    r = park_admin.post("/quality/balancegroup/add/", form(park, "main vs subs", main, [sub.pk]))
    assert r.status_code == 302, r.content.decode()[:2000]
    g = BalanceGroup.objects.get(name="main vs subs")
    assert g.park == park and [(m.source_id, m.data_item.code) for m in g.members.all()] == [(sub.pk, ENERGY)]
    # the group's list and page of another park are out of sight
    save_balance_group(actor="test", name="theirs", park=other_park, main_source=theirs, main_item=item(ENERGY),
                       members=[(add_source(other_park, "TP02-EM-0002", [ENERGY]), item(ENERGY))], tolerance_pct=1)
    listing = park_admin.get("/quality/balancegroup/").content.decode()
    assert "main vs subs" in listing and "theirs" not in listing
    other = BalanceGroup.objects.get(name="theirs")
    assert park_admin.get(f"/quality/balancegroup/{other.pk}/change/").status_code == \
        park_admin.get("/quality/balancegroup/999999999/change/").status_code
    user = get_user_model().objects.get(username="pa")
    assert list(restrict(BalanceGroup.objects.all(), user, "view")) == [g]


def test_a_viewer_cannot_change_a_group(park):
    main, sub = add_source(park, "TP01-EM-0001", [ENERGY]), add_source(park, "TP01-EM-0002", [ENERGY])
    g = group(park, main, [sub])
    user = get_user_model().objects.create_user("v", password="x-Unused-123")
    set_membership(actor="test", user=user, park=park, role="viewer")
    client = Client()
    client.force_login(user)
    assert client.get(f"/quality/balancegroup/{g.pk}/change/").status_code == 200  # view only
    r = client.post(f"/quality/balancegroup/{g.pk}/change/", form(park, "renamed", main, [sub.pk]))
    assert r.status_code == 403
    assert BalanceGroup.objects.get(pk=g.pk).name == g.name


def test_period_hits_show_in_the_readings_browser_and_the_hits_list(client, park):
    main, a = add_source(park, "TP01-EM-0001", [ENERGY]), add_source(park, "TP01-EM-0002", [ENERGY])
    group(park, main, [a])
    ingest(main, [10.0] * 12)
    ingest(a, [5.0] * 12)
    check()
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.invalid", "pw-123456789"))
    page = client.get(f"/ingestion/reading/?flag=postcheck&source={main.source_id}")
    assert page.status_code == 200
    assert len(page.context["cl"].result_list) == 12  # every reading of the hour
    assert list(client.get(f"/ingestion/reading/?flag=postcheck&source={a.source_id}").context["cl"].result_list) == []
    hits = client.get("/quality/posthit/").content.decode()
    assert "总表 120" in hits and "分表合计 60" in hits
