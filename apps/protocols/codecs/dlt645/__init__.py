"""DL/T 645-2007 and DL/T 645-1997 meter frames (protocols.md §2), both directions.

Frame (DL/T 645-2007 clause 4.1 / protocols.md §2.2): ``68 A0..A5 68 C L DATA CS 16``; the address is
12 BCD digits sent lowest pair first; every DATA byte goes out +33H; CS is the sum mod 256 of every byte
from the first 68H through the last DATA byte. Senders may put any number of FEH wake-up bytes before the
frame; those are not part of the frame. Inside a frame an FEH byte is ordinary data (a value byte CBH
+ 33H), so a frame is delimited by its length byte L, never by scanning for FEH or 16H (§2.9).

The codec is pure: bytes in, dataclasses out and back; it never raises on what arrives from the wire.
Error codes reported (the integrator defines their texts in ``apps.ingestion.errors``): E7101 checksum
failed, E7102 frame cut short / bad length / bad end byte / not BCD, E7103 the meter answered with an
abnormal reply (error word decoded), E7104 a data identifier the codec does not know.
"""

from __future__ import annotations

from .frames import (
    FrameScanner,
    build_address_reply,
    build_error_reply,
    build_read_address_request,
    build_read_reply,
    build_read_request,
    decode_frame,
    decode_frames,
    encode_frame,
    parse_address_reply,
    parse_reply,
)
from .identifiers import (
    Identifier,
    lookup,
)
from .model import (
    ABNORMAL,
    BROADCAST_ADDRESS,
    C_BROADCAST_TIME,
    C_READ,
    C_READ_1997,
    C_READ_ADDRESS,
    C_READ_FOLLOW_UP,
    DIR_REPLY,
    E_CHECKSUM,
    E_LENGTH,
    E_METER,
    E_UNKNOWN_DI,
    END,
    FOLLOW_UP,
    OFFSET,
    PREAMBLE,
    START,
    WILDCARD_ADDRESS,
    Dlt645Error,
    Dlt645Frame,
    Dlt645Reading,
)
from .values import (
    ERROR_BITS_1997,
    ERROR_BITS_2007,
    decode_error_word,
    decode_value,
    encode_value,
)
from .wire import (
    add_33,
    address_from_wire,
    address_to_wire,
    checksum,
    di_from_wire,
    di_to_wire,
    sub_33,
)

__all__ = [
    "PREAMBLE",
    "START",
    "END",
    "OFFSET",
    "BROADCAST_ADDRESS",
    "WILDCARD_ADDRESS",
    "C_BROADCAST_TIME",
    "C_READ",
    "C_READ_FOLLOW_UP",
    "C_READ_ADDRESS",
    "C_READ_1997",
    "DIR_REPLY",
    "ABNORMAL",
    "FOLLOW_UP",
    "E_CHECKSUM",
    "E_LENGTH",
    "E_METER",
    "E_UNKNOWN_DI",
    "ERROR_BITS_2007",
    "ERROR_BITS_1997",
    "Dlt645Error",
    "Dlt645Frame",
    "Identifier",
    "Dlt645Reading",
    "lookup",
    "checksum",
    "add_33",
    "sub_33",
    "address_to_wire",
    "address_from_wire",
    "di_to_wire",
    "di_from_wire",
    "decode_error_word",
    "decode_value",
    "encode_value",
    "encode_frame",
    "build_read_request",
    "build_read_address_request",
    "build_read_reply",
    "build_error_reply",
    "build_address_reply",
    "FrameScanner",
    "decode_frames",
    "decode_frame",
    "parse_reply",
    "parse_address_reply",
]
