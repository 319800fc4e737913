"""JSON Logic on the server (apps/entry/logic/): the shared table that the browser passes too
(tests/test_browser_logic.py), and the limits a hostile definition meets (R-7.3.1)."""

import json
import math
from pathlib import Path

import pytest

from apps.entry import logic

TABLE = json.loads((Path(__file__).resolve().parent / "data" / "expressions.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", TABLE["cases"], ids=[json.dumps(c["logic"])[:60] for c in TABLE["cases"]])
def test_the_shared_table(case):
    got = logic.apply(case["logic"], case["data"])
    # compared as JSON text: 1 and 1.0 agree, True and 1 do not
    assert json.dumps(got, ensure_ascii=False) == json.dumps(case["expected"], ensure_ascii=False)


def test_the_table_uses_every_allowed_operator():
    used = set()
    stack = [c["logic"] for c in TABLE["cases"]]
    while stack:
        x = stack.pop()
        if isinstance(x, list):
            stack.extend(x)
        elif isinstance(x, dict) and len(x) == 1:
            (op, v), = x.items()
            used.add(op)
            stack.append(v)
    assert used >= logic.OPERATORS, sorted(logic.OPERATORS - used)


@pytest.mark.parametrize("expr", [{"log": 1}, {"method": ["x", "constructor"]}, {"__proto__": 1},
                                  {"a": 1, "b": 2}, {"merge.x": []}])
def test_operators_outside_the_whitelist_are_refused(expr):
    assert logic.check_expression(expr)
    if len(expr) == 1:
        with pytest.raises(logic.LogicError):
            logic.apply(expr, {})


def test_depth_and_work_are_bounded():
    deep = 1
    for _ in range(200):
        deep = {"+": [deep, 1]}
    assert logic.check_expression(deep) == [f"nested deeper than {logic.MAX_DEPTH} levels"]
    with pytest.raises(logic.LogicError):
        logic.apply(deep, {})
    # quadratic work over a large list stops at the step budget instead of running on
    column = list(range(5000))
    rows = [{"r": column}] * 100
    quadratic = {"map": [{"var": "rows"}, {"reduce": [{"var": "r"}, {"+": [{"var": "accumulator"}, 1]}, 0]}]}
    assert logic.apply(quadratic, {"rows": rows[:2]}) == [5000, 5000]
    with pytest.raises(logic.LogicError, match="too much work"):
        logic.apply(quadratic, {"rows": rows}, max_steps=100_000)
    # the data itself never makes a result non-JSON: Infinity and NaN become null
    assert logic.apply({"/": [1, {"var": "z"}]}, {"z": 0}) is None
    assert logic.apply({"*": [{"var": "x"}, 10]}, {"x": 1e308}) is None


def test_js_number_formatting_matches_ecmascript():
    cases = {0.1: "0.1", 1e21: "1e+21", 1e-7: "1e-7", 123e-20: "1.23e-18", 1.5: "1.5", -0.0: "0", 100.0: "100",
             2**53: "9007199254740992", 1e20: "100000000000000000000", 0.000001: "0.000001", math.pi:
             "3.141592653589793"}
    for value, text in cases.items():
        assert logic.js_number_str(value) == text, value
