"""Per-device health and the sources the broker refuses, as the agent reports them upstream (R-8.1.2.1).

Each device has: its last good poll, its consecutive failed polls (a poll skipped while the device is backed
off counts: it brought nothing), the code and text of its last error. The code is the poller's (E7201 Modbus,
E7102/E7103 DL/T 645) or the agent's E6201 (a read that raised or timed out otherwise). The text names the
device: source, driver, bus and the Modbus unit id or the DL/T 645 meter address.

The gateway's status topic carries all of it, retained (interfaces §2, status topic; the platform stores it
and alarms on a failing device):

    {"state": "online", "at": "<ISO 8601>", "pending": 12,
     "devices": {"<sourceId>": {"lastGoodPoll": "<ISO 8601>" | null, "failures": 0, "lastError": null,
                                "message": null, "lastAcked": "<ISO 8601>" | null}},
     "refused": {"<sourceId>": {"reasonCode": 135, "reason": "Not authorized", "since": "<ISO 8601>",
                                "pending": 3}}}

Both are kept in the buffer's ``state`` table (``health:<source>``, ``refused:<source>``), so that the
``status`` command can show them and a restart keeps them.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from zoneinfo import ZoneInfo

from .config import Device

READ_FAILED = "E6201"  # a read that raised or timed out without a poller's code

REASONS = {0x80: "Unspecified error", 0x83: "Implementation specific error", 0x87: "Not authorized",
           0x90: "Topic Name invalid", 0x91: "Packet identifier in use", 0x97: "Quota exceeded",
           0x99: "Payload format invalid"}


def iso(ts_ms: int | None, tz: ZoneInfo) -> str | None:
    if ts_ms is None:
        return None
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz).isoformat(timespec="milliseconds")


def describe(device: Device) -> str:
    """The device as an installer finds it: source, driver, bus, and unit id or meter address."""
    if device.driver == "fake":
        return f"{device.source_id} (fake)"
    bus = device.serial if device.serial and device.driver in ("modbus_rtu", "dlt645_serial") \
        else f"{device.host}:{device.port}"
    if device.driver.startswith("modbus"):
        return f"{device.source_id} ({device.driver} {bus} unit {device.unit_id})"
    return f"{device.source_id} ({device.driver} {bus} meter {device.address})"


@dataclass
class DeviceHealth:
    last_good_ms: int | None = None
    failures: int = 0
    last_error: str | None = None
    message: str | None = None
    last_error_ms: int | None = None

    def ok(self, ts_ms: int) -> None:
        self.last_good_ms, self.failures = ts_ms, 0

    def failed(self, code: str | None, message: str, ts_ms: int) -> None:
        self.failures += 1
        if code is not None:  # a skipped (backed-off) poll keeps the error that caused it
            self.last_error, self.message = code, message[:300]
        self.last_error_ms = ts_ms

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, text: str | None) -> DeviceHealth:
        if not text:
            return cls()
        try:
            return cls(**json.loads(text))
        except (TypeError, ValueError):
            return cls()

    def report(self, tz: ZoneInfo, last_acked_ms: int | None) -> dict:
        return {"lastGoodPoll": iso(self.last_good_ms, tz), "failures": self.failures,
                "lastError": self.last_error, "message": self.message, "lastAcked": iso(last_acked_ms, tz)}


def reason_text(code: int) -> str:
    return REASONS.get(code, f"reason code {code}")


def error_of(exc: BaseException, device: Device) -> tuple[str | None, str]:
    """(code, message naming the device) of a failed read; code None for a backed-off skip."""
    from .drivers import BackedOff, DeviceReadError

    where = describe(device)
    if isinstance(exc, BackedOff):
        return None, f"{where}: {exc}"
    if isinstance(exc, DeviceReadError):
        return exc.code, f"{where}: {exc.detail}"
    if isinstance(exc, TimeoutError):
        return READ_FAILED, f"{where}: no answer within {device.timeout_s + 5:.0f} s"
    return READ_FAILED, f"{where}: {exc.__class__.__name__}: {exc}"
