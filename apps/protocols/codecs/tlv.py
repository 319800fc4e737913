"""The TLV binary frame of interfaces.md §4 (R-5.2.2.5), both directions.

A frame is one or more records; a record is a run of items (tag: 1 byte, length: 2 bytes big-endian,
value) ending with its checksum item 0x0F, the CRC-32 (zlib's) of every byte of the record before that
item, as a big-endian uint32. A damaged record is reported on its own and the other records of the
frame stand: decoding never raises, and a record whose bytes are damaged (a flipped length byte
included) costs only that record, because the decoder finds the next record by its checksum.

Error codes reported (texts in ``apps.ingestion.errors``): E5001 checksum failed, E5002 frame cut
short, E5003 item with a wrong length or encoding, E5004 record without sourceId, timestamp or value.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

TAG_SOURCE_ID = 0x01
TAG_DATA_CODE = 0x02
TAG_TIMESTAMP = 0x03
TAG_VALUE = 0x04
TAG_TEXT = 0x05
TAG_UNIT = 0x06
TAG_STATUS = 0x07
TAG_FLAGS = 0x08
TAG_CHECKSUM = 0x0F

FLAG_BACKFILL = 0x01
MAX_ITEM_BYTES = 0xFFFF
# 9999-12-31T23:59:59.999Z: the last instant an ISO 8601 timestamp (and Python's datetime) can carry.
MAX_TIMESTAMP_MS = 253_402_300_799_999

_HEADER = struct.Struct(">BH")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_F64 = struct.Struct(">d")
_CHECKSUM_ITEM = 3 + 4
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAMES = {TAG_SOURCE_ID: "sourceId", TAG_DATA_CODE: "dataCode", TAG_TIMESTAMP: "timestamp",
          TAG_VALUE: "numeric value", TAG_TEXT: "text value", TAG_UNIT: "unit", TAG_STATUS: "status",
          TAG_FLAGS: "flags"}
_FIXED_SIZE = {TAG_DATA_CODE: 8, TAG_TIMESTAMP: 8, TAG_VALUE: 8, TAG_FLAGS: 1}
# Resynchronising after a damaged record checks candidate records' CRCs; this caps that work (bytes
# hashed) so a hostile frame cannot make decoding quadratic. Real damage needs a tiny fraction of it.
_RESYNC_BUDGET_PER_BYTE = 32
_RESYNC_BUDGET_BASE = 1 << 20


@dataclass
class TlvRecord:
    """One reading as carried in a TLV record (interfaces.md §4; fields of the §1 record)."""

    source_id: str
    data_code: str | None
    timestamp_ms: int
    value: float | None = None
    text: str | None = None
    unit: str | None = None
    status: str | None = None
    backfill: bool = False


@dataclass(frozen=True)
class TlvError:
    """A record of the frame that was refused: its position in the frame (from 0), the E5xxx code and
    an English detail for logs (interfaces.md §4: the other records of the frame stand)."""

    index: int
    code: str
    detail: str


# --- encoding ------------------------------------------------------------------------------------

def _item(tag: int, value: bytes) -> bytes:
    if len(value) > MAX_ITEM_BYTES:
        raise ValueError(f"{_NAMES.get(tag, hex(tag))} is {len(value)} bytes; a TLV item holds at most "
                         f"{MAX_ITEM_BYTES}")
    return _HEADER.pack(tag, len(value)) + value


def _ascii(text: str, what: str) -> bytes:
    try:
        return text.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"{what} must be ASCII: {text!r}") from None


def encode_record(rec: TlvRecord) -> bytes:
    """One record of interfaces.md §4, ending with its 0x0F CRC-32 item.

    Items go out in tag order; the flags item (0x08) is sent only when a bit is set (absent means 0).
    Raises ValueError for what the decoder would refuse (exactly one of value/text, a dataCode of 8
    ASCII characters, a timestamp from 0 to 9999-12-31, items of at most 65 535 bytes).
    """
    if not isinstance(rec.source_id, str):
        raise ValueError("source_id must be a string")
    if (rec.value is None) == (rec.text is None):
        raise ValueError("a record carries exactly one of value (number) and text")
    if isinstance(rec.timestamp_ms, bool) or not isinstance(rec.timestamp_ms, int) \
            or not 0 <= rec.timestamp_ms <= MAX_TIMESTAMP_MS:
        raise ValueError(f"timestamp_ms must be an integer from 0 to {MAX_TIMESTAMP_MS}: {rec.timestamp_ms!r}")
    parts = [_item(TAG_SOURCE_ID, rec.source_id.encode("utf-8"))]
    if rec.data_code is not None:
        code = _ascii(rec.data_code, "data_code")
        if len(code) != 8:
            raise ValueError(f"data_code must be 8 characters: {rec.data_code!r}")
        parts.append(_item(TAG_DATA_CODE, code))
    parts.append(_item(TAG_TIMESTAMP, _U64.pack(rec.timestamp_ms)))
    if rec.value is not None:
        if isinstance(rec.value, bool) or not isinstance(rec.value, int | float):
            raise ValueError(f"value must be a number: {rec.value!r}")
        parts.append(_item(TAG_VALUE, _F64.pack(float(rec.value))))
    else:
        parts.append(_item(TAG_TEXT, rec.text.encode("utf-8")))
    if rec.unit is not None:
        parts.append(_item(TAG_UNIT, rec.unit.encode("utf-8")))
    if rec.status is not None:
        parts.append(_item(TAG_STATUS, _ascii(rec.status, "status")))
    if rec.backfill:
        parts.append(_item(TAG_FLAGS, bytes([FLAG_BACKFILL])))
    body = b"".join(parts)
    return body + _item(TAG_CHECKSUM, _U32.pack(zlib.crc32(body)))


def encode_frame(records: Iterable[TlvRecord]) -> bytes:
    """A frame of interfaces.md §4: the records' encodings one after another."""
    return b"".join(encode_record(rec) for rec in records)


# --- decoding ------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Scan:
    """Where a record that starts at ``start`` ends when its items are followed to the first 0x0F item.

    outcome: "ok" (checksum matches), "crc" (a 4-byte checksum that does not match), "sum_len" (a
    checksum item of another length), "cut" (an item header or value runs past the end of the frame).
    """

    start: int
    end: int
    outcome: str
    items: list[tuple[int, int, int]]
    detail: str = ""


def _scan(data: bytes, view: memoryview, start: int) -> _Scan:
    n = len(data)
    items: list[tuple[int, int, int]] = []
    pos = start
    while True:
        if pos + 3 > n:
            return _Scan(start, n, "cut", items, f"an item header at byte {pos} runs past the end of the frame "
                                                 f"({n} bytes)")
        tag, length = _HEADER.unpack_from(data, pos)
        end = pos + 3 + length
        if end > n:
            return _Scan(start, n, "cut", items, f"item 0x{tag:02X} at byte {pos} declares {length} bytes, "
                                                 f"past the end of the frame ({n} bytes)")
        if tag == TAG_CHECKSUM:
            if length != 4:
                return _Scan(start, end, "sum_len", items, f"the checksum item at byte {pos} is {length} bytes "
                                                           "long, not 4, so the record cannot be verified")
            sent = _U32.unpack_from(data, pos + 3)[0]
            computed = zlib.crc32(view[start:pos])
            if sent != computed:
                return _Scan(start, end, "crc", items, f"CRC-32 of bytes {start}..{pos - 1} is 0x{computed:08X}, "
                                                       f"the record says 0x{sent:08X}")
            return _Scan(start, end, "ok", items)
        items.append((tag, pos + 3, end))
        pos = end


class _Resync:
    """Finds where the next intact record begins after a damaged one, by its checksum rather than by the
    damaged record's own (possibly corrupted) lengths."""

    def __init__(self, data: bytes, view: memoryview):
        self.data, self.view = data, view
        self.terminal: list[int] | None = None
        self.budget = _RESYNC_BUDGET_BASE + _RESYNC_BUDGET_PER_BYTE * len(data)

    def _terminals(self) -> list[int]:
        # terminal[i]: offset of the 4-byte checksum item reached by following items from offset i, or -1.
        data, n = self.data, len(self.data)
        terminal = [-1] * (n + 1)
        for i in range(n - 3, -1, -1):
            end = i + 3 + ((data[i + 1] << 8) | data[i + 2])
            if end > n:
                continue
            if data[i] == TAG_CHECKSUM:
                if end - i == _CHECKSUM_ITEM:
                    terminal[i] = i
            else:
                terminal[i] = terminal[end]
        return terminal

    def next_intact(self, start: int) -> int | None:
        """The first offset >= start where a record with a matching checksum begins; len(data) when there
        is none; None when the work budget is spent (the caller then trusts the damaged record's lengths)."""
        if self.terminal is None:
            self.terminal = self._terminals()
        terminal, n = self.terminal, len(self.data)
        for s in range(start, n):
            k = terminal[s]
            if k <= s:  # none, or a bare checksum item: 0F 00 04 00 00 00 00 is a CRC-valid empty record
                continue
            self.budget -= k - s
            if self.budget < 0:
                return None
            if zlib.crc32(self.view[s:k]) == _U32.unpack_from(self.data, k + 3)[0]:
                return s
        return n


def _record(index: int, data: bytes, items: list[tuple[int, int, int]]) -> TlvRecord | TlvError:
    """Fields of a record whose checksum matched; E5003 for a wrong length or encoding, E5004 for a
    missing field. Unknown tags are skipped (interfaces.md §4)."""
    fields: dict[int, object] = {}
    for tag, a, b in items:
        name = _NAMES.get(tag)
        if name is None:
            continue
        where = f"{name} (tag 0x{tag:02X}) at byte {a - 3}"
        if tag in fields:
            return TlvError(index, "E5003", f"{where} appears a second time in the record")
        raw = data[a:b]
        size = _FIXED_SIZE.get(tag)
        if size is not None and len(raw) != size:
            return TlvError(index, "E5003", f"{where} is {len(raw)} bytes, expected {size}")
        try:
            if tag in (TAG_SOURCE_ID, TAG_TEXT, TAG_UNIT):
                fields[tag] = raw.decode("utf-8")
            elif tag in (TAG_DATA_CODE, TAG_STATUS):
                fields[tag] = raw.decode("ascii")
            elif tag == TAG_TIMESTAMP:
                ms = _U64.unpack(raw)[0]
                if ms > MAX_TIMESTAMP_MS:
                    return TlvError(index, "E5003", f"{where} is {ms} ms, after 9999-12-31T23:59:59.999Z")
                fields[tag] = ms
            elif tag == TAG_VALUE:
                fields[tag] = _F64.unpack(raw)[0]
            else:
                fields[tag] = bool(raw[0] & FLAG_BACKFILL)
        except UnicodeDecodeError as exc:
            encoding = "ASCII" if tag in (TAG_DATA_CODE, TAG_STATUS) else "UTF-8"
            return TlvError(index, "E5003", f"{where} is not valid {encoding} (byte {a + exc.start})")
    if TAG_VALUE in fields and TAG_TEXT in fields:
        return TlvError(index, "E5003", "the record carries both a numeric value (0x04) and a text value (0x05)")
    missing = [label for label, present in (("sourceId (0x01)", TAG_SOURCE_ID in fields),
                                            ("timestamp (0x03)", TAG_TIMESTAMP in fields),
                                            ("value (0x04 or 0x05)", TAG_VALUE in fields or TAG_TEXT in fields))
               if not present]
    if missing:
        return TlvError(index, "E5004", "the record has no " + ", no ".join(missing))
    return TlvRecord(source_id=fields[TAG_SOURCE_ID], data_code=fields.get(TAG_DATA_CODE),
                     timestamp_ms=fields[TAG_TIMESTAMP], value=fields.get(TAG_VALUE), text=fields.get(TAG_TEXT),
                     unit=fields.get(TAG_UNIT), status=fields.get(TAG_STATUS),
                     backfill=fields.get(TAG_FLAGS, False))


def _damaged(data: bytes, view: memoryview, scan: _Scan, limit: int) -> list[tuple[int, int, str, str]]:
    """The damaged bytes from ``scan.start`` up to ``limit`` (the next intact record, or the end) as
    (start, end, code, detail), one per damaged record.

    Several records sent with bad checksums (a broken encoder, say) each end at their own 4-byte checksum
    item and each get an error. A piece without a sourceId item is not a record of its own but part of
    its neighbour: damage that turns a tag into 0x0F makes a checksum item where none was sent.
    """
    n = len(data)
    pieces: list[tuple[int, int, str, str, bool]] = []
    while True:
        start = scan.start
        if scan.outcome == "crc" and scan.end <= limit:
            end, code, detail = scan.end, "E5001", scan.detail
        elif scan.outcome == "cut" and limit == n:
            end, code, detail = n, "E5002", f"the frame ends inside this record: {scan.detail}"
        else:
            end, code = limit, "E5001"
            detail = f"bytes {start}..{limit - 1} do not form a record with a matching checksum"
            if scan.outcome == "sum_len":
                detail += f" ({scan.detail})"
        has_source = any(tag == TAG_SOURCE_ID and a < end for tag, a, _ in scan.items)
        pieces.append((start, end, code, detail, has_source))
        if end >= limit:
            break
        scan = _scan(data, view, end)
        if scan.outcome == "ok":  # a bare checksum item, or the resync budget was spent: the caller decodes it
            break

    def join(a, b):
        code = "E5002" if "E5002" in (a[2], b[2]) else "E5001"
        return (a[0], b[1], code, f"bytes {a[0]}..{b[1] - 1} do not form a record with a matching checksum",
                a[4] or b[4])

    merged: list[tuple[int, int, str, str, bool]] = []
    carry = None
    for piece in pieces:
        if carry is not None:
            piece, carry = join(carry, piece), None
        elif not piece[4]:
            if merged:
                merged[-1] = join(merged[-1], piece)
            else:
                carry = piece
            continue
        merged.append(piece)
    if carry is not None:
        merged.append(carry)
    return [piece[:4] for piece in merged]


def decode_frame(data: bytes) -> list[TlvRecord | TlvError]:
    """Decode a frame of interfaces.md §4 (R-5.2.2.5): one entry per record, in order; never raises.

    A record whose checksum fails is a TlvError E5001 and the other records stand; a frame that ends
    inside a record gives E5002 for that last record; E5003 and E5004 are checked only once the record's
    checksum matched. When damage (a flipped length byte, say) hides where a record ends, the bytes up to
    the next record with a matching checksum count as the one damaged record.
    """
    data = bytes(data)
    view = memoryview(data)
    n = len(data)
    out: list[TlvRecord | TlvError] = []
    resync = _Resync(data, view)
    pos = 0
    while pos < n:
        scan = _scan(data, view, pos)
        if scan.outcome == "ok":
            out.append(_record(len(out), data, scan.items))
            pos = scan.end
            continue
        nxt = resync.next_intact(pos + 1)
        for _start, end, code, detail in _damaged(data, view, scan, scan.end if nxt is None else nxt):
            out.append(TlvError(len(out), code, detail))
            pos = end
    return out


def to_reading(rec: TlvRecord) -> dict:
    """The reading record of interfaces.md §1 for a decoded TLV record: timestamp in ISO 8601 UTC with
    milliseconds and an explicit offset; dataCode, unit and status only when the record carried them."""
    out: dict = {"sourceId": rec.source_id}
    if rec.data_code is not None:
        out["dataCode"] = rec.data_code
    stamp = _EPOCH + timedelta(milliseconds=rec.timestamp_ms)
    out["timestamp"] = stamp.isoformat(timespec="milliseconds")
    out["value"] = rec.value if rec.value is not None else rec.text
    if rec.unit is not None:
        out["unit"] = rec.unit
    if rec.status is not None:
        out["status"] = rec.status
    out["backfill"] = bool(rec.backfill)
    return out
