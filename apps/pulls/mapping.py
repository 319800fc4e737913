"""Where each record field is in the other system's data (R-7.1.1.2): a per-connector mapping of the record fields
of interfaces.md §1 to JSON pointers (``/data/0/id``, RFC 6901) or dotted paths (``data.0.id``) for REST answers,
column names for database rows, or constants (``=CS010201``). Pure: no Django, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

FIELDS = ("sourceId", "dataCode", "timestamp", "value", "unit", "status", "backfill")
REQUIRED = ("sourceId", "timestamp", "value")
MISSING = object()


class MappingError(ValueError):
    pass


@dataclass(frozen=True)
class Spec:
    const: object = MISSING
    path: tuple = ()


def parse_path(text: str) -> tuple:
    """``/a/b~1c`` (JSON pointer) or ``a.b`` (dotted) → ("a", "b/c"); "" or "/" alone is refused (the whole
    document is never a field)."""
    if not isinstance(text, str) or not text or "\x00" in text or len(text) > 300:
        raise MappingError(f"not a path: {text!r}"[:120])
    if text.startswith("/"):
        parts = tuple(p.replace("~1", "/").replace("~0", "~") for p in text[1:].split("/"))
    else:
        parts = tuple(text.split("."))
    if not parts or any(p == "" for p in parts):
        raise MappingError(f"not a path: {text!r}"[:120])
    return parts


def compile_mapping(mapping, *, columns: bool = False) -> dict[str, Spec]:
    """The mapping checked: known fields only, the required ones present, each a path (or, for databases, a
    column name, checked by the caller) or a ``=constant``."""
    if not isinstance(mapping, dict):
        raise MappingError("the mapping is an object of record field → path")
    unknown = sorted(set(mapping) - set(FIELDS))
    if unknown:
        raise MappingError(f"unknown record fields {unknown}; known: {list(FIELDS)}")
    missing = [f for f in REQUIRED if f not in mapping]
    if missing:
        raise MappingError(f"the mapping lacks {missing}")
    out = {}
    for name, where in mapping.items():
        if isinstance(where, str) and where.startswith("="):
            out[name] = Spec(const=where[1:])
        elif columns:
            if not isinstance(where, str):
                raise MappingError(f"{name}: a column name or =constant")
            out[name] = Spec(path=(where,))
        else:
            out[name] = Spec(path=parse_path(where))
    return out


def resolve(doc, path: tuple):
    """The value at ``path`` in ``doc`` (objects by key, arrays by index), or MISSING."""
    for part in path:
        if isinstance(doc, dict):
            if part not in doc:
                return MISSING
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and len(part) < 10:
            index = int(part)
            if index >= len(doc):
                return MISSING
            doc = doc[index]
        else:
            return MISSING
    return doc


def map_record(item, specs: dict[str, Spec]) -> dict:
    """One record of interfaces.md §1 from one item of the other system. A field whose path is missing is left
    out, so the pipeline rejects the record with its code (E2001) and keeps it; a non-object item maps to a
    record of nothing but constants, rejected the same way."""
    record = {}
    for name, spec in specs.items():
        value = spec.const if spec.const is not MISSING else resolve(item, spec.path)
        if value is not MISSING:
            record[name] = value
    return record
