"""CSV batch files (interfaces.md §7, R-7.2.1): UTF-8 with or without BOM, or GB18030 as Chinese Excel saves
it; ``# key: value`` metadata rows, then the header, then one record per row. Streamed. Pure."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator

from .common import FileError, Meta, ParsedRecord, RowError, check_header, meta_line, shape

CHUNK = 1 << 20
BOM = codecs.BOM_UTF8


def detect_encoding(path: str) -> str:
    """``utf-8-sig`` with a BOM; else ``utf-8`` if the whole file decodes strictly; else ``gb18030`` if it does;
    else E9104 with the offset where GB18030 failed. One cheap pass per candidate (GB18030 only when needed)."""
    with open(path, "rb") as fh:
        if fh.read(3) == BOM:
            encoding = "utf-8-sig"
            candidates = ["utf-8"]  # a BOM promises UTF-8: the rest must be
        else:
            encoding = None
            candidates = ["utf-8", "gb18030"]
    failed_at = 0
    for candidate in candidates:
        decoder = codecs.getincrementaldecoder(candidate)("strict")
        offset = 0
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    decoder.decode(chunk)
                    offset += len(chunk)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            failed_at = offset + exc.start
            continue
        return encoding or candidate
    raise FileError("E9104", offset=failed_at)


def read_csv(path: str, meta: Meta) -> Iterator[ParsedRecord | RowError]:
    """Records and row errors of a CSV file, in file order; ``meta`` filled from the metadata rows and
    counting the data rows. File-level malformations raise FileError (E9104, E9105, E9106, E9121, E9123)."""
    encoding = detect_encoding(path)
    with open(path, encoding=encoding, newline="") as fh:
        line = 0
        header_line = None
        while True:
            text = fh.readline()
            if text == "":
                raise FileError("E9121")
            line += 1
            stripped = text.strip()
            if stripped.startswith(("#", '"#')):
                meta_line(_meta_text(stripped), line, meta)
                continue
            if stripped == "":
                continue
            header_line = text
            break
        try:
            header = next(csv.reader([header_line]))
        except csv.Error as exc:
            raise FileError("E9123", line=line, detail=str(exc)[:120]) from None
        names = check_header(header)
        width = len(names)
        reader = csv.reader(fh, strict=False)
        base = line  # reader.line_num counts from the line after the header
        try:
            for cells in reader:
                if not cells or (len(cells) == 1 and cells[0].strip() == ""):
                    continue  # a blank line
                row = base + reader.line_num
                meta.data_rows += 1
                if len(cells) != width:
                    # Trailing empty cells beyond the header (a spreadsheet's habit) are forgiven.
                    if len(cells) > width and not any(c.strip() for c in cells[width:]):
                        cells = cells[:width]
                    else:
                        yield RowError(row, "", "E9151", {"found": len(cells), "expected": width},
                                       ",".join(cells)[:500])
                        continue
                yield shape(names, cells, row)
        except csv.Error as exc:
            raise FileError("E9123", line=base + reader.line_num, detail=str(exc)[:120]) from None
        except UnicodeDecodeError as exc:  # detect_encoding read the same bytes: only if the file changed since
            raise FileError("E9104", offset=exc.start) from None


def _meta_text(text: str) -> str:
    """A metadata row as Excel saves it may be quoted and padded with empty cells: ``"# producer: A, B",,,``."""
    try:
        cells = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        return text
    if cells and not any(c.strip() for c in cells[1:]):
        return cells[0].strip()
    return text
