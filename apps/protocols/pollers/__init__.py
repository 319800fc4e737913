"""Device pollers (R-5.2.1.3, R-7.1.1.2): Modbus TCP/RTU, DL/T 645 over serial-to-TCP gateways or RS-485
lines, and OPC UA (``opcua``: the platform's; the edge agent's wheel does not ship it).

No Django here: the edge agent and the platform's poll task both use them. A poller owns one bus (a TCP
endpoint or a serial line), runs one transaction at a time on it, and backs off a device that does not
answer so that it never stalls the others. Each poll stamps its readings with the poll's start time."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass
class Backoff:
    """A dead device is skipped for 1, 2, 4 … polls (at most ``max_skip``) after each failure."""

    max_skip: int = 16
    failures: int = 0
    skip: int = 0

    def due(self) -> bool:
        if self.skip > 0:
            self.skip -= 1
            return False
        return True

    def failed(self) -> None:
        self.failures += 1
        self.skip = min(2 ** (self.failures - 1), self.max_skip)

    def ok(self) -> None:
        self.failures = self.skip = 0


@dataclass
class PollResult:
    records: list[dict] = field(default_factory=list)
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (source_id, code, detail)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


def poll_started() -> tuple[datetime, float]:
    return datetime.now(UTC), time.perf_counter()
