"""Turn records as received into normalized rows, or into rejections with a stable code.

Format and reference checks (R-9.2.1), timestamps in the park's zone to UTC with milliseconds
(interfaces.md §1), unit conversion keeping the value as received (R-9.1.3), then the rule library
(R-9.2.3). No I/O here: the caller passes the compiled configuration and the clock.
"""

from __future__ import annotations

import logging
import math
import re
import reprlib
from dataclasses import dataclass
from datetime import UTC, date, datetime

from apps.catalog.units import conversion_factor
from apps.core.errors import ErrorCode
from apps.core.text import is_storable
from apps.ingestion import errors
from apps.ingestion.config import IngestConfig, ItemInfo
from apps.ingestion.models import DeviceStatus, Flag
from apps.quality.rules import Candidate

SOURCE_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
LOCAL_TS_RE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{3})?")
ISO_TS_RE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:?\d{2})")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
STATUSES = frozenset(DeviceStatus.values)
TEXT_LIMIT = 1000
# The collection times a reading may carry, in UTC. Outside them a time is a device's reset clock or an
# attack, and near the ends of the calendar it could not even be shown in every park's zone (year 10000).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)
log = logging.getLogger(__name__)
_TYPE_NAMES = {str: "string", int: "number", float: "number", bool: "boolean", list: "array", dict: "object",
               type(None): "null"}


@dataclass(slots=True)
class Row:
    """A normalized reading, ready to store."""

    index: int
    park_id: int
    source_pk: int
    item_pk: int
    ts: datetime
    value: float | None
    text: str | None
    received_value: float | None
    received_unit: str
    status: str
    flags: int
    source_id: str
    code: str


@dataclass(slots=True)
class Problem:
    """A record refused, flagged or warned, with what to tell the sender."""

    index: int
    error: ErrorCode
    field: str
    params: dict
    source_ref: str = ""
    data_code: str = ""
    park_id: int | None = None
    source_pk: int | None = None
    rule_pk: int | None = None
    message_zh: str = ""
    message_en: str = ""

    def messages(self) -> tuple[str, str]:
        if self.message_zh or self.message_en:
            return (self.message_zh or self.message_en, self.message_en or self.message_zh)
        return self.error.message("zh-hans", **self.params), self.error.message("en", **self.params)


class Refused(Exception):
    """A record refused: its code, the field at fault, and the parameters of the message."""

    def __init__(self, error: ErrorCode, where: str = "", **params):
        self.error, self.field, self.params = error, where, params


def _type_name(v) -> str:
    return _TYPE_NAMES.get(type(v), type(v).__name__)


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A record a channel could not decode on its own (nested 2 000 deep, a 5 000-digit number …), kept in
    its place in the batch so that the rejection's index is the one the sender knows."""

    raw: str
    detail: str
    raw_bytes: bytes | None = None


def short_repr(v, limit: int = 100) -> str:
    """A bounded rendering of any decoded JSON value: never recursion-deep, never longer than ``limit``."""
    if isinstance(v, str):
        return v[:limit]
    return _REPR.repr(v)[:limit]


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 60, 60, 40


def _abridged(v) -> str:
    text = str(v)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} digits)"


def _unstorable(text: str) -> str:
    """Where the first character PostgreSQL refuses sits, for the message."""
    for i, ch in enumerate(text):
        if ch == "\x00" or "\ud800" <= ch <= "\udfff":
            return f"U+{ord(ch):04X} at position {i}"
    return "?"


def parse_timestamp(raw, tz) -> datetime:
    """`YYYY-MM-DD HH:MM:SS[.SSS]` in the park's zone, or ISO 8601 with an offset → UTC, milliseconds."""
    if not isinstance(raw, str):
        raise Refused(errors.E2007, "timestamp", value=short_repr(raw))
    try:
        if LOCAL_TS_RE.fullmatch(raw):
            dt = datetime.fromisoformat(raw).replace(tzinfo=tz)
        elif ISO_TS_RE.fullmatch(raw):
            dt = datetime.fromisoformat(raw)
        else:
            raise Refused(errors.E2007, "timestamp", value=short_repr(raw))
    except ValueError:
        raise Refused(errors.E2007, "timestamp", value=short_repr(raw)) from None
    if dt.microsecond % 1000:
        dt = dt.replace(microsecond=dt.microsecond // 1000 * 1000)
    try:
        dt = dt.astimezone(UTC)
    except OverflowError:  # 0001-01-01 east of UTC, 9999-12-31 west of it
        dt = None
    if dt is None or not EARLIEST <= dt <= LATEST:
        raise Refused(errors.E2021, "timestamp", value=short_repr(raw), earliest=f"{EARLIEST:%Y-%m-%d}",
                      latest=f"{LATEST:%Y-%m-%d}")
    return dt


def _value(raw: dict, item: ItemInfo) -> tuple[float | None, str | None, float | None, str]:
    """(value in the item's unit, text value, value as received if converted, unit as received)."""
    if "value" not in raw or raw["value"] is None:
        raise Refused(errors.E2001, "value", field="value")
    v = raw["value"]
    unit = raw.get("unit")
    if unit is not None and not isinstance(unit, str):
        raise Refused(errors.E2002, "unit", field="unit", expected="string", got=_type_name(unit))
    if item.data_type == "number":
        if type(v) is float:
            if not math.isfinite(v):
                raise Refused(errors.E2008, "value", value=str(v))
        elif type(v) is int:
            try:
                v = float(v)
            except OverflowError:  # a 400-digit integer: finite, but no double holds it
                raise Refused(errors.E2020, "value", value=_abridged(v), unit=short_repr(unit or item.unit or "—", 40),
                              expected=item.unit or "—") from None
        else:
            raise Refused(errors.E2002, "value", field="value", expected="number", got=_type_name(v))
        if not unit or unit == item.unit:
            return v, None, None, ""
        factor = conversion_factor(unit, item.unit) if item.unit else None
        if factor is None:
            raise Refused(errors.E2009, "unit", unit=short_repr(unit, 40), expected=item.unit or "—")
        if factor == 1.0:
            return v, None, None, unit
        converted = float(f"{v * factor:.15g}")
        # The value column is a double: what overflows it on conversion (1.8e308 MWh → inf kWh) is refused
        # here, or it would be stored as Infinity.
        if not math.isfinite(converted):
            raise Refused(errors.E2020, "value", value=str(v), unit=unit, expected=item.unit)
        return converted, None, v, unit
    if not isinstance(v, str):
        raise Refused(errors.E2002, "value", field="value", expected="string", got=_type_name(v))
    if not is_storable(v):
        raise Refused(errors.E2023, "value", detail=_unstorable(v))
    if unit and item.unit and unit != item.unit:
        raise Refused(errors.E2009, "unit", unit=short_repr(unit, 40), expected=item.unit)
    if item.data_type == "enum":
        code = item.enum_lookup.get(v) or item.enum_lookup.get(v.strip())
        if code is None:
            from apps.quality.errors import E3003

            raise Refused(E3003, "value", value=short_repr(v), allowed=", ".join(item.enum_codes[:12]))
        return None, code, None, ""
    if item.data_type == "date":
        if not DATE_RE.fullmatch(v):
            raise Refused(errors.E2017, "value", value=short_repr(v))
        try:
            date.fromisoformat(v)
        except ValueError:
            raise Refused(errors.E2017, "value", value=short_repr(v)) from None
        return None, v, None, ""
    if len(v) > TEXT_LIMIT:
        raise Refused(errors.E2018, "value", length=len(v), limit=TEXT_LIMIT)
    return None, v, None, ""


def normalize(records, cfg: IngestConfig, *, allowed_parks: frozenset | None, now: datetime,
              default_backfill: bool = False, sealed: frozenset = frozenset()):
    """Check and normalize every record. Returns (rows, rejected, notes): rows to store (the first
    valid one of each identity), a Problem per refused record, and one per flagged, warned or repeated
    record. ``sealed``: indexes of records that arrived in an encryption envelope (R-5.2.2.6)."""
    rows: list[Row] = []
    rejected: list[Problem] = []
    notes: list[Problem] = []   # flagged / warned / in-batch duplicates
    seen: dict[tuple, int] = {}
    ts_cache: dict[tuple, datetime] = {}
    sources = cfg.sources
    parks = cfg.parks
    for index, raw in enumerate(records):
        source_ref = code_ref = ""
        park_id = source_pk = None
        try:
            if not isinstance(raw, dict):
                if type(raw) is Undecodable:
                    raise Refused(errors.E2019, "", detail=raw.detail)
                raise Refused(errors.E2013, "", got=_type_name(raw))
            sid = raw.get("sourceId")
            if sid is None:
                raise Refused(errors.E2001, "sourceId", field="sourceId")
            # Registered IDs were validated when registered: look up first, check the format only on a miss.
            src = sources.get(sid) if type(sid) is str else None
            if src is None and (not isinstance(sid, str) or not SOURCE_ID_RE.fullmatch(sid)):
                source_ref = short_repr(sid)
                raise Refused(errors.E2011, "sourceId", value=source_ref)
            source_ref = sid
            if src is None or (allowed_parks is not None and src.park_id not in allowed_parks):
                raise Refused(errors.E2003, "sourceId", source=sid)
            park_id, source_pk = src.park_id, src.pk
            if not src.enabled:
                raise Refused(errors.E2012, "sourceId", source=sid)
            if src.encryption_required and index not in sealed:
                raise Refused(errors.E5104, "", source=sid)
            code = raw.get("dataCode")
            if code is None:
                item = src.only_item
                if item is None:
                    raise Refused(errors.E2006, "dataCode", source=sid)
                code = item.code
            elif not isinstance(code, str):
                raise Refused(errors.E2002, "dataCode", field="dataCode", expected="string", got=_type_name(code))
            else:
                item = src.items.get(code)
                if item is None:
                    code_ref = code[:40]
                    known = cfg.items.get(code)
                    # another park's own code is refused like an unknown one: no existence oracle
                    if known is None or (known.park_id is not None and allowed_parks is not None
                                         and known.park_id not in allowed_parks):
                        raise Refused(errors.E2004, "dataCode", code=code[:40])
                    raise Refused(errors.E2005, "dataCode", source=sid, code=code)
            code_ref = code
            if not item.active:
                raise Refused(errors.E2016, "dataCode", code=code)
            if "timestamp" not in raw:
                raise Refused(errors.E2001, "timestamp", field="timestamp")
            ts_raw = raw["timestamp"]
            # A batch carries few distinct timestamps (every meter at the same minute): parse each once.
            ts_key = (ts_raw, park_id) if type(ts_raw) is str else None
            ts = ts_cache.get(ts_key)
            if ts is None:
                ts = parse_timestamp(ts_raw, parks[park_id].tz)
                if ts_key is not None:
                    ts_cache[ts_key] = ts
            value, text, received_value, received_unit = _value(raw, item)
            status = raw.get("status", "N")
            if status is None:
                status = "N"
            elif not isinstance(status, str) or status not in STATUSES:
                raise Refused(errors.E2010, "status", value=short_repr(status, 10))
            backfill = raw.get("backfill", default_backfill)
            if backfill is None:
                backfill = default_backfill
            elif type(backfill) is not bool:
                raise Refused(errors.E2015, "backfill")
            flags = Flag.BACKFILL if backfill else 0
            checks = cfg.checks_for(park_id, source_pk, item)
            rec_notes = None
            if checks:
                cand = Candidate(value, text, ts, raw, now)
                for rule, check in checks:
                    failed = check(cand)
                    if failed is None:
                        continue
                    problem = Problem(index, rule.error, "", failed, source_ref, code_ref, park_id, source_pk,
                                      rule.pk, rule.message_zh, rule.message_en)
                    if rule.severity == "reject":
                        raise _RuleRefused(problem)
                    if rule.severity == "flag":
                        flags |= Flag.SUSPECT
                    problem.field = rule.severity
                    rec_notes = (rec_notes or []) + [problem]
            identity = (source_pk, item.pk, ts)
            if identity in seen:
                notes.append(Problem(index, errors.E4002, "duplicate", {}, source_ref, code_ref, park_id, source_pk))
                continue
            seen[identity] = index
            if rec_notes:
                notes.extend(rec_notes)
            rows.append(Row(index, park_id, source_pk, item.pk, ts, value, text, received_value, received_unit,
                            status, flags, sid, code))
        except Refused as r:
            rejected.append(Problem(index, r.error, r.field, r.params, source_ref, code_ref, park_id, source_pk))
        except _RuleRefused as r:
            rejected.append(r.problem)
        except Exception as exc:  # noqa: BLE001 - one record's surprise must not fail its batch (R-9.3.1)
            log.exception("record %s of a batch could not be normalized", index)
            rejected.append(Problem(index, errors.E2022, "", {"detail": type(exc).__name__},
                                    _safe_ref(source_ref), _safe_ref(code_ref), park_id, source_pk))
    return rows, rejected, notes


def _safe_ref(ref) -> str:
    return ref if isinstance(ref, str) else ""


class _RuleRefused(Exception):
    def __init__(self, problem: Problem):
        self.problem = problem
