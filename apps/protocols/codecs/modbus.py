"""Modbus energy-meter register maps (protocols.md §3): typed points, block reads, RTU frames.

A meter's map is data: a list of ``Point`` (function 3 holding / 4 input registers, 0-based wire
address, type, byte and word order, scale/offset, unit). ``plan_reads`` coalesces points into as few
read requests as the Modbus limit allows (Modbus Application Protocol V1.1b3 6.3/6.4: 1..125 registers
per read) and ``decode_block`` turns a block's registers back into engineering values.

Byte/word orders of 32/64-bit values (§3 "General rules"): word_order "big" = most significant register
first; byte_order "big" = most significant byte first inside a register. ABCD = big/big (Eastron,
Schneider), CDAB = word little, BADC = byte little, DCBA = both little.

Pure: no I/O, no clock, no Django. Encoding and planning raise ValueError for a wrong map or value.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_READ_REGISTERS = 125  # Modbus Application Protocol V1.1b3 6.3 / 6.4
DEFAULT_MAX_GAP = 10

# type -> (registers, struct code)
TYPES = {"int16": (1, "h"), "uint16": (1, "H"), "int32": (2, "i"), "uint32": (2, "I"),
         "int64": (4, "q"), "uint64": (4, "Q"), "float32": (2, "f"), "float64": (4, "d")}
ORDERS = ("big", "little")
FUNCTIONS = (3, 4)
# The four usual names of 32-bit layouts → (byte_order, word_order).
LAYOUTS = {"ABCD": ("big", "big"), "CDAB": ("big", "little"), "BADC": ("little", "big"),
           "DCBA": ("little", "little")}


@dataclass(frozen=True)
class Point:
    """One quantity of a register map (protocols.md §3): value = raw × scale + offset, in ``unit``."""

    name: str
    function: int
    address: int
    type: str = "uint16"
    byte_order: str = "big"
    word_order: str = "big"
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    data_code: str | None = None

    def __post_init__(self) -> None:
        if self.function not in FUNCTIONS:
            raise ValueError(f"{self.name}: function must be 3 (holding) or 4 (input), not {self.function!r}")
        if self.type not in TYPES:
            raise ValueError(f"{self.name}: type must be one of {', '.join(TYPES)}, not {self.type!r}")
        if self.byte_order not in ORDERS or self.word_order not in ORDERS:
            raise ValueError(f"{self.name}: byte_order and word_order are 'big' or 'little'")
        if not isinstance(self.address, int) or not 0 <= self.address <= 0xFFFF - self.count + 1:
            raise ValueError(f"{self.name}: wire address {self.address!r} out of 0..65535")
        if not self.scale:
            raise ValueError(f"{self.name}: scale must not be 0")

    @property
    def count(self) -> int:
        """Registers the point spans."""
        return TYPES[self.type][0]


def _to_bytes(point: Point, registers: Sequence[int]) -> bytes:
    regs = list(registers)
    if point.word_order == "little":
        regs.reverse()
    out = bytearray()
    for r in regs:
        if not isinstance(r, int) or not 0 <= r <= 0xFFFF:
            raise ValueError(f"{point.name}: register value {r!r} out of 0..65535")
        hi, lo = r >> 8, r & 0xFF
        out += bytes((lo, hi) if point.byte_order == "little" else (hi, lo))
    return bytes(out)


def _from_bytes(point: Point, data: bytes) -> list[int]:
    regs = []
    for i in range(0, len(data), 2):
        a, b = data[i], data[i + 1]
        regs.append(b << 8 | a if point.byte_order == "little" else a << 8 | b)
    if point.word_order == "little":
        regs.reverse()
    return regs


def decode(point: Point, registers: Sequence[int]) -> float:
    """The point's value from its registers in wire order (protocols.md §3): raw × scale + offset.
    Floats keep NaN/inf as the meter sent them (Schneider's N/A is NaN)."""
    if len(registers) != point.count:
        raise ValueError(f"{point.name}: {point.type} spans {point.count} registers, got {len(registers)}")
    raw = struct.unpack(">" + TYPES[point.type][1], _to_bytes(point, registers))[0]
    if point.scale == 1 and point.offset == 0:
        return float(raw)
    return raw * point.scale + point.offset


def encode(point: Point, value: float) -> list[int]:
    """The registers (wire order) that carry ``value`` for this point — the inverse of decode, for
    simulators and writes. Raises ValueError when the value does not fit the type."""
    if isinstance(value, int) and point.scale == 1 and point.offset == 0:
        raw = value  # exact: a 64-bit counter must not pass through a float
    else:
        raw = (value - point.offset) / point.scale
    code = TYPES[point.type][1]
    if code not in "fd":
        if not math.isfinite(raw):
            raise ValueError(f"{point.name}: {value!r} is not a finite number")
        raw = round(raw)
    try:
        data = struct.pack(">" + code, raw)
    except (struct.error, OverflowError) as exc:
        raise ValueError(f"{point.name}: {value!r} does not fit {point.type}: {exc}") from None
    return _from_bytes(point, data)


# --- read planning ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReadRequest:
    """One read (FC03/FC04) of ``count`` registers from ``address``; ``points`` are the points it serves
    with each one's offset (in registers) inside the block."""

    function: int
    address: int
    count: int
    points: tuple[tuple[Point, int], ...]


def plan_reads(points: Iterable[Point], max_gap: int = DEFAULT_MAX_GAP,
               max_count: int = MAX_READ_REGISTERS) -> list[ReadRequest]:
    """Coalesce points into as few reads as possible (Modbus V1.1b3 6.3/6.4): points of one function
    share a read while the unread registers between neighbours are at most ``max_gap`` and the block
    stays within ``max_count`` registers (≤ 125; Eastron wants ≤ 80). Requests come ordered by function
    and address. Duplicate points are read once."""
    if not 1 <= max_count <= MAX_READ_REGISTERS:
        raise ValueError(f"max_count must be 1..{MAX_READ_REGISTERS}")
    if max_gap < 0:
        raise ValueError("max_gap must be ≥ 0")
    unique = sorted(set(points), key=lambda p: (p.function, p.address, -p.count, p.name))
    requests: list[ReadRequest] = []
    group: list[Point] = []
    start = end = 0

    def flush() -> None:
        if group:
            requests.append(ReadRequest(group[0].function, start, end - start,
                                        tuple((p, p.address - start) for p in group)))

    for p in unique:
        if p.count > max_count:
            raise ValueError(f"{p.name} spans {p.count} registers, more than max_count={max_count}")
        p_end = p.address + p.count
        if group and p.function == group[0].function and p.address - end <= max_gap \
                and max(end, p_end) - start <= max_count:
            group.append(p)
            end = max(end, p_end)
            continue
        flush()
        group = [p]
        start, end = p.address, p_end
    flush()
    return requests


def decode_block(request: ReadRequest, registers: Sequence[int]) -> dict[Point, float]:
    """The values of a planned read's points from the registers it returned."""
    if len(registers) < request.count:
        raise ValueError(f"read at {request.address} returned {len(registers)} registers, expected {request.count}")
    return {p: decode(p, registers[off:off + p.count]) for p, off in request.points}


# --- register maps as data (protocols.md §3.1, §3.4) -------------------------------------------------

def _f(name: str, address: int, unit: str | None) -> dict:
    return {"name": name, "function": 4, "address": address, "type": "float32", "unit": unit}


# Eastron SDM630, FC04 input registers, IEEE-754 float32 ABCD (protocols.md §3.1).
SDM630 = {
    "model": "Eastron SDM630",
    "source": "protocols.md §3.1",
    "points": [
        _f("voltage_l1", 0x0000, "V"), _f("voltage_l2", 0x0002, "V"), _f("voltage_l3", 0x0004, "V"),
        _f("current_l1", 0x0006, "A"), _f("current_l2", 0x0008, "A"), _f("current_l3", 0x000A, "A"),
        _f("power_l1", 0x000C, "W"), _f("power_l2", 0x000E, "W"), _f("power_l3", 0x0010, "W"),
        _f("power_factor_l1", 0x001E, None), _f("power_factor_l2", 0x0020, None),
        _f("power_factor_l3", 0x0022, None),
        _f("total_power", 0x0034, "W"),
        _f("frequency", 0x0046, "Hz"),
        _f("import_energy", 0x0048, "kWh"), _f("export_energy", 0x004A, "kWh"),
        _f("total_energy", 0x0156, "kWh"),
    ],
}

# Acrel DDSY1352 single-phase meter, FC03 scaled integers (protocols.md §3.4).
ACREL_DDSY1352 = {
    "model": "Acrel DDSY1352",
    "source": "protocols.md §3.4 (Acrel manual p.15)",
    "points": [
        {"name": "total_energy", "function": 3, "address": 0x0000, "type": "uint32", "scale": 0.01, "unit": "kWh"},
        {"name": "energy_sharp", "function": 3, "address": 0x0002, "type": "uint32", "scale": 0.01, "unit": "kWh"},
        {"name": "energy_peak", "function": 3, "address": 0x0004, "type": "uint32", "scale": 0.01, "unit": "kWh"},
        {"name": "energy_flat", "function": 3, "address": 0x0006, "type": "uint32", "scale": 0.01, "unit": "kWh"},
        {"name": "energy_valley", "function": 3, "address": 0x0008, "type": "uint32", "scale": 0.01,
         "unit": "kWh"},
        {"name": "voltage", "function": 3, "address": 0x000B, "type": "uint16", "scale": 0.1, "unit": "V"},
        {"name": "current", "function": 3, "address": 0x000C, "type": "uint16", "scale": 0.01, "unit": "A"},
        {"name": "active_power", "function": 3, "address": 0x000D, "type": "int16", "scale": 0.001, "unit": "kW"},
        {"name": "apparent_power", "function": 3, "address": 0x000F, "type": "uint16", "scale": 0.001,
         "unit": "kVA"},
        {"name": "power_factor", "function": 3, "address": 0x0010, "type": "int16", "scale": 0.001, "unit": None},
    ],
}

REGISTER_MAPS = {"eastron-sdm630": SDM630, "acrel-ddsy1352": ACREL_DDSY1352}


def load_map(register_map: dict) -> list[Point]:
    """The points of a register map given as data ({"points": [{name, function, address, type, …}]})."""
    return [Point(**entry) for entry in register_map["points"]]


# --- RTU frames (Modbus over Serial Line V1.02 2.5.1) ------------------------------------------------

def crc16(data: bytes) -> int:
    """CRC-16/MODBUS (Modbus over Serial Line V1.02 6.2.2): poly A001H reflected, init FFFFH; it goes
    on the wire low byte first."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _with_crc(pdu: bytes) -> bytes:
    return pdu + crc16(pdu).to_bytes(2, "little")


def build_rtu_read(unit: int, function: int, address: int, count: int) -> bytes:
    """An RTU read request FC03/FC04 (Modbus V1.1b3 6.3/6.4)."""
    if function not in FUNCTIONS or not 1 <= count <= MAX_READ_REGISTERS:
        raise ValueError("function 3/4 and 1..125 registers")
    return _with_crc(struct.pack(">BBHH", unit, function, address, count))


def build_rtu_write(unit: int, address: int, registers: Sequence[int]) -> bytes:
    """An RTU write-multiple-registers request FC16 (Modbus V1.1b3 6.12)."""
    return _with_crc(struct.pack(">BBHHB", unit, 16, address, len(registers), 2 * len(registers))
                     + b"".join(struct.pack(">H", r) for r in registers))


def build_rtu_read_reply(unit: int, function: int, registers: Sequence[int]) -> bytes:
    """An RTU read reply: unit, function, byte count, registers, CRC (Modbus V1.1b3 6.3/6.4)."""
    return _with_crc(struct.pack(">BBB", unit, function, 2 * len(registers))
                     + b"".join(struct.pack(">H", r) for r in registers))


@dataclass(frozen=True)
class RtuReply:
    """A parsed RTU reply to a read; ``exception_code`` set (and registers empty) for an exception
    reply; ``error`` set (English) when the frame itself is bad."""

    unit: int | None
    function: int | None
    registers: tuple[int, ...] = ()
    exception_code: int | None = None
    error: str | None = None


def parse_rtu_read_reply(frame: bytes) -> RtuReply:
    """An RTU reply to FC03/FC04, checked (CRC, byte count); never raises."""
    if len(frame) < 5:
        return RtuReply(None, None, error=f"frame of {len(frame)} bytes is too short")
    if crc16(frame[:-2]) != int.from_bytes(frame[-2:], "little"):
        return RtuReply(frame[0], frame[1], error="CRC mismatch")
    unit, function = frame[0], frame[1]
    if function & 0x80:
        return RtuReply(unit, function & 0x7F, exception_code=frame[2])
    count = frame[2]
    body = frame[3:-2]
    if count != len(body) or count % 2:
        return RtuReply(unit, function, error=f"byte count {count} for {len(body)} data bytes")
    return RtuReply(unit, function, tuple(struct.unpack(f">{count // 2}H", body)))
