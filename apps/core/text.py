"""Text that PostgreSQL can store, whatever a sender put in it.

PostgreSQL's text type refuses NUL (U+0000), and UTF-8 cannot carry a lone surrogate (a JSON string
may hold ``"\\ud800"``). Hostile or broken input must still be kept as a rejection (R-9.3.1), so what
goes into a text column is escaped here, visibly and reversibly for a reader, while the exact bytes
travel beside it in a bytea column where that matters (``Rejection.raw_bytes``).
"""

from __future__ import annotations


def is_storable(text: str) -> bool:
    """True when PostgreSQL can store ``text`` as it is (no NUL, no lone surrogate)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def pg_safe(text: str) -> str:
    """``text`` with NUL written as ``\\u0000`` and lone surrogates as ``\\ud800``-style escapes: storable, readable."""
    if not isinstance(text, str) or is_storable(text):
        return text
    return text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")


def bytes_to_text(payload: bytes, limit: int = 4000) -> tuple[str, bool]:
    """A storable rendering of ``payload``'s first ``limit`` bytes, and whether it is exact (valid UTF-8
    without NUL, not cut). Inexact renderings are kept with the bytes themselves beside them."""
    head = payload[:limit]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + payload[: limit // 2].hex(), False
    safe = pg_safe(text)
    return safe, safe == text and len(payload) <= limit


def number(value) -> str:
    """A stored value as a person reads it: the shortest text that gives the same float back, and for a value a
    device sent as a 32-bit float (TLV float32, Modbus float registers) the shortest that gives the same float32:
    1090.0089 rather than 1090.0089111328125, the widening's digits. Nothing is rounded beyond what was sent."""
    if not isinstance(value, float) or value != value or value in (float("inf"), float("-inf")) or (
            value.is_integer() and abs(value) < 1e15):
        return str(value)
    import struct

    try:
        single = struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        return repr(value)
    if single == value:
        for digits in range(1, 10):
            text = f"{value:.{digits}g}"
            if struct.unpack("<f", struct.pack("<f", float(text)))[0] == single:
                return text if "e" not in text else repr(float(text))
    return repr(value)
