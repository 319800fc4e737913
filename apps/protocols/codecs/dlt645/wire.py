"""Wire primitives (DL/T 645-2007 4.1): checksum, the 33H offset, addresses and data identifiers."""

from __future__ import annotations

from .identifiers import _norm_di
from .model import OFFSET

# --- primitives ----------------------------------------------------------------------------------

def checksum(frame_bytes: bytes) -> int:
    """CS of DL/T 645-2007 4.1: the sum mod 256 of the bytes from the first 68H through the last DATA byte."""
    return sum(frame_bytes) & 0xFF


def add_33(data: bytes) -> bytes:
    """DATA as transmitted: every byte +33H mod 256 (DL/T 645-2007 4.1)."""
    return bytes((b + OFFSET) & 0xFF for b in data)


def sub_33(data: bytes) -> bytes:
    """DATA as meant: every received byte −33H mod 256 (DL/T 645-2007 4.1)."""
    return bytes((b - OFFSET) & 0xFF for b in data)


def address_to_wire(address: str) -> bytes:
    """The 12-digit nameplate address (AA wildcards allowed) as the 6 wire bytes, A0 first (§2.3)."""
    address = address.replace(" ", "").upper()
    if len(address) != 12:
        raise ValueError(f"a DL/T 645 address has 12 digits: {address!r}")
    try:
        return bytes.fromhex(address)[::-1]
    except ValueError:
        raise ValueError(f"a DL/T 645 address is BCD digits or AA: {address!r}") from None


def address_from_wire(wire: bytes) -> str:
    """The 6 wire bytes (A0 first) as the 12-digit nameplate string (§2.3)."""
    return wire[::-1].hex().upper()


def di_to_wire(di: str) -> bytes:
    """A data identifier written high→low as its wire bytes, DI0 first, before +33H (§2.2)."""
    di = _norm_di(di)
    if len(di) not in (4, 8):
        raise ValueError(f"a data identifier has 4 (1997) or 8 (2007) hex digits: {di!r}")
    return bytes.fromhex(di)[::-1]


def di_from_wire(wire: bytes) -> str:
    return wire[::-1].hex().upper()
