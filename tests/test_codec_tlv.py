"""The TLV frame codec (interfaces.md §4, R-5.2.2.5): golden bytes, damaged records, fuzzing."""

import math
import random
import struct
import zlib

import pytest

from apps.protocols.codecs.tlv import (
    TlvError,
    TlvRecord,
    decode_frame,
    encode_frame,
    encode_record,
    to_reading,
)

TS = 1795399500123  # 2026-11-23T02:05:00.123Z


def item(tag: int, value: bytes) -> bytes:
    return struct.pack(">BH", tag, len(value)) + value


def sealed(*items: bytes) -> bytes:
    """A record built by hand: the items, then the 0x0F item with the CRC-32 of all of them."""
    body = b"".join(items)
    return body + item(0x0F, struct.pack(">I", zlib.crc32(body)))


def ts(ms: int = TS) -> bytes:
    return item(0x03, struct.pack(">Q", ms))


def num(value: float = 1.5) -> bytes:
    return item(0x04, struct.pack(">d", value))


SID = item(0x01, b"JSTZ01-EM-0001")

RECORDS = [
    TlvRecord("JSTZ01-EM-0001", "CS010201", TS, value=1234.5, unit="kWh", status="N"),
    TlvRecord("JSTZ01-GW-0002:ch3", None, TS + 60_000, text="运行", status="M"),
    TlvRecord("JSTZ01-EM-0003", "CS010202", TS - 3_600_000, value=-0.25, unit="MWh", backfill=True),
]


def test_golden_record_bytes():
    rec = TlvRecord("JSTZ01-EM-0001", "CS010201", TS, value=1234.5, unit="kWh", status="N", backfill=True)
    body = bytes.fromhex(
        "01000e" + b"JSTZ01-EM-0001".hex()
        + "020008" + b"CS010201".hex()
        + "030008" + "000001a20626415b"
        + "040008" + "40934a0000000000"
        + "060003" + b"kWh".hex()
        + "070001" + b"N".hex()
        + "080001" + "01"
    )
    expected = body + b"\x0f\x00\x04" + zlib.crc32(body).to_bytes(4, "big")
    assert encode_record(rec) == expected
    assert expected.hex().endswith("0f00043c380a57")
    assert decode_frame(expected) == [rec]


def test_round_trip_frame():
    frame = encode_frame(RECORDS)
    assert decode_frame(frame) == RECORDS
    assert decode_frame(bytearray(frame)) == RECORDS
    assert decode_frame(b"") == []


def test_round_trip_edges():
    recs = [
        TlvRecord("a", None, 0, value=0.0),
        TlvRecord("x" * 64, "ABCDEFGH", 253_402_300_799_999, text=""),
        TlvRecord("s", None, TS, text="长" * 20_000),  # 60 000 UTF-8 bytes: one item still holds it
        TlvRecord("n", None, TS, value=float("inf"), unit="", status=""),
    ]
    assert decode_frame(encode_frame(recs)) == recs
    [out] = decode_frame(encode_record(TlvRecord("n", None, TS, value=float("nan"))))
    assert math.isnan(out.value)


def test_flags_item_only_when_backfill():
    plain = encode_record(TlvRecord("a", None, TS, value=1.0))
    assert b"\x08\x00\x01" not in plain
    assert decode_frame(sealed(SID, ts(), num(), item(0x08, b"\xfe")))[0].backfill is False  # other bits reserved
    assert decode_frame(sealed(SID, ts(), num(), item(0x08, b"\x03")))[0].backfill is True


def test_encode_refuses_what_decoding_would_refuse():
    bad = [
        TlvRecord("a", None, TS),
        TlvRecord("a", None, TS, value=1.0, text="x"),
        TlvRecord("a", "CS01020", TS, value=1.0),
        TlvRecord("a", "CS01020É", TS, value=1.0),
        TlvRecord("a", None, -1, value=1.0),
        TlvRecord("a", None, 253_402_300_800_000, value=1.0),
        TlvRecord("a", None, TS, value="1.0"),
        TlvRecord("a", None, TS, value=1.0, status="É"),
        TlvRecord("a", None, TS, text="x" * 65_536),
    ]
    for rec in bad:
        with pytest.raises(ValueError):
            encode_record(rec)


def test_checksum_failure_leaves_the_other_records():
    parts = [encode_record(r) for r in RECORDS]
    middle = bytearray(parts[1])
    middle[-1] ^= 0x01  # the CRC itself
    out = decode_frame(parts[0] + bytes(middle) + parts[2])
    assert out[0] == RECORDS[0] and out[2] == RECORDS[2]
    assert isinstance(out[1], TlvError) and (out[1].index, out[1].code) == (1, "E5001")

    middle = bytearray(parts[1])
    middle[5] ^= 0x40  # a byte of the sourceId
    out = decode_frame(parts[0] + bytes(middle) + parts[2])
    assert [type(e) for e in out] == [TlvRecord, TlvError, TlvRecord] and out[1].code == "E5001"


def test_damaged_length_costs_only_its_record():
    parts = [encode_record(r) for r in RECORDS]
    first = bytearray(parts[0])
    first[1] = 0x01  # sourceId length 0x000E -> 0x010E: swallows the next records if trusted
    out = decode_frame(bytes(first) + parts[1] + parts[2])
    assert out[1:] == RECORDS[1:]
    assert out[0] == TlvError(0, "E5001", out[0].detail)

    first = bytearray(parts[0])
    first[2] = 0x02  # shorter: the rest of the record is read as items
    out = decode_frame(bytes(first) + parts[1] + parts[2])
    assert out[1:] == RECORDS[1:] and out[0].code == "E5001"


def test_every_record_with_a_bad_checksum_is_reported():
    # A broken encoder: every CRC wrong. Each record still ends at its own checksum item and is counted.
    frame = b"".join(encode_record(r)[:-4] + b"\x00\x00\x00\x00" for r in RECORDS)
    assert [(e.index, e.code) for e in decode_frame(frame)] == [(0, "E5001"), (1, "E5001"), (2, "E5001")]


def test_damage_that_forges_a_checksum_item():
    # Tag 0x01 of a 4-byte sourceId turned into 0x0F reads as a checksum item: still one damaged record.
    recs = [TlvRecord("S001", None, TS, value=1.0), TlvRecord("S002", None, TS, value=2.0)]
    first = bytearray(encode_record(recs[0]))
    first[0] = 0x0F
    out = decode_frame(bytes(first) + encode_record(recs[1]))
    assert out[0].code == "E5001" and out[1:] == recs[1:]
    # The same forged item in the middle of a record.
    rec = encode_record(TlvRecord("S001", None, TS, value=1.0, unit="kWh/"))
    damaged = bytearray(rec)
    damaged[rec.index(b"\x06\x00\x04")] = 0x0F
    out = decode_frame(bytes(damaged) + encode_record(recs[1]))
    assert out[0].code == "E5001" and out[1:] == recs[1:]


def test_bare_checksum_item_is_an_empty_record():
    assert decode_frame(b"\x0f\x00\x04\x00\x00\x00\x00")[0].code == "E5004"


def test_truncated_frame():
    frame = encode_frame(RECORDS)
    cut = len(encode_record(RECORDS[0])) + 10
    out = decode_frame(frame[:cut])
    assert out[0] == RECORDS[0]
    assert out[1] == TlvError(1, "E5002", out[1].detail) and len(out) == 2

    out = decode_frame(frame + item(0x01, b"JSTZ01-EM-0004"))  # bytes after the last checksum, no checksum
    assert out[:3] == RECORDS and out[3].code == "E5002" and len(out) == 4
    assert decode_frame(frame + b"\x0f\x00")[3].code == "E5002"  # header cut short


def test_unknown_tags_are_skipped():
    record = sealed(item(0x20, b"future"), SID, item(0x09, b""), ts(), item(0xFF, b"\x00" * 300), num(2.0))
    assert decode_frame(record) == [TlvRecord("JSTZ01-EM-0001", None, TS, value=2.0)]


@pytest.mark.parametrize(("items", "what"), [
    ((SID, item(0x03, b"\x00" * 7), num()), "timestamp"),
    ((SID, ts(), item(0x04, b"\x00" * 4)), "numeric value"),
    ((SID, item(0x02, b"CS01020"), ts(), num()), "dataCode"),
    ((SID, ts(), num(), item(0x08, b"\x01\x00")), "flags"),
    ((item(0x01, b"JSTZ\xff"), ts(), num()), "sourceId"),
    ((SID, ts(), item(0x05, b"\xe4\xb8")), "text value"),
    ((SID, item(0x02, b"CS01020\xc9"), ts(), num()), "dataCode"),
    ((SID, ts(), num(), item(0x07, b"\xc9")), "status"),
    ((SID, ts(), num(), item(0x06, b"\xc0\x80")), "unit"),
    ((SID, ts(), num(), num()), "numeric value"),
    ((SID, ts(), num(), item(0x05, b"on")), "both"),
    ((SID, ts(253_402_300_800_000), num()), "timestamp"),
])
def test_wrong_length_or_encoding_is_e5003(items, what):
    [err] = decode_frame(sealed(*items))
    assert isinstance(err, TlvError) and err.code == "E5003" and what in err.detail


def test_checksum_is_verified_before_lengths():
    record = bytearray(sealed(SID, item(0x03, b"\x00" * 7), num()))
    record[-1] ^= 0xFF
    [err] = decode_frame(bytes(record))
    assert err.code == "E5001"


@pytest.mark.parametrize(("items", "missing"), [
    ((ts(), num()), "sourceId"),
    ((SID, num()), "timestamp"),
    ((SID, ts(), item(0x06, b"kWh")), "value"),
    ((), "sourceId (0x01), no timestamp (0x03), no value"),
])
def test_missing_field_is_e5004(items, missing):
    frame = encode_record(RECORDS[0]) + sealed(*items) + encode_record(RECORDS[2])
    out = decode_frame(frame)
    assert out[0] == RECORDS[0] and out[2] == RECORDS[2]
    assert out[1].code == "E5004" and out[1].index == 1 and missing in out[1].detail


def test_checksum_item_of_wrong_length():
    body = SID + ts() + num()
    out = decode_frame(body + item(0x0F, struct.pack(">I", zlib.crc32(body))[:3]) + encode_record(RECORDS[0]))
    assert out[0].code == "E5001" and out[1] == RECORDS[0]


def test_to_reading():
    assert to_reading(RECORDS[0]) == {
        "sourceId": "JSTZ01-EM-0001", "dataCode": "CS010201", "timestamp": "2026-11-23T02:05:00.123+00:00",
        "value": 1234.5, "unit": "kWh", "status": "N", "backfill": False,
    }
    assert to_reading(RECORDS[1]) == {
        "sourceId": "JSTZ01-GW-0002:ch3", "timestamp": "2026-11-23T02:06:00.123+00:00", "value": "运行",
        "status": "M", "backfill": False,
    }
    reading = to_reading(TlvRecord("a", None, 0, value=3.0, backfill=True))
    assert reading == {"sourceId": "a", "timestamp": "1970-01-01T00:00:00.000+00:00", "value": 3.0, "backfill": True}
    assert list(to_reading(RECORDS[0])) == ["sourceId", "dataCode", "timestamp", "value", "unit", "status",
                                            "backfill"]


# --- fuzzing: never raise, and damage stays inside its record -----------------------------------

def _check_shape(out):
    assert all(isinstance(e, TlvRecord | TlvError) for e in out)
    assert [e.index for e in out if isinstance(e, TlvError)] == [i for i, e in enumerate(out)
                                                                  if isinstance(e, TlvError)]


def test_fuzz_random_bytes():
    rng = random.Random(20261123)
    frame = encode_frame(RECORDS)
    for _ in range(3000):
        size = rng.randrange(0, 400)
        data = bytes(rng.randrange(256) for _ in range(size))
        if rng.random() < 0.3:  # random bytes spliced into a valid frame
            at = rng.randrange(len(frame))
            data = frame[:at] + data + frame[at:]
        _check_shape(decode_frame(data))


def test_fuzz_truncation_at_every_offset():
    parts = [encode_record(r) for r in RECORDS]
    frame = b"".join(parts)
    bounds = [sum(len(p) for p in parts[:i]) for i in range(len(parts) + 1)]
    for cut in range(len(frame) + 1):
        out = decode_frame(frame[:cut])
        _check_shape(out)
        whole = sum(1 for b in bounds[1:] if b <= cut)
        assert out[:whole] == RECORDS[:whole]
        if cut in bounds:
            assert len(out) == whole
        else:
            assert len(out) == whole + 1 and out[-1] == TlvError(whole, "E5002", out[-1].detail)


def test_fuzz_flips_stay_inside_their_record():
    parts = [encode_record(r) for r in RECORDS]
    frame = b"".join(parts)
    # The resynchronisation relies on 0F 00 04 (a checksum item header) appearing only where records end.
    assert frame.count(b"\x0f\x00\x04") == len(parts)
    owner = [i for i, p in enumerate(parts) for _ in p]
    rng = random.Random(4242)
    cases = [(at, 1 << bit) for at in range(len(frame)) for bit in range(8)]
    cases += [(rng.randrange(len(frame)), rng.randrange(1, 256)) for _ in range(2000)]
    for at, mask in cases:
        damaged = bytearray(frame)
        damaged[at] ^= mask
        out = decode_frame(bytes(damaged))
        _check_shape(out)
        hit = owner[at]
        assert len(out) == len(RECORDS), (at, mask, out)
        for i, entry in enumerate(out):
            if i == hit:
                assert isinstance(entry, TlvError) and entry.code in ("E5001", "E5002"), (at, mask, entry)
            else:
                assert entry == RECORDS[i], (at, mask, out)


def test_hostile_frame_stays_linear():
    # Zero bytes chain 3-byte items to a checksum item far away: checking every start would be quadratic.
    data = b"\x00" * 200_001 + b"\x0f\x00\x04\x00\x00\x00\x00"
    out = decode_frame(data)
    assert [e.code for e in out] == ["E5001"]
    assert decode_frame(b"\x00" * 200_000) == [TlvError(0, "E5002", decode_frame(b"\x00" * 200_000)[0].detail)]
