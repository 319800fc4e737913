"""The CPE1 encryption envelope (interfaces.md §5, R-5.2.2.6, R-8.2.2.2): layout, AAD binding, tampering."""

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from apps.protocols.codecs.envelope import (
    CONTENT_FILE,
    CONTENT_JSON,
    CONTENT_TLV,
    Envelope,
    EnvelopeError,
    is_envelope,
    open_envelope,
    parse,
    seal,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
NONCE = bytes.fromhex("000102030405060708090a0b")
SOURCE = "JSTZ01-EM-0001"
PLAIN = b'{"sourceId":"JSTZ01-EM-0001","value":1}'
VECTOR = (
    "43504531" "01" "08" "6b323032362d3131" "000102030405060708090a0b"
    "3c20a574b097a17ec425b5b193a32b39d9e6b619b536724c0857d4a7314b76d36d65cbde95f06ff2"
    "dad4149721350cc9e24336d5ddd7ab"
)


def sealed(plaintext: bytes = PLAIN, **overrides) -> bytes:
    args = {"key": KEY, "key_id": "k2026-11", "content_type": CONTENT_JSON, "source_id": SOURCE, "nonce": NONCE}
    return seal(plaintext, **{**args, **overrides})


def code_of(data: bytes, key: bytes = KEY, source_id: str = SOURCE) -> str:
    with pytest.raises(EnvelopeError) as info:
        open_envelope(parse(data), key, source_id)
    return info.value.code


def test_fixed_vector():
    # Built independently: the documented header, AAD = header + sourceId, AESGCM straight from the library.
    header = b"CPE1" + bytes([0x01, 8]) + b"k2026-11"
    independent = header + NONCE + AESGCM(KEY).encrypt(NONCE, PLAIN, header + SOURCE.encode("utf-8"))
    assert independent.hex() == VECTOR
    assert sealed().hex() == VECTOR


def test_round_trip_every_content_type():
    for content_type in (CONTENT_JSON, CONTENT_TLV, CONTENT_FILE):
        data = seal(b"\x00payload\xff", key=KEY, key_id="park-7/2026-11", content_type=content_type,
                    source_id="upload:0b6f")
        env = parse(data)
        assert env == Envelope(content_type, "park-7/2026-11", data[20:32], data[32:], data[:20])
        assert open_envelope(env, KEY, "upload:0b6f") == b"\x00payload\xff"
    assert open_envelope(parse(sealed(plaintext=b"")), KEY, SOURCE) == b""
    assert open_envelope(parse(sealed(source_id="数据源-1")), KEY, "数据源-1") == PLAIN  # UTF-8 sourceId


def test_fresh_nonce_by_default():
    a = seal(PLAIN, key=KEY, key_id="k", content_type=CONTENT_JSON, source_id=SOURCE)
    b = seal(PLAIN, key=KEY, key_id="k", content_type=CONTENT_JSON, source_id=SOURCE)
    assert parse(a).nonce != parse(b).nonce
    assert open_envelope(parse(a), KEY, SOURCE) == open_envelope(parse(b), KEY, SOURCE) == PLAIN


def test_key_id_lengths():
    longest = "k" * 255
    assert parse(sealed(key_id=longest)).key_id == longest
    assert open_envelope(parse(sealed(key_id="k")), KEY, SOURCE) == PLAIN
    for bad in ("", "k" * 256, "密钥"):
        with pytest.raises(ValueError):
            sealed(key_id=bad)


def test_seal_refuses_bad_arguments():
    for overrides in ({"key": KEY[:16]}, {"content_type": 4}, {"nonce": NONCE[:11]}):
        with pytest.raises(ValueError):
            sealed(**overrides)


def test_is_envelope():
    assert is_envelope(sealed())
    assert is_envelope(bytearray(sealed()))
    assert not is_envelope(b'{"sourceId": "x"}')
    assert not is_envelope(b"\x01\x00\x0eJSTZ")
    assert not is_envelope(b"CPE")


def test_bound_to_the_source():
    assert code_of(sealed(), source_id="JSTZ01-EM-0002") == "E5103"
    assert code_of(sealed(source_id=SOURCE + "x")) == "E5103"


def test_wrong_key():
    assert code_of(sealed(), key=OTHER_KEY) == "E5103"
    assert code_of(sealed(), key=KEY[:16]) == "E5101"


def test_tampering_anywhere_is_refused():
    data = sealed()
    header_len = 6 + 8
    for at in range(len(data)):
        for mask in (0x01, 0x80):
            damaged = bytearray(data)
            damaged[at] ^= mask
            with pytest.raises(EnvelopeError) as info:
                open_envelope(parse(bytes(damaged)), KEY, SOURCE)
            if at >= header_len or (at == 4 and damaged[4] in (1, 2, 3)):
                assert info.value.code == "E5103", at  # nonce, ciphertext, tag; or content type swapped
    # Named cases: key id, nonce, ciphertext, GCM tag, another valid content type.
    for at in (7, header_len, header_len + 12, len(data) - 1):
        damaged = bytearray(data)
        damaged[at] ^= 0x04
        assert code_of(bytes(damaged)) == "E5103"
    assert code_of(data[:4] + b"\x02" + data[5:]) == "E5103"
    assert code_of(data + b"\x00") == "E5103"
    assert code_of(data[:-1]) == "E5103"


@pytest.mark.parametrize(("data", "code"), [
    (b"", "E5101"),
    (b"CPE1\x01", "E5101"),
    (b"CPE2\x01\x01k" + bytes(28), "E5101"),
    (b"cpe1\x01\x01k" + bytes(28), "E5101"),
    (b"CPE1\x00\x01k" + bytes(28), "E5105"),
    (b"CPE1\x04\x01k" + bytes(28), "E5105"),
    (b"CPE1\x01\x00" + bytes(28), "E5101"),
    (b"CPE1\x01\x09k2026-11", "E5101"),
    (b"CPE1\x01\x02k\xe9" + bytes(28), "E5101"),
    (b"CPE1\x01\x01k" + bytes(12 + 15), "E5101"),
    (b"CPE1\x01\x01k" + bytes(5), "E5101"),
])
def test_parse_errors(data, code):
    with pytest.raises(EnvelopeError) as info:
        parse(data)
    assert info.value.code == code and info.value.detail


def test_shortest_envelope_parses():
    env = parse(b"CPE1\x02\x01k" + bytes(12 + 16))
    assert (env.content_type, env.key_id, env.ciphertext) == (CONTENT_TLV, "k", bytes(16))
    assert code_of(b"CPE1\x02\x01k" + bytes(12 + 16)) == "E5103"
