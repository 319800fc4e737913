"""A JSON batch of records, decoded one record at a time when the whole cannot be (R-9.3.1).

One record nested 2 000 levels deep or carrying a 5 000-digit number makes the whole document
undecodable; the records beside it are still good. When the whole fails, the top-level array is cut
into its elements by a flat scan (strings skipped, brackets counted: no recursion, whatever the depth)
and each element is decoded on its own. An element that still fails stays in its place as an
``Undecodable``, which the pipeline refuses with E2019 under the index the sender knows.
"""

from __future__ import annotations

import json
import re

import orjson

from apps.core.text import bytes_to_text
from apps.ingestion.normalize import Undecodable

# A JSON string (escapes included), or one of the characters that shape the document.
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]', re.S)
_OPEN, _CLOSE, _COMMA = frozenset(b"[{"), frozenset(b"]}"), ord(",")


def loads(data: bytes):
    """orjson first; the standard library for what only it reads (NaN and Infinity, refused later per
    record with E2008; integers past 64 bits). Raises ValueError with orjson's explanation."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        first = exc
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise ValueError(str(first)) from None


def split_array(data: bytes) -> list[bytes] | None:
    """The top-level elements of a JSON array, as byte slices; None when ``data`` is not one array."""
    text = data.strip()
    if not text.startswith(b"["):
        return None
    depth, start, parts = 0, 1, []
    for m in _TOKENS.finditer(text):
        c = text[m.start()]
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
            if depth == 0:
                if m.end() != len(text):
                    return None
                last = text[start:m.start()].strip()
                if last or parts:
                    parts.append(last)
                return parts
        elif c == _COMMA and depth == 1:
            parts.append(text[start:m.start()].strip())
            start = m.end()
    return None


def decode_batch(body: bytes):
    """The decoded body; for an array that cannot be decoded as a whole, its elements decoded one by
    one, an ``Undecodable`` in place of each that cannot. Raises ValueError when ``body`` is not JSON."""
    try:
        return loads(body)
    except ValueError as exc:
        detail = str(exc)
    parts = split_array(body)
    if parts is None:
        raise ValueError(detail)
    records = []
    for part in parts:
        try:
            records.append(loads(part))
        except ValueError as exc:
            text, exact = bytes_to_text(part)
            records.append(Undecodable(text, str(exc)[:200], None if exact else part))
    return records
