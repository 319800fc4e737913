"""Builders of batch files for the tests (interfaces.md §7): every hostile file is made here, small on disk."""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from pathlib import Path

HEADER = "sourceId,dataCode,timestamp,value,unit,status"


def name(park: str = "TP01", ext: str = "csv", seq: int = 1, category: str = "CS", period: str = "202611") -> str:
    return f"{park}_{category}_{period}_20261201083000_{seq:03d}.{ext}"


def csv_text(rows, *, meta: dict | None = None, header: str = HEADER) -> str:
    lines = [f"# {k}: {v}" for k, v in (meta or {}).items()]
    lines.append(header)
    lines.extend(rows)
    return "\n".join(lines) + "\n"


def readings(n: int, source: str = "TP01-EM-0001", code: str = "CS010201", start_minute: int = 0) -> list[str]:
    out = []
    for i in range(start_minute, start_minute + n):
        day, rest = divmod(i, 1440)
        out.append(f"{source},{code},2026-11-{1 + day % 28:02d} {rest // 60:02d}:{rest % 60:02d}:00,{i}.5,kWh,N")
    return out


def write(tmp: Path, filename: str, data: bytes | str, encoding: str = "utf-8") -> Path:
    path = tmp / filename
    path.write_bytes(data.encode(encoding) if isinstance(data, str) else data)
    return path


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for n, d in members.items():
            z.writestr(n, d)
    return buf.getvalue()


def gzip_bomb(size: int) -> bytes:
    """``size`` bytes of zeros after decompression, a few KB on disk, built as a stream (never whole in memory)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    block = b"0" * (1 << 20)
    out = [comp.compress(b"sourceId,dataCode,timestamp,value,unit,status\n")]
    left = size
    while left > 0:
        out.append(comp.compress(block[:min(left, len(block))]))
        left -= len(block)
    out.append(comp.flush())
    return b"".join(out)


def zip_bomb(member: str, size: int) -> bytes:
    """One member of ``size`` zero bytes, deflated (about 1/1000 on disk)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z, z.open(member, "w", force_zip64=True) as dst:
        block = b"0" * (1 << 20)
        left = size
        while left > 0:
            dst.write(block[:min(left, len(block))])
            left -= len(block)
    return buf.getvalue()


def xlsx_bytes(rows: list[list], *, merge: str | None = None) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    ws = book.active
    for r in rows:
        ws.append(r)
    if merge:
        ws.merge_cells(merge)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
