"""Accuracy classes of energy measuring instruments (R-9.1.1): the classes GB 17167-2006 "General principle for
equipping and managing of the measuring instrument of energy in organization of energy using", Table 3, requires
per kind of instrument and use, and whether a source's own class meets them. docs/quality-indicators.md.

A class is written as in the standard: a number (the maximum permissible error in percent) with ``S`` for the
electricity meters' special classes (DL/T 448, which GB 17167 refers to for electricity). A smaller number is
better. A required ``S`` class is met only by an ``S`` class of the same or a smaller number: the S classes hold
their accuracy down to 1 % of the rated current, the plain ones do not; a required plain class is met by either."""

from __future__ import annotations

import re

from django.db import models
from django.utils.translation import gettext_lazy as _


class InstrumentType(models.TextChoices):
    """The rows of GB 17167-2006 Table 3 (kind of instrument, what it measures)."""

    ELECTRICITY_I = "electricity_i", _("AC active energy meter, class I metering point")
    ELECTRICITY_II = "electricity_ii", _("AC active energy meter, class II metering point (park main meter)")
    ELECTRICITY_III = "electricity_iii", _("AC active energy meter, class III metering point")
    ELECTRICITY_IV = "electricity_iv", _("AC active energy meter, class IV metering point")
    ELECTRICITY_V = "electricity_v", _("AC active energy meter, class V metering point")
    ELECTRICITY_DC = "electricity_dc", _("DC energy meter")
    SCALE_STATIC = "scale_static", _("scale, static weighing of fuel")
    SCALE_DYNAMIC = "scale_dynamic", _("scale, dynamic weighing of fuel")
    OIL_REFINED = "oil_refined", _("oil flow meter, refined oil")
    OIL_HEAVY = "oil_heavy", _("oil flow meter, heavy and residual oil")
    GAS_COAL = "gas_coal", _("gas flow meter, coal gas")
    GAS_NATURAL = "gas_natural", _("gas flow meter, natural gas")
    STEAM = "steam", _("steam flow meter")
    WATER_SMALL = "water_small", _("water meter, pipe up to 250 mm")
    WATER_LARGE = "water_large", _("water meter, pipe over 250 mm")
    TEMPERATURE = "temperature", _("thermometer for liquid and gaseous energy")
    TEMPERATURE_MASS = "temperature_mass", _("thermometer for gas and steam mass computation")
    PRESSURE = "pressure", _("pressure gauge for liquid and gaseous energy")
    PRESSURE_MASS = "pressure_mass", _("pressure gauge for gas and steam mass computation")


# GB 17167-2006 Table 3: the least accuracy class each kind of instrument must have.
REQUIRED = {
    InstrumentType.ELECTRICITY_I: "0.2S", InstrumentType.ELECTRICITY_II: "0.5S",
    InstrumentType.ELECTRICITY_III: "1.0", InstrumentType.ELECTRICITY_IV: "2.0",
    InstrumentType.ELECTRICITY_V: "2.0", InstrumentType.ELECTRICITY_DC: "2.0",
    InstrumentType.SCALE_STATIC: "0.1", InstrumentType.SCALE_DYNAMIC: "0.5",
    InstrumentType.OIL_REFINED: "0.5", InstrumentType.OIL_HEAVY: "1.0",
    InstrumentType.GAS_COAL: "2.0", InstrumentType.GAS_NATURAL: "2.0", InstrumentType.STEAM: "2.5",
    InstrumentType.WATER_SMALL: "2.5", InstrumentType.WATER_LARGE: "1.5",
    InstrumentType.TEMPERATURE: "2.0", InstrumentType.TEMPERATURE_MASS: "1.0",
    InstrumentType.PRESSURE: "2.0", InstrumentType.PRESSURE_MASS: "1.0",
}

CLASS_RE = re.compile(r"^(?:0\.\d{1,2}|[1-9](?:\.\d{1,2})?)S?$")
SQL_CLASS_RE = r"^(0\.[0-9]{1,2}|[1-9](\.[0-9]{1,2})?)S?$"  # CLASS_RE for PostgreSQL's ~


class AccuracyClass(models.TextChoices):
    """The classes instruments are sold in (GB 17167 and DL/T 448 name these)."""

    C0_1 = "0.1", "0.1"
    C0_2S = "0.2S", "0.2S"
    C0_2 = "0.2", "0.2"
    C0_5S = "0.5S", "0.5S"
    C0_5 = "0.5", "0.5"
    C1_0 = "1.0", "1.0"
    C1_5 = "1.5", "1.5"
    C2_0 = "2.0", "2.0"
    C2_5 = "2.5", "2.5"
    C3_0 = "3.0", "3.0"


def parse(cls: str) -> tuple[float, bool] | None:
    """``"0.5S"`` → (0.5, True); anything not a class → None."""
    cls = (cls or "").strip().upper()
    if not CLASS_RE.match(cls):
        return None
    special = cls.endswith("S")
    return float(cls.rstrip("S")), special


def required_class(instrument_type: str) -> str:
    """The class GB 17167-2006 requires of ``instrument_type``, "" when the type is not set or unknown."""
    return REQUIRED.get(instrument_type, "") if instrument_type else ""


def meets(actual: str, required: str) -> bool | None:
    """Does an instrument of class ``actual`` meet ``required`` (R-9.1.1)? None when either is unknown."""
    a, r = parse(actual), parse(required)
    if a is None or r is None:
        return None
    if r[1] and not a[1]:
        return False
    return a[0] <= r[0]


def meets_sql(actual: str = "s.accuracy_class", req: str = "req") -> str:
    """The same judgement in SQL over the SQL expressions ``actual`` and ``req`` (text): a CASE expression that
    is NULL when either is empty or not a class."""
    num = "rtrim(upper({x}), 'S')::numeric"
    return (f"CASE WHEN upper(coalesce({actual}, '')) !~ '{SQL_CLASS_RE}' "
            f"OR upper(coalesce({req}, '')) !~ '{SQL_CLASS_RE}' THEN NULL "
            f"WHEN upper({req}) LIKE '%%S' AND upper({actual}) NOT LIKE '%%S' THEN false "
            f"ELSE {num.format(x=actual)} <= {num.format(x=req)} END")
