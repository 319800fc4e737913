"""DL/T 645-2007/-1997 codec (protocols.md §2): published vectors, round trips, stream scanning, fuzz."""

import json
import random
from pathlib import Path

import pytest

from apps.protocols.codecs import dlt645 as d

VECTORS_FILE = Path(__file__).resolve().parent / "data" / "protocol-vectors.json"  # tests/data/README.md
VECTORS = [v for v in json.loads(VECTORS_FILE.read_text())
           if v["protocol"].startswith("DL/T 645")]


def _bytes(v) -> bytes:
    return bytes.fromhex(v["hex_or_text"].replace(" ", ""))


def test_vectors_present():
    assert len(VECTORS) >= 13


@pytest.mark.parametrize("vec", VECTORS, ids=[v["id"] for v in VECTORS])
def test_vector_frame(vec):
    raw = _bytes(vec)
    results = d.decode_frames(raw)
    assert len(results) == 1
    frame = results[0]
    assert isinstance(frame, d.Dlt645Frame), frame
    dec, checks = vec["decoded"], vec["checks"]
    assert frame.address == dec["address"]
    assert frame.control == int(dec["control"], 16)
    assert frame.data.hex(" ").upper() == dec["data_minus_33h"].upper()
    assert frame.preamble == checks["preamble_FE_count"]
    assert frame.is_abnormal == dec["abnormal_reply"]
    assert frame.has_follow_up == dec["follow_up_frame"]
    # re-encoding gives the same bytes
    assert d.encode_frame(frame.address, frame.control, frame.data, preamble=frame.preamble) == raw


@pytest.mark.parametrize("vec", [v for v in VECTORS if v["decoded"].get("value")],
                         ids=lambda v: v["id"])
def test_vector_values(vec):
    reading = d.parse_reply(d.decode_frame(_bytes(vec)))
    assert isinstance(reading, d.Dlt645Reading), reading
    want = vec["decoded"]["value"]
    assert reading.di == vec["decoded"]["DI"]
    assert reading.unit == want["unit"]
    if isinstance(want["value"], list):
        assert reading.value == pytest.approx(tuple(want["value"]))
    else:
        assert reading.value == pytest.approx(want["value"])


def test_vector_requests_are_built_exactly():
    by_id = {v["id"]: v for v in VECTORS}
    assert d.build_read_request("000102030425", "00010000", preamble=0) == _bytes(by_id["dlt645-blog-read-req"])
    assert d.build_read_request("000000000161", "00 01 00 00", preamble=0) == _bytes(by_id["dlt645-go645-read-req"])
    assert d.build_read_request("652022122003", "00000000", preamble=0) == _bytes(by_id["dlt645-ebyte-req-combined"])
    assert d.build_read_request("000003430163", "9010", preamble=0) == _bytes(by_id["dlt645-1997-kaledl-req"])
    assert d.build_read_address_request() == _bytes(by_id["dlt645-gams-read-address-req"])
    assert d.build_error_reply("201000000012", 0x02) == _bytes(by_id["dlt645-error-reply-d1"])
    assert d.build_address_reply("181226034194", preamble=4) == _bytes(by_id["dlt645-read-address-reply-93"])
    assert d.build_read_reply("000102030425", "00010000", 50.95) == _bytes(by_id["dlt645-derived-cs-equals-16"])
    assert d.build_read_reply("000000001111", "B613", 220) == _bytes(by_id["dlt645-1997-go645-rsp"])


def test_error_reply_vector_is_e7103_with_bits():
    vec = next(v for v in VECTORS if v["id"] == "dlt645-error-reply-d1")
    err = d.parse_reply(d.decode_frame(_bytes(vec)))
    assert isinstance(err, d.Dlt645Error)
    assert err.code == "E7103" and err.error_word == 2
    assert list(err.error_bits) == vec["decoded"]["error_bits"]
    assert err.address == "201000000012"


def test_address_reply_and_versions():
    vec = next(v for v in VECTORS if v["id"] == "dlt645-read-address-reply-93")
    frame = d.decode_frame(_bytes(vec))
    assert d.parse_address_reply(frame) == vec["decoded"]["reported_address"]
    assert frame.version == "2007"
    assert d.decode_frame(bytes.fromhex("6811110000000068810446E953352E16")).version == "1997"


def test_address_wire_order():
    assert d.address_to_wire("000102030425") == bytes.fromhex("250403020100")
    assert d.address_from_wire(bytes.fromhex("250403020100")) == "000102030425"
    assert d.di_to_wire("00010000") == bytes.fromhex("00000100")
    with pytest.raises(ValueError):
        d.address_to_wire("12345")


def test_plus_minus_33_and_checksum():
    assert d.add_33(bytes([0x00, 0xCD, 0xFF])) == bytes([0x33, 0x00, 0x32])
    assert d.sub_33(d.add_33(bytes(range(256)))) == bytes(range(256))
    assert d.checksum(bytes.fromhex("68AAAAAAAAAAAA681300")) == 0xDF


@pytest.mark.parametrize(("di", "value", "unit"), [
    ("00010000", 123456.78, "kWh"), ("00010000", 0.0, "kWh"), ("00000000", -12.5, "kWh"),
    ("02010100", 230.1, "V"), ("02010300", 0.0, "V"), ("02020100", -12.345, "A"), ("02020200", 799.999, "A"),
    ("02030000", -79.9999, "kW"), ("02030100", 1.2345, "kW"), ("02060000", -0.985, None), ("02060000", 1.0, None),
    ("02800002", 49.98, "Hz"), ("02800007", -5.5, "°C"), ("00010001", 10.0, "kWh"),
    ("9010", 5432.1, "kWh"), ("B611", 220, "V"), ("B621", 12.34, "A"), ("B630", -1.5, "kW"),
])
def test_value_round_trip(di, value, unit):
    raw = d.build_read_reply("123456789012", di, value, preamble=2)
    reading = d.parse_reply(d.decode_frame(raw))
    assert isinstance(reading, d.Dlt645Reading), reading
    assert reading.value == pytest.approx(value)
    assert reading.unit == unit and reading.address == "123456789012" and reading.di == di


def test_blocks_round_trip():
    for di, values in [("0201FF00", (220.1, 221.2, 219.9)), ("0202FF00", (1.0, -2.0, 3.5)),
                       ("0203FF00", (3.0, 1.0, 1.0, 1.0)), ("0001FF00", (100.0, 10.0, 20.0, 30.0, 40.0))]:
        reading = d.parse_reply(d.decode_frame(d.build_read_reply("000000000001", di, values)))
        assert reading.value == pytest.approx(values)


def test_encode_rejects_overflow():
    with pytest.raises(ValueError):
        d.encode_value(d.lookup("02030000"), 80.0)
    with pytest.raises(ValueError):
        d.encode_value(d.lookup("02010100"), 1000.0)
    assert d.lookup("FFFFFFFF") is None and d.lookup("1234") is None


def test_not_bcd_is_refused_not_converted():
    raw = d.encode_frame("000000000001", 0x91, d.di_to_wire("00010000") + bytes([0xFF, 0xFF, 0xFF, 0xFF]))
    err = d.parse_reply(d.decode_frame(raw))
    assert isinstance(err, d.Dlt645Error) and err.code == "E7102"


def test_wrong_value_length_and_unknown_di():
    raw = d.encode_frame("000000000001", 0x91, d.di_to_wire("00010000") + bytes([1, 2]))
    assert d.parse_reply(d.decode_frame(raw)).code == "E7102"
    raw = d.encode_frame("000000000001", 0x91, d.di_to_wire("04A00101") + bytes([1, 2]))
    err = d.parse_reply(d.decode_frame(raw))
    assert err.code == "E7104" and "04A00101" in err.detail


def test_1997_error_word():
    err = d.parse_reply(d.decode_frame(d.build_error_reply("000000000001", 0x02, version="1997")))
    assert err.code == "E7103" and err.error_bits == ("wrong data identifier",)


def test_fe_inside_data_and_16_as_checksum():
    # value byte CB goes on the wire as FE: the frame is measured by L, so the FE stays data
    frame = d.encode_frame("000000000001", 0x91, d.di_to_wire("0201FF00") + bytes([0xCB, 0x00, 0xCB, 0x01, 0, 0]))
    assert 0xFE in frame[12:-2]
    got = d.decode_frame(b"\xfe\xfe" + frame)
    assert isinstance(got, d.Dlt645Frame) and got.data[4] == 0xCB
    # the bytes are not BCD: the frame parses, the value is refused
    assert d.parse_reply(got).code == "E7102"


def test_scanner_streams_byte_by_byte_with_garbage():
    frames = [d.build_read_reply("000102030425", "00010000", 12.34, preamble=4),
              d.build_read_reply("000102030425", "02010100", 220.5, preamble=0),
              d.build_error_reply("000102030425", 2, preamble=1)]
    stream = b"\x00\x16\x68garbage\x68" + frames[0] + b"\x16\x16" + frames[1] + frames[2]
    scanner = d.FrameScanner()
    out = []
    for b in stream:
        out += scanner.feed(bytes([b]))
    out += scanner.flush()
    got = [x for x in out if isinstance(x, d.Dlt645Frame)]
    assert [g.control for g in got] == [0x91, 0x91, 0xD1]
    assert got[0].preamble == 4 and got[2].preamble == 1
    assert d.parse_reply(got[1]).value == pytest.approx(220.5)


def test_scanner_resyncs_after_bad_checksum():
    good = d.build_read_reply("000102030425", "00010000", 1.0)
    bad = bytearray(good)
    bad[-2] ^= 0x01
    out = d.decode_frames(bytes(bad) + good)
    assert [type(x).__name__ for x in out] == ["Dlt645Error", "Dlt645Frame"]
    assert out[0].code == "E7101"
    # a frame hidden inside the data of a damaged one is still found
    inner = d.build_read_address_request(preamble=0)
    outer = bytearray(d.encode_frame("000000000001", 0x91, d.sub_33(inner)))
    outer[-2] ^= 0xFF
    out = d.decode_frames(bytes(outer))
    assert any(isinstance(x, d.Dlt645Frame) and x.control == 0x13 for x in out)


def test_truncated_frame_reports_e7102():
    good = d.build_read_reply("000102030425", "00010000", 1.0)
    for cut in range(1, len(good)):
        out = d.decode_frames(good[:cut])
        assert not any(isinstance(x, d.Dlt645Frame) for x in out)
        if cut >= 1 and good[:cut].count(0x68):
            assert any(isinstance(x, d.Dlt645Error) and x.code == "E7102" for x in out)


def test_wrong_end_byte():
    bad = bytearray(d.build_read_reply("000102030425", "00010000", 1.0))
    bad[-1] = 0x17
    out = d.decode_frames(bytes(bad))
    assert out and out[0].code == "E7102"


def test_fuzz_never_raises():
    rng = random.Random(645)
    good = [d.build_read_reply("000102030425", "00010000", 77.7, preamble=rng.randint(0, 4)) for _ in range(3)]
    for _ in range(3000):
        kind = rng.random()
        if kind < 0.3:
            data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 80)))
        elif kind < 0.6:
            g = bytearray(rng.choice(good))
            for _ in range(rng.randint(1, 3)):
                g[rng.randrange(len(g))] = rng.choice([0x68, 0x16, 0xFE, rng.randrange(256)])
            data = bytes(g)
        else:
            g = rng.choice(good)
            noise = bytes(rng.choice([0x68, 0xFE, 0x16, rng.randrange(256)]) for _ in range(rng.randint(0, 12)))
            data = noise + g[:rng.randint(0, len(g))] + rng.choice(good)
        scanner = d.FrameScanner()
        pos = 0
        out = []
        while pos < len(data):
            step = rng.randint(1, 9)
            out += scanner.feed(data[pos:pos + step])
            pos += step
        out += scanner.flush()
        for x in out:
            assert isinstance(x, d.Dlt645Frame | d.Dlt645Error)
            if isinstance(x, d.Dlt645Frame) and x.is_reply:
                assert isinstance(d.parse_reply(x), d.Dlt645Reading | d.Dlt645Error)
        if kind >= 0.6:
            # the intact frame at the end is always recovered
            assert any(isinstance(x, d.Dlt645Frame) and x.control == 0x91 for x in out)
