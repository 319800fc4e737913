"""Data identifiers and their value formats (DL/T 645-2007 Appendix A, protocols.md §2.7; DL/T
645-1997, §2.8).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identifier:
    """A data identifier and its value format (DL/T 645-2007 Appendix A; protocols.md §2.7): ``size``
    bytes of BCD per value, ``decimals`` digits after the point, the top bit of the most significant
    byte a sign when ``signed``; ``count`` values (None: any number, e.g. an energy FF block)."""

    di: str
    name: str
    size: int
    decimals: int
    unit: str | None
    signed: bool = False
    count: int | None = 1
    version: str = "2007"


# --- identifiers ---------------------------------------------------------------------------------

_ENERGY_2007 = {0x00: ("combined active energy", "kWh", True), 0x01: ("forward active energy", "kWh", False),
                0x02: ("reverse active energy", "kWh", False), 0x03: ("combined reactive 1 energy", "kvarh", True),
                0x04: ("combined reactive 2 energy", "kvarh", True),
                0x05: ("quadrant I reactive energy", "kvarh", False),
                0x06: ("quadrant II reactive energy", "kvarh", False),
                0x07: ("quadrant III reactive energy", "kvarh", False),
                0x08: ("quadrant IV reactive energy", "kvarh", False),
                0x09: ("forward apparent energy", "kVAh", False), 0x0A: ("reverse apparent energy", "kVAh", False),
                0x15: ("phase A forward active energy", "kWh", False),
                0x29: ("phase B forward active energy", "kWh", False),
                0x3D: ("phase C forward active energy", "kWh", False)}
_PHASES = {0x00: "total", 0x01: "phase A", 0x02: "phase B", 0x03: "phase C"}
# DI2 of DI3=02 instantaneous variables: (name, size, decimals, unit, signed, first DI1)
_INSTANT_2007 = {0x01: ("voltage", 2, 1, "V", False, 1), 0x02: ("current", 3, 3, "A", True, 1),
                 0x03: ("active power", 3, 4, "kW", True, 0), 0x04: ("reactive power", 3, 4, "kvar", True, 0),
                 0x05: ("apparent power", 3, 4, "kVA", True, 0), 0x06: ("power factor", 2, 3, None, True, 0),
                 0x07: ("phase angle", 2, 1, "°", False, 1)}
_SPECIAL_2007 = {
    "02800001": Identifier("02800001", "neutral current", 3, 3, "A", True),
    "02800002": Identifier("02800002", "grid frequency", 2, 2, "Hz"),
    "02800003": Identifier("02800003", "1-minute average active power", 3, 4, "kW", True),
    "02800004": Identifier("02800004", "current active demand", 3, 4, "kW", True),
    "02800007": Identifier("02800007", "meter internal temperature", 2, 1, "°C", True),
    "04000306": Identifier("04000306", "CT ratio", 3, 0, None),
    "04000307": Identifier("04000307", "PT ratio", 3, 0, None),
}
# DL/T 645-1997 (§2.8): 2-byte identifiers.
_TABLE_1997 = {
    "9010": Identifier("9010", "forward active energy total", 4, 2, "kWh", version="1997"),
    "9011": Identifier("9011", "forward active energy tariff 1", 4, 2, "kWh", version="1997"),
    "9012": Identifier("9012", "forward active energy tariff 2", 4, 2, "kWh", version="1997"),
    "9013": Identifier("9013", "forward active energy tariff 3", 4, 2, "kWh", version="1997"),
    "9014": Identifier("9014", "forward active energy tariff 4", 4, 2, "kWh", version="1997"),
    "901F": Identifier("901F", "forward active energy block", 4, 2, "kWh", count=None, version="1997"),
    "9020": Identifier("9020", "reverse active energy total", 4, 2, "kWh", version="1997"),
    "B611": Identifier("B611", "phase A voltage", 2, 0, "V", version="1997"),
    "B612": Identifier("B612", "phase B voltage", 2, 0, "V", version="1997"),
    "B613": Identifier("B613", "phase C voltage", 2, 0, "V", version="1997"),
    "B621": Identifier("B621", "phase A current", 2, 2, "A", version="1997"),
    "B622": Identifier("B622", "phase B current", 2, 2, "A", version="1997"),
    "B623": Identifier("B623", "phase C current", 2, 2, "A", version="1997"),
    "B630": Identifier("B630", "total active power", 3, 4, "kW", signed=True, version="1997"),
    "B631": Identifier("B631", "phase A active power", 3, 4, "kW", signed=True, version="1997"),
    "B632": Identifier("B632", "phase B active power", 3, 4, "kW", signed=True, version="1997"),
    "B633": Identifier("B633", "phase C active power", 3, 4, "kW", signed=True, version="1997"),
    "B650": Identifier("B650", "total power factor", 2, 3, None, signed=True, version="1997"),
}


def _norm_di(di: str) -> str:
    return di.replace(" ", "").upper()


def lookup(di: str) -> Identifier | None:
    """The format of a data identifier written high→low ("00010000", "9010"): DL/T 645-2007 Appendix A
    (protocols.md §2.7) for 8 hex digits, DL/T 645-1997 (§2.8) for 4; None when unknown."""
    di = _norm_di(di)
    if len(di) == 4:
        return _TABLE_1997.get(di)
    if len(di) != 8:
        return None
    if di in _SPECIAL_2007:
        return _SPECIAL_2007[di]
    try:
        d3, d2, d1, d0 = bytes.fromhex(di)
    except ValueError:
        return None
    if d3 == 0x00 and d2 in _ENERGY_2007 and (d1 <= 0x3F or d1 == 0xFF) and d0 <= 0x0C:
        name, unit, signed = _ENERGY_2007[d2]
        tariff = "total" if d1 == 0 else ("block" if d1 == 0xFF else f"tariff {d1}")
        when = "" if d0 == 0 else f", settlement day -{d0}"
        return Identifier(di, f"{name} {tariff}{when}", 4, 2, unit, signed, None if d1 == 0xFF else 1)
    if d3 == 0x02 and d2 in _INSTANT_2007 and d0 == 0x00:
        name, size, decimals, unit, signed, first = _INSTANT_2007[d2]
        if d1 == 0xFF:
            return Identifier(di, f"{name} block", size, decimals, unit, signed, 3 if first else 4)
        if first <= d1 <= 3:
            return Identifier(di, f"{_PHASES[d1]} {name}", size, decimals, unit, signed)
    return None
