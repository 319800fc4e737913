"""Rule kinds of the library (R-9.2.3): how each kind's parameters become a check.

A kind is a small class with ``stage`` ("ingest" runs inside ingest_readings; "post" kinds are checks after
storage, R-9.2.2, run set-based by apps/quality/postchecks/ over newly stored readings) and, for ingest kinds,
``compile(params, item) -> check``. A check takes a ``Candidate`` and returns None when it passes, or the error
parameters when it fails. A post kind compiles to nothing here: its check is one SQL statement per run.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta

from apps.quality import errors


@dataclass(slots=True)
class Candidate:
    """What a rule sees of one normalized record."""

    value: float | None
    text: str | None
    ts: datetime
    raw: dict
    now: datetime


class RuleKind(ABC):
    kind = ""
    stage = "ingest"
    error = None
    label = ""

    @staticmethod
    def validate_params(params: dict) -> dict:
        return params

    @abstractmethod
    def compile(self, params: dict, item):
        """Return the check for these parameters, or None when the rule cannot apply to the item."""


class RangeKind(RuleKind):
    kind, error, label = "range", errors.E3001, "range [min, max]"

    @staticmethod
    def validate_params(params):
        lo, hi = params.get("min"), params.get("max")
        for v in (lo, hi):
            if v is not None and not isinstance(v, (int, float)):
                raise ValueError("min and max must be numbers")
        if lo is None and hi is None:
            raise ValueError("give min, max or both")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError("min must not exceed max")
        return params

    def compile(self, params, item):
        lo = params.get("min", -math.inf)
        hi = params.get("max", math.inf)
        lo = -math.inf if lo is None else lo
        hi = math.inf if hi is None else hi

        def check(c: Candidate):
            if c.value is not None and not (lo <= c.value <= hi):
                return {"value": c.value, "min": params.get("min", "-∞"), "max": params.get("max", "+∞")}
            return None

        return check


class RequiredKind(RuleKind):
    kind, error, label = "required", errors.E3002, "required fields"

    @staticmethod
    def validate_params(params):
        fields = params.get("fields")
        if not fields or not all(isinstance(f, str) for f in fields):
            raise ValueError("fields must be a list of record field names")
        return params

    def compile(self, params, item):
        fields = tuple(params["fields"])

        def check(c: Candidate):
            for f in fields:
                if c.raw.get(f) in (None, ""):
                    return {"field": f}
            return None

        return check


class EnumKind(RuleKind):
    kind, error, label = "enum", errors.E3003, "allowed values"

    @staticmethod
    def validate_params(params):
        if not isinstance(params.get("values"), list) or not params["values"]:
            raise ValueError("values must be a non-empty list")
        return params

    def compile(self, params, item):
        allowed = frozenset(params["values"])
        shown = ", ".join(map(str, params["values"][:10]))

        def check(c: Candidate):
            v = c.text if c.text is not None else c.value
            if v not in allowed:
                return {"value": v, "allowed": shown}
            return None

        return check


class PrecisionKind(RuleKind):
    kind, error, label = "precision", errors.E3004, "precision step"

    @staticmethod
    def validate_params(params):
        step = params.get("step")
        if step is not None and (not isinstance(step, (int, float)) or step <= 0):
            raise ValueError("step must be a positive number")
        return params

    def compile(self, params, item):
        step = params.get("step")
        if step is None:
            try:
                step = float(item.precision) if item is not None else None
            except (TypeError, ValueError):
                step = None
        if not step:
            return None

        def check(c: Candidate):
            if c.value is None:
                return None
            q = c.value / step
            if abs(q - round(q)) > 1e-6 * max(1.0, abs(q)):
                return {"value": c.value, "step": step}
            return None

        return check


class PatternKind(RuleKind):
    kind, error, label = "pattern", errors.E3005, "regular expression"

    @staticmethod
    def validate_params(params):
        try:
            re.compile(params.get("regex", ""))
        except re.error as exc:
            raise ValueError(f"regex does not compile: {exc}") from exc
        if not params.get("regex"):
            raise ValueError("give a regex")
        return params

    def compile(self, params, item):
        rx = re.compile(params["regex"])

        def check(c: Candidate):
            v = c.text if c.text is not None else (None if c.value is None else repr(c.value))
            if v is not None and not rx.fullmatch(v):
                return {"value": v, "pattern": params["regex"]}
            return None

        return check


class FutureTimestampKind(RuleKind):
    kind, error, label = "future_ts", errors.E3006, "future timestamp tolerance"

    @staticmethod
    def validate_params(params):
        tol = params.get("tolerance_s")
        if not isinstance(tol, (int, float)) or tol < 0:
            raise ValueError("tolerance_s must be a number of seconds ≥ 0")
        return params

    def compile(self, params, item):
        tol = timedelta(seconds=params["tolerance_s"])

        def check(c: Candidate):
            if c.ts > c.now + tol:
                return {"timestamp": c.raw.get("timestamp"), "tolerance": params["tolerance_s"]}
            return None

        return check


def _number(params, key, *, integer=False, minimum=None, required=False):
    """``params[key]``: a number > 0 (or a whole number ≥ ``minimum``); None when absent and not required."""
    v = params.get(key)
    if v is None:
        if required:
            raise ValueError(f"give {key}")
        return None
    if integer:
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise ValueError(f"{key} must be a whole number ≥ {minimum}")
    elif isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
        raise ValueError(f"{key} must be a number greater than 0")
    return v


class PostKind(RuleKind):
    """A check after storage (R-9.2.2): the readings are stored already, so such a rule flags (a hit beside the
    reading, shown in the readings browser) or warns, and raises an alarm; it cannot reject."""

    stage = "post"
    SEVERITIES = ("flag", "warn")
    ALLOWED = frozenset()

    @classmethod
    def _only(cls, params):
        unknown = set(params) - cls.ALLOWED
        if unknown:
            raise ValueError(f"unknown parameters {', '.join(sorted(unknown))}; allowed: "
                             f"{', '.join(sorted(cls.ALLOWED))}")

    def compile(self, params, item):
        return None


class JumpKind(PostKind):
    """A jump between neighbouring readings of a series: |v - previous| above ``absolute``, or above
    ``relative`` × |previous|; with ``per_s`` the change is first scaled to a change per that many seconds
    (a rate: readings further apart may differ more). The later reading of the pair is the hit."""

    kind, error, label = "jump", errors.E3010, "jump between neighbouring readings"
    ALLOWED = frozenset({"absolute", "relative", "per_s"})

    @classmethod
    def validate_params(cls, params):
        cls._only(params)
        a, r = _number(params, "absolute"), _number(params, "relative")
        _number(params, "per_s")
        if a is None and r is None:
            raise ValueError("give absolute, relative or both (the largest change allowed)")
        return params


class FrozenKind(PostKind):
    """Frozen values: ``n`` or more identical non-zero readings in a row; every reading of such a run is a hit."""

    kind, error, label = "frozen", errors.E3011, "frozen value (n identical non-zero readings)"
    ALLOWED = frozenset({"n"})

    @classmethod
    def validate_params(cls, params):
        cls._only(params)
        n = _number(params, "n", minimum=2, integer=True, required=True)
        if n > 10_000:
            raise ValueError("n must be at most 10000")
        return params


class OutlierKind(PostKind):
    """A statistical outlier: |v - mean| > ``k`` × standard deviation of the ``window`` readings before it
    (rolling mean and sample standard deviation; a window with no spread finds nothing); with ``robust`` true the
    median and the median absolute deviation × 1.4826 instead (an earlier spike in the window hides nothing)."""

    kind, error, label = "outlier", errors.E3012, "statistical outlier (rolling window)"
    ALLOWED = frozenset({"window", "k", "robust"})

    @classmethod
    def validate_params(cls, params):
        cls._only(params)
        w = _number(params, "window", minimum=3, integer=True, required=True)
        if w > 1000:
            raise ValueError("window must be at most 1000 readings")
        _number(params, "k", required=True)
        if not isinstance(params.get("robust", False), bool):
            raise ValueError("robust must be true or false")
        return params


INTERVALS = {"hour": "h", "day": "d", "month": "m"}


def _finite_number(params, key):
    v = params.get(key)
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
        raise ValueError(f"{key} must be a number")
    return v


class RatioKind(PostKind):
    """Logical consistency (R-9.1.3): the sum of ``numerator`` over the sum of ``denominator`` (data item codes)
    per ``interval`` (hour, day or month, park-local) within [``min``, ``max``], e.g. electricity per tonne of
    output. Of the rule's source when it names one, else of each park in scope (the sums over all its sources).
    From the rollups; an interval whose denominator is 0 or missing is not judged."""

    kind, error, label = "ratio", errors.E3014, "ratio of two data items within bounds"
    ALLOWED = frozenset({"numerator", "denominator", "min", "max", "interval"})

    @classmethod
    def validate_params(cls, params):
        from apps.catalog.models import DataItem

        cls._only(params)
        for key in ("numerator", "denominator"):
            code = params.get(key)
            if not isinstance(code, str) or not code:
                raise ValueError(f"give {key}: a data item code, e.g. CS010201")
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", code):
                raise ValueError(f"{key}: no numeric data item has the code {code[:40]!r}")
            if not DataItem.objects.filter(code=code, data_type="number").exists():
                raise ValueError(f"{key}: no numeric data item has the code {code[:40]}")
        if params["numerator"] == params["denominator"]:
            raise ValueError("numerator and denominator must be different data items")
        lo, hi = _finite_number(params, "min"), _finite_number(params, "max")
        if lo is None and hi is None:
            raise ValueError("give min, max or both (the bounds of the ratio)")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError("min must not exceed max")
        if params.get("interval", "day") not in INTERVALS:
            raise ValueError("interval must be hour, day or month")
        return params


class DuplicateKind(PostKind):
    """The same series arriving from two sources (a duplicated device or configuration): two sources of a park
    delivering the same data item with values equal within ``epsilon`` at ``min_points`` or more of the same
    timestamps in a park-local day, and at no less than ``share`` of the timestamps they have in common.
    Zeros do not count as matches (meters at rest agree). Both sources get a hit for the day."""

    kind, error, label = "duplicate", errors.E3015, "the same series from two sources"
    ALLOWED = frozenset({"min_points", "epsilon", "share"})

    @classmethod
    def validate_params(cls, params):
        cls._only(params)
        n = _number(params, "min_points", minimum=2, integer=True, required=True)
        if n > 100_000:
            raise ValueError("min_points must be at most 100000")
        eps = _finite_number(params, "epsilon")
        if eps is not None and eps < 0:
            raise ValueError("epsilon must be a number ≥ 0")
        share = _finite_number(params, "share")
        if share is not None and not 0 < share <= 1:
            raise ValueError("share must be greater than 0 and at most 1")
        return params


KINDS: dict[str, RuleKind] = {k.kind: k() for k in (RangeKind, RequiredKind, EnumKind, PrecisionKind,
                                                     PatternKind, FutureTimestampKind, JumpKind, FrozenKind,
                                                     OutlierKind, RatioKind, DuplicateKind)}
