"""Constants of DL/T 645 (start/end bytes, control codes, error codes) and the frame, error and reading
dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PREAMBLE = 0xFE
START = 0x68
END = 0x16
OFFSET = 0x33
BROADCAST_ADDRESS = "999999999999"
WILDCARD_ADDRESS = "AAAAAAAAAAAA"

# DL/T 645-2007 control codes (protocols.md §2.4)
C_BROADCAST_TIME = 0x08
C_READ = 0x11
C_READ_FOLLOW_UP = 0x12
C_READ_ADDRESS = 0x13
# DL/T 645-1997 control codes (protocols.md §2.8)
C_READ_1997 = 0x01

DIR_REPLY = 0x80
ABNORMAL = 0x40
FOLLOW_UP = 0x20

E_CHECKSUM = "E7101"
E_LENGTH = "E7102"
E_METER = "E7103"
E_UNKNOWN_DI = "E7104"

_HEADER_LEN = 10  # 68 A0..A5 68 C L
_MIN_FRAME = 12  # header + CS + 16


@dataclass(frozen=True)
class Dlt645Error:
    """A frame or reply that was refused (E71xx) with an English detail for logs. For E7103 (the meter's
    abnormal reply) ``error_word`` holds the ERR byte and ``error_bits`` its meanings (§2.6)."""

    code: str
    detail: str
    address: str | None = None
    error_word: int | None = None
    error_bits: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dlt645Frame:
    """One frame (DL/T 645-2007 4.1): the address as the 12-digit nameplate string, the control code and
    the DATA with 33H already taken off. ``preamble`` counts the FEH bytes seen before it."""

    address: str
    control: int
    data: bytes = b""
    preamble: int = 0

    @property
    def is_reply(self) -> bool:
        return bool(self.control & DIR_REPLY)

    @property
    def is_abnormal(self) -> bool:
        return bool(self.control & ABNORMAL)

    @property
    def has_follow_up(self) -> bool:
        return bool(self.control & FOLLOW_UP)

    @property
    def function(self) -> int:
        return self.control & 0x1F

    @property
    def version(self) -> str | None:
        """"2007" or "1997" from the function code (§2.8); None for 08H, which both use."""
        if self.function == C_BROADCAST_TIME:
            return None
        return "2007" if self.function >= 0x11 else "1997"


@dataclass(frozen=True)
class Dlt645Reading:
    """A normal read reply (91H / 81H) decoded: one value, or a tuple for block identifiers."""

    address: str
    di: str
    name: str
    value: float | tuple[float, ...]
    unit: str | None
    version: str = "2007"
    raw: bytes = field(default=b"", repr=False)
