"""BCD values (protocols.md §2.7) and the error word of abnormal replies (DL/T 645-2007 clause 7, §2.6)."""

from __future__ import annotations

from collections.abc import Iterable

from .identifiers import Identifier
from .model import E_LENGTH, Dlt645Error

# DL/T 645-2007 clause 7 error word (protocols.md §2.6); bit 7 is reserved.
ERROR_BITS_2007 = {0: "other error", 1: "no requested data", 2: "password error or unauthorised",
                   3: "baud rate cannot be changed", 4: "year time-zone count exceeded",
                   5: "daily time-slot count exceeded", 6: "tariff count exceeded"}
# DL/T 645-1997 error word: same layout, with bit 0 "illegal data" and bit 1 "wrong data identifier".
ERROR_BITS_1997 = {0: "illegal data", 1: "wrong data identifier", 2: "password error",
                   4: "year time-zone count exceeded", 5: "daily time-slot count exceeded",
                   6: "tariff count exceeded"}


def decode_error_word(word: int, version: str = "2007") -> tuple[str, ...]:
    """The meanings of the ERR byte of an abnormal reply (DL/T 645-2007 7.1 / §2.6)."""
    table = ERROR_BITS_1997 if version == "1997" else ERROR_BITS_2007
    return tuple(table.get(bit, f"reserved bit {bit}") for bit in range(8) if word >> bit & 1)


# --- values --------------------------------------------------------------------------------------

def _bcd_value(chunk: bytes, ident: Identifier) -> float | None:
    """One value: low byte first on the wire, BCD digits, the sign in the top bit when signed (§2.7)."""
    be = bytearray(chunk[::-1])
    negative = False
    if ident.signed and be[0] & 0x80:
        negative = True
        be[0] &= 0x7F
    digits = be.hex()
    if not digits.isdigit():
        return None
    number = int(digits)
    value = number / 10 ** ident.decimals if ident.decimals else float(number)
    return -value if negative else value


def decode_value(ident: Identifier, raw: bytes) -> float | tuple[float, ...] | Dlt645Error:
    """The value bytes of a read reply (after the DI, 33H removed) in engineering units (§2.7).

    Non-BCD nibbles (FFH: "not available") are refused, never converted."""
    if not raw or len(raw) % ident.size or (ident.count is not None and len(raw) != ident.size * ident.count):
        want = "a multiple of" if ident.count is None else str(ident.size * (ident.count or 1))
        return Dlt645Error(E_LENGTH, f"DI {ident.di}: {len(raw)} value bytes, expected {want}")
    values = []
    for i in range(0, len(raw), ident.size):
        v = _bcd_value(raw[i:i + ident.size], ident)
        if v is None:
            return Dlt645Error(E_LENGTH, f"DI {ident.di}: value bytes {raw[i:i + ident.size].hex()} are not BCD")
        values.append(v)
    if ident.count == 1:
        return values[0]
    return tuple(values)


def encode_value(ident: Identifier, value: float | Iterable[float]) -> bytes:
    """Value bytes (low byte first, before +33H) for ``ident`` — the inverse of decode_value (§2.7).
    Raises ValueError when a value does not fit the format."""
    values = [value] if isinstance(value, int | float) else list(value)
    if ident.count is not None and len(values) != ident.count:
        raise ValueError(f"DI {ident.di} carries {ident.count} values, got {len(values)}")
    out = bytearray()
    digits = ident.size * 2
    for v in values:
        n = round(abs(v) * 10 ** ident.decimals)
        # signed: the top bit of the first BCD digit is the sign, so that digit stops at 7
        limit = 8 * 10 ** (digits - 1) if ident.signed else 10 ** digits
        if n >= limit:
            raise ValueError(f"DI {ident.di}: {v} does not fit {digits} BCD digits{' signed' * ident.signed}")
        be = bytearray(bytes.fromhex(f"{n:0{digits}d}"))
        if ident.signed and v < 0 and n:
            be[0] |= 0x80
        out += be[::-1]
    return bytes(out)
