"""XLSX batch files (interfaces.md §7, R-7.2.1): the first sheet, ``# key: value`` metadata rows in column A,
then the header, then one record per row. openpyxl in read-only mode (rows streamed from the sheet's XML).
Before openpyxl reads anything, the workbook's parts are checked as the zip they are (declared sizes and
ratio against the bomb limits, no DOCTYPE in any XML part) and the first sheet is scanned for merged cells
(E9113). A formula or an error value refuses its row (E9152, E9155). Pure."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time

from .common import FileError, Limits, Meta, ParsedRecord, RowError, check_header, meta_line, shape
from .containers import check_zip

MERGE_RE = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z0-9:]{1,30})"')
CHUNK = 1 << 20


def _scan_parts(archive: zipfile.ZipFile, sheet_path: str) -> list[str]:
    """E9109 for a DOCTYPE in any XML part; the merged ranges of the first sheet."""
    merged: list[str] = []
    for info in archive.infolist():
        if not info.filename.endswith((".xml", ".rels", ".vml")):
            continue
        tail = b""
        with archive.open(info) as src:
            while chunk := src.read(CHUNK):
                window = tail + chunk
                if b"<!DOCTYPE" in window or b"<!ENTITY" in window:
                    raise FileError("E9109")
                if info.filename == sheet_path and b"mergeCell" in window:
                    merged.extend(m.decode() for m in MERGE_RE.findall(window) if m.decode() not in merged)
                tail = window[-64:]
    return merged


def _cell_text(value) -> str | bool | int | float | None:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat()
    return value


def read_xlsx(path: str, meta: Meta, limits: Limits | None = None) -> Iterator[ParsedRecord | RowError]:
    """Records and row errors of the first sheet; file-level problems raise FileError (E9109, E9112–E9115,
    E9105, E9106, E9121)."""
    import os

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    limits = limits or Limits()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FileError("E9112", detail=f"not a zip workbook ({str(exc)[:80]})") from None
    with archive:
        check_zip(archive, limits, os.path.getsize(path))
        try:
            book = load_workbook(path, read_only=True, data_only=False, keep_links=False)
        except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError) as exc:
            raise FileError("E9112", detail=f"{type(exc).__name__}: {str(exc)[:80]}") from None
        except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds on a broken workbook
            raise FileError("E9112", detail=f"{type(exc).__name__}: {str(exc)[:80]}") from None
        try:
            if not book.worksheets:
                raise FileError("E9112", detail="no worksheet")
            sheet = book.worksheets[0]
            sheet_path = getattr(sheet, "_worksheet_path", "")
            merged = _scan_parts(archive, sheet_path)
            if merged:
                raise FileError("E9113", ranges=", ".join(merged[:5]) + (" …" if len(merged) > 5 else ""))
            yield from _rows(sheet, meta)
        finally:
            book.close()


def _rows(sheet, meta: Meta) -> Iterator[ParsedRecord | RowError]:
    names = None
    width = 0
    try:
        rows = sheet.iter_rows()
        for cells in rows:
            if not cells:
                continue
            row = next((c.row for c in cells if getattr(c, "row", None)), None) or 0
            values = [c.value for c in cells]
            if all(v is None or (isinstance(v, str) and v.strip() == "") for v in values):
                continue
            first = values[0]
            if names is None:
                if isinstance(first, str) and first.lstrip().startswith("#"):
                    meta_line(first.strip(), row, meta)
                    continue
                names = check_header(values)
                width = len(names)
                continue
            meta.data_rows += 1
            bad = None
            for c in cells:
                kind = getattr(c, "data_type", None)
                if kind == "f":
                    bad = RowError(row, _column(names, c), "E9152", {"cell": c.coordinate}, str(c.value)[:200])
                    break
                if kind == "e":
                    bad = RowError(row, _column(names, c), "E9155", {"cell": c.coordinate, "value": str(c.value)[:20]})
                    break
            if bad is not None:
                yield bad
                continue
            extra = values[width:]
            if any(v is not None and not (isinstance(v, str) and v.strip() == "") for v in extra):
                yield RowError(row, "", "E9151", {"found": len(values), "expected": width})
                continue
            yield shape(names, [_cell_text(v) for v in values[:width]], row)
    except FileError:
        raise
    except Exception as exc:  # noqa: BLE001 - a sheet openpyxl cannot read further is a broken workbook
        raise FileError("E9112", detail=f"{type(exc).__name__}: {str(exc)[:80]}") from None
    if names is None:
        raise FileError("E9121")


def _column(names: list[str], cell) -> str:
    index = (getattr(cell, "column", None) or 1) - 1
    return names[index] if 0 <= index < len(names) else getattr(cell, "coordinate", "")
