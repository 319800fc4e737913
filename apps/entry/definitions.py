"""The form definition format (R-7.3.1): its JSON Schema, the checks beyond the schema, resolution of catalog
items into a self-contained published definition, and the canonical hash.

Pure functions over JSON values: the catalog is reached through a ``lookup(code) -> ItemInfo | None`` the caller
gives (services pass the live catalog, the default-forms migration its historical rows). The schema is generated
from here (``manage.py form_schema --write docs/form-definition.schema.json``; a test keeps the file in step), so
the operator whitelist of the schema is ``apps.entry.logic.OPERATORS``, the set both evaluators implement.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from apps.core.errors import ErrorCode
from apps.entry import errors, logic

FORMAT = 1
KEY_RE = r"^[a-z][a-z0-9_]{0,62}$"
ITEM_RE = r"^(CS|CK|CO)\d{6}$"
FIELD_TYPES = ("number", "enum", "text", "date", "datetime", "attachment")
PERIODS = ("day", "month", "quarter", "year")
MAX_ROWS = 1000  # a repeat section's hard limit, whatever its definition says
MAX_FIELDS = 1000
MAX_TEXT = 10_000
DEFAULT_TEXT_LENGTH = 2000
MAX_DEFINITION_NODES = 50_000  # JSON values in one definition (checked before the schema, iteratively)
MAX_DEFINITION_DEPTH = 64

SCHEMA_ID = "urn:carbonpark:form-definition:1"


def schema() -> dict:
    """The JSON Schema (Draft 2020-12) of a definition as written (docs/form-definition.schema.json)."""
    text = {"type": "object", "properties": {"zh": {"type": "string", "minLength": 1, "maxLength": 500},
                                             "en": {"type": "string", "maxLength": 500}},
            "required": ["zh"], "additionalProperties": False}
    number = {"type": "number"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "CarbonPark form definition",
        "description": "A manual-entry form (R-7.3.1). See docs/form-definitions.md.",
        "type": "object",
        "required": ["format", "period", "sections"],
        "additionalProperties": False,
        "properties": {
            "$schema": {"type": "string"},
            "format": {"const": FORMAT, "description": "the version of this format"},
            "title": {"$ref": "#/$defs/text"},
            "period": {"enum": list(PERIODS), "description": "the period one submission covers"},
            "sections": {"type": "array", "minItems": 1, "maxItems": 100, "items": {"$ref": "#/$defs/section"}},
            "constraints": {"type": "array", "maxItems": 200, "items": {"$ref": "#/$defs/constraint"}},
        },
        "$defs": {
            "text": text,
            "key": {"type": "string", "pattern": KEY_RE},
            "expr": {
                "description": "a JSON Logic expression using only the allowed operators",
                "anyOf": [
                    {"type": ["null", "boolean", "number", "string"]},
                    {"type": "array", "items": {"$ref": "#/$defs/expr"}},
                    {"type": "object", "minProperties": 1, "maxProperties": 1,
                     "propertyNames": {"enum": sorted(logic.OPERATORS)},
                     "additionalProperties": {"$ref": "#/$defs/expr"}},
                ],
            },
            "option": {"type": "object", "required": ["value", "label"], "additionalProperties": False,
                       "properties": {"value": {"type": "string", "minLength": 1, "maxLength": 100},
                                      "label": {"$ref": "#/$defs/text"}}},
            "constraint": {
                "type": "object", "required": ["expr", "message"], "additionalProperties": False,
                "properties": {
                    "expr": {"$ref": "#/$defs/expr"},
                    "message": {"$ref": "#/$defs/text"},
                    "fields": {"type": "array", "maxItems": 50, "items": {"$ref": "#/$defs/key"},
                               "description": "the fields the error is shown at (none: the form as a whole)"},
                },
            },
            "field": {
                "type": "object", "required": ["key"], "additionalProperties": False,
                "properties": {
                    "key": {"$ref": "#/$defs/key"},
                    "item": {"type": "string", "pattern": ITEM_RE,
                             "description": "an Appendix A code: type, unit, precision and choices come from the "
                                            "catalog"},
                    "type": {"enum": list(FIELD_TYPES)},
                    "label": {"$ref": "#/$defs/text"},
                    "help": {"$ref": "#/$defs/text"},
                    "required": {"type": "boolean"},
                    "min": number, "max": number,
                    "step": {"type": "number", "exclusiveMinimum": 0, "description": "precision: values are "
                                                                                      "multiples of it"},
                    "unit": {"type": "string", "maxLength": 32},
                    "maxLength": {"type": "integer", "minimum": 1, "maximum": MAX_TEXT},
                    "options": {"type": "array", "minItems": 1, "maxItems": 500, "items": {"$ref": "#/$defs/option"}},
                    "unique": {"type": "boolean", "description": "a number that may be used once on the platform "
                                                                 "(certificates, vouchers, filings: R-6.5)"},
                    "visibleIf": {"$ref": "#/$defs/expr"},
                    "calc": {"$ref": "#/$defs/expr"},
                },
                "anyOf": [{"required": ["item"]}, {"required": ["type", "label"]}],
            },
            "section": {
                "type": "object", "required": ["key", "title", "fields"], "additionalProperties": False,
                "properties": {
                    "key": {"$ref": "#/$defs/key"},
                    "title": {"$ref": "#/$defs/text"},
                    "help": {"$ref": "#/$defs/text"},
                    "visibleIf": {"$ref": "#/$defs/expr"},
                    "repeat": {"type": "object", "additionalProperties": False,
                               "properties": {"min": {"type": "integer", "minimum": 0, "maximum": MAX_ROWS},
                                              "max": {"type": "integer", "minimum": 1, "maximum": MAX_ROWS}}},
                    "fields": {"type": "array", "minItems": 1, "maxItems": MAX_FIELDS,
                               "items": {"$ref": "#/$defs/field"}},
                    "constraints": {"type": "array", "maxItems": 200, "items": {"$ref": "#/$defs/constraint"},
                                    "description": "in a repeat section: checked on every row"},
                },
            },
        },
    }


# --- canonical form and hash --------------------------------------------------------------------------

def canonical_json(value) -> bytes:
    """Sorted keys, no spaces, UTF-8 (not ASCII-escaped): the bytes the content hash is taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def content_hash(value) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


# --- problems ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    error: ErrorCode
    path: str
    params: dict = field(default_factory=dict)

    def as_dict(self, lang: str | None = None) -> dict:
        return {"code": self.error.code, "path": self.path, "message": self.error.message(lang, **self.params),
                "messages": self.error.messages(**self.params)}


@dataclass(frozen=True)
class ItemInfo:
    """What a definition takes from a catalog item."""

    code: str
    name_zh: str
    name_en: str
    data_type: str  # number | enum | string | date
    unit: str = ""
    precision: str = ""
    options: tuple = ()  # ((code, label_zh, label_en), ...)


Lookup = Callable[[str], "ItemInfo | None"]


def _shape_problems(definition) -> list[Problem]:
    """Size and depth before the schema (whose validator recurses): a hostile definition is refused cheaply."""
    if not isinstance(definition, dict):
        return [Problem(errors.E8201, "", {"detail": "a JSON object is expected"})]
    nodes, stack = 0, [(definition, 0)]
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_DEFINITION_NODES:
            return [Problem(errors.E8201, "", {"detail": f"more than {MAX_DEFINITION_NODES} values"})]
        if depth > MAX_DEFINITION_DEPTH:
            return [Problem(errors.E8201, "", {"detail": f"nested deeper than {MAX_DEFINITION_DEPTH} levels"})]
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, float) and not math.isfinite(value):
            return [Problem(errors.E8201, "", {"detail": "numbers must be finite"})]
        elif isinstance(value, str) and ("\x00" in value or len(value) > 100_000):
            return [Problem(errors.E8201, "", {"detail": "a text holds a NUL character or is too long"})]
    return []


def _json_path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(root)"


_VALIDATOR = None


def _validator():
    global _VALIDATOR
    if _VALIDATOR is None:
        from jsonschema import Draft202012Validator

        _VALIDATOR = Draft202012Validator(schema())
    return _VALIDATOR


def iter_fields(definition) -> Iterator[tuple[dict, dict, str]]:
    """(section, field, path) in document order; ``path`` is ``sections[i].fields[j]``."""
    for i, section in enumerate(definition.get("sections") or []):
        for j, f in enumerate(section.get("fields") or []):
            yield section, f, f"sections[{i}].fields[{j}]"


def check_definition(definition, lookup: Lookup | None = None) -> list[Problem]:
    """Every problem of a definition as written, empty when it may be saved and published (R-7.3.1): the
    schema, unique keys, the operator whitelist and depth of expressions, calculated fields without circles,
    consistent field properties and, given ``lookup``, items that exist in the caller's catalog."""
    problems = _shape_problems(definition)
    if problems:
        return problems
    schema_errors = sorted(_validator().iter_errors(definition), key=lambda e: list(e.absolute_path))
    if schema_errors:
        return [Problem(errors.E8201, _json_path(e.absolute_path), {"detail": _short(e)})
                for e in schema_errors[:20]]
    seen: set[str] = set()
    for i, section in enumerate(definition["sections"]):
        if section["key"] in seen:
            problems.append(Problem(errors.E8202, f"sections[{i}].key", {"key": section["key"]}))
        seen.add(section["key"])
        rep = section.get("repeat")
        if rep and rep.get("min", 0) > rep.get("max", MAX_ROWS):
            problems.append(Problem(errors.E8201, f"sections[{i}].repeat", {"detail": "min is above max"}))
    for _section, f, path in iter_fields(definition):
        if f["key"] in seen:
            problems.append(Problem(errors.E8202, path + ".key", {"key": f["key"]}))
        seen.add(f["key"])
        problems.extend(_field_problems(f, path, lookup))
    problems.extend(_constraint_targets(definition))
    for path, expr in _expressions(definition):
        for detail in logic.check_expression(expr):
            problems.append(Problem(errors.E8204, path, {"detail": detail}))
    if not problems:
        cycle = calc_cycle(definition)
        if cycle:
            problems.append(Problem(errors.E8205, "sections", {"keys": " → ".join(cycle)}))
    return problems


def _short(err) -> str:
    msg = err.message
    return msg if len(msg) <= 200 else msg[:197] + "…"


def _field_problems(f: dict, path: str, lookup: Lookup | None) -> list[Problem]:
    out = []
    key = f["key"]
    ftype = f.get("type")
    if "item" in f and lookup is not None:
        info = lookup(f["item"])
        if info is None:
            return [Problem(errors.E8203, path + ".item", {"key": key, "item": f["item"]})]
        item_type = _ITEM_TYPES.get(info.data_type, "text")
        if ftype and ftype != item_type:
            out.append(Problem(errors.E8206, path + ".type",
                               {"key": key, "detail": f"the item {info.code} is of type {item_type}, not {ftype}"}))
        ftype = item_type
        if "unit" in f and f["unit"] != info.unit:
            out.append(Problem(errors.E8206, path + ".unit", {"key": key, "detail": f"the item {info.code} is "
                                                                                  f"measured in {info.unit or '-'}"}))
    if ftype is None and "item" in f:
        return out  # no catalog to judge by: the schema's checks are all we can do
    if "min" in f and "max" in f and f["min"] > f["max"]:
        out.append(Problem(errors.E8206, path, {"key": key, "detail": "min is above max"}))
    if ftype != "number" and any(k in f for k in ("min", "max", "step")):
        out.append(Problem(errors.E8206, path, {"key": key, "detail": "min, max and step are for numbers"}))
    if ftype != "text" and "maxLength" in f:
        out.append(Problem(errors.E8206, path, {"key": key, "detail": "maxLength is for text"}))
    if "options" in f and (ftype != "enum" or "item" in f):
        out.append(Problem(errors.E8206, path, {"key": key, "detail": "options are for enumerations without an item "
                                                                     "(an item's choices come from the catalog)"}))
    if ftype == "enum" and "item" not in f and "options" not in f:
        out.append(Problem(errors.E8206, path, {"key": key, "detail": "an enumeration needs its options"}))
    if "options" in f:
        values = [o["value"] for o in f["options"]]
        if len(set(values)) != len(values):
            out.append(Problem(errors.E8206, path, {"key": key, "detail": "option values must be unique"}))
    if "calc" in f and ftype not in ("number", "text", "date", "enum"):
        out.append(Problem(errors.E8206, path, {"key": key, "detail": f"a {ftype} field cannot be calculated"}))
    if "calc" in f and f.get("required"):
        out.append(Problem(errors.E8206, path, {"key": key, "detail": "a calculated field is not entered, "
                                                                     "so it cannot be required"}))
    return out


def _constraint_targets(definition) -> list[Problem]:
    """A constraint's ``fields`` name fields it can be shown at: the form's (top-level fields and repeat
    sections) for a form constraint, the row's for a repeat section's."""
    out = []
    top = set()
    for s in definition["sections"]:
        top |= {s["key"]} if "repeat" in s else {f["key"] for f in s["fields"]}
    targets = [("constraints", definition.get("constraints") or [], top)]
    for i, s in enumerate(definition["sections"]):
        targets.append((f"sections[{i}].constraints", s.get("constraints") or [], {f["key"] for f in s["fields"]}))
    for base, constraints, keys in targets:
        for j, c in enumerate(constraints):
            for key in c.get("fields") or []:
                if key not in keys:
                    out.append(Problem(errors.E8201, f"{base}[{j}].fields",
                                       {"detail": f"{key} is not a field the error can be shown at here"}))
    return out


def _expressions(definition) -> Iterator[tuple[str, object]]:
    for i, c in enumerate(definition.get("constraints") or []):
        yield f"constraints[{i}].expr", c["expr"]
    for i, section in enumerate(definition["sections"]):
        if "visibleIf" in section:
            yield f"sections[{i}].visibleIf", section["visibleIf"]
        for j, c in enumerate(section.get("constraints") or []):
            yield f"sections[{i}].constraints[{j}].expr", c["expr"]
    for _section, f, path in iter_fields(definition):
        for k in ("visibleIf", "calc"):
            if k in f:
                yield f"{path}.{k}", f[k]


def calc_cycle(definition) -> list[str]:
    """A circle of calculated fields reading each other (keys in order, the first repeated last), or []."""
    calcs = {f["key"]: logic.variables(f["calc"]) for _s, f, _p in iter_fields(definition) if "calc" in f}
    state: dict[str, int] = {}

    def visit(k, trail):
        state[k] = 1
        for dep in sorted(calcs[k]):
            if dep in calcs:
                if state.get(dep) == 1:
                    return trail[trail.index(dep):] + [dep] if dep in trail else [k, dep]
                if dep not in state:
                    found = visit(dep, trail + [dep])
                    if found:
                        return found
        state[k] = 2
        return []

    for k in calcs:
        if k not in state:
            found = visit(k, [k])
            if found:
                return found
    return []


# --- resolution: the published, self-contained definition ----------------------------------------------

_ITEM_TYPES = {"number": "number", "enum": "enum", "string": "text", "date": "date"}


def _step(precision: str):
    try:
        value = float(precision)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value) or value <= 0:
        return None
    return int(value) if value.is_integer() else value


def resolve(definition: dict, lookup: Lookup) -> dict:
    """The definition with each item-bound field's catalog attributes written into it (type, label, unit,
    step, choices, unique), what ``publish`` freezes: a version renders and validates the same even after the
    catalog changes. Attributes the definition sets itself win. Expects a definition without problems."""
    out = json.loads(json.dumps(definition))
    for _section, f, _path in iter_fields(out):
        if "item" not in f:
            continue
        info = lookup(f["item"])
        if info is None:
            continue
        f.setdefault("type", _ITEM_TYPES.get(info.data_type, "text"))
        label = {"zh": info.name_zh}
        if info.name_en:
            label["en"] = info.name_en
        f.setdefault("label", label)
        if info.unit and f["type"] == "number":
            f.setdefault("unit", info.unit)
        if f["type"] == "number":
            step = _step(info.precision)
            if step is not None:
                f.setdefault("step", step)
        if f["type"] == "text" and info.precision == "unique":
            f.setdefault("unique", True)
        if f["type"] == "enum" and info.options:
            f["options"] = [{"value": code, "label": ({"zh": zh, "en": en} if en else {"zh": zh})}
                            for code, zh, en in info.options]
    return out
