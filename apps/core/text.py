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
