"""The server's check of a filled form (apps/entry/validation.py, R-7.3.1.2–3): types, required, ranges,
precision, choices, lengths, hidden and calculated fields, constraints, repeat rows, and hostile input, each a
coded error at its field, never an exception."""

import json
import time

import pytest

from apps.entry.validation import MAX_ERRORS, validate_values

T = {"zh": "标签", "en": "Label"}
DEFINITION = {
    "format": 1, "period": "month",
    "sections": [
        {"key": "main", "title": T, "fields": [
            {"key": "amount", "type": "number", "label": T, "required": True, "min": 0, "max": 1000, "step": 0.1},
            {"key": "kind", "type": "enum", "label": T, "options": [{"value": "coal", "label": T},
                                                                    {"value": "gas", "label": T}]},
            {"key": "note", "type": "text", "label": T, "maxLength": 10},
            {"key": "day", "type": "date", "label": T},
            {"key": "at", "type": "datetime", "label": T},
            {"key": "report", "type": "attachment", "label": T},
            {"key": "coal_only", "type": "number", "label": T, "required": True,
             "visibleIf": {"==": [{"var": "kind"}, "coal"]}},
            {"key": "double", "type": "number", "label": T, "calc": {"*": [{"var": "amount"}, 2]}},
        ]},
        {"key": "fuels", "title": T, "repeat": {"min": 1, "max": 5}, "fields": [
            {"key": "fuel", "type": "text", "label": T, "required": True},
            {"key": "qty", "type": "number", "label": T, "min": 0},
            {"key": "ncv", "type": "number", "label": T},
            {"key": "heat", "type": "number", "label": T, "calc": {"*": [{"var": "qty"}, {"var": "ncv"}]}},
        ], "constraints": [{"expr": {"or": [{"!": {"var": "qty"}}, {">": [{"var": "ncv"}, 0]}]},
                            "message": {"zh": "须填写发热量", "en": "Enter the calorific value"}, "fields": ["ncv"]}]},
        {"key": "coal_lots", "title": T, "repeat": {"max": 3}, "visibleIf": {"==": [{"var": "kind"}, "coal"]},
         "fields": [{"key": "lot", "type": "text", "label": T, "required": True}]},
    ],
    "constraints": [{"expr": {"<=": [{"var": "amount"}, {"reduce": [{"var": "fuels"}, {
        "+": [{"var": "accumulator"}, {"if": [{"var": "current.qty"}, {"var": "current.qty"}, 0]}]}, 0]}]},
        "message": {"zh": "总量不得超过各燃料之和", "en": "The amount exceeds the fuels' sum"},
        "fields": ["amount"]}],
}
GOOD = {"amount": 12.5, "kind": "gas", "fuels": [{"fuel": "diesel", "qty": 20, "ncv": 43}]}


def check(values, lang="en"):
    cleaned, errors = validate_values(DEFINITION, values, lang=lang)
    return cleaned, {e["path"]: e["code"] for e in errors}, errors


def test_a_good_form_is_cleaned_with_its_calculations():
    cleaned, codes, _ = check({**GOOD, "amount": "12.5", "double": 999, "coal_only": 5,
                               "fuels": [{"fuel": "diesel", "qty": "20", "ncv": 43, "heat": -1}]})
    assert codes == {}
    # a number typed as text is a number; client values of calculated fields are ignored; hidden are dropped
    assert cleaned == {"amount": 12.5, "kind": "gas", "double": 25,
                       "fuels": [{"fuel": "diesel", "qty": 20, "ncv": 43, "heat": 860}]}


@pytest.mark.parametrize("field,value,code", [
    ("amount", None, "E8101"), ("amount", "   ", "E8101"), ("amount", "abc", "E8102"), ("amount", True, "E8102"),
    ("amount", "1,5", "E8102"), ("amount", -1, "E8103"), ("amount", 1000.1, "E8104"), ("amount", 1.25, "E8105"),
    ("amount", [1], "E8120"), ("amount", {"v": 1}, "E8120"), ("amount", float("nan"), "E8112"),
    ("amount", float("inf"), "E8112"), ("amount", "NaN", "E8112"), ("amount", "-Infinity", "E8112"),
    ("amount", 10**400, "E8112"), ("amount", json.loads("1e400"), "E8112"),
    ("kind", "oil", "E8106"), ("kind", 1, "E8106"), ("note", "x" * 11, "E8107"), ("note", 5, "E8110"),
    ("note", "a\x00b", "E8111"), ("note", "\ud800", "E8111"), ("day", "2026-02-30", "E8108"),
    ("day", "30/01/2026", "E8108"), ("at", "2026-01-31T08:00:00", "E8109"), ("at", "yesterday", "E8109"),
    ("report", "ev 1/2", "E8118"), ("report", 0, "E8118"), ("bogus", 1, "E8115"),
])
def test_each_bad_value_is_a_coded_error_at_its_field(field, value, code):
    cleaned, codes, errors = check({**GOOD, field: value})
    assert codes.get(field) == code, errors
    assert field not in cleaned
    err = next(e for e in errors if e["path"] == field)
    assert err["messages"]["zh"] and err["messages"]["en"] and err["message"] == err["messages"]["en"]


def test_good_values_of_each_type():
    cleaned, codes, _ = check({**GOOD, "amount": "0.3", "note": "0123456789", "day": "2026-01-31",
                               "at": "2026-01-31T08:00:00+08:00", "report": "ev_12-ab", "kind": "coal",
                               "coal_only": 7})
    assert codes == {}
    assert cleaned["amount"] == 0.3 and cleaned["day"] == "2026-01-31" and cleaned["coal_only"] == 7
    assert cleaned["at"] == "2026-01-31T08:00:00+08:00" and cleaned["report"] == "ev_12-ab"


def test_hidden_fields_are_neither_validated_nor_kept():
    cleaned, codes, _ = check({**GOOD, "kind": "gas", "coal_only": "not a number"})
    assert "coal_only" not in codes and "coal_only" not in cleaned
    _, codes, _ = check({**GOOD, "kind": "coal"})  # visible now, and required
    assert codes == {"coal_only": "E8101"}


def test_a_hidden_repeat_section_is_neither_validated_nor_kept():
    garbage = [{"lot": 5, "colour": "red"}, "row", {}]
    cleaned, codes, _ = check({**GOOD, "kind": "gas", "coal_lots": garbage})
    assert codes == {} and "coal_lots" not in cleaned
    _, codes, _ = check({**GOOD, "kind": "gas", "coal_lots": [{}] * 100_000})
    assert codes == {}
    cleaned, codes, _ = check({**GOOD, "kind": "coal", "coal_only": 1, "coal_lots": garbage})
    assert codes == {"coal_lots[0].lot": "E8110", "coal_lots[0].colour": "E8115", "coal_lots[1]": "E8116",
                     "coal_lots[1].lot": "E8101", "coal_lots[2].lot": "E8101"}
    _, codes, _ = check({**GOOD, "kind": "coal", "coal_only": 1, "coal_lots": [{"lot": "A1"}] * 4})
    assert codes == {"coal_lots": "E8114"}


def test_constraints_across_fields_and_rows():
    _, codes, errors = check({**GOOD, "amount": 30, "fuels": [{"fuel": "a", "qty": 20, "ncv": 1},
                                                              {"fuel": "b", "qty": 5}, {"fuel": "c"}]})
    assert codes == {"amount": "E8121", "fuels[1].ncv": "E8121"}
    by_path = {e["path"]: e for e in errors}
    assert by_path["amount"]["message"] == "The amount exceeds the fuels' sum"
    assert by_path["fuels[1].ncv"]["messages"]["zh"] == "须填写发热量"
    _, zh = validate_values(DEFINITION, {**GOOD, "amount": 30}, lang="zh-hans")
    assert zh[0]["message"] == "总量不得超过各燃料之和"
    # a constraint reading a field that has its own error stays quiet
    _, codes, _ = check({**GOOD, "amount": "abc"})
    assert codes == {"amount": "E8102"}


def test_repeat_rows():
    _, codes, _ = check({**GOOD, "fuels": []})
    assert codes == {"fuels": "E8113"}
    _, codes, _ = check({**GOOD, "fuels": [{"fuel": "a"}, {"qty": -1, "fuel": "b", "colour": "red"}, "row",
                                           {"fuel": "d", "qty": "x"}]})
    assert codes == {"fuels[1].qty": "E8103", "fuels[1].colour": "E8115", "fuels[2]": "E8116",
                     "fuels[2].fuel": "E8101", "fuels[3].qty": "E8102"}
    _, codes, _ = check({**GOOD, "fuels": {"fuel": "a"}})
    assert codes == {"fuels": "E8116"}  # the form constraint reads the refused rows: it stays quiet


def test_hostile_shapes_are_errors_not_exceptions():
    started = time.monotonic()
    _, codes, _ = check({**GOOD, "fuels": [{"fuel": "x", "qty": 1, "ncv": 1}] * 100_000})
    assert codes["fuels"] == "E8114"
    deep = []
    for _ in range(100_000):
        deep = [deep]
    _, codes, _ = check({**GOOD, "amount": deep, "note": {"a": deep}})
    assert codes["amount"] == "E8120" and codes["note"] == "E8120"
    _, _, errors = check({**GOOD, **{f"k{i}": i for i in range(100_000)}})
    assert len(errors) == MAX_ERRORS and {e["code"] for e in errors} == {"E8115"}
    for values in (None, [], "form", 42, deep):
        cleaned, errors = validate_values(DEFINITION, values, lang="en")
        assert cleaned == {} and [e["code"] for e in errors] == ["E8117"]
    assert time.monotonic() - started < 10  # linear, not stuck (a shared 2-core machine)


@pytest.mark.parametrize("value", [None, True, 0, -0.0, 1e308, -(10**400), "", "\x00", "9" * 100, [], {}, [[[]]],
                                   {"__proto__": 1}, "2026-13-01", "NaN", float("nan"), "１２"])
def test_any_value_in_any_field_never_raises(value):
    for key in ("amount", "kind", "note", "day", "at", "report", "coal_only", "double", "fuels", "zzz"):
        cleaned, errors = validate_values(DEFINITION, {**GOOD, key: value}, lang="en")
        assert isinstance(cleaned, dict) and all(e["code"].startswith("E8") for e in errors)
        validate_values(DEFINITION, {**GOOD, "fuels": [{"fuel": "x", "qty": value, "ncv": value}]}, lang="zh-hans")


def test_what_was_received_instead_is_named_in_the_message_language():
    _, _, errors = check({**GOOD, "amount": "abc"}, lang="zh-hans")
    assert errors[0]["message"] == "应为数字，收到的是文字。"
    assert errors[0]["messages"]["en"] == "A number is expected; got text."
    _, _, errors = check({**GOOD, "amount": True}, lang="zh-hans")
    assert errors[0]["message"] == "应为数字，收到的是真/假值。"
