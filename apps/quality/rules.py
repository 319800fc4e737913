"""Rule kinds of the library (R-9.2.3): how each kind's parameters become a check.

A kind is a small class with ``stage`` ("ingest" runs inside ingest_readings; later issues add
"post" kinds for checks after storage) and ``compile(params, item) -> check``. A check takes a
``Candidate`` and returns None when it passes, or the error parameters when it fails.
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


KINDS: dict[str, RuleKind] = {k.kind: k() for k in (RangeKind, RequiredKind, EnumKind, PrecisionKind,
                                                     PatternKind, FutureTimestampKind)}
