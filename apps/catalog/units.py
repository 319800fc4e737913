"""The unit registry: which units are compatible and how to convert between them (R-9.1.3).

Pure Python. A reading may arrive in any unit of its item's dimension (MWh for a kWh item, GJ/t for
a kJ/kg item); ingestion converts it to the item's unit and keeps the value and unit as received.
Units of different quantities never convert, even when physics would allow it with extra facts:
m³ and Nm³ need the gas's state, tCO2 and tCO2e are different quantities, L and t need a density.
"""

from __future__ import annotations

from functools import lru_cache

# dimension -> {unit: factor to the dimension's base unit}
DIMENSIONS: dict[str, dict[str, float]] = {
    "energy": {"Wh": 0.0036, "kWh": 3.6, "MWh": 3600.0, "GWh": 3_600_000.0, "TWh": 3_600_000_000.0,
               "kJ": 0.001, "MJ": 1.0, "GJ": 1000.0, "TJ": 1_000_000.0},
    "mass": {"g": 1e-6, "kg": 0.001, "t": 1.0, "kt": 1000.0, "10^4t": 10_000.0},
    "mass_co2": {"kgCO2": 0.001, "tCO2": 1.0, "ktCO2": 1000.0, "10^4tCO2": 10_000.0},
    "mass_co2e": {"kgCO2e": 0.001, "tCO2e": 1.0, "ktCO2e": 1000.0, "10^4tCO2e": 10_000.0},
    "mass_ch4": {"kgCH4": 0.001, "tCH4": 1.0},
    "volume": {"mL": 1e-6, "L": 0.001, "m3": 1.0, "10^4m3": 10_000.0},
    "volume_normal": {"Nm3": 1.0, "10^4Nm3": 10_000.0},
    "specific_energy": {"kJ/kg": 1.0, "MJ/kg": 1000.0, "GJ/t": 1000.0, "kcal/kg": 4.1868},
    "ef_mass": {"kgCO2/kg": 1.0, "tCO2/t": 1.0, "kgCO2/t": 0.001},
    "ef_energy": {"gCO2/kWh": 0.001, "kgCO2/kWh": 1.0, "tCO2/MWh": 1.0, "tCO2/GWh": 0.001},
    "ef_volume": {"kgCO2/L": 0.001, "tCO2/L": 1.0, "tCO2/m3": 0.001},
    "concentration": {"ug/L": 0.001, "mg/L": 1.0, "g/m3": 1.0, "mg/m3": 0.001, "g/L": 1000.0},
    "mass_fraction": {"mg/kg": 0.001, "g/kg": 1.0},
    "length": {"m": 0.001, "km": 1.0},
    "area": {"m2": 0.0001, "mu": 1 / 15, "hm2": 1.0, "km2": 100.0},
    "power": {"W": 1e-6, "kW": 0.001, "MW": 1.0, "GW": 1000.0},
    "sequestration_rate": {"tCO2/(hm2*a)": 1.0, "kgCO2/(m2*a)": 10.0},
}

# Other spellings seen on devices and in spreadsheets → the names above.
ALIASES = {
    "ha": "hm2", "公顷": "hm2", "亩": "mu", "吨": "t", "千克": "kg", "公斤": "kg", "升": "L", "l": "L",
    "m^3": "m3", "立方米": "m3", "万m3": "10^4m3", "10⁴m3": "10^4m3", "万nm3": "10^4Nm3", "10⁴nm3": "10^4Nm3",
    "nm^3": "Nm3", "标方": "Nm3", "万t": "10^4t", "万吨": "10^4t", "度": "kWh", "千瓦时": "kWh",
    "万tco2": "10^4tCO2", "万tco2e": "10^4tCO2e", "tco2eq": "tCO2e", "tco2-eq": "tCO2e",
    "tco2/(ha*a)": "tCO2/(hm2*a)", "m^2": "m2", "km^2": "km2", "hm^2": "hm2", "μg/l": "ug/L",
}

_FOLD = str.maketrans({"³": "3", "²": "2", "₂": "2", "₄": "4", "·": "*", "⋅": "*", "×": "*", " ": "",
                       "\u3000": "", "（": "(", "）": ")", "／": "/"})


def _key(unit: str) -> str:
    return unit.translate(_FOLD).lower()


def _build_index() -> dict[str, tuple[str, str]]:
    index: dict[str, tuple[str, str]] = {}
    for dim, units in DIMENSIONS.items():
        for name in units:
            k = _key(name)
            if k in index:
                raise ValueError(f"unit {name} folds onto {index[k][1]}")
            index[k] = (dim, name)
    for alias, name in ALIASES.items():
        dim = next(d for d, units in DIMENSIONS.items() if name in units)
        index.setdefault(_key(alias), (dim, name))
    return index


_INDEX = _build_index()


def canonical(unit: str) -> str | None:
    """The registry's spelling of a unit (``"KWH"`` → ``"kWh"``), or None if it is unknown."""
    found = _INDEX.get(_key(unit))
    return found[1] if found else None


def dimension(unit: str) -> str | None:
    found = _INDEX.get(_key(unit))
    return found[0] if found else None


@lru_cache(maxsize=4096)
def conversion_factor(from_unit: str, to_unit: str) -> float | None:
    """Multiply a value in ``from_unit`` by this to get it in ``to_unit``; None when not convertible.

    Identical spellings always convert with factor 1, so units outside the registry still pass
    through when sender and catalog agree."""
    if from_unit == to_unit:
        return 1.0
    a, b = _INDEX.get(_key(from_unit)), _INDEX.get(_key(to_unit))
    if a is None or b is None:
        return None
    if a[0] != b[0]:
        return None
    units = DIMENSIONS[a[0]]
    return units[a[1]] / units[b[1]]


def convert(value: float, from_unit: str, to_unit: str) -> float | None:
    f = conversion_factor(from_unit, to_unit)
    if f is None:
        return None
    return value if f == 1.0 else float(f"{value * f:.15g}")
