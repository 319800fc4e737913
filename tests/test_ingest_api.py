"""POST /api/v1/readings: the answer shape, normalisation, and every kind of bad input of issue #2."""

import json
from datetime import UTC, datetime

import pytest

from apps.ingestion.models import Flag, IngestBatch, Reading, Rejection, ValidationEvent
from apps.quality.models import Alarm

URL = "/api/v1/readings"


def rec(**kw):
    base = {"sourceId": "TP01-EM-0001", "dataCode": "CS010201", "timestamp": "2026-11-23 10:05:00.000",
            "value": 1234.5, "unit": "kWh", "status": "N"}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not ...}


def post(api, body, **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return api.post(URL, data=data, content_type="application/json", **headers)


def test_one_record_is_stored_in_utc_with_milliseconds(api, meter):
    r = post(api, rec(timestamp="2026-11-23 10:05:00.123"))
    assert r.status_code == 200, r.content
    assert r.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    reading = Reading.objects.get()
    assert reading.ts == datetime(2026, 11, 23, 2, 5, 0, 123000, tzinfo=UTC)
    assert reading.value == 1234.5 and reading.status == "N" and reading.flags == 0
    assert reading.channel == "http"


def test_iso_timestamp_with_offset_and_microseconds_truncated_to_ms(api, meter):
    r = post(api, rec(timestamp="2026-11-23T02:05:00.123999Z"))
    assert r.status_code == 200
    assert Reading.objects.get().ts == datetime(2026, 11, 23, 2, 5, 0, 123000, tzinfo=UTC)


def test_unit_converted_and_value_as_received_kept(api, meter):
    r = post(api, rec(value=1.5, unit="MWh"))
    assert r.status_code == 200
    reading = Reading.objects.get()
    assert reading.value == 1500.0
    assert reading.received_value == 1.5 and reading.received_unit == "MWh"


def test_data_code_may_be_omitted_when_the_source_has_one(api, meter):
    r = post(api, [rec(dataCode=...)])
    assert r.json()["accepted"] == 1


def test_data_code_needed_when_the_source_has_several(api, monitor):
    r = post(api, [rec(sourceId="TP01-WW-0001", dataCode=..., unit="m3")])
    assert r.status_code == 400
    assert r.json()["rejected"][0]["code"] == "E2006"


def test_backfill_flag_is_kept(api, meter):
    post(api, rec(backfill=True))
    assert Reading.objects.get().flags & Flag.BACKFILL


def test_mixed_batch_keeps_valid_records_and_lists_rejected_by_index(api, meter):
    body = [rec(timestamp="2026-11-23 10:00:00"), rec(timestamp="23/11/2026 10:05"),
            rec(timestamp="2026-11-23 10:10:00")]
    r = post(api, body)
    assert r.status_code == 400
    data = r.json()
    assert data["accepted"] == 2
    assert data["rejected"] == [{"index": 1, "code": "E2007", "field": "timestamp",
                                 "message": data["rejected"][0]["message"]}]
    assert "YYYY-MM-DD HH:MM:SS" in data["rejected"][0]["message"]
    assert Reading.objects.count() == 2
    rejection = Rejection.objects.get()
    assert rejection.code == "E2007" and rejection.index == 1
    assert json.loads(rejection.raw)["timestamp"] == "23/11/2026 10:05"
    assert rejection.message_zh and rejection.message_en


@pytest.mark.parametrize(
    ("record", "code", "field"),
    [
        (rec(value="12.5"), "E2002", "value"),
        (rec(value=True), "E2002", "value"),
        (rec(value=None), "E2001", "value"),
        (rec(value=...), "E2001", "value"),
        (rec(sourceId=...), "E2001", "sourceId"),
        (rec(timestamp=...), "E2001", "timestamp"),
        (rec(sourceId="NOPE-0001"), "E2003", "sourceId"),
        (rec(sourceId="bad id with spaces"), "E2011", "sourceId"),
        (rec(sourceId=42), "E2011", "sourceId"),
        (rec(dataCode="CS999999"), "E2004", "dataCode"),
        (rec(dataCode="CS010301", unit="GJ"), "E2005", "dataCode"),
        (rec(dataCode=17), "E2002", "dataCode"),
        (rec(unit="kg"), "E2009", "unit"),
        (rec(unit="furlongs"), "E2009", "unit"),
        (rec(timestamp="2026-11-23T10:05:00"), "E2007", "timestamp"),
        (rec(timestamp="2026-13-40 10:05:00"), "E2007", "timestamp"),
        (rec(timestamp="2026-11-23 10:05"), "E2007", "timestamp"),
        (rec(timestamp=1764000000), "E2007", "timestamp"),
        (rec(status="X"), "E2010", "status"),
        (rec(backfill="yes"), "E2015", "backfill"),
        (rec(value=-5), "E3001", ""),
        (rec(timestamp="2099-01-01 00:00:00"), "E3006", ""),
        ("just a string", "E2013", ""),
    ],
)
def test_bad_record_gets_its_code_and_the_good_neighbour_is_kept(api, meter, record, code, field):
    good = rec(timestamp="2026-11-23 09:00:00")
    r = post(api, [good, record])
    assert r.status_code == 400, r.content
    data = r.json()
    assert data["accepted"] == 1
    assert [x["code"] for x in data["rejected"]] == [code]
    assert data["rejected"][0]["index"] == 1
    assert data["rejected"][0].get("field", "") == field
    assert Reading.objects.count() == 1
    assert Rejection.objects.get().code == code


def test_nan_and_infinity_rejected_per_record(api, meter):
    body = ('[{"sourceId":"TP01-EM-0001","timestamp":"2026-11-23 10:00:00","value":NaN},'
            '{"sourceId":"TP01-EM-0001","timestamp":"2026-11-23 10:05:00","value":Infinity},'
            '{"sourceId":"TP01-EM-0001","timestamp":"2026-11-23 10:10:00","value":-Infinity},'
            '{"sourceId":"TP01-EM-0001","timestamp":"2026-11-23 10:15:00","value":7}]')
    r = post(api, body)
    assert r.status_code == 400
    data = r.json()
    assert data["accepted"] == 1
    assert [x["code"] for x in data["rejected"]] == ["E2008", "E2008", "E2008"]
    assert Reading.objects.get().value == 7.0
    assert "NaN" in Rejection.objects.order_by("index").first().raw


def test_malformed_json_is_refused_whole(api, meter):
    r = post(api, b'[{"sourceId": "TP01-EM-0001", "value": 1,]')
    assert r.status_code == 400
    assert r.json()["code"] == "E1001"
    assert Reading.objects.count() == 0


def test_body_that_is_neither_record_nor_array(api, meter):
    r = post(api, b'"hello"')
    assert r.status_code == 400 and r.json()["code"] == "E1002"


def test_more_than_10000_records_refused(api, meter):
    body = [rec(timestamp=f"2026-11-23 10:{i // 60 % 60:02d}:{i % 60:02d}") for i in range(10_001)]
    r = post(api, body)
    assert r.status_code == 400
    assert r.json()["code"] == "E1003"
    assert "10000" in r.json()["message"]
    assert Reading.objects.count() == 0


def test_exactly_10000_records_accepted(api, meter):
    body = [rec(timestamp=f"2026-11-{1 + i // 1440:02d} {i // 60 % 24:02d}:{i % 60:02d}:00") for i in range(10_000)]
    r = post(api, body)
    assert r.status_code == 200, r.json()["rejected"][:3]
    assert r.json()["accepted"] == 10_000


def test_50_mb_body_refused_before_reading(api, meter):
    body = b"[" + b" " * (50 * 1024 * 1024) + b"]"
    r = post(api, body)
    assert r.status_code == 413
    assert r.json()["code"] == "E1004"


def test_wrong_content_type(api, meter):
    r = api.post(URL, data="sourceId=x", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415 and r.json()["code"] == "E1006"


def test_duplicates_inside_one_batch_keep_the_first_valid_value(api, meter):
    body = [rec(value=-1), rec(value=10), rec(value=20)]
    r = post(api, body)
    data = r.json()
    assert data["accepted"] == 1 and data["duplicates"] == 1
    assert [x["code"] for x in data["rejected"]] == ["E3001"]
    assert Reading.objects.get().value == 10
    event = ValidationEvent.objects.get()
    assert event.kind == "duplicate" and event.code == "E4002" and event.index == 2


def test_duplicates_across_batches_stored_once_and_logged(api, meter):
    assert post(api, [rec(value=10)]).json()["accepted"] == 1
    r = post(api, [rec(value=99), rec(timestamp="2026-11-23 10:10:00")])
    assert r.status_code == 200
    assert r.json() == {"accepted": 1, "duplicates": 1, "rejected": []}
    assert Reading.objects.filter(ts=datetime(2026, 11, 23, 2, 5, tzinfo=UTC)).get().value == 10
    assert ValidationEvent.objects.get().code == "E4001"
    batch = IngestBatch.objects.order_by("-id").first()
    assert (batch.total, batch.accepted, batch.duplicates, batch.rejected) == (2, 1, 1, 0)


def test_same_timestamp_in_other_spelling_is_the_same_identity(api, meter):
    post(api, rec(timestamp="2026-11-23 10:05:00"))
    r = post(api, rec(timestamp="2026-11-23T02:05:00.000+00:00"))
    assert r.json()["duplicates"] == 1
    assert Reading.objects.count() == 1


def test_idempotency_key_replays_the_first_answer(api, meter):
    body = [rec(), rec(value=-3, timestamp="2026-11-23 10:10:00")]
    first = post(api, body, HTTP_IDEMPOTENCY_KEY="batch-001")
    second = post(api, body, HTTP_IDEMPOTENCY_KEY="batch-001")
    assert first.status_code == second.status_code == 400
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Reading.objects.count() == 1
    assert IngestBatch.objects.count() == 1
    assert Rejection.objects.count() == 1


def test_idempotency_key_reused_with_another_body(api, meter):
    post(api, [rec()], HTTP_IDEMPOTENCY_KEY="k1")
    r = post(api, [rec(value=1)], HTTP_IDEMPOTENCY_KEY="k1")
    assert r.status_code == 409 and r.json()["code"] == "E1005"


def test_bad_idempotency_key(api, meter):
    r = post(api, [rec()], HTTP_IDEMPOTENCY_KEY="x" * 300)
    assert r.status_code == 400 and r.json()["code"] == "E1014"
    assert Reading.objects.count() == 0


def test_source_of_another_park_is_unknown_to_this_token(api, meter, other_park):
    from tests.conftest import add_source

    add_source(other_park, "TP02-EM-0001", ["CS010201"])
    r = post(api, rec(sourceId="TP02-EM-0001"))
    assert r.json()["rejected"][0]["code"] == "E2003"


def test_disabled_source(api, meter):
    from apps.sources.services import save_source

    save_source(actor="test", source=meter, enabled=False)
    r = post(api, rec())
    assert r.json()["rejected"][0]["code"] == "E2012"


def test_enum_item_accepts_code_or_label_and_stores_the_code(api, park):
    from tests.conftest import add_source

    add_source(park, "TP01-FORM-FUEL", ["CS010104"])
    r = post(api, [rec(sourceId="TP01-FORM-FUEL", dataCode="CS010104", value="天然气", unit=...),
                   rec(sourceId="TP01-FORM-FUEL", dataCode="CS010104", value="diesel", unit=...,
                       timestamp="2026-11-23 10:10:00"),
                   rec(sourceId="TP01-FORM-FUEL", dataCode="CS010104", value="unobtainium", unit=...,
                       timestamp="2026-11-23 10:15:00")])
    data = r.json()
    assert data["accepted"] == 2
    assert [x["code"] for x in data["rejected"]] == ["E3003"]
    assert sorted(Reading.objects.values_list("text_value", flat=True)) == ["diesel", "natural_gas"]


def test_unauthenticated_and_bad_token(client, meter):
    r = client.post(URL, data=json.dumps(rec()), content_type="application/json")
    assert r.status_code == 401 and r.json()["code"] == "E1007"
    r = client.post(URL, data=json.dumps(rec()), content_type="application/json",
                    HTTP_AUTHORIZATION="Token cp_deadbeef_nope")
    assert r.status_code == 401 and r.json()["code"] == "E1007"


def test_messages_follow_accept_language(api, meter):
    zh = post(api, rec(status="X")).json()["rejected"][0]["message"]
    en = post(api, rec(status="X"), HTTP_ACCEPT_LANGUAGE="en").json()["rejected"][0]["message"]
    assert "状态码" in zh and en.startswith("Status X is invalid")


def test_validation_failure_raises_one_counted_alarm(api, meter):
    post(api, [rec(value=-1), rec(value=-2, timestamp="2026-11-23 10:10:00")])
    post(api, [rec(value=-3, timestamp="2026-11-23 10:15:00")])
    alarm = Alarm.objects.get()
    assert alarm.code == "E3001" and alarm.count == 3 and alarm.state == "open"
    assert alarm.source == meter
