"""Modbus register-map codec (protocols.md §3): vectors, word orders, round trips, read planning."""

import json
import math
from pathlib import Path

import pytest

from apps.protocols.codecs import modbus as m

VECTORS_FILE = Path(__file__).resolve().parent / "data" / "protocol-vectors.json"  # tests/data/README.md
VECTORS = {v["id"]: v for v in json.loads(VECTORS_FILE.read_text())
           if v["protocol"].startswith("Modbus")}


def _bytes(v) -> bytes:
    return bytes.fromhex(v["hex_or_text"].replace(" ", ""))


def test_vectors_present():
    assert len(VECTORS) >= 4


@pytest.mark.parametrize("vid", sorted(VECTORS))
def test_vector_crc(vid):
    raw = _bytes(VECTORS[vid])
    want = bytes.fromhex(VECTORS[vid]["checks"]["crc16_modbus_computed_lo_hi"])
    assert m.crc16(raw[:-2]).to_bytes(2, "little") == want


@pytest.mark.parametrize("vid", [k for k, v in VECTORS.items() if v["direction"] == "slave->master"])
def test_vector_read_replies_decode(vid):
    vec = VECTORS[vid]
    reply = m.parse_rtu_read_reply(_bytes(vec))
    assert reply.error is None and reply.exception_code is None
    assert reply.unit == vec["decoded"]["unit"] and reply.function == vec["decoded"]["function"]
    point = m.Point("x", reply.function, 0, "float32")
    assert m.decode(point, reply.registers) == vec["decoded"]["float32_be"]
    assert m.build_rtu_read_reply(reply.unit, reply.function, m.encode(point, vec["decoded"]["float32_be"])) \
        == _bytes(vec)


def test_vector_requests_are_built_exactly():
    req = VECTORS["modbus-eastron-fc04-req-voltage"]
    dec = req["decoded"]
    assert m.build_rtu_read(dec["unit"], dec["function"], dec["address"], dec["count"]) == _bytes(req)
    wr = VECTORS["modbus-eastron-fc16-write-demand-period"]
    dec = wr["decoded"]
    regs = m.encode(m.Point("demand", 3, dec["address"], "float32"), dec["float32_be"])
    assert m.build_rtu_write(dec["unit"], dec["address"], regs) == _bytes(wr)


def test_rtu_reply_errors_never_raise():
    assert m.parse_rtu_read_reply(b"").error
    assert m.parse_rtu_read_reply(bytes.fromhex("01 04 04 43 66 00 00 0E 1E")).error == "CRC mismatch"
    exc = m.parse_rtu_read_reply(m._with_crc(bytes([1, 0x84, 2])))
    assert exc.exception_code == 2 and exc.function == 4
    assert m.parse_rtu_read_reply(m._with_crc(bytes([1, 4, 3, 0, 0, 0]))).error


@pytest.mark.parametrize(("layout", "regs"), [
    ("ABCD", [0x4366, 0x0000]), ("CDAB", [0x0000, 0x4366]), ("BADC", [0x6643, 0x0000]), ("DCBA", [0x0000, 0x6643]),
])
def test_float32_word_orders(layout, regs):
    byte_order, word_order = m.LAYOUTS[layout]
    p = m.Point("v", 4, 0, "float32", byte_order=byte_order, word_order=word_order)
    assert m.decode(p, regs) == 230.0
    assert m.encode(p, 230.0) == regs


def test_int32_and_int64_orders():
    p = m.Point("e", 3, 0, "uint32", word_order="little")
    assert m.decode(p, [0x5678, 0x1234]) == 0x12345678
    p = m.Point("e", 3, 0, "int64")
    assert m.decode(p, [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE]) == -2
    p = m.Point("e", 3, 0, "int64", word_order="little", byte_order="little")
    assert m.encode(p, 0x0102030405060708) == [0x0807, 0x0605, 0x0403, 0x0201]


@pytest.mark.parametrize(("type_", "value"), [
    ("int16", -32768), ("uint16", 65535), ("int32", -123456789), ("uint32", 4_000_000_000),
    ("int64", -(2 ** 62)), ("uint64", 2 ** 63 + 5), ("float32", 1.5), ("float64", 123456.789012),
])
@pytest.mark.parametrize("layout", list(m.LAYOUTS))
def test_round_trip(type_, value, layout):
    byte_order, word_order = m.LAYOUTS[layout]
    p = m.Point("x", 3, 100, type_, byte_order=byte_order, word_order=word_order)
    regs = m.encode(p, value)
    assert len(regs) == p.count and all(0 <= r <= 0xFFFF for r in regs)
    assert m.decode(p, regs) == pytest.approx(value)


def test_scaling_and_offset():
    p = m.Point("energy", 3, 0, "uint32", scale=0.01, unit="kWh")
    assert m.encode(p, 1206.42) == [0x0001, 0xD742]
    assert m.decode(p, [0x0001, 0xD742]) == pytest.approx(1206.42)
    t = m.Point("temp", 3, 0, "int16", scale=0.1, offset=-40)
    assert m.decode(t, m.encode(t, 21.5)) == pytest.approx(21.5)
    with pytest.raises(ValueError):
        m.encode(m.Point("u", 3, 0, "uint16"), -1)
    with pytest.raises(ValueError):
        m.decode(p, [1])
    assert math.isnan(m.decode(m.Point("f", 3, 0, "float32"), [0x7FC0, 0]))


def test_point_validation():
    for bad in [dict(function=1), dict(type="int8"), dict(word_order="middle"), dict(address=70000),
                dict(scale=0)]:
        with pytest.raises(ValueError):
            m.Point(**{"name": "x", "function": 3, "address": 0, **bad})


def test_plan_two_blocks_of_twenty_points():
    pts = [m.Point(f"a{i}", 4, i * 2, "float32") for i in range(10)] + \
          [m.Point(f"b{i}", 4, 1000 + i * 2, "float32") for i in range(10)]
    plan = m.plan_reads(pts)
    assert [(r.function, r.address, r.count) for r in plan] == [(4, 0, 20), (4, 1000, 20)]
    assert all(len(r.points) == 10 for r in plan)
    regs = [x for i in range(10) for x in m.encode(pts[i], i * 1.5)]
    values = m.decode_block(plan[0], regs)
    assert {p.name: v for p, v in values.items()} == {f"a{i}": i * 1.5 for i in range(10)}


def test_plan_gap_and_functions():
    a, b = m.Point("a", 3, 0), m.Point("b", 3, 6)
    assert len(m.plan_reads([a, b], max_gap=5)) == 1
    assert len(m.plan_reads([a, b], max_gap=4)) == 2
    assert len(m.plan_reads([a, m.Point("c", 4, 1)], max_gap=50)) == 2
    assert m.plan_reads([a, a, b], max_gap=10)[0].points == ((a, 0), (b, 6))
    with pytest.raises(ValueError):
        m.plan_reads([a], max_count=126)


def test_plan_splits_over_125_registers():
    pts = [m.Point(f"p{i}", 3, i * 2, "float32") for i in range(100)]  # 200 registers back to back
    plan = m.plan_reads(pts)
    assert all(r.count <= 125 for r in plan)
    assert [r.count for r in plan] == [124, 76]
    served = [p for r in plan for p, _ in r.points]
    assert sorted(served, key=lambda p: p.address) == pts
    assert all(r.count <= 80 for r in m.plan_reads(pts, max_count=80))


def test_plan_overlapping_points():
    wide = m.Point("wide", 3, 10, "float64")
    inner = m.Point("inner", 3, 12, "uint16")
    (req,) = m.plan_reads([inner, wide])
    assert (req.address, req.count) == (10, 4)
    regs = m.encode(wide, 2.5)
    out = m.decode_block(req, regs)
    assert out[wide] == 2.5 and out[inner] == regs[2]


def test_shipped_maps():
    sdm = m.load_map(m.SDM630)
    names = {p.name: p for p in sdm}
    assert names["import_energy"].address == 0x48 and names["import_energy"].unit == "kWh"
    assert names["frequency"].address == 0x46 and all(p.function == 4 and p.type == "float32" for p in sdm)
    acrel = m.load_map(m.ACREL_DDSY1352)
    (req,) = m.plan_reads(acrel)
    assert (req.function, req.address, req.count) == (3, 0, 17)
    regs = [0] * 17
    by = {p.name: p for p in acrel}
    for name, value in [("total_energy", 1206.42), ("voltage", 230.1), ("active_power", -1.234),
                        ("power_factor", 0.985)]:
        p = by[name]
        regs[p.address:p.address + p.count] = m.encode(p, value)
    out = {p.name: v for p, v in m.decode_block(req, regs).items()}
    assert out["total_energy"] == pytest.approx(1206.42) and out["voltage"] == pytest.approx(230.1)
    assert out["active_power"] == pytest.approx(-1.234) and out["power_factor"] == pytest.approx(0.985)
    assert set(m.REGISTER_MAPS) == {"eastron-sdm630", "acrel-ddsy1352"}
