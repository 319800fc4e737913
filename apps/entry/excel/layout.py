"""Where each field of a published version sits in its XLSX template (R-7.3.4), computed from the definition
alone, so the template writer and the importer agree without trusting anything the file says about itself.

- One sheet per section, named after the section's Chinese title (cut to Excel's 31 characters, made
  unique). Calculated fields are left out (the server computes them), and so are attachments (evidence is
  uploaded on the submission's page, not typed into a cell).
- A plain section is a list: one row per field (row 2 on), columns A Chinese label, B English label, C unit,
  D the value (the only cell to fill), E the field's key (hidden; the importer checks it).
- A repeat section is a table: row 1 Chinese labels with units, row 2 English labels with units, row 3 the
  keys (hidden), one entry per row from row 4 to row 3 + the section's maximum rows.
- Hidden sheets: ``_meta`` (form code, version number, content hash: which version the file was made from)
  and ``_lists`` (the choices of enumerations, for the data-validation lists)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from openpyxl.utils import get_column_letter

from apps.entry.definitions import MAX_ROWS

META_SHEET = "_meta"
LISTS_SHEET = "_lists"
VALUE_COLUMN = 4  # D in a plain section's sheet
KEY_COLUMN = 5  # E
FIRST_FIELD_ROW = 2
FIRST_DATA_ROW = 4  # in a repeat section's sheet
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\']")


@dataclass(frozen=True)
class SheetLayout:
    name: str
    section: dict
    fields: list  # entered (not calculated) fields, in order
    repeat: bool

    @property
    def last_row(self) -> int:
        if self.repeat:
            return FIRST_DATA_ROW - 1 + min(self.section["repeat"].get("max", MAX_ROWS), MAX_ROWS)
        return FIRST_FIELD_ROW - 1 + len(self.fields)

    def column_of(self, key: str) -> str:
        if not self.repeat:
            return get_column_letter(VALUE_COLUMN)
        for i, f in enumerate(self.fields, 1):
            if f["key"] == key:
                return get_column_letter(i)
        return ""

    def row_of(self, key: str) -> int | None:
        for i, f in enumerate(self.fields):
            if f["key"] == key:
                return FIRST_FIELD_ROW + i
        return None


def sheets(definition: dict) -> list[SheetLayout]:
    out, used = [], {META_SHEET.lower(), LISTS_SHEET.lower()}
    for s in definition.get("sections") or []:
        title = (s.get("title") or {}).get("zh") or s["key"]
        base = _BAD_SHEET_CHARS.sub("_", title).strip() or s["key"]
        base = base[:28]
        name, k = base, 1
        while name.lower() in used:
            k += 1
            name = f"{base[:26]}_{k}"
        used.add(name.lower())
        fields = [f for f in s["fields"] if "calc" not in f and f.get("type") != "attachment"]
        if not fields:
            continue
        out.append(SheetLayout(name, s, fields, s.get("repeat") is not None))
    return out


def unit_suffix(f: dict) -> str:
    return f" ({f['unit']})" if f.get("unit") else ""


def labels(f: dict) -> tuple[str, str]:
    label = f.get("label") or {}
    zh = label.get("zh") or f["key"]
    return zh, label.get("en") or zh
