"""The XLSX template of a published form version (R-7.3.4): see ``layout`` for where everything sits."""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill, Protection
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation

from apps.core.exports import neutralise
from apps.entry.excel import layout
from apps.entry.excel.layout import (
    FIRST_DATA_ROW,
    FIRST_FIELD_ROW,
    KEY_COLUMN,
    LISTS_SHEET,
    META_SHEET,
    VALUE_COLUMN,
)

HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
HEADER_FONT = Font(bold=True)
OPEN = Protection(locked=False)


def _validation(f: dict, lists, list_cols: dict) -> DataValidation | None:
    """A list of the Chinese labels for an enumeration; a decimal range where the field has min or max."""
    t = f.get("type")
    if t == "enum" and f.get("options"):
        if f["key"] not in list_cols:
            col = len(list_cols) + 1
            list_cols[f["key"]] = col
            for r, o in enumerate(f["options"], 1):
                lists.cell(row=r, column=col, value=neutralise((o.get("label") or {}).get("zh") or o["value"]))
        col = get_column_letter(list_cols[f["key"]])
        dv = DataValidation(type="list", allow_blank=True,
                            formula1=f"{quote_sheetname(LISTS_SHEET)}!${col}$1:${col}${len(f['options'])}")
    elif t == "number" and ("min" in f or "max" in f):
        if "min" in f and "max" in f:
            dv = DataValidation(type="decimal", operator="between", formula1=str(f["min"]), formula2=str(f["max"]))
        elif "min" in f:
            dv = DataValidation(type="decimal", operator="greaterThanOrEqual", formula1=str(f["min"]))
        else:
            dv = DataValidation(type="decimal", operator="lessThanOrEqual", formula1=str(f["max"]))
    else:
        return None
    dv.allow_blank = True
    dv.showErrorMessage = True
    dv.errorTitle = "输入无效 / Invalid value"
    dv.error = ("请从列表中选择。/ Pick one from the list." if t == "enum" else
                f"范围 / range: {f.get('min', '')} … {f.get('max', '')}")
    return dv


def _format(f: dict) -> str | None:
    t = f.get("type")
    if t == "date":
        return "yyyy-mm-dd"
    if t in ("text", "datetime", "attachment"):
        return "@"  # kept as typed: a certificate number 0012 stays 0012, a time keeps its offset
    return None


def template(version) -> bytes:
    """The XLSX template of ``version`` (a published FormVersion), R-7.3.4: one sheet per section, headers in
    Chinese and English with units, data validation lists for enumerations (their Chinese labels) and ranges
    for numbers with min or max, header cells protected (the sheet is protected without a password; only
    the value cells are open), a hidden ``_meta`` sheet naming the version and its content hash."""
    d = version.definition
    book = Workbook()
    book.remove(book.active)
    lists = None
    list_cols: dict[str, int] = {}
    sheets = layout.sheets(d)
    if any(f.get("type") == "enum" for s in sheets for f in s.fields):
        lists = book.create_sheet(LISTS_SHEET)
    for s in sheets:
        ws = book.create_sheet(s.name)
        ws.protection.sheet = True
        ws.protection.formatRows = False  # widths and heights stay adjustable
        ws.protection.formatColumns = False
        if s.repeat:
            _repeat_sheet(ws, s, lists, list_cols)
        else:
            _plain_sheet(ws, s, lists, list_cols)
    meta = book.create_sheet(META_SHEET)
    for r, (k, v) in enumerate((("form", version.form.code), ("version", version.number),
                                ("content_hash", version.content_hash), ("format", 1)), 1):
        meta.cell(row=r, column=1, value=k)
        meta.cell(row=r, column=2, value=v)
    meta.sheet_state = "hidden"
    meta.protection.sheet = True
    if lists is not None:
        lists.sheet_state = "hidden"
        lists.protection.sheet = True
        book.move_sheet(lists, offset=len(book.sheetnames))
    book.active = 0
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _header(cell, value):
    cell.value = neutralise(value)
    cell.font = HEADER_FONT
    cell.fill = HEADER_FILL


def _plain_sheet(ws, s, lists, list_cols):
    for col, title in enumerate(("字段", "Field", "单位 / Unit", "值 / Value", "key"), 1):
        _header(ws.cell(row=1, column=col), title)
    for i, f in enumerate(s.fields):
        r = FIRST_FIELD_ROW + i
        zh, en = layout.labels(f)
        # labels are a park administrator's text: one starting with = would be written as a formula
        ws.cell(row=r, column=1, value=neutralise(zh + (" *" if f.get("required") else "")))
        ws.cell(row=r, column=2, value=neutralise(en))
        ws.cell(row=r, column=3, value=neutralise(f.get("unit") or ""))
        ws.cell(row=r, column=KEY_COLUMN, value=f["key"])
        cell = ws.cell(row=r, column=VALUE_COLUMN)
        cell.protection = OPEN
        if _format(f):
            cell.number_format = _format(f)
        dv = _validation(f, lists, list_cols)
        if dv is not None:
            ws.add_data_validation(dv)
            dv.add(cell.coordinate)
    for col, width in ((1, 28), (2, 28), (3, 14), (4, 24)):
        ws.column_dimensions[get_column_letter(col)].width = width
    ws.column_dimensions[get_column_letter(KEY_COLUMN)].hidden = True


def _repeat_sheet(ws, s, lists, list_cols):
    last = s.last_row
    for c, f in enumerate(s.fields, 1):
        zh, en = layout.labels(f)
        star = " *" if f.get("required") else ""
        _header(ws.cell(row=1, column=c), zh + layout.unit_suffix(f) + star)
        _header(ws.cell(row=2, column=c), en + layout.unit_suffix(f))
        ws.cell(row=3, column=c, value=f["key"])
        letter = get_column_letter(c)
        ws.column_dimensions[letter].width = max(14, min(40, len(zh) * 2 + 6))
        fmt = _format(f)
        for r in range(FIRST_DATA_ROW, last + 1):
            cell = ws.cell(row=r, column=c)
            cell.protection = OPEN
            if fmt:
                cell.number_format = fmt
        dv = _validation(f, lists, list_cols)
        if dv is not None:
            ws.add_data_validation(dv)
            dv.add(f"{letter}{FIRST_DATA_ROW}:{letter}{last}")
    ws.row_dimensions[3].hidden = True
    ws.freeze_panes = f"A{FIRST_DATA_ROW}"
