"""Export files with a manifest (R-7.3.4): one data file (CSV, XLSX, JSON or XML) and ``manifest.json`` in a
zip, the manifest giving each file's SHA-256 and size, the row count, the filters, who exported and when, and
the code version. ``verify`` (``manage.py verify_export``) recomputes the hashes.

Generic and app-free (the ground floor): callers hand over column names and an iterator of rows of plain
values (text, numbers, booleans, None). Which rows, scoped how, is the callers' business
(apps/entry/exports.py). Spreadsheet formula injection is neutralised here, once, for every CSV and XLSX the
platform writes (``neutralise``)."""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import re
import subprocess
import tempfile
import uuid
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
FORMATS = ("csv", "xlsx", "json", "xml")
MEDIA_TYPES = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               "json": "application/json", "xml": "application/xml"}
XLSX_MAX_ROWS = 1_000_000  # Excel's sheet holds 1 048 576 rows; a larger export is a CSV
MANIFEST_MAX = 1_000_000  # bytes: a manifest larger than this is not ours
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def neutralise(value):
    """A text cell that a spreadsheet would read as a formula (it starts with = + - @, a tab or a carriage
    return) is prefixed with ``'`` so it stays text (CSV/formula injection, OWASP). Other values pass."""
    if isinstance(value, str) and value[:1] in FORMULA_START:
        return "'" + value
    return value


def _visible(text: str) -> str:
    """Characters XML 1.0 and XLSX cannot hold (NUL, other C0 controls, lone surrogates) as ``\\uXXXX``."""
    return _XML_BAD.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _csv_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(neutralise(value))


def write_csv(columns: list[str], rows: Iterable, fh) -> int:
    """UTF-8 with a BOM (Excel then reads Chinese right), RFC 4180 quoting."""
    text = io.TextIOWrapper(fh, encoding="utf-8", newline="", write_through=True)
    text.write("\ufeff")
    writer = csv.writer(text)
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([_csv_text(v) for v in row])
        count += 1
    text.flush()
    text.detach()
    return count


def write_xlsx(columns: list[str], rows: Iterable, fh, *, sheet: str = "data") -> int:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    ws = book.create_sheet(sheet[:31])
    ws.append(columns)
    count = 0
    for row in rows:
        if count >= XLSX_MAX_ROWS:
            raise OverflowError(f"more than {XLSX_MAX_ROWS} rows: export as CSV")
        ws.append([_visible(neutralise(v)) if isinstance(v, str) else v for v in row])
        count += 1
    book.save(fh)
    return count


def write_json(columns: list[str], rows: Iterable, fh, *, kind: str = "") -> int:
    """``{"kind", "columns", "rows": [{column: value}, …]}``, written row by row."""
    fh.write(b'{"kind":' + json.dumps(kind).encode() + b',"columns":' + json.dumps(columns).encode()
             + b',"rows":[')
    count = 0
    for row in rows:
        fh.write((b"," if count else b"") + json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False,
                                                       allow_nan=False, default=str).encode())
        count += 1
    fh.write(b"]}")
    return count


def write_xml(columns: list[str], rows: Iterable, fh, *, kind: str = "") -> int:
    """``<export kind=…><row><column>value</column>…</row>…</export>``; an empty element with ``nil="true"``
    for no value. Streamed with lxml's ``xmlfile``."""
    from lxml import etree

    count = 0
    with etree.xmlfile(fh, encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element("export", kind=kind):
            for row in rows:
                el = etree.Element("row")
                for name, value in zip(columns, row, strict=True):
                    child = etree.SubElement(el, name)
                    if value is None:
                        child.set("nil", "true")
                    elif isinstance(value, bool):
                        child.text = "true" if value else "false"
                    else:
                        child.text = _visible(str(value))
                xf.write(el)
                count += 1
    return count


WRITERS = {"csv": write_csv, "xlsx": write_xlsx, "json": write_json, "xml": write_xml}


@functools.cache
def code_version() -> str:
    """``CARBONPARK_VERSION`` if set (a deployment stamps it), else the checkout's commit, else "unknown"."""
    if os.environ.get("CARBONPARK_VERSION"):
        return os.environ["CARBONPARK_VERSION"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5, check=False)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass
class Export:
    """A finished export: the zip in a temporary file (deleted when closed), its name and its manifest."""

    file: object
    name: str
    manifest: dict
    manifest_sha256: str = ""  # of manifest.json's bytes as stored: the audit trail records it


def _sha256(fh) -> tuple[str, int]:
    fh.seek(0)
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def build(kind: str, file_format: str, columns: list[str], rows: Iterable, *, filters: dict, exported_by: str,
          exported_at: str, base_name: str) -> Export:
    """Write ``rows`` as ``file_format`` and zip it with its manifest (R-7.3.4). The data file is spooled to
    disk, so a large export costs disk, not memory."""
    if file_format not in WRITERS:
        raise ValueError(file_format)
    data_name = f"{base_name}.{file_format}"
    with tempfile.TemporaryFile() as data:
        if file_format in ("json", "xml"):
            count = WRITERS[file_format](columns, rows, data, kind=kind)
        else:
            count = WRITERS[file_format](columns, rows, data)
        digest, size = _sha256(data)
        manifest = {"format": 1, "exportId": str(uuid.uuid4()), "kind": kind, "fileFormat": file_format,
                    "rows": count, "columns": columns,
                    "filters": filters, "exportedBy": exported_by, "exportedAt": exported_at,
                    "codeVersion": code_version(),
                    "files": [{"name": data_name, "sha256": digest, "size": size}]}
        out = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, who closes it
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
            data.seek(0)
            with z.open(data_name, "w", force_zip64=True) as dest:
                for chunk in iter(lambda: data.read(1 << 20), b""):
                    dest.write(chunk)
            manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
            z.writestr(MANIFEST, manifest_bytes)
    out.seek(0)
    return Export(out, f"{base_name}.zip", manifest, hashlib.sha256(manifest_bytes).hexdigest())


@dataclass
class Verified:
    """What ``check_archive`` found: ``ok`` and a sentence; the manifest and the SHA-256 of its bytes when it
    could be read (for the audit trail's check in ``manage.py verify_export``)."""

    ok: bool
    message: str
    manifest: dict | None = None
    manifest_sha256: str = ""


def verify(path_or_file) -> tuple[bool, str]:
    """(ok, a sentence): ``check_archive`` without the manifest."""
    found = check_archive(path_or_file)
    return found.ok, found.message


def check_archive(path_or_file) -> Verified:
    """Check an export (R-7.3.4): a zip holding ``manifest.json`` and exactly the files it lists, each with the
    SHA-256 and size it gives. An altered manifest that still matches the files (its hashes rewritten too) is
    caught against the audit trail, which records the manifest's own SHA-256 (``manage.py verify_export``)."""
    try:
        z = zipfile.ZipFile(path_or_file)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return Verified(False, f"not an export archive (a zip): {exc}")
    with z:
        names = z.namelist()
        if MANIFEST not in names:
            return Verified(False, "no manifest.json in the archive")
        if len(names) != len(set(names)):
            return Verified(False, "the archive holds two members of the same name")
        info = z.getinfo(MANIFEST)
        if info.file_size > MANIFEST_MAX:
            return Verified(False, "manifest.json is too large to be an export's manifest")
        try:
            raw = z.read(MANIFEST)
            manifest = json.loads(raw)
            files = manifest["files"]
            listed = {f["name"]: (str(f["sha256"]), int(f["size"])) for f in files}
        except (ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            return Verified(False, f"manifest.json cannot be read: {exc}")
        digest_of_manifest = hashlib.sha256(raw).hexdigest()

        def fail(message):
            return Verified(False, message, manifest, digest_of_manifest)

        extra = sorted(set(names) - set(listed) - {MANIFEST})
        if extra:
            return fail(f"files not in the manifest: {', '.join(extra)}")
        for name, (digest, size) in listed.items():
            if name not in names:
                return fail(f"{name} is listed in the manifest but missing from the archive")
            h, n = hashlib.sha256(), 0
            try:
                with z.open(name) as fh:
                    for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                        h.update(chunk)
                        n += len(chunk)
            except (zipfile.BadZipFile, OSError, ValueError) as exc:  # a CRC mismatch: the bytes were changed
                return fail(f"{name} cannot be read (altered?): {exc}")
            if n != size:
                return fail(f"{name} was altered: size {n} bytes, the manifest says {size}")
            if h.hexdigest() != digest:
                return fail(f"{name} was altered: SHA-256 {h.hexdigest()} does not match the manifest's {digest}")
        return Verified(True, (f"OK: {len(listed)} file(s) match the manifest ({manifest.get('kind', '?')}, "
                               f"{manifest.get('rows', '?')} rows, exported {manifest.get('exportedAt', '?')} by "
                               f"{manifest.get('exportedBy', '?')})"), manifest, digest_of_manifest)
