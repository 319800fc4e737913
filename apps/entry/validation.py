"""The server's check of a filled form against its published version (R-7.3.1.2–3): what the filling page calls
as the clerk types and what a submission must pass.

``validate_values(version, values, *, lang)`` returns ``(cleaned, errors)``. ``cleaned`` holds the values to
store: visible entered fields that are not empty, with their types settled (numbers as JSON numbers, dates and
date-times as ISO strings), calculated fields as the server computed them (whatever the client sent for them),
repeat sections as lists of such rows. Hidden fields are neither validated nor kept. ``errors`` is a list of
``{"path", "code", "message", "messages"}``; ``path`` names the field (``fuel_total``, ``fuels[2].amount``; ``""``
for the form as a whole). Hostile input gives coded errors, never an exception.

Order (the browser follows the same): fields are taken in document order; a field's ``visibleIf`` and ``calc``
see the final values of the fields before it (hidden ones as null, calculated ones computed) and the entered
values of those after it. In a repeat section a row's expressions see the form's values with the row's own
fields over them. Form constraints run last, on the final values; a constraint that reads a field with an error
is skipped (the field's own error says enough; another constraint's error does not silence it).
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from decimal import Context, Decimal, InvalidOperation

from apps.core.text import is_storable
from apps.entry import errors
from apps.entry.definitions import DEFAULT_TEXT_LENGTH, MAX_ROWS
from apps.entry.logic import Budget, LogicError, is_number, to_string, truthy, variables

MAX_ERRORS = 200
RUN_STEPS = 2_000_000  # expression operations for one validation, all fields and rows together
MAX_ABS = 1e300  # beyond this a number is refused as out of range (floats overflow soon after)

_DECIMAL_TEXT = re.compile(r"[+-]?\d{1,40}(?:\.\d{1,40})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})")
_ATTACHMENT = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DEC = Context(prec=80)


class _Bad(Exception):
    def __init__(self, error, **params):
        self.error, self.params = error, params


_GOT_ZH = {"true/false": "真/假值", "text": "文字", "a list": "列表", "an object": "对象", "a number": "数字"}


def _got(raw) -> dict:
    """What was received instead, named in both languages (the {got} and {got_zh} of E8102 and E8110)."""
    if isinstance(raw, bool):
        got = "true/false"
    elif isinstance(raw, str):
        got = "text"
    elif isinstance(raw, list):
        got = "a list"
    elif isinstance(raw, dict):
        got = "an object"
    else:
        got = "a number" if is_number(raw) else type(raw).__name__
    return {"got": got, "got_zh": _GOT_ZH.get(got, got)}


def _empty(raw) -> bool:
    return raw is None or (isinstance(raw, str) and raw.strip() == "")


def _fmt(x) -> str:
    return repr(x) if isinstance(x, float) and not x.is_integer() else str(int(x)) if isinstance(x, float) else str(x)


def _number(f: dict, raw):
    if isinstance(raw, (list, dict)):
        raise _Bad(errors.E8120)
    if isinstance(raw, bool):
        raise _Bad(errors.E8102, **_got(raw))
    if isinstance(raw, str):
        text = raw.strip()
        if text.lower().lstrip("+-") in ("nan", "infinity", "inf"):
            raise _Bad(errors.E8112)
        if not _DECIMAL_TEXT.fullmatch(text):
            raise _Bad(errors.E8102, **_got(raw))
        value = int(text) if "." not in text else float(text)
    elif is_number(raw):
        value = raw
    else:
        raise _Bad(errors.E8102, **_got(raw))
    if isinstance(value, float) and not math.isfinite(value) or abs(value) > MAX_ABS:
        raise _Bad(errors.E8112)
    if "min" in f and value < f["min"]:
        raise _Bad(errors.E8103, value=_fmt(value), min=_fmt(f["min"]))
    if "max" in f and value > f["max"]:
        raise _Bad(errors.E8104, value=_fmt(value), max=_fmt(f["max"]))
    step = f.get("step")
    if step:
        try:
            q = _DEC.divide(Decimal(repr(value) if isinstance(value, float) else value), Decimal(repr(step)))
            ok = q == q.to_integral_value()
        except (InvalidOperation, ArithmeticError):
            ok = False
        if not ok:
            raise _Bad(errors.E8105, value=_fmt(value), step=_fmt(step))
    return value


def _text(f: dict, raw):
    if isinstance(raw, (list, dict)):
        raise _Bad(errors.E8120)
    if not isinstance(raw, str):
        raise _Bad(errors.E8110, **_got(raw))
    if not is_storable(raw):
        raise _Bad(errors.E8111)
    limit = f.get("maxLength", DEFAULT_TEXT_LENGTH)
    if len(raw) > limit:
        raise _Bad(errors.E8107, length=len(raw), limit=limit)
    return raw


def _enum(f: dict, raw):
    if isinstance(raw, (list, dict)):
        raise _Bad(errors.E8120)
    allowed = [o["value"] for o in f.get("options") or []]
    if not isinstance(raw, str) or raw not in allowed:
        shown = raw if isinstance(raw, str) and is_storable(raw) and len(raw) <= 100 else _got(raw)["got"]
        raise _Bad(errors.E8106, value=shown)
    return raw


def _date(f: dict, raw):
    if isinstance(raw, (list, dict)):
        raise _Bad(errors.E8120)
    if not isinstance(raw, str) or not _DATE.fullmatch(raw.strip()):
        raise _Bad(errors.E8108)
    try:
        return date.fromisoformat(raw.strip()).isoformat()
    except ValueError:
        raise _Bad(errors.E8108) from None


def _datetime(f: dict, raw):
    if isinstance(raw, (list, dict)):
        raise _Bad(errors.E8120)
    if not isinstance(raw, str) or not _DATETIME.fullmatch(raw.strip()):
        raise _Bad(errors.E8109)
    try:
        datetime.fromisoformat(raw.strip())
    except ValueError:
        raise _Bad(errors.E8109) from None
    return raw.strip()  # as entered: ISO 8601 with its offset is unambiguous, and the browser keeps it so


def _attachment(f: dict, raw):
    if isinstance(raw, (list, dict)):
        raise _Bad(errors.E8120)
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 < raw < 2**63:
        return str(raw)
    if not isinstance(raw, str) or not _ATTACHMENT.fullmatch(raw):
        raise _Bad(errors.E8118)
    return raw


_COERCE = {"number": _number, "text": _text, "enum": _enum, "date": _date, "datetime": _datetime,
           "attachment": _attachment}


def _calc_result(f: dict, value):
    """A calculated value as the field's type keeps it; anything else is empty (as the browser shows it)."""
    t = f.get("type")
    if value is None:
        return None
    if t == "number":
        return value if is_number(value) else None
    if t == "text":
        return value if isinstance(value, str) else (None if isinstance(value, (list, dict)) else
                                                    to_string(value))
    if t == "date":
        return value if isinstance(value, str) and _DATE.fullmatch(value) else None
    if t == "enum":
        return value if isinstance(value, str) and value in {o["value"] for o in f.get("options") or []} else None
    return None


class _Run:
    def __init__(self, definition: dict, lang: str):
        self.d = definition
        self.lang = lang or "zh-hans"
        self.errors: list[dict] = []
        self.bad_paths: set[str] = set()
        self.budget = Budget(RUN_STEPS)

    def error(self, path: str, err, **params):
        self.bad_paths.add(path)
        for i, ch in enumerate(path):  # and every path above it: "fuels[1].qty" dirties "fuels[1]" and "fuels"
            if ch in "[.":
                self.bad_paths.add(path[:i])
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"path": path, "code": err.code, "message": err.message(self.lang, **params),
                                "messages": err.messages(**params)})

    def constraint_error(self, path: str, message: dict):
        # not in bad_paths: only a value's own error silences the constraints that read it
        if len(self.errors) < MAX_ERRORS:
            en = message.get("en") or message["zh"]
            self.errors.append({"path": path, "code": errors.E8121.code,
                                "message": en if self.lang.startswith("en") else message["zh"],
                                "messages": {"zh": message["zh"], "en": en}})

    def has_error(self, path: str) -> bool:
        """Has ``path`` or anything under it (a repeat section's rows) an error?"""
        return path in self.bad_paths

    def evaluate(self, expr, data, path):
        try:
            return self.budget.evaluate(expr, data), True
        except LogicError as exc:
            self.error(path, errors.E8119, detail=str(exc))
            return None, False

    def coerce(self, f: dict, raw):
        """(value, problem) for an entered value; problems are reported only if the field turns out visible."""
        if _empty(raw):
            return None, None
        try:
            return _COERCE.get(f.get("type"), _text)(f, raw), None
        except _Bad as bad:
            return None, bad

    # -- the walk -----------------------------------------------------------------------------------------

    def run(self, values):
        if not isinstance(values, dict):
            self.error("", errors.E8117)
            return {}
        sections = self.d.get("sections") or []
        known = {}
        for s in sections:
            if s.get("repeat") is not None:
                known[s["key"]] = s
            else:
                for f in s["fields"]:
                    known[f["key"]] = f
        for key in values:
            if key not in known:
                self.error(key if isinstance(key, str) and is_storable(key) and len(key) <= 100 else "",
                           errors.E8115, key=key if isinstance(key, str) and is_storable(key) else "?")
        entered: dict[str, tuple] = {}
        data: dict = {}
        rows_of: dict[str, tuple] = {}
        for s in sections:
            if s.get("repeat") is not None:
                rows, problems = self.entered_rows(s, values.get(s["key"]))
                rows_of[s["key"]] = (rows, problems)
                data[s["key"]] = [{k: v for k, (v, _p) in row.items()} for row in rows or []]
            else:
                for f in s["fields"]:
                    entered[f["key"]] = self.coerce(f, values.get(f["key"]))
                    data[f["key"]] = entered[f["key"]][0]
        cleaned: dict = {}
        for s in sections:
            visible = True
            if "visibleIf" in s:
                result, ok = self.evaluate(s["visibleIf"], data, s["key"])
                visible = ok and truthy(result)
            if s.get("repeat") is not None:
                if not visible:
                    data[s["key"]] = []
                    continue
                cleaned[s["key"]] = self.repeat(s, *rows_of[s["key"]], data)
                continue
            for f in s["fields"]:
                value = self.field(f, f["key"], entered[f["key"]], data, visible)
                if value is not None:
                    cleaned[f["key"]] = value
        self.constraints(self.d.get("constraints") or [], data, prefix="")
        return cleaned

    def entered_rows(self, s: dict, raw):
        """(rows as entered, values coerced; the problems of the list's shape), reported only if the section
        turns out visible. Rows are None when the list itself is refused."""
        key = s["key"]
        if raw is None:
            return [], []
        if not isinstance(raw, list):
            return None, [(key, errors.E8116, {})]
        limit = min(s["repeat"].get("max", MAX_ROWS), MAX_ROWS)
        if len(raw) > limit:
            return None, [(key, errors.E8114, {"count": len(raw), "max": limit})]  # no row of it is looked at
        fields = {f["key"]: f for f in s["fields"]}
        rows, problems = [], []
        for i, row in enumerate(raw):
            if not isinstance(row, dict):
                problems.append((f"{key}[{i}]", errors.E8116, {}))
                row = {}
            for k in row:
                if k not in fields and len(problems) < MAX_ERRORS:
                    shown = k if isinstance(k, str) and is_storable(k) and len(k) <= 100 else "?"
                    problems.append((f"{key}[{i}]" + (f".{shown}" if shown != "?" else ""), errors.E8115,
                                     {"key": shown}))
            rows.append({f["key"]: self.coerce(f, row.get(f["key"])) for f in s["fields"]})
        return rows, problems

    def repeat(self, s: dict, rows: list[dict] | None, problems: list, data: dict) -> list[dict]:
        key = s["key"]
        rep = s["repeat"]
        for path, err, params in problems:
            self.error(path, err, **params)
        if rows is None:  # refused as a whole (E8114, E8116): no row to count or check
            data[key] = []
            return []
        if len(rows) < rep.get("min", 0):
            self.error(key, errors.E8113, count=len(rows), min=rep.get("min", 0))
        out_rows, final_rows = [], []
        for i, row in enumerate(rows):
            rdata = dict(data)
            rdata.update({k: v for k, (v, _p) in row.items()})
            crow = {}
            for f in s["fields"]:
                value = self.field(f, f"{key}[{i}].{f['key']}", row[f["key"]], rdata, True)
                if value is not None:
                    crow[f["key"]] = value
            self.constraints(s.get("constraints") or [], rdata, prefix=f"{key}[{i}].")
            out_rows.append(crow)
            final_rows.append({f["key"]: rdata.get(f["key"]) for f in s["fields"]})
        data[key] = final_rows
        return out_rows

    def field(self, f: dict, path: str, entered: tuple, data: dict, section_visible: bool):
        key = f["key"]
        visible = section_visible
        if visible and "visibleIf" in f:
            result, ok = self.evaluate(f["visibleIf"], data, path)
            visible = ok and truthy(result)
        if not visible:
            data[key] = None
            return None
        if "calc" in f:
            result, _ok = self.evaluate(f["calc"], data, path)
            data[key] = value = _calc_result(f, result)
            return value
        value, problem = entered
        if problem is not None:
            self.error(path, problem.error, **problem.params)
            data[key] = None
            return None
        if value is None and f.get("required"):
            self.error(path, errors.E8101)
        data[key] = value
        return value

    def constraints(self, constraints: list, data: dict, prefix: str):
        for c in constraints:
            paths = [prefix + k for k in c.get("fields") or []] or ([prefix.rstrip(".")] if prefix else [""])
            reads = {prefix + k for k in variables(c["expr"])} | variables(c["expr"])
            if any(p in self.bad_paths for p in paths) or any(self.has_error(k) for k in reads):
                continue
            result, ok = self.evaluate(c["expr"], data, paths[0])
            if ok and not truthy(result):
                for p in paths:
                    self.constraint_error(p, c["message"])


def validate_values(version, values, *, lang: str = "zh-hans") -> tuple[dict, list[dict]]:
    """Check ``values`` (the JSON a clerk's page or an import sends) against a published ``version`` (a
    ``FormVersion`` or its definition dict) and compute its calculated fields (R-7.3.1.2–3). Returns
    ``(cleaned, errors)``; never raises for anything ``values`` holds."""
    definition = getattr(version, "definition", version)
    run = _Run(definition, lang)
    try:
        cleaned = run.run(values)
    except RecursionError:  # pragma: no cover - depth is bounded by the definition, values are not recursed
        run.error("", errors.E8120)
        cleaned = {}
    return cleaned, run.errors
