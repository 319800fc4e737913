"""JSON Logic on the server, with the semantics of json-logic-js 2.0.5 (the browser's copy in
static/vendor/json-logic/) for the operators a form definition may use (R-7.3.1: conditions, constraints and
calculated fields that run identically in the browser and on the server).

Why our own and not a PyPI package: the browser runs json-logic-js, whose answers follow JavaScript's loose
coercions (``"1" + 1`` through parseFloat, ``"10" < "9"`` compares strings, ``1 / 0`` is Infinity, ``String(0.1)``
formatting in ``cat``). The Python packages either follow Python's rules there or carry no depth or work limit
for hostile definitions; the shared table ``tests/data/expressions.json`` is the contract both sides pass.

Values are JSON values (None, bool, int/float, str, list, dict). Results that are not finite numbers (division
by zero) are kept while evaluating, as JavaScript does, and turned into ``None`` by ``normalize`` (what
``JSON.stringify`` does in the browser): a calculated field that divides by zero is empty on both sides.
"""

from __future__ import annotations

import math

from apps.entry.logic.js import (
    UNDEFINED,
    LogicError,
    cat,
    divide,
    is_number,
    js_in,
    js_number_str,
    less,
    loose_equal,
    min_max,
    minus,
    plus,
    remainder,
    strict_equal,
    substr,
    times,
    to_number,
    to_string,
    truthy,
    var,
)

__all__ = ["OPERATORS", "MAX_DEPTH", "MAX_STEPS", "LogicError", "Budget", "apply", "normalize", "check_expression",
           "variables", "is_number", "js_number_str", "to_number", "to_string", "truthy", "UNDEFINED"]

# The operators a definition may use. Both sides implement every one of them (json-logic-js natively).
OPERATORS = frozenset({
    "var", "missing", "missing_some", "if", "?:", "==", "!=", "===", "!==", "<", "<=", ">", ">=", "!", "!!",
    "and", "or", "+", "-", "*", "/", "%", "min", "max", "in", "cat", "substr", "merge",
    "map", "filter", "reduce", "all", "some", "none",
})
MAX_DEPTH = 32  # nesting of an expression (a definition deeper than this is refused when saved)
MAX_STEPS = 200_000  # operations per evaluation: map/reduce over 10 000 rows fit, a runaway does not


class _Evaluator:
    def __init__(self, max_steps: int):
        self.steps = 0
        self.max_steps = max_steps

    def tick(self):
        self.steps += 1
        if self.steps > self.max_steps:
            raise LogicError("expression takes too much work")

    def apply(self, logic, data, depth=0):
        self.tick()
        if depth > MAX_DEPTH * 2:
            raise LogicError("expression nested too deeply")
        if isinstance(logic, list):
            return [self.apply(x, data, depth + 1) for x in logic]
        if not (isinstance(logic, dict) and len(logic) == 1):
            return logic
        (op, values), = logic.items()
        if op not in OPERATORS:
            raise LogicError(f"operator {op!r} is not allowed")
        if not isinstance(values, list):
            values = [values]
        d = depth + 1
        if op in ("if", "?:"):
            i = 0
            while i < len(values) - 1:
                if truthy(self.apply(values[i], data, d)):
                    return self.apply(values[i + 1], data, d)
                i += 2
            return self.apply(values[i], data, d) if len(values) == i + 1 else None
        if op in ("and", "or"):
            current = UNDEFINED
            for v in values:
                current = self.apply(v, data, d)
                if truthy(current) == (op == "or"):
                    return current
            return None if current is UNDEFINED else current
        if op in ("filter", "map", "all", "none", "some", "reduce"):
            return self.scoped(op, values, data, d)
        args = [self.apply(v, data, d) for v in values]
        return self.call(op, args, data, d)

    def scoped(self, op, values, data, d):
        scoped = self.apply(values[0] if values else UNDEFINED, data, d)
        logic = values[1] if len(values) > 1 else UNDEFINED
        if op == "reduce":
            initial = self.apply(values[2], data, d) if len(values) > 2 else None
            if not isinstance(scoped, list):
                return initial
            acc = initial
            for cur in scoped:
                acc = self.apply(logic, {"current": cur, "accumulator": acc}, d)
            return acc
        if op in ("filter", "map") and not isinstance(scoped, list):
            return []
        if op == "filter":
            return [x for x in scoped if truthy(self.apply(logic, x, d))]
        if op == "map":
            return [self.apply(logic, x, d) for x in scoped]
        if not isinstance(scoped, list) or not scoped:
            return op == "none"
        if op == "all":
            return all(truthy(self.apply(logic, x, d)) for x in scoped)
        if op == "some":
            return any(truthy(self.apply(logic, x, d)) for x in scoped)
        return not any(truthy(self.apply(logic, x, d)) for x in scoped)

    def call(self, op, args, data, d):
        a = args[0] if args else UNDEFINED
        b = args[1] if len(args) > 1 else UNDEFINED
        c = args[2] if len(args) > 2 else UNDEFINED
        if op == "var":
            return var(data, a, b)
        if op == "missing":
            keys = a if isinstance(a, list) else args
            out = []
            for key in keys:
                self.tick()
                value = var(data, key)
                if value is None or value == "":
                    out.append(key)
            return out
        if op == "missing_some":
            options = b if isinstance(b, list) else []
            missing = self.call("missing", [options], data, d)
            return [] if len(options) - len(missing) >= to_number(a) else missing
        if op == "==":
            return loose_equal(a, b)
        if op == "!=":
            return not loose_equal(a, b)
        if op == "===":
            return strict_equal(a, b)
        if op == "!==":
            return not strict_equal(a, b)
        if op == ">":
            return less(b, a, False)
        if op == ">=":
            return less(b, a, True)
        if op in ("<", "<="):
            eq = op == "<="
            if c is UNDEFINED:
                return less(a, b, eq)
            return less(a, b, eq) and less(b, c, eq)
        if op == "!":
            return not truthy(a)
        if op == "!!":
            return truthy(a)
        if op == "+":
            return plus(args)
        if op == "*":
            return times(args)
        if op == "-":
            return minus(a, b)
        if op == "/":
            return divide(a, b)
        if op == "%":
            return remainder(a, b)
        if op == "min":
            return min_max(min, args)
        if op == "max":
            return min_max(max, args)
        if op == "in":
            return js_in(a, b)
        if op == "cat":
            return cat(*args)
        if op == "substr":
            return substr(a, b, c)
        if op == "merge":
            out = []
            for x in args:
                self.tick()
                if isinstance(x, list):
                    out.extend(x)
                else:
                    out.append(x)
            return out
        raise LogicError(f"operator {op!r} is not allowed")  # pragma: no cover - OPERATORS and this agree


def normalize(value):
    """What JSON.stringify makes of a result: non-finite numbers become null, undefined becomes null."""
    if value is UNDEFINED:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items() if v is not UNDEFINED}
    return value


class Budget(_Evaluator):
    """One allowance of operations shared by many evaluations (a whole form's validation)."""

    def evaluate(self, logic, data):
        """``apply`` drawing on this budget."""
        try:
            return normalize(self.apply(logic, data))
        except RecursionError as exc:  # pragma: no cover - MAX_DEPTH stops us long before Python's limit
            raise LogicError("expression nested too deeply") from exc


def apply(logic, data=None, *, max_steps: int = MAX_STEPS):
    """Evaluate ``logic`` against ``data`` as json-logic-js does (R-7.3.1); the result is normalized
    (``normalize``). Raises ``LogicError`` for an operator outside ``OPERATORS``, nesting past ``MAX_DEPTH`` or
    more than ``max_steps`` operations."""
    return Budget(max_steps).evaluate(logic, data)


def check_expression(logic, *, depth: int = 0) -> list[str]:
    """Problems of an expression as written (before any data): operators outside ``OPERATORS``, objects that
    are not one-operator expressions, nesting past ``MAX_DEPTH``. Empty when it may be used."""
    if depth > MAX_DEPTH:
        return [f"nested deeper than {MAX_DEPTH} levels"]
    if isinstance(logic, list):
        return [p for x in logic for p in check_expression(x, depth=depth + 1)]
    if isinstance(logic, dict):
        if len(logic) != 1:
            return ["an object in an expression must have exactly one key, its operator"]
        (op, values), = logic.items()
        if op not in OPERATORS:
            return [f"operator {op!r} is not allowed"]
        return check_expression(values, depth=depth + 1)
    if isinstance(logic, float) and not math.isfinite(logic):
        return ["numbers must be finite"]
    return []


def variables(logic) -> set[str]:
    """The first segment of every literal ``var`` name in ``logic`` (the fields it reads)."""
    out: set[str] = set()
    stack = [logic]
    while stack:
        x = stack.pop()
        if isinstance(x, list):
            stack.extend(x)
        elif isinstance(x, dict) and len(x) == 1:
            (op, values), = x.items()
            if op == "var":
                name = values[0] if isinstance(values, list) and values else values
                if isinstance(name, str) and name:
                    out.add(name.split(".")[0])
            else:
                stack.append(values)
    return out
