"""What every batch file parser shares: the record fields, the file-level and row-level errors, the metadata
rows and the shaping of cells into a record of interfaces.md §1 (R-7.2.1, R-8.2.1.2). Pure: no Django."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .codes import TEXTS

FIELDS = ("sourceId", "dataCode", "timestamp", "value", "unit", "status", "backfill")
HEADER = FIELDS[:6]  # backfill is optional
META_KEYS = ("park", "period", "producer", "createdAt", "records")
META_RE = re.compile(r"^#\s*([A-Za-z]+)\s*:\s*(.*?)\s*$")
TRUE = frozenset({"true", "1", "yes", "y"})
FALSE = frozenset({"false", "0", "no", "n", ""})
DEFAULT_MAX_BYTES = 100 * 1024 * 1024


def _format(code: str, lang: int, params: dict) -> str:
    text = TEXTS[code][lang]
    values = dict(params)
    for k, v in params.items():  # a Chinese detail defaults to the English one
        if not k.endswith("_zh"):
            values.setdefault(f"{k}_zh", v)
    try:
        return text.format(**values)
    except (KeyError, IndexError, ValueError):
        return text


class FileError(Exception):
    """The file as a whole is malformed: nothing of it is stored (interfaces.md §7). ``code`` is an E91xx."""

    def __init__(self, code: str, **params):
        self.code = code
        self.params = params
        super().__init__(f"{code}: {self.message_en}")

    @property
    def message_zh(self) -> str:
        return _format(self.code, 0, self.params)

    @property
    def message_en(self) -> str:
        return _format(self.code, 1, self.params)


@dataclass(slots=True)
class RowError:
    """One row refused by the parser (the rest of the file goes on): ``row`` as the file counts it (CSV line,
    sheet row, XML line), ``column`` the record field (or the cell) concerned."""

    row: int
    column: str
    code: str
    params: dict = field(default_factory=dict)
    raw: str = ""

    @property
    def message_zh(self) -> str:
        return _format(self.code, 0, self.params)

    @property
    def message_en(self) -> str:
        return _format(self.code, 1, self.params)


@dataclass(slots=True)
class ParsedRecord:
    """One record of interfaces.md §1 (text values as written; the loader types ``value`` by the catalog)."""

    row: int
    record: dict


@dataclass
class Limits:
    """Decompression-bomb and size limits (issue #11: 100 MB after decompression by default). ``max_ratio`` is
    checked once the output passes ``ratio_floor`` bytes, so small files of repeated lines are not refused."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_ratio: int = 200
    ratio_floor: int = 1024 * 1024


@dataclass
class Meta:
    """The metadata of a file: ``# key: value`` rows (CSV, XLSX) or the <batch> attributes (XML)."""

    values: dict = field(default_factory=dict)
    data_rows: int = 0

    def declared_records(self) -> int | None:
        raw = self.values.get("records")
        if raw is None or raw == "":
            return None
        text = str(raw).strip()
        if not text.isascii() or not text.isdigit() or len(text) > 12:
            raise FileError("E9108", value=text[:40])
        return int(text)

    def check_count(self) -> None:
        """E9107 when ``records`` is declared and differs from the data rows read (a truncated file)."""
        declared = self.declared_records()
        if declared is not None and declared != self.data_rows:
            raise FileError("E9107", declared=declared, found=self.data_rows)


def check_meta(meta: Meta, *, park_code: str | None, period: str | None) -> None:
    """The metadata's park and period, when given, agree with the file's own (its name, its folder)."""
    declared = meta.declared_records()  # noqa: F841 - a bad count is refused before any row is read
    found_park = str(meta.values.get("park", "") or "").strip()
    if park_code and found_park and found_park != park_code:
        raise FileError("E9102", found=found_park[:40], expected=park_code, where="metadata park",
                        where_zh="元数据 park")
    found_period = str(meta.values.get("period", "") or "").strip()
    if period and found_period and found_period != period:
        raise FileError("E9124", key="period", found=found_period[:40], expected=period)


def meta_line(text: str, row: int, meta: Meta) -> None:
    m = META_RE.match(text)
    if m is None:
        raise FileError("E9106", row=row)
    key = m.group(1)
    if key in META_KEYS:
        meta.values[key] = m.group(2)
    # other keys are the producer's own notes: kept out, never refused


def check_header(cells: list) -> list[str]:
    """The header's field names, in file order. E9105 for a missing, unknown, repeated or empty column."""
    names = [("" if c is None else str(c)).strip() for c in cells]
    while names and names[-1] == "":  # trailing empty cells (a spreadsheet's habit)
        names.pop()
    missing = [f for f in HEADER if f not in names]
    unknown = [n for n in names if n not in FIELDS]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if missing or unknown or repeated:
        parts_en, parts_zh = [], []
        if missing:
            parts_en.append("missing " + ", ".join(missing))
            parts_zh.append("缺少 " + "、".join(missing))
        if unknown:
            shown = ", ".join(repr(n[:30]) for n in unknown[:5])
            parts_en.append("unknown " + shown)
            parts_zh.append("无法识别的列 " + shown)
        if repeated:
            parts_en.append("repeated " + ", ".join(repeated))
            parts_zh.append("重复的列 " + "、".join(repeated))
        raise FileError("E9105", detail="; ".join(parts_en), detail_zh="；".join(parts_zh))
    return names


def shape(names: list[str], cells, row: int) -> ParsedRecord | RowError:
    """Cells of one data row → a record: empty optional cells are left out (the record's defaults apply),
    ``backfill`` read as a boolean, text stripped. A NUL anywhere refuses the row (E9153)."""
    record = {}
    for name, cell in zip(names, cells, strict=False):
        if cell is None:
            continue
        if type(cell) is str:
            if "\x00" in cell:
                return RowError(row, name, "E9153", {}, cell.replace("\x00", "\\0")[:200])
            cell = cell.strip()
            if cell == "":
                continue
            if name == "backfill":
                low = cell.lower()
                cell = True if low in TRUE else False if low in FALSE else cell
        record[name] = cell
    return ParsedRecord(row, record)
