"""HJ 212-2017 codec: published vectors, round trips, split packets, 2005 style, readings, fuzz."""

import json
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from apps.protocols.codecs import hj212
from apps.protocols.codecs.hj212 import Hj212Error, Packet, PollutantEntry, PollutantMap

VECTORS_FILE = Path(__file__).resolve().parent / "data" / "protocol-vectors.json"  # tests/data/README.md
VECTORS = [v for v in json.loads(VECTORS_FILE.read_text())
           if v["protocol"].startswith("HJ 212")]


def frame_of(segment: str, crc: str | None = None) -> bytes:
    seg = segment.encode()
    return b"##" + f"{len(seg):04d}".encode() + seg + (crc or hj212.crc_hex(seg)).encode() + b"\r\n"


def test_vectors_present():
    assert len(VECTORS) >= 15


@pytest.mark.parametrize("vec", VECTORS, ids=[v["id"] for v in VECTORS])
def test_crc_matches_every_vector(vec):
    raw = vec["hex_or_text"].encode()
    n = int(raw[2:6])
    seg = raw[6:-6] if vec["checks"]["length_ok"] else raw[6:-6]
    assert hj212.crc_hex(seg) == vec["checks"]["crc_computed"].upper()
    assert vec["checks"]["length_field"] == n


@pytest.mark.parametrize("vec", VECTORS, ids=[v["id"] for v in VECTORS])
def test_parse_every_vector(vec):
    raw = vec["hex_or_text"].encode()
    result = hj212.parse_packet(raw)
    checks = vec["checks"]
    if not checks["length_ok"]:
        assert isinstance(result, Hj212Error) and result.code == "E7001"
        return
    if not checks["crc_ok"]:
        assert isinstance(result, Hj212Error) and result.code == "E7002"
        assert result.packet is not None and not result.packet.crc_ok
        lenient = hj212.parse_packet(raw, verify_crc=False)
        assert isinstance(lenient, Packet) and not lenient.crc_ok
        result = lenient
    assert isinstance(result, Packet), result
    header = vec["decoded"]["header"]
    assert result.qn == header.get("QN")
    assert result.st == header.get("ST")
    assert result.cn == header["CN"]
    assert result.pw == header.get("PW")
    assert result.mn == header["MN"]
    assert result.flag == (int(header["Flag"]) if "Flag" in header else None)
    if "PNUM" in header:
        assert (result.pnum, result.pno) == (int(header["PNUM"]), int(header["PNO"]))
    assert result.fields() == vec["decoded"]["cp"]
    if "factors" in vec["decoded"]:
        assert hj212.factors(result.groups()) == vec["decoded"]["factors"]
    bits = vec["decoded"].get("flag_bits")
    if bits:
        assert result.version == bits["version_bits"]
        assert result.version_name == bits["version"]
        assert result.ack_requested == bits["A_ack_required"]
        assert result.split == bits["D_has_packet_numbers"]


def test_standard_golden_values():
    assert hj212.crc_hex(b"123456789") == "2F80"
    std = next(v for v in VECTORS if v["id"] == "hj212-std-appendixA-1062")["hex_or_text"].encode()
    assert hj212.crc_hex(std[6:-6]) == "1C80"


@pytest.mark.parametrize("vec", [v for v in VECTORS if v["checks"]["crc_ok"] and v["checks"]["length_ok"]
                                 and "PNUM" not in v["decoded"]["header"]], ids=lambda v: v["id"])
def test_round_trip_rebuilds_the_vector(vec):
    raw = vec["hex_or_text"].encode()
    packet = hj212.parse_packet(raw)
    rebuilt = hj212.build_packet(packet)
    # Same bytes apart from the CRC's letter case (we emit upper case, HJ 212-2017 Appendix A).
    assert rebuilt[:-6] == raw[:-6] or hj212.parse_packet(rebuilt) == packet
    assert rebuilt[-6:-2] == raw[-6:-2].upper()
    assert hj212.parse_packet(rebuilt) == packet


def test_answers_match_the_derived_appendix_c_vectors():
    by_id = {v["id"]: v["hex_or_text"].encode() for v in VECTORS}
    upload = hj212.parse_packet(by_id["hj212-derived-C24-2081-upload"])
    assert upload.ack_requested
    assert hj212.build_packet(hj212.data_answer(upload)) == by_id["hj212-derived-C24-9014-ack"]
    assert hj212.answers_for(upload) == [hj212.data_answer(upload)]
    req = hj212.parse_packet(by_id["hj212-std-appendixA-1062"])
    req = Packet(**{**req.__dict__, "pw": "123456"})
    assert hj212.build_packet(hj212.request_answer(req, 1)) == by_id["hj212-derived-C1-9011-answer"]
    assert hj212.build_packet(hj212.execution_result(req, 1)) == by_id["hj212-derived-C1-9012-result"]


def test_answer_rules():
    up = Packet(cn="2011", mn="M1", qn="20260101000000000", st="32", pw="123456", flag=4, cp="")
    assert hj212.answers_for(up) == []  # no A bit
    up9 = Packet(cn="2051", mn="M1", qn="20260101000000001", st="32", pw="123456", flag=9, cp="")
    (ans,) = hj212.answers_for(up9)
    assert (ans.cn, ans.flag, ans.st, ans.qn, ans.cp) == ("9014", 8, "91", up9.qn, "")  # 2025 version bits kept
    beat = Packet(cn="9015", mn="M1", qn="1", flag=9)
    assert [a.cn for a in hj212.answers_for(beat)] == ["9013"]
    cmd = Packet(cn="1062", mn="M1", qn="1", flag=5, cp="RtdInterval=30")
    (a,) = hj212.answers_for(cmd)
    assert (a.cn, a.cp) == ("9011", "QnRtn=2")
    assert hj212.answers_for(Packet(cn="9014", mn="M1", qn="1", flag=5)) == []
    unknown = hj212.parse_packet(frame_of("QN=1;ST=32;CN=5555;PW=1;MN=M1;Flag=5;CP=&&&&"))
    assert isinstance(unknown, Hj212Error) and unknown.code == "E7004"
    assert [a.cp for a in hj212.answers_for(unknown)] == ["QnRtn=8"]
    bad_crc_req = hj212.parse_packet(frame_of("QN=1;ST=32;CN=1062;PW=1;MN=M1;Flag=5;CP=&&&&", "0000"))
    assert bad_crc_req.code == "E7002" and [a.cp for a in hj212.answers_for(bad_crc_req)] == ["QnRtn=9"]
    bad_crc_up = hj212.parse_packet(frame_of("QN=1;ST=32;CN=2011;PW=1;MN=M1;Flag=5;CP=&&&&", "0000"))
    assert hj212.answers_for(bad_crc_up) == []  # no 9014, so the station resends


def test_crc_is_case_insensitive_and_emitted_upper():
    f = frame_of("ST=32;CN=2011;PW=1;MN=M;CP=&&DataTime=20260101000000;ele01-Rtd=1&&")
    lower = f[:-6] + f[-6:-2].lower() + b"\r\n"
    assert hj212.parse_packet(lower) == hj212.parse_packet(f)


@pytest.mark.parametrize("segment, code", [
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=5;CP=&&a=1", "E7003"),          # no closing &&
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=5", "E7003"),                   # no CP
    ("QN=1;ST=32;CN=20x1;PW=1;MN=M;Flag=5;CP=&&&&", "E7003"),           # CN not 4 digits
    ("QN=1;ST=32;CN=2011;PW=1;Flag=5;CP=&&&&", "E7003"),                # MN missing
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=300;CP=&&&&", "E7003"),         # Flag out of range
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=7;CP=&&&&", "E7003"),           # D bit, no PNUM/PNO
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=7;PNUM=2;PNO=3;CP=&&&&", "E7003"),
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=5;CP=&&DataTime=1;w01018-Rtd&&", "E7003"),  # pair without =
    ("QN=1;ST=32;CN=2011;PW=1;MN=M;MN=N;Flag=5;CP=&&&&", "E7003"),      # repeated header field
    ("QN=1;ST=32;CN=4242;PW=1;MN=M;Flag=5;CP=&&&&", "E7004"),
])
def test_bad_segments(segment, code):
    result = hj212.parse_packet(frame_of(segment))
    assert isinstance(result, Hj212Error) and result.code == code, result


@pytest.mark.parametrize("raw", [
    b"", b"##", b"##01", b"#0101abc", b"##abcdQN=1&&0000\r\n", b"##0006QN=1;0000\r\n",
    frame_of("ST=32;CN=2011;PW=1;MN=M;CP=&&&&")[:-2],                     # no CRLF
    frame_of("ST=32;CN=2011;PW=1;MN=M;CP=&&&&").replace(b"##0031", b"##0030"),
    frame_of("ST=32;CN=2011;PW=1;MN=M;CP=&&&&")[:-6] + b"zz00\r\n",        # CRC not hex
])
def test_bad_framing(raw):
    result = hj212.parse_packet(raw)
    assert isinstance(result, Hj212Error) and result.code == "E7001", result


def test_non_utf8_segment_is_a_syntax_error():
    seg = b"ST=32;CN=2011;PW=1;MN=\xff;CP=&&&&"
    raw = b"##" + f"{len(seg):04d}".encode() + seg + hj212.crc_hex(seg).encode() + b"\r\n"
    assert hj212.parse_packet(raw).code == "E7003"


def test_length_counts_utf8_bytes():
    p = Packet(cn="3020", mn="M", qn="1", st="32", pw="1", flag=4, cp="DataTime=20260101000000;i11001-Info=维护")
    raw = hj212.build_packet(p)
    assert int(raw[2:6]) == len(hj212.encode_segment(p).encode())
    assert hj212.parse_packet(raw) == p


def test_flag_bits_and_versions():
    for flag, version, a, d in [(4, 1, False, False), (5, 1, True, False), (7, 1, True, True), (8, 2, False, False),
                                (9, 2, True, False), (11, 2, True, True), (0, 0, False, False), (1, 0, True, False)]:
        p = Packet(cn="2011", mn="M", flag=flag, pnum=2 if d else None, pno=1 if d else None)
        assert (p.version, p.ack_requested, p.split) == (version, a, d)
    assert Packet(cn="2011", mn="M").version_name == "HJ/T 212-2005"
    assert Packet(cn="2011", mn="M", flag=9).version_name == "HJ 212-2025"


def test_2005_style_packet_without_qn_and_flag():
    p = hj212.parse_packet(frame_of("ST=32;CN=2011;PW=123456;MN=LD130133000015;"
                                    "CP=&&DataTime=20160824003817;B01-Rtd=36.91;011-Rtd=231.0,011-Flag=N&&"))
    assert isinstance(p, Packet) and p.qn is None and p.flag is None and not p.ack_requested
    assert hj212.answers_for(p) == []
    records, unmapped = hj212.to_readings(p, "S1")
    assert records == [{"sourceId": "S1", "dataCode": "CS030202", "value": 231.0, "unit": "mg/L",
                        "backfill": False, "timestamp": "2016-08-24 00:38:17", "status": "N"}]
    assert unmapped == []  # B01 is a quantity: a real-time rate gives no volume


def test_split_and_reassemble_in_any_order():
    groups = [[("DataTime", "20260101100000")]] + [
        [(f"w{i:05d}-Avg", f"{i}.5"), (f"w{i:05d}-Flag", "N")] for i in range(80)]
    whole = Packet(cn="2051", mn="MN1", qn="20260101100100123", st="32", pw="1", flag=5,
                   cp=hj212.format_cp(groups))
    parts = hj212.split_packet(whole, 300)
    assert len(parts) > 3
    assert all(p.split and p.pnum == len(parts) and len(p.cp) <= 300 for p in parts)
    assert all(p.cp.startswith("DataTime=20260101100000;") for p in parts)
    wire = [hj212.parse_packet(hj212.build_packet(p)) for p in parts]
    assert all(isinstance(p, Packet) and p.flag == 7 for p in wire)
    r = hj212.Reassembler()
    order = list(reversed(wire))
    results = [r.add(p) for p in order]
    assert results[:-1] == [None] * (len(order) - 1)
    joined = results[-1]
    assert joined.fields() == whole.fields() and joined.flag == 5 and joined.pnum is None
    assert hj212.factors(joined.groups()) == hj212.factors(whole.groups())
    assert r.pending == 0
    # an unsplit packet passes straight through
    assert r.add(whole) is whole


def test_reassembler_caps_pending_parts():
    r = hj212.Reassembler(max_pending=10)
    for i in range(30):
        assert r.add(Packet(cn="2051", mn="M", qn=str(i), flag=7, pnum=3, pno=1, cp="a=1")) is None
    assert r.pending <= 10 and r.dropped >= 20
    dropped = r.take_dropped()
    assert len(dropped) == r.dropped and all(e.code == "E7007" and e.packet.mn == "M" for e in dropped)
    assert "1 of 3 parts" in dropped[0].detail and r.take_dropped() == []
    # parts of different QNs never mix
    r2 = hj212.Reassembler()
    assert r2.add(Packet(cn="2051", mn="M", qn="A", flag=7, pnum=2, pno=1, cp="x-Avg=1")) is None
    assert r2.add(Packet(cn="2051", mn="M", qn="B", flag=7, pnum=2, pno=2, cp="y-Avg=2")) is None
    assert r2.add(Packet(cn="2051", mn="M", qn="A", flag=7, pnum=2, pno=2, cp="z-Avg=3")).cp == "x-Avg=1;z-Avg=3"


def test_to_readings_realtime_and_minute():
    fox = next(v for v in VECTORS if v["id"] == "hj212-foxedge-2011-water")["hex_or_text"].encode()
    p = hj212.parse_packet(fox)
    records, unmapped = hj212.to_readings(p, "TP01-WW-0001", PollutantMap())
    assert records == [{"sourceId": "TP01-WW-0001", "dataCode": "CS030202", "value": 194.2, "unit": "mg/L",
                        "backfill": False, "timestamp": "2021-03-20 01:34:00", "status": "N"}]
    assert unmapped == ["w21001", "w21011", "w21003", "w01001"]
    minute = Packet(cn="2051", mn="M", qn="1", flag=5, cp="DataTime=20260101100000;w00000-Cou=10.5,w00000-Min=16.4,"
                    "w00000-Avg=17.5,w00000-Max=20.1,w00000-Flag=N;w01018-Avg=38.1,w01018-Flag=M")
    records, unmapped = hj212.to_readings(minute, "S", PollutantMap(), ZoneInfo("Asia/Shanghai"))
    assert records == [
        {"sourceId": "S", "dataCode": "CS030201", "value": 10.5, "unit": "m3", "backfill": False,
         "timestamp": "2026-01-01T10:00:00+08:00", "status": "N"},
        {"sourceId": "S", "dataCode": "CS030202", "value": 38.1, "unit": "mg/L", "backfill": False,
         "timestamp": "2026-01-01T10:00:00+08:00", "status": "M"},
    ]
    assert unmapped == []


def test_to_readings_edge_cases():
    pm = PollutantMap().extend({"a05001": ("CS099901", "mg/m3"), "ele01": {"data_code": "CS010201", "unit": "kWh"},
                                "x1": PollutantEntry("CS000001", "t", True)})
    assert "a05001" in pm and pm.get("ele01").unit == "kWh"
    p = Packet(cn="2011", mn="M", cp="DataTime=20261301000000;a05001-Rtd=abc,a05001-Flag=P;ele01-Rtd=1;O3-Rtd=2")
    records, unmapped = hj212.to_readings(p, "S", pm)
    assert records[0]["timestamp"] == "20261301000000"  # kept raw: ingestion refuses it with E2007
    assert records[0]["value"] == "abc" and records[0]["status"] == "D"
    assert records[1]["value"] == 1.0 and "status" not in records[1]
    assert unmapped == ["O3"]
    no_time = Packet(cn="2011", mn="M", cp="w01018-Rtd=1")
    assert "timestamp" not in hj212.to_readings(no_time, "S")[0][0]
    assert hj212.to_readings(Packet(cn="2081", mn="M", cp="RestartTime=20260101000000"), "S") == ([], [])
    assert hj212.data_time("20160824003817000") == "2016-08-24 00:38:17.000"
    assert hj212.data_time("2016") is None


def test_frame_splitter_handles_garbage_cuts_and_bad_lengths():
    good = frame_of("QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=5;CP=&&DataTime=20260101000000;w01018-Rtd=1&&")
    bad_len = good.replace(good[2:6], b"0%03d" % (int(good[2:6]) - 5), 1)
    too_long = good.replace(good[2:6], b"0%03d" % (int(good[2:6]) + 40), 1)
    stream = b"garbage\x00\xff#" + good + bad_len + good + b"##zz" + too_long + good + b"##9999" + good
    s = hj212.FrameSplitter(max_segment=1024)
    out = []
    for i in range(0, len(stream), 7):  # byte dribbles
        out += s.feed(stream[i:i + 7])
    frames = [x for x in out if isinstance(x, bytes)]
    errors = [x for x in out if isinstance(x, Hj212Error)]
    assert frames == [good] * 4
    assert errors and all(e.code == "E7001" for e in errors)
    s.feed(good[:20])
    assert s.pending == 20 and s.flush().code == "E7001" and s.pending == 0


def test_fuzz_never_raises():
    rng = random.Random(212)
    seeds = [v["hex_or_text"].encode() for v in VECTORS]
    seeds.append(hj212.build_packet(Packet(cn="2051", mn="M", qn="1", flag=7, pnum=2, pno=1, cp="a-Avg=1")))
    alphabet = b"#&;=,-0123456789ABCDEFQNSTCPMW\r\n\x00\xff"
    for _ in range(3000):
        base = bytearray(rng.choice(seeds))
        kind = rng.randrange(4)
        if kind == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
        elif kind == 1:
            data = bytes(base[:rng.randrange(len(base) + 1)])
        elif kind == 2:
            for _ in range(rng.randrange(1, 5)):
                i = rng.randrange(len(base))
                base[i] ^= 1 << rng.randrange(8)
            data = bytes(base)
        else:
            for _ in range(rng.randrange(1, 5)):
                base[rng.randrange(len(base))] = rng.choice(alphabet)
            data = bytes(base)
        result = hj212.parse_packet(data)
        assert isinstance(result, Packet | Hj212Error)
        if isinstance(result, Packet):
            hj212.to_readings(result, "S")
            hj212.answers_for(result)
        splitter = hj212.FrameSplitter()
        for item in splitter.feed(data) + splitter.feed(rng.choice(seeds)):
            if isinstance(item, bytes):
                hj212.parse_packet(item)
