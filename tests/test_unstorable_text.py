"""NUL bytes and lone surrogates from a sender are kept as rejections, never turned into a database error
that would take the valid records of the same batch with it (issue #7, R-9.3.1)."""

import json

from apps.core.text import bytes_to_text, pg_safe
from apps.ingestion.models import Reading, Rejection
from apps.ingestion.services import ingest_readings
from tests.test_ingest_api import rec


def test_pg_safe_escapes_only_what_postgresql_refuses():
    assert pg_safe("电表 ok") == "电表 ok"
    assert pg_safe("x\x00y") == "x\\u0000y"
    assert pg_safe("a\ud800b") == "a\\ud800b"
    assert bytes_to_text(b"x\x00y") == ("x\\u0000y", False)
    assert bytes_to_text("读数".encode()) == ("读数", True)
    assert bytes_to_text(b"\xff\x00")[0] == "hex:ff00"


def test_nul_and_surrogates_in_any_field_are_rejections_beside_a_stored_record(meter):
    bad = [rec(sourceId="TP01\x00EM"), rec(dataCode="CS01\ud800"), rec(unit="k\x00Wh"),
           rec(timestamp="2026-11-23 10:05:00\x00"), rec(status="\ud800")]
    result = ingest_readings([*bad, rec()], channel="test", actor="test")
    assert result.accepted == 1 and Reading.objects.count() == 1
    assert sorted(r["index"] for r in result.to_json()["rejected"]) == [0, 1, 2, 3, 4]
    stored = {r.index: r for r in Rejection.objects.all()}
    assert set(stored) == {0, 1, 2, 3, 4}
    assert "\\u0000" in stored[0].raw and "\\u0000" in stored[0].source_ref
    assert "\\ud800" in stored[1].raw
    json.dumps(result.to_json())  # the answer itself is serialisable


def test_exact_bytes_kept_beside_an_inexact_text(meter):
    from apps.ingestion.channels.payloads import Refusal
    from apps.ingestion.errors import E5203

    payload = b"x\x00y\xff"
    text, exact = bytes_to_text(payload)
    assert not exact
    ingest_readings([], channel="test", actor="test", refused=[Refusal(text, E5203, {"topic": "t"}, raw_bytes=payload)])
    rej = Rejection.objects.get()
    assert bytes(rej.raw_bytes) == payload and rej.raw == "hex:780079ff"


def test_numbers_read_as_sent_float32_without_the_widenings_digits():
    import math
    import struct

    from apps.core.text import number

    def f32(v):
        return struct.unpack("<f", struct.pack("<f", v))[0]

    assert f32(1090.0089) == 1090.0089111328125 and number(f32(1090.0089)) == "1090.0089"
    assert number(f32(0.1)) == "0.1" and number(f32(-3.3e-5)) == "-3.3e-05"
    # a double keeps every digit it has; nothing is rounded beyond what was sent
    for v in (0.1, 0.30000000000000004, 123456789.123, 1e300, -2.5e-7, 1090.0089):
        assert float(number(v)) == v
    assert [number(v) for v in (38.0, 5, math.inf, math.nan, 1e20)] == ["38.0", "5", "inf", "nan", "1e+20"]
