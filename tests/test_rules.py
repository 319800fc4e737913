"""The rule library: each kind, each severity, scopes, and changes without a restart (R-9.2.3)."""

import pytest
from django.core.exceptions import ValidationError

from apps.catalog.models import DataItem
from apps.ingestion.models import Flag, Reading, ValidationEvent
from apps.ingestion.services import ingest_readings
from apps.quality.models import Rule
from apps.quality.services import save_rule
from tests.conftest import add_source


def push(*records):
    return ingest_readings(list(records), channel="test", actor="test")


def r(ts="2026-11-23 10:00:00", **kw):
    return {"sourceId": "TP01-EM-0001", "dataCode": "CS010201", "timestamp": ts, "value": 10, **kw}


def codes(result):
    return [x["code"] for x in result.rejected]


def test_range_rule_change_takes_effect_for_the_next_batch(meter):
    rule = save_rule(actor="t", name="max 100", kind="range", params={"max": 100}, severity="reject", source=meter)
    assert codes(push(r(value=150))) == ["E3001"]
    save_rule(actor="t", rule=rule, params={"max": 1000})
    assert codes(push(r(value=150))) == []
    save_rule(actor="t", rule=rule, enabled=False)
    assert codes(push(r(ts="2026-11-23 10:05:00", value=5000))) == []


def test_flag_severity_stores_with_the_suspect_flag_and_logs(meter):
    save_rule(actor="t", name="spike", kind="range", params={"max": 100}, severity="flag", source=meter)
    result = push(r(value=150))
    assert result.accepted == 1 and result.flagged == 1 and result.rejected == []
    assert Reading.objects.get().flags & Flag.SUSPECT
    assert ValidationEvent.objects.get().kind == "flagged"


def test_warn_severity_stores_clean_and_logs(meter):
    save_rule(actor="t", name="warn", kind="range", params={"max": 100}, severity="warn", source=meter)
    result = push(r(value=150))
    assert result.accepted == 1 and result.warned == 1
    assert Reading.objects.get().flags == 0
    assert ValidationEvent.objects.get().kind == "warned"


def test_required_rule(meter):
    save_rule(actor="t", name="unit required", kind="required", params={"fields": ["unit"]}, park=meter.park)
    assert codes(push(r())) == ["E3002"]
    assert codes(push(r(unit="kWh"))) == []


def test_enum_rule(monitor):
    save_rule(actor="t", name="statuses", kind="enum", params={"values": [35.0, 40.0]},
              data_item=DataItem.objects.get(code="CS030202"))
    base = {"sourceId": "TP01-WW-0001", "dataCode": "CS030202", "timestamp": "2026-11-23 10:00:00"}
    assert codes(push({**base, "value": 41})) == ["E3003"]
    assert codes(push({**base, "value": 40})) == []


def test_precision_rule_uses_the_items_precision_by_default(meter):
    save_rule(actor="t", name="whole kWh", kind="precision", params={}, source=meter)
    assert codes(push(r(value=10.5))) == ["E3004"]
    assert codes(push(r(ts="2026-11-23 10:05:00", value=11))) == []


def test_pattern_rule(park):
    add_source(park, "TP01-GEC", ["CO010103"])
    save_rule(actor="t", name="GEC number", kind="pattern", params={"regex": r"GEC\d{8}"},
              data_item=DataItem.objects.get(code="CO010103"))
    base = {"sourceId": "TP01-GEC", "dataCode": "CO010103", "timestamp": "2026-11-23 10:00:00"}
    assert codes(push({**base, "value": "ABC"})) == ["E3005"]
    assert codes(push({**base, "value": "GEC20261123"})) == []


def test_future_timestamp_tolerance_is_configurable(meter):
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    soon = (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M:%S")
    assert codes(push(r(ts=soon))) == ["E3006"]
    rule = Rule.objects.get(kind="future_ts")
    save_rule(actor="t", rule=rule, params={"tolerance_s": 3600})
    assert codes(push(r(ts=soon))) == []


def test_rule_scoped_to_another_source_does_not_apply(meter, park):
    other = add_source(park, "TP01-EM-0002", ["CS010201"])
    save_rule(actor="t", name="other only", kind="range", params={"max": 1}, source=other)
    assert codes(push(r(value=50))) == []


def test_custom_message_overrides_the_default(meter):
    save_rule(actor="t", name="m", kind="range", params={"max": 1}, source=meter, message_zh="超过变压器容量",
              message_en="Above transformer capacity")
    result = push(r(value=5))
    assert result.rejected[0]["message_en"] == "Above transformer capacity"
    assert result.rejected[0]["message_zh"] == "超过变压器容量"


@pytest.mark.parametrize(("kind", "params"), [("range", {}), ("range", {"min": 5, "max": 1}),
                                              ("pattern", {"regex": "("}), ("future_ts", {"tolerance_s": -1}),
                                              ("nonsense", {})])
def test_bad_rule_definitions_are_refused(db, kind, params):
    with pytest.raises(ValidationError):
        save_rule(actor="t", name="bad", kind=kind, params=params)


def test_default_rules_seeded(db):
    assert Rule.objects.filter(kind="future_ts", enabled=True).count() == 1
    assert Rule.objects.filter(kind="range", params={"min": 0}).count() == DataItem.objects.filter(
        park__isnull=True, data_type="number").count()
