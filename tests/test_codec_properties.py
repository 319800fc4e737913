"""Property-based fuzzing of every codec and of the JSON record decoder (issue #7, keep it fixed).

For any bytes, and for valid frames with bytes flipped, cut, inserted or spliced, each codec answers with
its own result or error type and never raises anything else; what is encoded decodes back to the same
thing. The short profile runs in every ``make test``; ``make fuzz`` (HYPOTHESIS_PROFILE=fuzz) runs at least
100 000 inputs per property (tests/fuzzing.py)."""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime

from hypothesis import assume, given
from hypothesis import strategies as st

from apps.protocols.codecs import dlt645, envelope, hj212, modbus, tlv
from apps.protocols.codecs.dlt645.identifiers import _ENERGY_2007, _INSTANT_2007, _SPECIAL_2007, _TABLE_1997
from apps.protocols.codecs.dlt645.identifiers import lookup as dlt645_lookup
from apps.protocols.codecs.hj212.constants import KNOWN_CNS
from tests.fuzzing import scaled  # also loads the hypothesis profile

# --- hostile bytes ---------------------------------------------------------------------------------


@st.composite
def mutated(draw, seeds: st.SearchStrategy[bytes]) -> bytes:
    """A valid encoding with a few random edits: a byte changed, a run inserted or deleted, the end cut,
    a slice repeated, or two encodings spliced: what a noisy line or a hostile sender produces."""
    data = bytearray(draw(seeds))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "repeat", "splice"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            i = at % len(data)
            data[i] ^= draw(st.integers(1, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(max_size=16))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[at:]
        elif op == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 32))]
        elif op == "splice":
            data[at:at] = draw(seeds)
    return bytes(data)


def hostile(seeds: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=512), mutated(seeds))


# --- TLV (interfaces.md §4) ------------------------------------------------------------------------

ASCII_CODE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=8, max_size=8)
SHORT_TEXT = st.text(max_size=40)


@st.composite
def tlv_records(draw) -> tlv.TlvRecord:
    numeric = draw(st.booleans())
    return tlv.TlvRecord(
        source_id=draw(SHORT_TEXT),
        data_code=draw(st.none() | ASCII_CODE),
        timestamp_ms=draw(st.integers(0, tlv.MAX_TIMESTAMP_MS)),
        value=draw(st.floats(allow_nan=True, allow_infinity=True)) if numeric else None,
        text=None if numeric else draw(SHORT_TEXT),
        unit=draw(st.none() | SHORT_TEXT),
        status=draw(st.none() | st.text(st.characters(max_codepoint=0x7F), max_size=4)),
        backfill=draw(st.booleans()),
    )


TLV_FRAMES = st.lists(tlv_records(), min_size=1, max_size=4).map(tlv.encode_frame)


def _same_record(a: tlv.TlvRecord, b: tlv.TlvRecord) -> bool:
    if a.value is not None and b.value is not None and math.isnan(a.value):
        return math.isnan(b.value) and struct.pack(">d", a.value) == struct.pack(">d", b.value) \
            and a == tlv.TlvRecord(**{**b.__dict__, "value": a.value})
    return a == b


@given(hostile(TLV_FRAMES))
def test_tlv_decoder_never_raises(data):
    for item in tlv.decode_frame(data):
        assert isinstance(item, tlv.TlvRecord | tlv.TlvError)
        if isinstance(item, tlv.TlvRecord):
            reading = tlv.to_reading(item)
            assert reading["sourceId"] == item.source_id
        else:
            assert item.code.startswith("E5")


@scaled(0.25)
@given(st.lists(tlv_records(), min_size=1, max_size=4))
def test_tlv_round_trip(records):
    decoded = tlv.decode_frame(tlv.encode_frame(records))
    assert len(decoded) == len(records)
    assert all(_same_record(a, b) for a, b in zip(records, decoded, strict=True)), (records, decoded)


# --- CPE1 envelope (interfaces.md §5) --------------------------------------------------------------

KEYS = st.binary(min_size=32, max_size=32)
KEY_IDS = st.text(st.characters(max_codepoint=0x7F), min_size=1, max_size=255)
CONTENT_TYPES = st.sampled_from(sorted(envelope.CONTENT_TYPES))


@st.composite
def sealed_envelopes(draw):
    key, source = draw(KEYS), draw(SHORT_TEXT)
    plain = draw(st.binary(max_size=256))
    data = envelope.seal(plain, key=key, key_id=draw(KEY_IDS), content_type=draw(CONTENT_TYPES), source_id=source,
                         nonce=draw(st.binary(min_size=12, max_size=12)))
    return data, key, source, plain


@given(hostile(sealed_envelopes().map(lambda t: t[0])), KEYS, SHORT_TEXT)
def test_envelope_never_raises_anything_but_envelope_error(data, key, source):
    try:
        env = envelope.parse(data)
        envelope.open_envelope(env, key, source)
    except envelope.EnvelopeError as exc:
        assert exc.code in ("E5101", "E5103", "E5105")


@scaled(0.25)
@given(sealed_envelopes(), SHORT_TEXT)
def test_envelope_round_trip_and_binding(sealed, other_source):
    data, key, source, plain = sealed
    assert envelope.is_envelope(data)
    assert envelope.open_envelope(envelope.parse(data), key, source) == plain
    if other_source != source:
        try:
            envelope.open_envelope(envelope.parse(data), key, other_source)
            raise AssertionError("an envelope opened for another source")
        except envelope.EnvelopeError as exc:
            assert exc.code == "E5103"


@scaled(0.25)
@given(sealed_envelopes(), st.data())
def test_envelope_any_altered_byte_is_refused(sealed, data):
    raw, key, source, _plain = sealed
    i = data.draw(st.integers(0, len(raw) - 1))
    altered = bytearray(raw)
    altered[i] ^= data.draw(st.integers(1, 255))
    try:
        envelope.open_envelope(envelope.parse(bytes(altered)), key, source)
        raise AssertionError(f"byte {i} altered and the envelope still opened")
    except envelope.EnvelopeError:
        pass


# --- HJ 212-2017 ------------------------------------------------------------------------------------

HJ_TOKEN = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_"),
                   min_size=1, max_size=16)
HJ_VALUE = st.text(st.sampled_from("ABCDEFabcdef0123456789.-_"), max_size=12)


@st.composite
def hj212_packets(draw) -> hj212.Packet:
    groups = draw(st.lists(st.lists(st.tuples(HJ_TOKEN, HJ_VALUE), min_size=1, max_size=4), max_size=4))
    split = draw(st.booleans())
    pnum = draw(st.integers(1, 9999)) if split else None
    flag = draw(st.none() | st.integers(0, 255))
    if split:
        flag = (flag or 0) | hj212.FLAG_D if flag is not None else None
    elif flag is not None:
        flag &= ~hj212.FLAG_D
    return hj212.Packet(
        cn=draw(st.sampled_from(sorted(KNOWN_CNS))), mn=draw(HJ_TOKEN), cp=hj212.format_cp(groups),
        st=draw(st.none() | st.text(st.sampled_from("0123456789"), min_size=2, max_size=2)),
        pw=draw(st.none() | HJ_TOKEN), qn=draw(st.none() | st.text(st.sampled_from("0123456789"), min_size=17,
                                                                  max_size=17)),
        flag=flag, pnum=pnum, pno=draw(st.integers(1, pnum)) if split else None,
        extra=tuple(draw(st.lists(st.tuples(HJ_TOKEN.filter(lambda k: k not in hj212.segment._HEADER_KEYS
                                                             and k != "CP"), HJ_VALUE), max_size=2))),
    )


HJ_FRAMES = hj212_packets().map(hj212.build_packet)


@given(hostile(HJ_FRAMES), st.booleans())
def test_hj212_parser_never_raises_nor_hides_a_crash(data, verify_crc):
    result = hj212.parse_packet(data, verify_crc=verify_crc)
    assert isinstance(result, hj212.Packet | hj212.Hj212Error)
    if isinstance(result, hj212.Hj212Error):
        # parse_packet turns an internal exception into "unreadable packet (...)": that would be a codec bug
        assert not result.detail.startswith("unreadable packet"), result
        assert result.code.startswith("E70")
    else:
        for answer in hj212.answers_for(result):
            assert hj212.parse_packet(hj212.build_packet(answer)) == answer
        hj212.to_readings(result, "TP01-HJ-0001")


@scaled(0.25)
@given(hj212_packets())
def test_hj212_round_trip(packet):
    assert hj212.parse_packet(hj212.build_packet(packet)) == packet


@scaled(0.1)
@given(st.lists(HJ_FRAMES | st.binary(max_size=40), min_size=1, max_size=6), st.data())
def test_hj212_stream_splitter_finds_every_packet_in_any_chunking(pieces, data):
    stream = b"".join(pieces)
    splitter = hj212.FrameSplitter()
    out = []
    at = 0
    while at < len(stream):
        step = data.draw(st.integers(1, max(1, len(stream) - at)))
        out += splitter.feed(stream[at:at + step])
        at += step
    tail = splitter.flush()
    frames = [f for f in out if isinstance(f, bytes)]
    assert all(isinstance(f, bytes | hj212.Hj212Error) for f in out)
    assert tail is None or isinstance(tail, hj212.Hj212Error)
    # every frame cut out is a whole packet; the valid packets among the pieces all come out, in order
    for frame in frames:
        assert frame.startswith(b"##") and frame.endswith(b"\r\n")
    valid = [p for p in pieces if p.startswith(b"##") and isinstance(hj212.parse_packet(p), hj212.Packet)]
    parsed = [f for f in frames if isinstance(hj212.parse_packet(f), hj212.Packet)]
    if all(p.startswith(b"##") for p in pieces):  # no garbage that could swallow or fake a header
        assert parsed == valid


# --- DL/T 645-2007 / -1997 ----------------------------------------------------------------------------

def _all_identifiers() -> list[str]:
    dis = list(_SPECIAL_2007) + list(_TABLE_1997)
    for d2 in _ENERGY_2007:
        for d1 in (0x00, 0x01, 0x3F, 0xFF):
            dis.append(f"00{d2:02X}{d1:02X}00")
    for d2, (_n, _s, _d, _u, _signed, first) in _INSTANT_2007.items():
        dis += [f"02{d2:02X}{d1:02X}00" for d1 in range(first, 4)] + [f"02{d2:02X}FF00"]
    return [di for di in dis if dlt645_lookup(di) is not None]


DIS = _all_identifiers()
ADDRESSES = st.text(st.sampled_from("0123456789"), min_size=12, max_size=12)


@st.composite
def dlt645_replies(draw):
    di = draw(st.sampled_from(DIS))
    ident = dlt645_lookup(di)
    digits = ident.size * 2
    top = (8 * 10 ** (digits - 1) if ident.signed else 10 ** digits) - 1
    count = ident.count or draw(st.integers(1, 4))
    numbers = draw(st.lists(st.integers(-top if ident.signed else 0, top), min_size=count, max_size=count))
    values = [n / 10 ** ident.decimals for n in numbers]
    address = draw(ADDRESSES)
    frame = dlt645.build_read_reply(address, di, values[0] if ident.count == 1 else values,
                                    preamble=draw(st.integers(0, 4)))
    return frame, address, di, values


@given(hostile(dlt645_replies().map(lambda t: t[0])))
def test_dlt645_decoder_never_raises(data):
    for item in dlt645.decode_frames(data):
        assert isinstance(item, dlt645.Dlt645Frame | dlt645.Dlt645Error)
        if isinstance(item, dlt645.Dlt645Frame):
            reading = dlt645.parse_reply(item)
            assert isinstance(reading, dlt645.Dlt645Reading | dlt645.Dlt645Error)
            assert isinstance(dlt645.parse_address_reply(item), str | dlt645.Dlt645Error)
        else:
            assert item.code.startswith("E71")


@scaled(0.25)
@given(dlt645_replies())
def test_dlt645_round_trip(reply):
    frame, address, di, values = reply
    found = dlt645.decode_frames(frame)
    assert len(found) == 1 and isinstance(found[0], dlt645.Dlt645Frame), found
    reading = dlt645.parse_reply(found[0])
    assert isinstance(reading, dlt645.Dlt645Reading), reading
    assert reading.address == address and reading.di == di
    got = [reading.value] if isinstance(reading.value, float) else list(reading.value)
    assert got == values or all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(got, values, strict=True))


# --- Modbus register maps and RTU frames -----------------------------------------------------------

@st.composite
def modbus_points(draw) -> modbus.Point:
    kind = draw(st.sampled_from(sorted(modbus.TYPES)))
    count = modbus.TYPES[kind][0]
    return modbus.Point(name="p", function=draw(st.sampled_from([3, 4])), address=draw(st.integers(0, 0x10000 - count)),
                        type=kind, byte_order=draw(st.sampled_from(modbus.ORDERS)),
                        word_order=draw(st.sampled_from(modbus.ORDERS)))


@given(modbus_points(), st.data())
def test_modbus_decode_takes_any_registers_and_round_trips(point, data):
    registers = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=point.count, max_size=point.count))
    value = modbus.decode(point, registers)
    if math.isnan(value):
        return  # NaN is kept as the meter sent it (Schneider's N/A); its payload bits need not survive
    if abs(value) >= 2 ** 53:
        return  # values are floats: a 64-bit counter past 2^53 keeps 53 significant bits (documented)
    assert modbus.encode(point, value) == registers


@scaled(0.25)
@given(modbus_points(), st.data())
def test_modbus_encode_decode_round_trip(point, data):
    kind = modbus.TYPES[point.type][1]
    bits = struct.calcsize(kind) * 8
    if kind in "fd":
        value = data.draw(st.floats(allow_nan=False, width=32 if kind == "f" else 64))
    else:
        signed = kind.islower()
        value = float(data.draw(st.integers(-(1 << (bits - 1)) if signed else 0,
                                            (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1)))
        assume(abs(value) < 2 ** 53)  # a float carries integers exactly up to 2^53
    assert modbus.decode(point, modbus.encode(point, value)) == value


@given(hostile(st.lists(st.integers(0, 0xFFFF), max_size=125).map(
    lambda regs: modbus.build_rtu_read_reply(1, 3, regs))))
def test_modbus_rtu_reply_parser_never_raises(frame):
    reply = modbus.parse_rtu_read_reply(frame)
    assert isinstance(reply, modbus.RtuReply)


@scaled(0.25)
@given(st.integers(0, 247), st.sampled_from([3, 4]), st.lists(st.integers(0, 0xFFFF), max_size=125))
def test_modbus_rtu_reply_round_trip(unit, function, registers):
    reply = modbus.parse_rtu_read_reply(modbus.build_rtu_read_reply(unit, function, registers))
    assert (reply.unit, reply.function, reply.error) == (unit, function, None)
    assert list(reply.registers) == registers


# --- the JSON/TLV record decoder of the channels (apps/ingestion/channels/payloads.decode) ------------

JSON_SCALARS = (st.none() | st.booleans() | st.integers(-(2 ** 63), 2 ** 63)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text())
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
RECORDS = st.fixed_dictionaries({"sourceId": SHORT_TEXT, "timestamp": SHORT_TEXT, "value": JSON_SCALARS},
                                optional={"dataCode": SHORT_TEXT, "unit": SHORT_TEXT, "extra": JSON_VALUES})


def _empty_config():
    from apps.ingestion.config import IngestConfig

    return IngestConfig(version=0, parks={}, sources={}, items={}, rules=[])


NOW = datetime(2026, 11, 23, 2, 5, tzinfo=UTC)


@given(hostile(st.one_of(JSON_VALUES, RECORDS, st.lists(RECORDS, max_size=4)).map(
    lambda v: __import__("json").dumps(v).encode()) | TLV_FRAMES), st.sampled_from(["json", "tlv"]),
    st.none() | SHORT_TEXT)
def test_payload_decoder_never_raises(payload, kind, topic_source):
    from apps.ingestion.channels import payloads

    out = payloads.decode(payload, kind=kind, cfg=_empty_config(), now=NOW, source_id=topic_source)
    assert isinstance(out, payloads.Decoded)
    assert all(isinstance(r, payloads.Refusal) and r.error.code.startswith("E") for r in out.refusals)
    if topic_source is not None:
        assert all(r.get("sourceId") == topic_source for r in out.records if isinstance(r, dict))


@scaled(0.25)
@given(st.one_of(RECORDS, st.lists(RECORDS, min_size=1, max_size=4)))
def test_payload_decoder_round_trips_json_records(value):
    import orjson

    from apps.ingestion.channels import payloads

    out = payloads.decode(orjson.dumps(value), kind="json", cfg=_empty_config(), now=NOW)
    assert out.refusals == []
    assert out.records == (value if isinstance(value, list) else [value])
