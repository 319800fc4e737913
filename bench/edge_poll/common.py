"""Constants and small helpers of the edge benchmark."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from bench.http_ingest.common import ROOT, fmt, say  # noqa: F401

PARK = "BE01"
TZ = ZoneInfo("Asia/Shanghai")
SERVERS = 10                  # simulator endpoints (serial-to-TCP converters / RS-485 lines)
UNITS = 20                    # devices (unit ids) per endpoint
POINTS = 10                   # float32 points per device = 20 registers
DEAD = (0, 20)                # (server index, unit id) that never answers
PERIOD_S = 60.0               # poll period (1/min)
CYCLE_TARGET_S = 10.0         # a cycle "well under" the period: at most 1/6 of it
CPU_TARGET = 0.05             # CPU seconds per cycle / period: under 5 % of one core
REPLAY_TARGET = 5_000         # readings/s: 1 000 000 readings in under ~3.5 min
# Readings of the replay: one per source, point and minute from here (park time), in the past.
T0_MS = int(dt.datetime(2026, 1, 1, tzinfo=TZ).timestamp() * 1000)
CODES = [f"CS0102{i:02d}" for i in range(1, POINTS + 1)]


def source_id(server: int, unit: int) -> str:
    return f"{PARK}-EM-{server * UNITS + unit:04d}"


def value_of(source_index: int, point: int, minute: int) -> float:
    """The replayed reading's value (exact in binary, so JSON round trips compare equal)."""
    return source_index * 1000.0 + point + minute * 0.25


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))] if s else float("nan")
