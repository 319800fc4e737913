"""Frames (DL/T 645-2007 4.1): encoding requests and replies, scanning a byte stream (FrameScanner,
protocols.md §2.9) and interpreting read replies.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .identifiers import lookup
from .model import (
    _HEADER_LEN,
    _MIN_FRAME,
    ABNORMAL,
    C_READ,
    C_READ_1997,
    C_READ_ADDRESS,
    DIR_REPLY,
    E_CHECKSUM,
    E_LENGTH,
    E_METER,
    E_UNKNOWN_DI,
    END,
    PREAMBLE,
    START,
    WILDCARD_ADDRESS,
    Dlt645Error,
    Dlt645Frame,
    Dlt645Reading,
)
from .values import decode_error_word, decode_value, encode_value
from .wire import add_33, address_from_wire, address_to_wire, checksum, di_from_wire, di_to_wire, sub_33

# --- frames --------------------------------------------------------------------------------------

def encode_frame(address: str, control: int, data: bytes = b"", *, preamble: int = 0) -> bytes:
    """A frame of DL/T 645-2007 4.1: ``preamble`` FEH bytes, then 68 A 68 C L DATA(+33H) CS 16."""
    if len(data) > 255:
        raise ValueError("DL/T 645 DATA holds at most 255 bytes")
    body = bytes([START]) + address_to_wire(address) + bytes([START, control & 0xFF, len(data)]) + add_33(data)
    return bytes([PREAMBLE]) * preamble + body + bytes([checksum(body), END])


def build_read_request(address: str, di: str, *, preamble: int = 4) -> bytes:
    """Read data: 11H with DI0..DI3 (DL/T 645-2007 7.1 / §2.5) for an 8-digit DI; 01H with the 2-byte DI
    (DL/T 645-1997, §2.8) for a 4-digit one."""
    wire = di_to_wire(di)
    control = C_READ if len(wire) == 4 else C_READ_1997
    return encode_frame(address, control, wire, preamble=preamble)


def build_read_address_request(*, preamble: int = 4) -> bytes:
    """Read address 13H to the wildcard AA…AA with no data (DL/T 645-2007 7.8 / §2.5)."""
    return encode_frame(WILDCARD_ADDRESS, C_READ_ADDRESS, b"", preamble=preamble)


def build_read_reply(address: str, di: str, value: float | Iterable[float], *, preamble: int = 0) -> bytes:
    """A normal read reply (91H for 2007, 81H for 1997): DI then the value bytes (§2.5). For simulators."""
    ident = lookup(di)
    if ident is None:
        raise ValueError(f"unknown data identifier {di!r}")
    control = C_READ | DIR_REPLY if ident.version == "2007" else C_READ_1997 | DIR_REPLY
    return encode_frame(address, control, di_to_wire(di) + encode_value(ident, value), preamble=preamble)


def build_error_reply(address: str, error_word: int, *, version: str = "2007", preamble: int = 0) -> bytes:
    """An abnormal read reply (D1H for 2007, C1H for 1997) carrying the ERR byte (§2.5, §2.6)."""
    control = (C_READ if version == "2007" else C_READ_1997) | DIR_REPLY | ABNORMAL
    return encode_frame(address, control, bytes([error_word & 0xFF]), preamble=preamble)


def build_address_reply(address: str, *, preamble: int = 0) -> bytes:
    """The read-address reply 93H: the meter's address as frame address and as data (§2.5)."""
    return encode_frame(address, C_READ_ADDRESS | DIR_REPLY, address_to_wire(address), preamble=preamble)


class FrameScanner:
    """Finds frames in a byte stream (DL/T 645-2007 4.1; guidance of protocols.md §2.9).

    ``feed`` takes whatever bytes arrived and returns the frames and errors completed so far. FEH and
    any other bytes before a 68H are skipped (counted in ``skipped``); a candidate needs 68H again at
    offset 7 and is measured by L, so a 16H or FEH byte inside DATA or as CS does not cut it. A bad CS or
    end byte reports an error and resynchronises at the next 68H after the candidate's start. ``flush``
    ends the stream: a partial frame left is reported as cut short (E7102).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._fe = 0
        self.skipped = 0

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)

    def feed(self, data: bytes) -> list[Dlt645Frame | Dlt645Error]:
        self._buf += data
        return list(self._scan(final=False))

    def flush(self) -> list[Dlt645Frame | Dlt645Error]:
        out = list(self._scan(final=True))
        if self._buf:
            out.append(Dlt645Error(E_LENGTH, f"frame cut short: {len(self._buf)} bytes left at end of stream"))
            self._buf.clear()
        return out

    def _scan(self, final: bool) -> Iterator[Dlt645Frame | Dlt645Error]:
        buf = self._buf
        while buf:
            start = buf.find(START)
            if start < 0:
                self._skip(len(buf))
                return
            if start:
                self._skip(start)
            if len(buf) < _HEADER_LEN:
                if not final:
                    return
                if len(buf) >= 8 and buf[7] != START:
                    self._drop_candidate()
                    continue
                yield Dlt645Error(E_LENGTH, f"frame cut short: {len(buf)} bytes of a header")
                self._drop_candidate()
                continue
            if buf[7] != START:
                self._drop_candidate()
                continue
            length = buf[9]
            total = _MIN_FRAME + length
            if len(buf) < total:
                if final:
                    yield Dlt645Error(E_LENGTH, f"frame cut short: L={length} needs {total} bytes, "
                                                f"{len(buf)} arrived", address_from_wire(bytes(buf[1:7])))
                    self._drop_candidate()
                    continue
                return
            body = bytes(buf[:_HEADER_LEN + length])
            address = address_from_wire(body[1:7])
            if buf[total - 2] != checksum(body):
                yield Dlt645Error(E_CHECKSUM, f"checksum {buf[total - 2]:02X}, computed {checksum(body):02X}",
                                  address)
                self._drop_candidate()
                continue
            if buf[total - 1] != END:
                yield Dlt645Error(E_LENGTH, f"end byte {buf[total - 1]:02X} instead of 16 (wrong L?)", address)
                self._drop_candidate()
                continue
            frame = Dlt645Frame(address, body[8], sub_33(body[_HEADER_LEN:]), self._fe)
            del buf[:total]
            self._fe = 0
            yield frame

    def _skip(self, n: int) -> None:
        chunk = self._buf[:n]
        fe = len(chunk) - len(chunk.rstrip(bytes([PREAMBLE])))
        self.skipped += n - fe if fe < n else 0
        # the FEH run just before a frame is its preamble
        self._fe = fe if fe < n else self._fe + n
        del self._buf[:n]

    def _drop_candidate(self) -> None:
        self.skipped += 1
        self._fe = 0
        del self._buf[:1]


def decode_frames(data: bytes) -> list[Dlt645Frame | Dlt645Error]:
    """Every frame and error in a complete buffer (DL/T 645-2007 4.1, §2.9)."""
    scanner = FrameScanner()
    return scanner.feed(data) + scanner.flush()


def decode_frame(data: bytes) -> Dlt645Frame | Dlt645Error:
    """The first frame of a buffer, else the first error found (E7102 if nothing frame-like)."""
    results = decode_frames(data)
    for r in results:
        if isinstance(r, Dlt645Frame):
            return r
    return results[0] if results else Dlt645Error(E_LENGTH, "no frame in the bytes")


def parse_reply(frame: Dlt645Frame) -> Dlt645Reading | Dlt645Error:
    """A read reply interpreted (DL/T 645-2007 7.1 / §2.5; 1997 §2.8): 91H/B1H/81H/A1H → the DI's value
    with its unit; D1H/C1H → E7103 with the error word decoded; an unknown DI → E7104."""
    version = frame.version or "2007"
    if not frame.is_reply or frame.function not in (C_READ, C_READ_1997):
        return Dlt645Error(E_LENGTH, f"control {frame.control:02X} is not a read reply", frame.address)
    if frame.is_abnormal:
        if len(frame.data) != 1:
            return Dlt645Error(E_LENGTH, f"abnormal reply with {len(frame.data)} data bytes", frame.address)
        word = frame.data[0]
        bits = decode_error_word(word, version)
        return Dlt645Error(E_METER, f"meter error word {word:02X}: {', '.join(bits) or 'no bit set'}",
                           frame.address, word, bits)
    di_len = 4 if version == "2007" else 2
    if len(frame.data) < di_len:
        return Dlt645Error(E_LENGTH, f"reply of {len(frame.data)} data bytes has no DI", frame.address)
    di = di_from_wire(frame.data[:di_len])
    ident = lookup(di)
    if ident is None:
        return Dlt645Error(E_UNKNOWN_DI, f"data identifier {di} is not known", frame.address)
    raw = frame.data[di_len:]
    value = decode_value(ident, raw)
    if isinstance(value, Dlt645Error):
        return Dlt645Error(value.code, value.detail, frame.address)
    return Dlt645Reading(frame.address, di, ident.name, value, ident.unit, version, raw)


def parse_address_reply(frame: Dlt645Frame) -> str | Dlt645Error:
    """The address carried by a read-address reply 93H (DL/T 645-2007 7.8)."""
    if frame.control != C_READ_ADDRESS | DIR_REPLY or len(frame.data) != 6:
        return Dlt645Error(E_LENGTH, f"not a read-address reply: control {frame.control:02X}, "
                                     f"{len(frame.data)} data bytes", frame.address)
    return address_from_wire(frame.data)
