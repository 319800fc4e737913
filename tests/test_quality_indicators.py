"""Quality indicators (R-9.1, R-9.1.1–R-9.1.4, apps/quality/indicators): every indicator exact on a hand-made
month (known gaps, a patched point, late readings, a manual source, a flagged reading and post-check hits), the
access seam on the API (another park's ids answer like unknown ones), the exports' contents, the command."""

import csv
import io
import zipfile
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from openpyxl import load_workbook
from rest_framework.test import APIClient

from apps.accounts.services import set_membership
from apps.catalog.models import DataItem
from apps.ingestion import rollups
from apps.ingestion.models import Flag
from apps.ingestion.services import ingest_readings
from apps.quality.gaps import find_gaps
from apps.quality.indicators import compute, selectors
from apps.quality.models import Gap, IndicatorMonth
from apps.quality.postchecks import run_post_checks
from apps.quality.services import save_rule
from apps.sources.accuracy import meets, required_class
from tests.conftest import add_source

SH = ZoneInfo("Asia/Shanghai")
NOV = date(2026, 11, 1)
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=SH)
FMT = "%Y-%m-%d %H:%M:%S"


def local(d, h=0, m=0, month=11):
    return datetime(2026, month, d, h, m, tzinfo=SH)


def put(source, ts, value, received):
    """One reading collected at ``ts`` and received at ``received`` (its own batch: the receipt time is the
    batch's)."""
    r = ingest_readings([{"sourceId": source.source_id, "timestamp": ts.astimezone(SH).strftime(FMT),
                          "value": value}], channel="test", actor="test", now=received)
    assert r.accepted == 1


def put_patched(source, ts, value):
    """A fill as the gap filler stores it (flagged patched): ingest_readings takes no flags from a record yet,
    so it is written here as the one writer would, with its rollups queued."""
    item = source.data_items.get()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT set_config('carbonpark.writer', 'ingest_readings', true)")
        cur.execute("INSERT INTO ingestion_ingestbatch (received_at, channel, actor_label, park_id, total, accepted,"
                    " duplicates, rejected, flagged, warned) VALUES (%s, 'fill', 'filler', %s, 1, 1, 0, 0, 0, 0) "
                    "RETURNING id", [NOW, source.park_id])
        batch = cur.fetchone()[0]
        cur.execute("INSERT INTO ingestion_reading (park_id, source_id, data_item_id, ts, value, received_unit, "
                    "status, flags, channel, batch_id, received_at) VALUES (%s, %s, %s, %s, %s, '', 'N', %s, "
                    "'fill', %s, %s)", [source.park_id, source.pk, item.pk, ts, value, Flag.PATCHED, batch, NOW])
        cur.execute("INSERT INTO ingestion_rollup_dirty (park_id, source_id, data_item_id, lo, hi) "
                    "VALUES (%s, %s, %s, %s, %s)", [source.park_id, source.pk, item.pk, ts, ts])


@pytest.fixture
def month(park, other_park):
    """November 2026 of park TP01 (Asia/Shanghai), by hand:

    A, a daily real-time meter (GB 17167 class II point, class 0.5 where 0.5S is required): a reading every day
    at 00:00 except on the 10th and 11th (one gap, 2 days uncovered), the 10th patched afterwards; three
    readings received 10 minutes after collection (late), the others after 1; the 20th is 6 000 (flagged
    suspect by a range rule at ingest, and a jump up and back down after storage: hits on the 20th and 21st).
    B, a manual daily source: readings of Friday the 6th (received Monday the 9th: on time), Monday the 9th
    (received Wednesday the 11th: late) and Monday the 30th (received 1 December 18:00: on time).
    C, a 5-minute real-time meter (class III point, class 0.5S: meets 1.0): two readings on the 29th, then
    silence to the month's end (a gap not listed yet: no reading after it).
    X, another park's meter with a month of its own."""
    a = add_source(park, "TP01-EM-0001", ["CS010201"], expected_interval_s=86400, instrument_type="electricity_ii",
                   accuracy_class="0.5")
    b = add_source(park, "TP01-MN-0001", ["CS010201"], expected_interval_s=86400, collection_method="manual")
    c = add_source(park, "TP01-EM-0002", ["CS010201"], instrument_type="electricity_iii", accuracy_class="0.5S")
    x = add_source(other_park, "TP02-EM-0001", ["CS010201"], expected_interval_s=86400)
    item = DataItem.objects.get(code="CS010201")
    save_rule(actor="test", name="range", kind="range", params={"max": 5000}, severity="flag", source=a,
              data_item=item)
    save_rule(actor="test", name="jump", kind="jump", params={"absolute": 1000}, severity="flag", source=a,
              data_item=item)
    for d in range(1, 31):
        if d in (10, 11):
            continue
        late = d in (3, 15, 27)
        put(a, local(d), 6000.0 if d == 20 else 100.0, local(d, 0, 10 if late else 1))
        put(x, local(d), 1.0, local(d, 0, 1))
    put(b, local(6), 5.0, local(9, 10))
    put(b, local(9), 5.0, local(11, 9))
    put(b, local(30), 5.0, local(1, 18, month=12))
    put(c, local(29), 1.0, local(29, 0, 1))
    put(c, local(29, 0, 5), 1.0, local(29, 0, 6))
    rollups.refresh(budget=None)  # queues what was stored for the checks, as the beat does every 10 s
    find_gaps(full=True)
    run_post_checks()
    put_patched(a, local(10), 100.0)
    with connection.cursor() as cur:  # the fill is not a new hole or a new value to check
        cur.execute("DELETE FROM quality_gap_dirty; DELETE FROM quality_postcheck_dirty")
    rollups.refresh(budget=None)
    Gap.objects.filter(source=a).update(state=Gap.State.FILLED)
    return {"a": a, "b": b, "c": c, "x": x}


def row(source):
    return IndicatorMonth.objects.get(source=source, month=NOV)


def test_every_indicator_is_exact_on_a_hand_made_month(month, park):
    runs = compute.refresh(months=[NOV], now=NOW)
    assert [r.rows for r in runs] == [4]
    a, b, c = row(month["a"]), row(month["b"]), row(month["c"])
    # completeness: 30 days expected from the 1st (its first reading), 29 present (28 read + 1 patched)
    assert (a.expected, a.present, a.readings, a.patched) == (30, 29, 29, 1)
    # continuity: the gap 9th → 12th leaves the 10th and 11th uncovered (2 of 30 days)
    assert (a.period_s, a.gap_s, a.gaps) == (30 * 86400, 2 * 86400, 1)
    # timeliness: 28 collected readings judged (the fill is not), 3 late
    assert a.timely == 25
    # consistency: the 20th flagged at ingest and hit, the 21st hit
    assert (a.flagged, a.hit, a.inconsistent) == (1, 2, 2)
    assert (a.required_class, a.accuracy_class, a.accuracy_ok, a.automatic) == ("0.5S", "0.5", False, True)
    # the manual source: judged from its first reading (the 6th) to the month's end, by the working day
    assert (b.expected, b.present, b.readings, b.timely, b.gap_s, b.gaps) == (25, 3, 3, 2, 0, 0)
    assert (b.automatic, b.accuracy_ok, b.required_class) == (False, None, "")
    # C: from its first reading (29th 00:00) to 1 December, every 5 minutes; silent after 00:05
    assert (c.expected, c.present, c.timely, c.gaps) == (2 * 288, 2, 2, 1)
    assert c.gap_s == 2 * 86400 - 600 and c.accuracy_ok is True and c.required_class == "1.0"

    s = selectors.summarize(IndicatorMonth.objects.filter(park=park, month=NOV))
    assert s["completeness"] == pytest.approx((29 + 3 + 2) / (30 + 25 + 576))
    assert s["continuity"] == pytest.approx(1 - (2 * 86400 + 2 * 86400 - 600) / (30 * 86400 + 2 * 86400))
    assert s["fillRate"] == pytest.approx(1 / 34)
    assert s["timeliness"] == pytest.approx((25 + 2 + 2) / (28 + 3 + 2))
    assert s["consistency"] == pytest.approx(1 - 2 / 34)
    assert s["automaticShare"] == pytest.approx(31 / 34)
    assert (s["accuracyMet"], s["accuracyJudged"], s["accuracyUnknown"]) == (1, 2, 1)
    assert s["accuracy"] == pytest.approx(0.5)

    # a re-run changes nothing; a reading that arrives late is counted by the next run
    compute.refresh(months=[NOV], now=NOW)
    assert IndicatorMonth.objects.filter(month=NOV).count() == 4 and row(month["a"]).timely == 25
    put(month["b"], local(20), 5.0, NOW)
    rollups.refresh(budget=None)
    compute.refresh(months=[NOV], now=NOW)
    assert (row(month["b"]).present, row(month["b"]).timely) == (4, 2)


def test_the_accuracy_table_follows_gb_17167():
    assert required_class("electricity_ii") == "0.5S" and required_class("water_large") == "1.5"
    assert required_class("") == "" and required_class("nonsense") == ""
    assert meets("0.2S", "0.5S") is True and meets("0.5S", "0.5S") is True
    assert meets("0.2", "0.5S") is False and meets("1.0", "0.5S") is False
    assert meets("0.5S", "1.0") is True and meets("2.5", "2.0") is False
    assert meets("", "0.5S") is None and meets("=1+1", "1.0") is None


def test_the_command_refreshes_a_month_and_refuses_a_bad_one(month):
    out = io.StringIO()
    call_command("quality_indicators", "--month", "2026-11", stdout=out)
    assert "2026-11" in out.getvalue() and IndicatorMonth.objects.filter(month=NOV).count() == 4
    call_command("quality_indicators", "--full", stdout=out)
    assert IndicatorMonth.objects.filter(month=NOV).count() == 4
    from django.core.management import CommandError
    for bad in ("2026-13", "11/2026", "2026-11\x00"):
        with pytest.raises(CommandError):
            call_command("quality_indicators", "--month", bad)


@pytest.fixture
def clients(park, other_park):
    from django.contrib.auth.models import User
    u = User.objects.create_user("viewer-tp01", password="x")
    set_membership(actor="test", user=u, park=park, role="viewer")
    c = APIClient()
    c.force_authenticate(u)
    return c


def get(client, **params):
    return client.get("/api/v1/quality/indicators", params)


def test_the_api_serves_the_month_through_the_access_seam(month, clients, park, other_park):
    compute.refresh(months=[NOV], now=NOW)
    r = get(clients, month="2026-11")
    assert r.status_code == 200, r.content
    body = r.json()
    assert {x["sourceId"] for x in body["results"]} == {"TP01-EM-0001", "TP01-MN-0001", "TP01-EM-0002"}
    a = next(x for x in body["results"] if x["sourceId"] == "TP01-EM-0001")
    assert a["month"] == "2026-11" and a["dataCode"] == "CS010201" and a["park"] == "TP01"
    assert (a["expected"], a["present"], a["patched"], a["timely"], a["hits"]) == (30, 29, 1, 25, 2)
    assert a["completeness"] == pytest.approx(29 / 30) and a["timeliness"] == pytest.approx(25 / 28)
    assert a["accuracyOk"] is False and a["requiredClass"] == "0.5S"
    assert body["summary"]["automaticShare"] == pytest.approx(31 / 34)
    one = get(clients, month="2026-11", source="TP01-MN-0001").json()
    assert [x["sourceId"] for x in one["results"]] == ["TP01-MN-0001"]
    assert get(clients, month="2026-11", park="TP01", code="CS010201").json()["summary"]["rows"] == 3
    # another park's code or source answers exactly like an unknown one
    theirs, unknown = get(clients, month="2026-11", park="TP02"), get(clients, month="2026-11", park="NOPE")
    assert theirs.status_code == unknown.status_code == 400
    assert theirs.json()["code"] == unknown.json()["code"] == "E1009"
    theirs, unknown = (get(clients, month="2026-11", source="TP02-EM-0001"),
                       get(clients, month="2026-11", source="TP99-EM-0001"))
    assert theirs.status_code == unknown.status_code == 400 and theirs.json()["code"] == unknown.json()["code"]
    # hostile input: a 400 with a code, never a 500
    for params in ({"month": "2026-13"}, {"month": "x" * 5000}, {"month": "2026-11\x00"}, {"park": "\x00"},
                   {"source": "a" * 300}, {"code": "CS\x00"}):
        r = get(clients, **params)
        assert r.status_code == 400 and r.json()["code"] == "E1009", params
    assert APIClient().get("/api/v1/quality/indicators").status_code in (401, 403)


def test_the_exports_hold_the_rows_with_formulas_neutralised(month, park, other_park):
    from django.contrib.auth.models import User

    from apps.entry import exports
    month["a"].name = "=HYPERLINK(\"x\")"
    month["a"].save()
    compute.refresh(months=[NOV], now=NOW)
    u = User.objects.create_user("exporter", password="x")
    set_membership(actor="test", user=u, park=park, role="viewer")
    set_membership(actor="test", user=u, park=park, role="admin")
    result = exports.export(u, "indicators", "csv", {"month": "2026-11"})
    with zipfile.ZipFile(result.file) as z:
        name = next(n for n in z.namelist() if n.endswith(".csv"))
        rows = list(csv.DictReader(io.StringIO(z.read(name).decode("utf-8-sig"))))
    assert {r["sourceId"] for r in rows} == {"TP01-EM-0001", "TP01-MN-0001", "TP01-EM-0002"}
    a = next(r for r in rows if r["sourceId"] == "TP01-EM-0001")
    assert a["sourceName"] == "'=HYPERLINK(\"x\")" and a["expected"] == "30" and a["present"] == "29"
    assert float(a["timeliness"]) == pytest.approx(25 / 28) and a["accuracyOk"] == "false"
    result = exports.export(u, "indicators", "xlsx", {"month": "2026-11", "park": "TP01"})
    with zipfile.ZipFile(result.file) as z:
        name = next(n for n in z.namelist() if n.endswith(".xlsx"))
        ws = load_workbook(io.BytesIO(z.read(name))).active
        table = list(ws.values)
    header = list(table[0])
    got = {r[header.index("sourceId")]: r for r in table[1:]}
    assert set(got) == {"TP01-EM-0001", "TP01-MN-0001", "TP01-EM-0002"}
    assert got["TP01-EM-0001"][header.index("sourceName")] == "'=HYPERLINK(\"x\")"
    assert got["TP01-EM-0001"][header.index("present")] == 29
    from apps.core.errors import CarbonParkError
    with pytest.raises(CarbonParkError) as e:
        exports.export(u, "indicators", "csv", {"park": "TP02"})
    assert e.value.error.code == "E1009"


def test_the_beat_task_refreshes_this_month_and_the_last(month):
    from django.utils import timezone

    from apps.quality.tasks import quality_indicators
    current = compute.month_start(timezone.localtime())
    out = quality_indicators.apply().get()
    assert [r["month"] for r in out] == [compute.previous_month(current).isoformat(), current.isoformat()]


def test_the_dashboard_page_shows_only_the_users_parks(month, park, other_park, client):
    from django.contrib.auth.models import User
    compute.refresh(months=[NOV], now=NOW)
    u = User.objects.create_user("viewer-page", password="x", is_staff=True)
    set_membership(actor="test", user=u, park=park, role="viewer")
    client.force_login(u)
    r = client.get("/quality/dashboard/", {"month": "2026-11"})
    assert r.status_code == 200
    html = r.content.decode()
    assert "TP01-EM-0001" in html and "TP02-EM-0001" not in html and 'id="qd-data"' in html
    assert r.context["summary"]["present"] == 34 and [p.code for p in r.context["parks"]] == ["TP01"]
    assert r.context["links"]["csv"] is None  # a viewer may not export
    assert "<script>" not in html.split('id="qd-data"')[0].split("</head>")[-1]  # no inline script in the body
    theirs = client.get("/quality/dashboard/", {"park": "TP02"})
    unknown = client.get("/quality/dashboard/", {"park": "NOPE"})
    assert theirs.status_code == unknown.status_code == 404
    for bad in ({"month": "2026-13"}, {"month": "\x00"}, {"park": "\x00"}, {"park": "x" * 500}):
        assert client.get("/quality/dashboard/", bad).status_code in (200, 400, 404), bad
    assert client.get("/quality/dashboard/export/", {"park": "TP01", "month": "2026-11"}).status_code == 404
    set_membership(actor="test", user=u, park=park, role="admin")
    r = client.get("/quality/dashboard/", {"month": "2026-11"})
    assert r.context["links"]["csv"]
    r = client.get(r.context["links"]["csv"])
    assert r.status_code == 200 and r["Content-Type"] == "application/zip"
    assert client.get("/quality/dashboard/export/", {"park": "TP02", "month": "2026-11"}).status_code == 404
    client.logout()
    assert client.get("/quality/dashboard/").status_code == 302


def test_the_api_answers_match_the_openapi_schema(month, clients, client):
    from tests.test_api_contract import _nullable_to_jsonschema, assert_matches

    compute.refresh(months=[NOV], now=NOW)
    doc = _nullable_to_jsonschema(client.get("/api/schema/", HTTP_ACCEPT="application/json").json())
    path = "/api/v1/quality/indicators"
    assert doc["paths"][path]["get"]["operationId"] == "quality_indicators_list"
    body = assert_matches(doc, path, "get", get(clients, month="2026-11", page_size=2))
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"] and body["summary"]["rows"] == 3
    assert assert_matches(doc, path, "get", get(clients, park="TP02"))["code"] == "E1009"


def test_the_dashboard_reads_in_a_constant_number_of_queries(month, park, client):
    from django.contrib.auth.models import User
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    u = User.objects.create_user("admin-page", password="x", is_staff=True)
    set_membership(actor="test", user=u, park=park, role="admin")
    client.force_login(u)
    compute.refresh(months=[NOV], now=NOW)
    client.get("/quality/dashboard/", {"month": "2026-11"})  # warm: sessions, the membership cache
    with CaptureQueriesContext(conn) as few:
        assert client.get("/quality/dashboard/", {"month": "2026-11"}).status_code == 200
    for i in range(6):
        s = add_source(park, f"TP01-EM-01{i:02d}", ["CS010201"], expected_interval_s=86400)
        put(s, local(2 + i), 1.0, local(2 + i, 0, 1))
    rollups.refresh(budget=None)
    compute.refresh(months=[NOV], now=NOW)
    with CaptureQueriesContext(conn) as many:
        r = client.get("/quality/dashboard/", {"month": "2026-11"})
    assert r.status_code == 200 and len(r.context["per_source"]) == 9
    assert len(many.captured_queries) == len(few.captured_queries), [q["sql"][:120] for q in many.captured_queries]
