"""GET /api/v1/readings: filters, cursor pagination, CSV, park scoping."""

import csv
import io

import pytest

from apps.ingestion.services import ingest_readings
from tests.conftest import add_source

URL = "/api/v1/readings"


@pytest.fixture
def history(meter, monitor):
    recs = [{"sourceId": "TP01-EM-0001", "timestamp": f"2026-11-23 10:{m:02d}:00", "value": float(m), "unit": "kWh",
             "backfill": m % 10 == 0} for m in range(0, 60, 5)]
    recs += [{"sourceId": "TP01-WW-0001", "dataCode": "CS030202", "timestamp": "2026-11-23 10:00:00", "value": 30}]
    recs += [{"sourceId": "TP01-EM-0001", "timestamp": "2026-11-23 11:00:00", "value": 2, "unit": "MWh"}]
    result = ingest_readings(recs, channel="test", actor="test")
    assert result.accepted == 14
    return recs


def test_filters_by_source_code_and_inclusive_range(api, history):
    r = api.get(URL, {"sourceId": "TP01-EM-0001", "dataCode": "CS010201", "start": "2026-11-23 10:10:00",
                      "end": "2026-11-23 10:20:00"})
    assert r.status_code == 200
    rows = r.json()["results"]
    assert [x["timestamp"] for x in rows] == ["2026-11-23 10:10:00.000", "2026-11-23 10:15:00.000",
                                              "2026-11-23 10:20:00.000"]
    assert rows[0] == {"sourceId": "TP01-EM-0001", "dataCode": "CS010201", "timestamp": "2026-11-23 10:10:00.000",
                       "value": 10.0, "rawValue": 10.0, "revision": None, "unit": "kWh", "status": "N",
                       "backfill": True, "flags": ["backfill"]}


def test_value_as_received_is_shown_beside_the_converted_value(api, history):
    rows = api.get(URL, {"start": "2026-11-23 11:00:00"}).json()["results"]
    assert rows == [{"sourceId": "TP01-EM-0001", "dataCode": "CS010201", "timestamp": "2026-11-23 11:00:00.000",
                     "value": 2000.0, "rawValue": 2000.0, "revision": None, "unit": "kWh", "status": "N",
                     "backfill": False, "flags": [],
                     "receivedValue": 2.0, "receivedUnit": "MWh"}]


def test_flag_filter(api, history):
    rows = api.get(URL, {"flag": "backfill"}).json()["results"]
    assert [x["value"] for x in rows] == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]


def test_cursor_pagination_walks_everything_once_both_ways(api, history):
    seen, url, pages = [], URL + "?limit=4", []
    while url:
        page = api.get(url).json()
        pages.append(page)
        seen += [(x["sourceId"], x["dataCode"], x["timestamp"]) for x in page["results"]]
        url = page["next"]
    assert len(seen) == 14 == len(set(seen))
    assert [len(p["results"]) for p in pages] == [4, 4, 4, 2]
    back = api.get(pages[-1]["previous"]).json()
    assert back["results"] == pages[-2]["results"]


def test_csv_export_has_the_batch_file_header(api, history):
    r = api.get(URL, {"format": "csv", "sourceId": "TP01-WW-0001"})
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert rows[0][:6] == ["sourceId", "dataCode", "timestamp", "value", "unit", "status"]
    assert rows[1][:6] == ["TP01-WW-0001", "CS030202", "2026-11-23 10:00:00.000", "30.0", "mg/L", "N"]
    assert len(rows) == 2


@pytest.mark.parametrize(("params", "param"), [({"start": "yesterday"}, "start"), ({"flag": "shiny"}, "flag"),
                                               ({"sourceId": "NOPE"}, "sourceId"), ({"limit": "0"}, "limit"),
                                               ({"cursor": "garbage"}, "cursor"), ({"dataCode": "XX"}, "dataCode")])
def test_bad_query_parameters(api, history, params, param):
    r = api.get(URL, params)
    assert r.status_code == 400
    assert r.json()["code"] == "E1009" and param in r.json()["message"]


def test_another_parks_readings_are_invisible(api, history, other_park):
    from rest_framework.test import APIClient

    from apps.accounts.services import issue_token

    add_source(other_park, "TP02-EM-0001", ["CS010201"])
    ingest_readings([{"sourceId": "TP02-EM-0001", "timestamp": "2026-11-23 10:00:00", "value": 1}],
                    channel="test", actor="test")
    assert api.get(URL, {"limit": 100}).json()["results"].__len__() == 14
    _t, key = issue_token(actor="t", park=other_park, name="other")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    rows = other.get(URL).json()["results"]
    assert [x["sourceId"] for x in rows] == ["TP02-EM-0001"]
    assert other.get(URL, {"sourceId": "TP01-EM-0001"}).status_code == 400


def test_rollups_by_hour_day_and_month(api, history):
    from apps.ingestion.rollups import refresh

    refresh()
    hours = api.get(URL, {"interval": "hour", "sourceId": "TP01-EM-0001"}).json()["results"]
    assert hours == [
        {"sourceId": "TP01-EM-0001", "dataCode": "CS010201", "start": "2026-11-23 10:00:00.000", "count": 12,
         "sum": 330.0, "min": 0.0, "max": 55.0, "last": 55.0, "lastTimestamp": "2026-11-23 10:55:00.000",
         "unit": "kWh"},
        {"sourceId": "TP01-EM-0001", "dataCode": "CS010201", "start": "2026-11-23 11:00:00.000", "count": 1,
         "sum": 2000.0, "min": 2000.0, "max": 2000.0, "last": 2000.0, "lastTimestamp": "2026-11-23 11:00:00.000",
         "unit": "kWh"}]
    days = api.get(URL, {"interval": "day"}).json()["results"]
    assert [(d["sourceId"], d["dataCode"], d["start"], d["count"]) for d in days] == [
        ("TP01-EM-0001", "CS010201", "2026-11-23 00:00:00.000", 13),
        ("TP01-WW-0001", "CS030202", "2026-11-23 00:00:00.000", 1)]
    months = api.get(URL, {"interval": "month", "dataCode": "CS030202"}).json()["results"]
    assert [(m["start"], m["sum"]) for m in months] == [("2026-11-01 00:00:00.000", 30.0)]
    # start and end bound the bucket's start; the cursor walks (bucket, id).
    late = api.get(URL, {"interval": "hour", "start": "2026-11-23 10:30:00"}).json()["results"]
    assert [h["start"] for h in late] == ["2026-11-23 11:00:00.000"]
    page = api.get(URL, {"interval": "hour", "limit": 1}).json()
    second = api.get(page["next"]).json()
    assert len(page["results"]) == len(second["results"]) == 1 and second["results"] != page["results"]
    r = api.get(URL, {"interval": "day", "format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert rows[0] == ["sourceId", "dataCode", "start", "count", "sum", "min", "max", "last", "lastTimestamp", "unit"]
    assert rows[1][:5] == ["TP01-EM-0001", "CS010201", "2026-11-23 00:00:00.000", "13", "2330.0"]
    assert r["Content-Disposition"] == 'attachment; filename="rollups-day.csv"'


@pytest.mark.parametrize(("params", "param"), [({"interval": "week"}, "interval"),
                                               ({"interval": "hour", "flag": "backfill"}, "flag"),
                                               ({"interval": "hour", "sourceId": "NOPE"}, "sourceId")])
def test_bad_rollup_parameters(api, history, params, param):
    r = api.get(URL, params)
    assert r.status_code == 400
    assert r.json()["code"] == "E1009" and param in r.json()["message"]


def test_another_parks_rollups_are_invisible(api, history, other_park):
    from apps.ingestion.rollups import refresh

    add_source(other_park, "TP02-EM-0001", ["CS010201"])
    ingest_readings([{"sourceId": "TP02-EM-0001", "timestamp": "2026-11-23 10:00:00", "value": 1}],
                    channel="test", actor="test")
    refresh()
    assert {x["sourceId"] for x in api.get(URL, {"interval": "month"}).json()["results"]} == {
        "TP01-EM-0001", "TP01-WW-0001"}
    other = api.get(URL, {"interval": "hour", "sourceId": "TP02-EM-0001"})
    unknown = api.get(URL, {"interval": "hour", "sourceId": "TP09-EM-0001"})
    assert other.status_code == unknown.status_code == 400
    assert other.json()["code"] == unknown.json()["code"] == "E1009"
    assert other.json()["message"].replace("TP02", "TP09") == unknown.json()["message"]
