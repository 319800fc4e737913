"""Reading a filled template back (R-7.3.4): the values dict a submission takes, checked by the form's
validator, every error named by sheet, row and column; nothing is stored unless every cell is right.

The workbook is opened read-only and formulas are never evaluated: it is opened with ``data_only=False`` so
that a formula is seen as a formula (with ``data_only=True`` openpyxl would hand over the value Excel cached
for it, which the file's author controls and nobody checked) and refused (E8405). Before openpyxl sees it,
the archive is sized up: the file, each member and their total unpacked size are bounded (E8402, E8403)."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from apps.core.errors import ErrorCode
from apps.core.exports import neutralise
from apps.entry import errors
from apps.entry.excel import layout
from apps.entry.excel.layout import FIRST_DATA_ROW, FIRST_FIELD_ROW, KEY_COLUMN, META_SHEET, VALUE_COLUMN
from apps.entry.validation import validate_values

MAX_BYTES = 10 * 1024 * 1024  # an upload
MAX_UNPACKED = 100 * 1024 * 1024  # all members together, unpacked
MAX_MEMBER = 40 * 1024 * 1024  # one member (a sheet, the shared strings), unpacked
MAX_MEMBERS = 500
MAX_RATIO = 200  # unpacked / packed of a member larger than 1 MiB: a bomb, not a spreadsheet
MAX_ERRORS = 200
_PATH = re.compile(r"^([a-z][a-z0-9_]*)(?:\[(\d+)\](?:\.([a-z][a-z0-9_]*))?)?$")


@dataclass
class ReadResult:
    """``values``: the dict a submission takes (as entered, typed as the cells held them); ``errors``: every
    problem as ``{sheet, row, column, cell, path, code, message, messages}`` (sheet/row/column None where the
    problem is the file's or the form's as a whole)."""

    values: dict = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    cleaned: dict = field(default_factory=dict)
    stored: bool = False
    submission: object = None  # the submission an import stored (apps.entry.services.imports)
    _sheets: list = field(default_factory=list, repr=False)
    _where: dict = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not self.errors

    def order(self, error: dict) -> tuple:
        """The file's own errors first, then sheet by sheet as the template orders them, row by row, column
        by column (the order a person corrects them in)."""
        names = [s.name for s in self._sheets]
        sheet, column = error.get("sheet"), error.get("column") or ""
        return (sheet is not None, names.index(sheet) if sheet in names else len(names), error.get("row") or 0,
                len(column), column)

    def locate(self, problem: dict) -> dict:
        """A problem of the values (``{path, code, message, messages}``) with the sheet, row and column of its
        cell in the file read (None where the path names no cell)."""
        sheet, row, column = _locate(problem.get("path") or "", self._sheets, self._where)
        where = {"sheet": sheet, "row": row, "column": column, "cell": f"{column}{row}" if column and row else None}
        return {**problem, **{k: v for k, v in where.items() if problem.get(k) is None}}


class _Fatal(Exception):
    def __init__(self, error: ErrorCode, **params):
        self.error, self.params = error, params


def _entry(err: ErrorCode, lang: str, *, sheet=None, row=None, column=None, path="", params=None, **kw) -> dict:
    params = {**(params or {}), **kw}
    return {"sheet": sheet, "row": row, "column": column or None,
            "cell": f"{column}{row}" if column and row else None, "path": path, "code": err.code,
            "message": err.message(lang, **params), "messages": err.messages(**params)}


def _read_bytes(file) -> bytes:
    if isinstance(file, bytes | bytearray):
        data = bytes(file)
    else:
        data = file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise _Fatal(errors.E8402, size=f"> {MAX_BYTES}" if not isinstance(file, bytes | bytearray) else len(data),
                     limit=MAX_BYTES)
    return data


def _check_archive(data: bytes) -> None:
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        infos = z.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise _Fatal(errors.E8401, detail=f"not a zip archive ({type(exc).__name__})") from None
    if len(infos) > MAX_MEMBERS:
        raise _Fatal(errors.E8403, detail=f"{len(infos)} members")
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size > MAX_MEMBER:
            raise _Fatal(errors.E8403, detail=f"{info.filename[:60]}: {info.file_size} bytes")
        if info.file_size > 1 << 20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise _Fatal(errors.E8403, detail=f"{info.filename[:60]} packed {info.compress_size} bytes")
    if total > MAX_UNPACKED:
        raise _Fatal(errors.E8403, detail=f"{total} bytes in all")


def _open(data: bytes):
    from openpyxl import load_workbook

    _check_archive(data)
    try:
        return load_workbook(io.BytesIO(data), read_only=True, data_only=False, keep_links=False)
    except Exception as exc:  # noqa: BLE001 - a hostile file may break the parser in any way: it is refused, coded
        raise _Fatal(errors.E8401, detail=type(exc).__name__) from None


def _meta(book) -> dict:
    if META_SHEET not in book.sheetnames:
        return {}
    out = {}
    for row in book[META_SHEET].iter_rows(min_row=1, max_row=10, max_col=2, values_only=True):
        if row and isinstance(row[0], str):
            out[row[0]] = row[1] if len(row) > 1 else None
    return out


def template_version(file) -> tuple[str, int] | None:
    """(form code, version number) a filled template says it was made from, or None when it names none
    (the caller looks the version up, then ``read_filled`` checks the content hash)."""
    try:
        book = _open(_read_bytes(file))
        meta = _meta(book)
        book.close()
    except _Fatal:
        return None
    try:
        return str(meta["form"]), int(meta["version"])
    except (KeyError, TypeError, ValueError):
        return None


def _local_zone():
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def _as_entered(f: dict, value, choices: dict):
    """A cell's value as the validator takes it (it judges; this only undoes what Excel did to the typing)."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    t = f.get("type")
    if isinstance(value, dt.datetime):
        if t == "date":
            return value.date().isoformat()
        if value.tzinfo is None:
            value = value.replace(tzinfo=_local_zone())
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if t == "enum":
        text = value if isinstance(value, str) else str(value)
        return choices.get(text.strip(), text)
    if t in ("text", "attachment") and not isinstance(value, str | bool):
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return str(value)
    return value


def _choices(f: dict) -> dict:
    out = {}
    for o in f.get("options") or []:
        for label in (o.get("label") or {}).values():
            out.setdefault(label, o["value"])
            out.setdefault(neutralise(label), o["value"])  # as the template's list shows it
        out[o["value"]] = o["value"]
    return out


def _is_formula(cell) -> bool:
    return getattr(cell, "data_type", None) == "f" or (isinstance(cell.value, str) and cell.value.startswith("=")
                                                       and getattr(cell, "data_type", None) != "s")


def read_filled(version, file, *, lang: str = "zh-hans") -> ReadResult:
    """The values of a filled template of ``version`` and every error, by sheet, row and column (R-7.3.4).
    Never raises for anything the file holds: a file that is not a workbook, too large, a bomb, another
    version's template (content hash), formulas and every value the form's validator refuses are errors."""
    result = ReadResult()
    try:
        book = _open(_read_bytes(file))
    except _Fatal as f:
        result.errors.append(_entry(f.error, lang, **f.params))
        return result
    try:
        _read_book(version, book, result, lang)
    except _Fatal as f:
        result.errors.append(_entry(f.error, lang, **f.params))
    except Exception as exc:  # noqa: BLE001 - a malformed sheet can fail openpyxl mid-read: refused, coded
        result.errors.append(_entry(errors.E8401, lang, detail=type(exc).__name__))
    finally:
        book.close()
    result.errors.sort(key=result.order)
    return result


def _read_book(version, book, result: ReadResult, lang: str) -> None:
    meta = _meta(book)
    expected = f"{version.form.code} v{version.number}"
    if meta.get("content_hash") != version.content_hash:
        found = f"{meta.get('form')} v{meta.get('version')}" if meta else "?"
        raise _Fatal(errors.E8404, expected=expected, found=str(found)[:100])
    sheets = layout.sheets(version.definition)
    cell_errors: set[str] = set()
    where: dict[str, tuple] = {}  # path -> (sheet, row, column)
    values: dict = {}
    for s in sheets:
        if s.name not in book.sheetnames:
            result.errors.append(_entry(errors.E8406, lang, sheet=s.name, path=s.section["key"],
                                        params={"sheet": s.name}))
            cell_errors.add(s.section["key"])
            continue
        ws = book[s.name]
        if s.repeat:
            rows = _read_repeat(s, ws, result, cell_errors, where, lang)
            if rows:
                values[s.section["key"]] = rows
        else:
            values.update(_read_plain(s, ws, result, cell_errors, where, lang))
    result.values = values
    result._sheets, result._where = sheets, where
    cleaned, problems = validate_values(version, values, lang=lang)
    for p in problems:
        if p["path"] in cell_errors or len(result.errors) >= MAX_ERRORS:
            continue  # the cell's own error (a formula, a changed header) says it already
        if missing_evidence(version.definition, p):
            continue  # evidence is attached on the submission's page; submitting checks it is there
        result.errors.append(result.locate(p))
    result.cleaned = cleaned if not result.errors else {}


_PATH_INDEX = re.compile(r"\[\d+\]")


def missing_evidence(definition: dict, problem: dict) -> bool:
    """A required attachment left empty: a file has no cell for evidence, so a draft is loaded without it."""
    return problem.get("code") == errors.E8101.code and \
        _PATH_INDEX.sub("[]", problem.get("path") or "") in _attachment_paths(definition)


def _attachment_paths(definition: dict) -> set[str]:
    """Paths of attachment fields, rows' indexes as ``[]`` (``key``, ``section[].key``)."""
    out = set()
    for s in definition.get("sections") or []:
        for f in s.get("fields") or []:
            if f.get("type") == "attachment":
                out.add(f"{s['key']}[].{f['key']}" if s.get("repeat") is not None else f["key"])
    return out


def _locate(path: str, sheets, where: dict) -> tuple:
    if path in where:
        return where[path]
    m = _PATH.match(path or "")
    if not m:
        return None, None, None
    key, index, sub = m.groups()
    for s in sheets:
        if s.repeat and s.section["key"] == key:
            if index is None:
                return s.name, None, None
            row = where.get(f"{key}[{index}]", (None, None, None))[1]
            return s.name, row, s.column_of(sub) if sub else None
        if not s.repeat and index is None:
            r = s.row_of(key)
            if r is not None:
                return s.name, r, layout.get_column_letter(VALUE_COLUMN)
    return None, None, None


def _read_plain(s, ws, result, cell_errors, where, lang) -> dict:
    out = {}
    fields = {FIRST_FIELD_ROW + i: f for i, f in enumerate(s.fields)}
    col = layout.get_column_letter(VALUE_COLUMN)
    for r, row in enumerate(ws.iter_rows(min_row=FIRST_FIELD_ROW, max_col=KEY_COLUMN), FIRST_FIELD_ROW):
        cells = list(row) + [None] * (KEY_COLUMN - len(row))
        value_cell, key_cell = cells[VALUE_COLUMN - 1], cells[KEY_COLUMN - 1]
        f = fields.get(r)
        if f is None:
            if value_cell is not None and value_cell.value not in (None, ""):
                result.errors.append(_entry(errors.E8407, lang, sheet=s.name, row=r, column=col,
                                            params={"row": r, "last": s.last_row}))
                return out
            continue
        where[f["key"]] = (s.name, r, col)
        found = key_cell.value if key_cell is not None else None
        if found != f["key"]:
            params = {"expected": f["key"], "found": str(found)[:60]}
            result.errors.append(_entry(errors.E8408, lang, sheet=s.name, row=r,
                                        column=layout.get_column_letter(KEY_COLUMN), path=f["key"], **params))
            cell_errors.add(f["key"])
            continue
        if value_cell is None:
            continue
        if _is_formula(value_cell):
            result.errors.append(_entry(errors.E8405, lang, sheet=s.name, row=r, column=col, path=f["key"],
                                        formula=str(value_cell.value)[:60]))
            cell_errors.add(f["key"])
            continue
        value = _as_entered(f, value_cell.value, _choices(f))
        if value is not None:
            out[f["key"]] = value
    return out


def _read_repeat(s, ws, result, cell_errors, where, lang) -> list[dict]:
    key = s.section["key"]
    width = len(s.fields)
    header = next(ws.iter_rows(min_row=3, max_row=3, max_col=width, values_only=True), ())
    found = [v for v in header]
    if found[:width] != [f["key"] for f in s.fields]:
        result.errors.append(_entry(errors.E8408, lang, sheet=s.name, row=3, path=key,
                                    expected=",".join(f["key"] for f in s.fields)[:200],
                                    found=",".join(str(v) for v in found)[:200]))
        cell_errors.add(key)
        return []
    choices = [_choices(f) for f in s.fields]
    rows: list[dict] = []
    for r, row in enumerate(ws.iter_rows(min_row=FIRST_DATA_ROW), FIRST_DATA_ROW):
        cells = list(row)
        if all(c is None or c.value is None or (isinstance(c.value, str) and not c.value.strip()) for c in cells):
            continue
        if r > s.last_row:
            result.errors.append(_entry(errors.E8407, lang, sheet=s.name, row=r, path=key,
                                        params={"row": r, "last": s.last_row}))
            cell_errors.add(key)
            break
        extra = [c for c in cells[width:] if c is not None and c.value not in (None, "")]
        i = len(rows)
        where[f"{key}[{i}]"] = (s.name, r, None)
        entry = {}
        for c, f in enumerate(s.fields):
            cell = cells[c] if c < len(cells) else None
            if cell is None or cell.value is None:
                continue
            path = f"{key}[{i}].{f['key']}"
            letter = layout.get_column_letter(c + 1)
            where[path] = (s.name, r, letter)
            if _is_formula(cell):
                result.errors.append(_entry(errors.E8405, lang, sheet=s.name, row=r, column=letter, path=path,
                                            formula=str(cell.value)[:60]))
                cell_errors.add(path)
                continue
            value = _as_entered(f, cell.value, choices[c])
            if value is not None:
                entry[f["key"]] = value
        for cell in extra[:1]:  # beyond the template's columns: the header says what belongs here
            letter = layout.get_column_letter(width + 1 + cells[width:].index(cell))
            result.errors.append(_entry(errors.E8408, lang, sheet=s.name, row=r, column=letter, path=key,
                                        expected=f"≤ {width} columns", found=letter))
        rows.append(entry)
    return rows


def import_template(version, file, *, store: Callable[[dict], None] | None = None,
                    lang: str = "zh-hans") -> ReadResult:
    """Import a filled template of ``version`` (R-7.3.4): read and check every cell (``read_filled``); only
    when there is no error at all, hand the values to ``store`` (the submission service's hook) inside one
    transaction, so a file is loaded whole or not at all. ``store=None`` is a dry run: the report only."""
    result = read_filled(version, file, lang=lang)
    if result.errors or store is None:
        return result
    with transaction.atomic():
        store(result.values)
    result.stored = True
    return result
