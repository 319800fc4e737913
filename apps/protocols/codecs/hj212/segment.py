"""The data segment (HJ 212-2017 6.3.2, Table 3) and its data area (6.3.3): the Packet and Hj212Error
dataclasses, CP syntax, and segment parsing and encoding.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .constants import E_CN, E_SYNTAX, FLAG_A, FLAG_D, KNOWN_CNS, VERSION_NAMES


@dataclass(frozen=True)
class Hj212Error:
    """Why bytes were not a usable packet: an E70xx code and an English detail for logs. ``packet`` is
    the parsed packet when the segment itself was readable (E7002 CRC mismatch, E7004 unsupported CN),
    so a caller may still answer it or accept it from a legacy device."""

    code: str
    detail: str
    packet: Packet | None = None


@dataclass(frozen=True)
class Packet:
    """One data segment (HJ 212-2017 6.3.2, Table 3). ``cp`` is the data area as sent, without the
    ``&&`` wrapping; ``qn``/``flag`` are None in HJ/T 212-2005 style packets."""

    cn: str
    mn: str
    cp: str = ""
    st: str | None = None
    pw: str | None = None
    qn: str | None = None
    flag: int | None = None
    pnum: int | None = None
    pno: int | None = None
    extra: tuple[tuple[str, str], ...] = ()  # unknown header fields, kept in order
    crc_ok: bool = True

    @property
    def ack_requested(self) -> bool:
        """Flag bit A (6.3.2): the receiver must answer."""
        return bool((self.flag or 0) & FLAG_A)

    @property
    def split(self) -> bool:
        """Flag bit D, or PNUM/PNO present without a Flag (some devices)."""
        return bool((self.flag or 0) & FLAG_D) or (self.pnum is not None and self.pno is not None)

    @property
    def version(self) -> int:
        """The version bits V5..V0 (0 = 2005, 1 = 2017, 2 = 2025); 0 when Flag is absent."""
        return (self.flag or 0) >> 2

    @property
    def version_name(self) -> str:
        return VERSION_NAMES.get(self.version, f"version {self.version}")

    def groups(self) -> list[list[tuple[str, str]]]:
        """The data area as groups of pairs (6.3.3); [] when it is not well formed."""
        parsed = parse_cp(self.cp)
        return [] if isinstance(parsed, Hj212Error) else parsed

    def fields(self) -> dict[str, str]:
        """The data area flattened to one dict (the first occurrence of a key wins)."""
        out: dict[str, str] = {}
        for group in self.groups():
            for k, v in group:
                out.setdefault(k, v)
        return out


# --- data area (6.3.3) ----------------------------------------------------------------------------

def parse_cp(text: str) -> list[list[tuple[str, str]]] | Hj212Error:
    """The data area (without ``&&``) as groups (``;``) of ``key=value`` pairs (``,``), HJ 212-2017 6.3.3.
    Empty groups (a trailing ``;``) are skipped; a pair without ``=`` or with an empty key is E7003."""
    groups: list[list[tuple[str, str]]] = []
    if text == "":
        return groups
    for raw_group in text.split(";"):
        if raw_group == "":
            continue
        group = []
        for pair in raw_group.split(","):
            key, eq, value = pair.partition("=")
            if not eq or not key.strip():
                return Hj212Error(E_SYNTAX, f"data area pair {pair[:40]!r} is not key=value")
            group.append((key.strip(), value.strip()))
        groups.append(group)
    return groups


def format_cp(groups: Iterable[Iterable[tuple[str, object]]]) -> str:
    """Groups of pairs back to data-area text (6.3.3)."""
    return ";".join(",".join(f"{k}={v}" for k, v in group) for group in groups)


def split_key(key: str) -> tuple[str | None, str]:
    """``w01018-Rtd`` → (``w01018``, ``Rtd``); ``DataTime`` → (None, ``DataTime``)."""
    code, dash, name = key.rpartition("-")
    if not dash or not code:
        return None, key
    return code, name


def factors(groups: list[list[tuple[str, str]]]) -> dict[str, dict[str, str]]:
    """Per-factor fields (Table 4 ``xxxxxx-Rtd`` …): {code: {field: value}}; the first value wins."""
    out: dict[str, dict[str, str]] = {}
    for group in groups:
        for k, v in group:
            code, name = split_key(k)
            if code is not None:
                out.setdefault(code, {}).setdefault(name, v)
    return out


# --- packets (6.3.1, 6.3.2) -----------------------------------------------------------------------

_HEADER_KEYS = ("QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO")


def parse_segment(segment: str) -> Packet | Hj212Error:
    """A data segment (text from ``QN=``/``ST=`` to the closing ``&&``) as a Packet, or E7003/E7004."""
    idx = segment.find("CP=&&")
    if idx < 0:
        return Hj212Error(E_SYNTAX, "no CP=&&…&& data area")
    if not segment.endswith("&&") or len(segment) < idx + 7:
        return Hj212Error(E_SYNTAX, "the data area does not end with &&")
    if idx and segment[idx - 1] != ";":
        return Hj212Error(E_SYNTAX, "CP must follow a ';'")
    cp = segment[idx + 5:-2]
    head: dict[str, str] = {}
    extra = []
    for part in segment[:idx].split(";"):
        if part == "":
            continue
        key, eq, value = part.partition("=")
        if not eq or not key:
            return Hj212Error(E_SYNTAX, f"header field {part[:40]!r} is not key=value")
        if key in _HEADER_KEYS:
            if key in head:
                return Hj212Error(E_SYNTAX, f"header field {key} appears twice")
            head[key] = value
        else:
            extra.append((key, value))
    cn = head.get("CN", "")
    if len(cn) != 4 or not cn.isascii() or not cn.isdigit():
        return Hj212Error(E_SYNTAX, f"CN must be 4 digits: {cn[:20]!r}")
    mn = head.get("MN", "")
    if not mn:
        return Hj212Error(E_SYNTAX, "MN is missing or empty")
    ints: dict[str, int | None] = {}
    for key, top in (("Flag", 255), ("PNUM", 9999), ("PNO", 9999)):
        raw = head.get(key)
        if raw is None:
            ints[key] = None
            continue
        if not raw.isascii() or not raw.isdigit() or not 0 <= int(raw) <= top:
            return Hj212Error(E_SYNTAX, f"{key} must be an integer from 0 to {top}: {raw[:20]!r}")
        ints[key] = int(raw)
    flag, pnum, pno = ints["Flag"], ints["PNUM"], ints["PNO"]
    if flag is not None and flag & FLAG_D and (pnum is None or pno is None):
        return Hj212Error(E_SYNTAX, "Flag has the D bit but PNUM/PNO are missing")
    if (pnum is None) != (pno is None):
        return Hj212Error(E_SYNTAX, "PNUM and PNO come together")
    if pnum is not None and not 1 <= pno <= pnum:
        return Hj212Error(E_SYNTAX, f"PNO {pno} is outside 1..PNUM ({pnum})")
    groups = parse_cp(cp)
    if isinstance(groups, Hj212Error):
        return groups
    packet = Packet(cn=cn, mn=mn, cp=cp, st=head.get("ST"), pw=head.get("PW"), qn=head.get("QN"),
                    flag=flag, pnum=pnum, pno=pno, extra=tuple(extra))
    if cn not in KNOWN_CNS:
        return Hj212Error(E_CN, f"command code CN={cn} is not supported", packet)
    return packet


def encode_segment(packet: Packet) -> str:
    """The data segment text, fields in the order of Table 3 (QN ST CN PW MN Flag PNUM PNO CP); absent
    (None) fields are left out, as HJ/T 212-2005 devices do."""
    parts = []
    for key, value in (("QN", packet.qn), ("ST", packet.st), ("CN", packet.cn), ("PW", packet.pw),
                       ("MN", packet.mn), ("Flag", packet.flag)):
        if value is not None:
            parts.append(f"{key}={value}")
    parts.extend(f"{k}={v}" for k, v in packet.extra)
    if packet.pnum is not None and packet.pno is not None:
        parts.append(f"PNUM={packet.pnum}")
        parts.append(f"PNO={packet.pno}")
    parts.append(f"CP=&&{packet.cp}&&")
    return ";".join(parts)
