"""Whole packets (HJ 212-2017 6.3.1): parsing, building and splitting them, and cutting them out of a
byte stream (protocols.md §1.13).
"""

from __future__ import annotations

from dataclasses import replace

from .constants import (
    E_CRC,
    E_FRAMING,
    E_SYNTAX,
    FLAG_D,
    HEADER,
    MAX_SEGMENT,
    STANDARD_MAX_CP,
    TAIL,
    VERSION_2017,
)
from .crc import crc16, crc_hex
from .segment import Hj212Error, Packet, encode_segment, format_cp, parse_segment


def parse_packet(data: bytes, *, verify_crc: bool = True) -> Packet | Hj212Error:
    """One whole packet ``##dddd<segment><crc>\\r\\n`` (HJ 212-2017 6.3.1) as a Packet, or an Hj212Error.

    Lenient where devices differ (protocols.md §1.13): CRC in either case, QN/Flag absent (2005), any
    MN length, unknown data-area fields. ``verify_crc=False`` ("log and accept" for legacy devices)
    returns the packet with ``crc_ok=False`` instead of E7002. Never raises."""
    try:
        return _parse_packet(bytes(data), verify_crc)
    except Exception as exc:  # noqa: BLE001 - a codec of untrusted bytes must not raise
        return Hj212Error(E_SYNTAX, f"unreadable packet ({type(exc).__name__})")


def _parse_packet(data: bytes, verify_crc: bool) -> Packet | Hj212Error:
    if len(data) < 12 or not data.startswith(HEADER):
        return Hj212Error(E_FRAMING, "a packet starts with ## and is at least 12 bytes")
    digits = data[2:6]
    if not digits.isdigit():
        return Hj212Error(E_FRAMING, f"the length field {digits!r} is not 4 decimal digits")
    n = int(digits)
    if len(data) != n + 12:
        return Hj212Error(E_FRAMING, f"the length field says {n} bytes but the data segment has {len(data) - 12}")
    if not data.endswith(TAIL):
        return Hj212Error(E_FRAMING, "the packet does not end with \\r\\n")
    seg = data[6:6 + n]
    crc_text = data[6 + n:10 + n]
    try:
        sent_crc = int(crc_text.decode("ascii"), 16) if len(crc_text) == 4 and all(
            c in b"0123456789abcdefABCDEF" for c in crc_text) else None
    except (UnicodeDecodeError, ValueError):
        sent_crc = None
    if sent_crc is None:
        return Hj212Error(E_FRAMING, f"the CRC field {crc_text!r} is not 4 hex digits")
    try:
        text = seg.decode("utf-8")
    except UnicodeDecodeError:
        return Hj212Error(E_SYNTAX, "the data segment is not UTF-8 text")
    packet = parse_segment(text)
    computed = crc16(seg)
    if isinstance(packet, Hj212Error):
        if computed != sent_crc and packet.packet is None:
            return Hj212Error(E_CRC, f"CRC {crc_text.decode()} sent, {computed:04X} computed")
        if computed != sent_crc:
            return Hj212Error(E_CRC, f"CRC {crc_text.decode()} sent, {computed:04X} computed",
                              replace(packet.packet, crc_ok=False))
        return packet
    if computed != sent_crc:
        bad = replace(packet, crc_ok=False)
        if verify_crc:
            return Hj212Error(E_CRC, f"CRC {crc_text.decode()} sent, {computed:04X} computed", bad)
        return bad
    return packet


def build_packet(packet: Packet) -> bytes:
    """The whole packet on the wire (6.3.1): ``##`` · length · segment · CRC (upper case) · CRLF.
    Raises ValueError when the segment exceeds 9999 bytes (split it with :func:`split_packet`)."""
    seg = encode_segment(packet).encode("utf-8")
    if len(seg) > MAX_SEGMENT:
        raise ValueError(f"data segment of {len(seg)} bytes; the length field holds at most {MAX_SEGMENT}")
    return HEADER + f"{len(seg):04d}".encode() + seg + crc_hex(seg).encode() + TAIL


def split_packet(packet: Packet, max_cp: int = STANDARD_MAX_CP) -> list[Packet]:
    """A packet whose data area exceeds ``max_cp`` characters as PNUM parts (6.3.2, Flag bit D), cut
    between groups; ``DataTime`` (when present) is repeated in every part. One part → unchanged."""
    groups = packet.groups()
    if len(packet.cp) <= max_cp or len(groups) < 2:
        return [packet]
    lead = [g for g in groups if g and g[0][0] == "DataTime" and len(g) == 1]
    rest = [g for g in groups if g not in lead]
    parts: list[list] = []
    current: list = []
    for group in rest:
        trial = format_cp(lead + current + [group])
        if current and len(trial) > max_cp:
            parts.append(current)
            current = []
        current.append(group)
    parts.append(current)
    flag = (packet.flag if packet.flag is not None else VERSION_2017 << 2) | FLAG_D
    return [replace(packet, cp=format_cp(lead + p), flag=flag, pnum=len(parts), pno=i + 1)
            for i, p in enumerate(parts)]


# --- stream framing (protocols.md §1.13) ----------------------------------------------------------

class FrameSplitter:
    """Cuts ``##…\\r\\n`` packets out of a byte stream: skips garbage between packets, enforces a maximum
    segment length and resynchronises on the next ``##`` after a bad length. ``feed`` returns whole
    frames (bytes, still to be checked with :func:`parse_packet`) and Hj212Error(E7001) for what was
    skipped. Pure: the caller does the reading and the timeouts (``pending`` is what waits)."""

    def __init__(self, max_segment: int = MAX_SEGMENT):
        self.max_segment = max_segment
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        return len(self._buf)

    def flush(self) -> Hj212Error | None:
        """Drop a partial frame (the peer fell silent or left): E7001 when something was waiting."""
        if not self._buf:
            return None
        n = len(self._buf)
        self._buf.clear()
        return Hj212Error(E_FRAMING, f"{n} bytes of an unfinished packet dropped")

    def feed(self, data: bytes) -> list[bytes | Hj212Error]:
        self._buf += data
        out: list[bytes | Hj212Error] = []
        buf = self._buf
        while buf:
            start = buf.find(HEADER)
            if start < 0:
                keep = 1 if buf.endswith(b"#") else 0
                skipped = len(buf) - keep
                if skipped:
                    out.append(Hj212Error(E_FRAMING, f"{skipped} bytes of garbage skipped"))
                    del buf[:skipped]
                break
            if start:
                out.append(Hj212Error(E_FRAMING, f"{start} bytes of garbage skipped"))
                del buf[:start]
            if len(buf) < 6:
                break
            digits = bytes(buf[2:6])
            if not digits.isdigit() or int(digits) > self.max_segment:
                out.append(Hj212Error(E_FRAMING, f"bad length field {digits!r} (at most {self.max_segment})"))
                del buf[:1]
                continue
            total = int(digits) + 12
            # A new packet starting before this one's end means this one was cut short (or its length lies).
            cut = buf.find(TAIL + HEADER, 6, total - 2)
            if cut >= 0:
                out.append(Hj212Error(E_FRAMING, f"packet cut short: {cut + 2} bytes where the length field "
                                                 f"implies {total}"))
                del buf[:cut + 2]
                continue
            if len(buf) < total:
                break
            if buf[total - 2:total] != TAIL:
                out.append(Hj212Error(E_FRAMING, f"no \\r\\n where the length field ({int(digits)}) puts the "
                                                 f"end of the packet"))
                del buf[:1]
                continue
            out.append(bytes(buf[:total]))
            del buf[:total]
        return out
