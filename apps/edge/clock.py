"""Clocks for the poll loop: real time, compressed time (tests, demos) and a manual clock for tests."""
from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod


class Clock(ABC):
    """``now_ms()`` is the (virtual) wall-clock time; ``wait(ms)`` waits until that much of it has passed or
    until something else wakes the caller (the caller re-checks ``now_ms()``)."""

    @abstractmethod
    def now_ms(self) -> int:
        """The clock's wall-clock time in milliseconds since the epoch."""

    @abstractmethod
    async def wait(self, ms: float) -> None:
        """Wait until ``ms`` of this clock's time has passed (or the caller is woken)."""


class ScaledClock(Clock):
    """Wall-clock time running ``scale`` times faster from ``start_ms`` (scale 1 = real time)."""

    def __init__(self, scale: float = 1.0, start_ms: int | None = None) -> None:
        self.scale = scale
        self.start_ms = time.time_ns() // 1_000_000 if start_ms is None else start_ms
        self.m0 = time.monotonic()
        self.real = scale == 1.0 and start_ms is None

    def now_ms(self) -> int:
        if self.real:
            return time.time_ns() // 1_000_000
        return self.start_ms + int((time.monotonic() - self.m0) * 1000 * self.scale)

    async def wait(self, ms: float) -> None:
        await asyncio.sleep(max(0.0, ms / 1000 / self.scale))


class ManualClock(Clock):
    """Time moves only when the test calls ``advance`` (from the agent's event loop)."""

    def __init__(self, start_ms: int) -> None:
        self._now = start_ms
        self._tick: asyncio.Event | None = None

    def now_ms(self) -> int:
        return self._now

    def _event(self) -> asyncio.Event:
        if self._tick is None:
            self._tick = asyncio.Event()
        return self._tick

    def wait(self, ms: float):
        # not ``async def``: the event is taken now, so an advance() before the first await is not missed
        return self._event().wait()

    def advance(self, ms: int) -> None:
        self._now += ms
        tick, self._tick = self._event(), asyncio.Event()
        tick.set()
