"""Upload data areas as reading records (interfaces.md §1): the factor-code map (protocols.md §1.10)
and the conversion of 2011/2051/2061/2031 uploads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation

from .constants import _LEGACY_FLAGS, CN_DAY, CN_HOUR, CN_MINUTE, CN_REALTIME
from .segment import Packet, split_key

# --- readings -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PollutantEntry:
    """How one HJ 212 factor code becomes a catalog reading: the data code, the unit sent with it, and
    whether the item is a quantity (period total from ``-Cou``, e.g. flow volume, protocols.md §1.11)
    or a level (``-Rtd`` in real time, ``-Avg`` over a period)."""

    data_code: str
    unit: str
    quantity: bool = False


DEFAULT_POLLUTANTS: dict[str, PollutantEntry] = {
    # HJ 212-2017 Appendix B Table B.1; the HJ/T 212-2005 codes B01 and 011 are the same factors.
    "w00000": PollutantEntry("CS030201", "m3", quantity=True),
    "B01": PollutantEntry("CS030201", "m3", quantity=True),
    "w01018": PollutantEntry("CS030202", "mg/L"),
    "011": PollutantEntry("CS030202", "mg/L"),
}


@dataclass
class PollutantMap:
    """HJ 212 factor codes → catalog data codes (protocols.md §1.10, catalog.csv); ``extend`` adds
    park-specific entries given as PollutantEntry, (data_code, unit[, quantity]) or a dict."""

    entries: dict[str, PollutantEntry] = field(default_factory=lambda: dict(DEFAULT_POLLUTANTS))

    def extend(self, more: Mapping[str, object]) -> PollutantMap:
        for code, spec in more.items():
            if isinstance(spec, PollutantEntry):
                entry = spec
            elif isinstance(spec, Mapping):
                entry = PollutantEntry(str(spec["data_code"]), str(spec.get("unit", "")),
                                       bool(spec.get("quantity", False)))
            else:
                entry = PollutantEntry(*spec)
            self.entries[code] = entry
        return self

    def get(self, code: str) -> PollutantEntry | None:
        return self.entries.get(code)

    def __contains__(self, code: str) -> bool:
        return code in self.entries


READING_CNS = {CN_REALTIME: "Rtd", CN_MINUTE: "Avg", CN_HOUR: "Avg", CN_DAY: "Avg"}


def data_time(raw: str, tz: tzinfo | None = None) -> str | None:
    """``YYYYMMDDhhmmss`` (optionally with 3 digits of milliseconds, seen in 2005 devices), station local
    time (Table 4), as ``YYYY-MM-DD HH:MM:SS[.mmm]``, with the offset of ``tz`` when given; None when
    it is not a valid time."""
    if not raw.isascii() or not raw.isdigit() or len(raw) not in (14, 17):
        return None
    try:
        dt = datetime.strptime(raw[:14], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    text = dt.strftime("%Y-%m-%d %H:%M:%S") + (f".{raw[14:]}" if len(raw) == 17 else "")
    if tz is not None:
        off = dt.replace(tzinfo=tz).strftime("%z")
        text = text.replace(" ", "T") + f"{off[:3]}:{off[3:]}"
    return text


def _number(raw: str) -> float | str:
    try:
        d = Decimal(raw)
    except InvalidOperation:
        return raw  # ingestion refuses it with E2002, keeping the raw text
    return float(d) if d.is_finite() else raw


def to_readings(packet: Packet, source_id: str, pmap: PollutantMap | None = None,
                tz: tzinfo | None = None, *, backfill: bool = False) -> tuple[list[dict], list[str]]:
    """The data area of a real-time (2011), minute (2051), hour (2061) or day (2031) upload as reading
    records of interfaces.md §1, and the factor codes with no entry in ``pmap`` (in order, once each).

    Levels take ``-Rtd`` (2011) or ``-Avg`` (periods); quantities take ``-Cou``, the period total
    (protocols.md §1.11), and are left out of packets without it (a real-time flow is a rate, not a
    volume). The timestamp is ``DataTime`` (station time; the start of the period for 2051/2061/2031),
    given as the raw text when it is malformed and left out when missing, so ingestion refuses the
    records with their codes. ``status`` is the factor's data flag (Table 8). Other CNs give no records."""
    fieldname = READING_CNS.get(packet.cn)
    if fieldname is None:
        return [], []
    pmap = pmap or PollutantMap()
    records: list[dict] = []
    unmapped: list[str] = []
    current_time: str | None = None
    for group in packet.groups():
        per_code: dict[str, dict[str, str]] = {}
        for k, v in group:
            if k == "DataTime":
                current_time = v
                continue
            code, name = split_key(k)
            if code is not None:
                per_code.setdefault(code, {}).setdefault(name, v)
        for code, values in per_code.items():
            entry = pmap.get(code)
            if entry is None:
                if code not in unmapped and any(n in values for n in ("Rtd", "Avg", "Cou")):
                    unmapped.append(code)
                continue
            name = "Cou" if entry.quantity else fieldname
            if name not in values:
                continue
            rec: dict = {"sourceId": source_id, "dataCode": entry.data_code, "value": _number(values[name]),
                         "unit": entry.unit, "backfill": backfill}
            if current_time is not None:
                rec["timestamp"] = data_time(current_time, tz) or current_time
            flag = values.get("Flag")
            if flag:
                rec["status"] = _LEGACY_FLAGS.get(flag, flag)
            records.append(rec)
    return records, unmapped
